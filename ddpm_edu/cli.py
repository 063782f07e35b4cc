"""The ``ddpm-edu`` command: train, sample, measure FID and regenerate figures.

The seed's ``scripts/train.sh``/``test.sh``, done properly. ``python -m ddpm_edu`` is the same
command. Usage errors (a bad config, a missing checkpoint or data set) print one paragraph and
exit with status 2, without a traceback and without creating a run folder.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import warnings
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["main", "build_parser"]

EPILOG_TRAIN = """\
examples:
  ddpm-edu train --config digits                          # 8x8 digits, a few minutes on a CPU
  ddpm-edu train --config digits-guided                   # the same with labels, for guided sampling
  ddpm-edu train --config toy2d                           # 2-D points, seconds
  ddpm-edu train --config cifar10-small --set train.run_root=/content/drive/MyDrive/ddpm-runs
  ddpm-edu train --config cifar10 --set train.steps=2000 --set model.ch=64
  ddpm-edu train --config my.yml --run-dir /tmp/run1
  ddpm-edu train --config folder --set data.root=~/my_photos   # your own images, 32x32 RGB
  ddpm-edu train --config cifar10 --set train.accumulate=2      # batch 128 as 2 micro-batches of 64

Run the same command again to resume: train.resume=auto (the default) continues from the
newest checkpoint in the run folder. SIGTERM or Ctrl-C write a checkpoint before exiting.

Several GPUs or processes (data.batch_size is the global batch, split evenly over them):
  torchrun --nproc_per_node=8 -m ddpm_edu train --config cifar10
  torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
      --rdzv-id cifar -m ddpm_edu train --config cifar10     # on each machine; a shared run folder
A run resumes on any number of processes.
"""

EPILOG_SAMPLE = """\
examples:
  ddpm-edu sample --checkpoint runs/digits/checkpoints/step_00003000.pt
  ddpm-edu sample --config digits --checkpoint runs/digits/ema.safetensors --out out/
  ddpm-edu sample --config cifar10 --checkpoint ckpt.pt --sampler ddim --steps 50 --eta 0 --num-samples 16

Writes <out>/samples.png (the final samples) and <out>/trajectory.gif (x_t from noise to data).

A model trained with labels (e.g. --config digits-guided) samples one class, with classifier-free
guidance of weight w (0: the conditional model alone):
  ddpm-edu sample --checkpoint runs/digits-guided/ema.safetensors --label 7 --guidance 2.0 \
      --sampler ddim --steps 50 --num-samples 64 --format npz --out sevens/

For FID, one PNG per sample (000000.png ...), shared among processes, resumable:
  torchrun --nproc_per_node=8 -m ddpm_edu sample --checkpoint runs/cifar10/ema.safetensors \
      --num-samples 50000 --format png --out fid/      # --format npz adds fid/samples.npz
Run it again after an interruption: only the missing files are drawn.
"""

EPILOG_FID = """\
examples:
  ddpm-edu fid --samples fid-samples/ --data-root ~/.cache/ddpm_edu/data   # one PNG per sample
  ddpm-edu fid --samples samples.npz --weights weights-inception-2015-12-05-6726825d.pth   # offline

Needs the fid extra: pip install "ddpm-edu[fid]". The Inception weights (about 95 MB) are downloaded
once into torch's hub cache; offline, pass a copy with --weights or $DDPM_EDU_FID_WEIGHTS. The paper's
CIFAR-10 FID is 3.17, from 50,000 samples; with fewer samples FID comes out higher.
"""


def build_parser() -> argparse.ArgumentParser:
    from ddpm_edu.training.configs import (
        preset_names,  # no torch import: --help stays fast
    )

    presets = ", ".join(preset_names())
    p = argparse.ArgumentParser(
        prog="ddpm-edu",
        description="Denoising diffusion (DDPM, Ho et al. 2020): train models, draw samples, make the book's figures.",
        epilog="Run 'ddpm-edu COMMAND --help' for a command's options and examples.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser("train", help="train a model from a preset or YAML config",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a DDPM. The run folder gets config.yml, metrics.jsonl, loss.png, "
                                   "checkpoints/, samples/ and ema.safetensors.")
    t.add_argument("--config", "-c", required=True, metavar="PRESET_OR_PATH", help=f"a preset ({presets}) or a YAML file")
    t.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value, e.g. --set train.steps=2000 (repeatable; values are YAML)")
    t.add_argument("--run-dir", metavar="DIR", help="the run folder (default: <train.run_root>/<name>)")

    s = sub.add_parser("sample", help="draw samples and a trajectory GIF from a trained model",
                       epilog=EPILOG_SAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Sample from the EMA weights of a checkpoint (.pt) or an ema.safetensors file.")
    s.add_argument("--config", "-c", metavar="PRESET_OR_PATH",
                   help="the model's config (default: the config stored in the checkpoint)")
    s.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config value (repeatable)")
    s.add_argument("--checkpoint", required=True, metavar="PATH", help="a step_*.pt checkpoint or ema.safetensors")
    # The sampler's settings are checked where the config checks them (ddpm_edu.sampling.sampler_problems):
    # no choices= here, which would also import torch into --help.
    s.add_argument("--sampler", metavar="{ddpm,ddim}", help="ddpm: Algorithm 2 with T steps; ddim: --steps model calls")
    s.add_argument("--steps", type=int, help="DDIM steps, at most the config's diffusion.T")
    s.add_argument("--eta", type=float, help="DDIM stochasticity, >= 0 (0: deterministic)")
    s.add_argument("--num-samples", "-n", type=int, help="how many samples")
    s.add_argument("--frames", type=int, help="frames in trajectory.gif (default 30)")
    s.add_argument("--fps", type=float, help="GIF frames per second (default 10)")
    s.add_argument("--seed", type=int, help="seed of the sampling noise (default: the config's seed + 3)")
    s.add_argument("--label", type=int, metavar="Y", help="draw class Y of a model trained with labels (data.labels)")
    s.add_argument("--guidance", type=float, metavar="W",
                   help="classifier-free guidance weight w >= 0 for --label (default 0: the conditional model)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to sample (default: train.device)")
    s.add_argument("--out", "-o", metavar="DIR", help="output folder (default: the run's samples/ folder)")
    s.add_argument("--format", choices=("grid", "png", "npz"), default="grid",
                   help="grid: samples.png + trajectory.gif (default); png: one file per sample, for FID; "
                        "npz: those files and samples.npz (arr_0, uint8 N x H x W x C)")
    s.add_argument("--batch-size", type=int, default=256, metavar="B",
                   help="samples per network batch with --format png/npz (default 256; keep it for a rerun)")

    q = sub.add_parser("fid", help="FID of samples against the CIFAR-10 training set (the fid extra)",
                       epilog=EPILOG_FID, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Frechet Inception distance of 32x32 samples to the CIFAR-10 training set, "
                                   "computed by torch-fidelity (ddpm_edu.eval.fid.fid).")
    q.add_argument("--samples", required=True, metavar="PATH",
                   help="a folder of per-image PNGs (searched recursively) or an .npz of uint8 images")
    q.add_argument("--data-root", metavar="DIR",
                   help="the folder that holds cifar-10-batches-py/ (default: data.root's, ~/.cache/ddpm_edu/data)")
    q.add_argument("--weights", metavar="FILE",
                   help="a local copy of the Inception weights (default: $DDPM_EDU_FID_WEIGHTS, else torch's "
                        "hub cache, else downloaded)")
    q.add_argument("--no-download", action="store_true", help="fail instead of downloading a missing CIFAR-10")
    q.add_argument("--no-verify-md5", action="store_true", help="accept a re-packed CIFAR-10 copy")
    q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where Inception runs")
    q.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per Inception batch")

    f = sub.add_parser("figs", help="regenerate the book's and README's figures",
                       description="Regenerate every figure made by ddpm_edu.lab.figs.make_all.")
    f.add_argument("--out", "-o", default="figs", metavar="DIR", help="output folder (default: figs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ddpm-edu`` and ``python -m ddpm_edu``; returns the exit status."""
    args = build_parser().parse_args(argv)
    from ddpm_edu.data import DataError
    from ddpm_edu.eval.fid import FIDError
    from ddpm_edu.training.checkpoint import CheckpointError
    from ddpm_edu.training.config import ConfigError
    from ddpm_edu.training.distributed import DistributedError

    try:
        with _one_line_warnings(args.command):
            return {"train": _train, "sample": _sample, "fid": _fid, "figs": _figs}[args.command](args)
    except (ConfigError, CheckpointError, DataError, DistributedError, FIDError) as e:
        print(f"ddpm-edu {args.command}: error: {e}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """The library's own warnings (skipped or upscaled images, ...) as ``ddpm-edu COMMAND: warning: ...``,
    without the file and line of code that Python shows; other packages' warnings are shown as usual."""
    package, shown = str(Path(__file__).resolve().parent), warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if str(Path(filename).resolve()).startswith(package):
            print(f"ddpm-edu {command}: warning: {message}", file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _train(args: argparse.Namespace) -> int:
    from ddpm_edu.training.config import load_config
    from ddpm_edu.training.distributed import initialized
    from ddpm_edu.training.guard import NonFiniteError
    from ddpm_edu.training.train import train

    cfg = load_config(args.config, args.overrides)
    try:
        with initialized() as world:  # several processes under torchrun, else one
            r = train(cfg, args.run_dir, world=world)
    except NonFiniteError as e:
        print(f"ddpm-edu train: stopped: {e}", file=sys.stderr)
        return 1
    if not world.is_main:  # rank 0 reports for the job
        return 128 + r.interrupted if r.interrupted else 0
    if r.interrupted:
        import signal

        name = signal.Signals(r.interrupted).name
        print(f"ddpm-edu train: stopped by {name} at step {r.step}; checkpoint {r.checkpoint}. "
              f"Run the same command again to resume.", file=sys.stderr)
        return 128 + r.interrupted
    from ddpm_edu.data.files import shown_path

    print(f"trained {r.step} steps; run folder {shown_path(r.run_dir)}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from ddpm_edu.training.build import load_ema_model, resolve_device
    from ddpm_edu.training.checkpoint import CheckpointError
    from ddpm_edu.training.config import ConfigError, apply_overrides, load_config
    from ddpm_edu.training.generate import generate, write_samples

    ck = Path(args.checkpoint).expanduser()
    if not ck.is_file():
        raise CheckpointError(f"Checkpoint {ck} does not exist. Pass a step_*.pt file from a run's checkpoints/ "
                              f"folder or its ema.safetensors.")
    cfg = load_config(args.config, args.overrides) if args.config else None
    model, cfg = load_ema_model(cfg, ck)
    if not args.config and args.overrides:
        cfg = apply_overrides(cfg, args.overrides)
    over = {k: v for k, v in dict(sampler=args.sampler, steps=args.steps, eta=args.eta, num_samples=args.num_samples,
                                  frames=args.frames, fps=args.fps).items() if v is not None}
    try:
        cfg = cfg.replace(sample=dataclasses.replace(cfg.sample, **over))  # validates the options
    except ConfigError as e:
        raise ConfigError.listing(f"{cfg.source} with sample options", e.problems) from None
    _check_label(args, model)
    out = Path(args.out).expanduser() if args.out else _default_out(ck)
    if args.format != "grid":
        return _sample_files(args, model, cfg, ck, out)
    device = resolve_device(args.device or cfg.train.device)
    x, rec = generate(model.to(device), cfg, seed=args.seed, device=device, progress=True, label=args.label,
                      guidance=args.guidance)
    png, gif = write_samples(x, rec, out / "samples.png", out / "trajectory.gif", cfg.sample.fps)
    print(f"wrote {png} and {gif} ({len(rec.frames)} frames)")
    return 0


def _check_label(args: argparse.Namespace, model) -> None:
    """--label and --guidance suit the model: a ConfigError (exit 2) naming the options otherwise."""
    from ddpm_edu.guidance import guidance_problems
    from ddpm_edu.training.config import ConfigError

    names = {"label": "--label", "w": "--guidance"}
    p = guidance_problems(args.label, args.guidance, getattr(model, "num_classes", None))
    if p:
        raise ConfigError("; ".join(f"{names[k]}: {msg}" for k, msg in p.items()))


def _sample_files(args: argparse.Namespace, model, cfg, ck: Path, out: Path) -> int:
    """``--format png/npz``: the samples as files, shared among torchrun's processes (see generate.py)."""
    import torch

    from ddpm_edu.training.build import resolve_device
    from ddpm_edu.training.config import ConfigError
    from ddpm_edu.training.distributed import initialized
    from ddpm_edu.training.generate import (
        check_settings,
        pack_npz,
        sampling_settings,
        write_sample_files,
    )

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    n, seed = cfg.sample.num_samples, cfg.seed + 3 if args.seed is None else args.seed
    with initialized() as world:
        device = world.device(resolve_device(args.device or cfg.train.device))
        check_settings(out, sampling_settings(cfg, ck, seed, args.batch_size, args.label, args.guidance), world)
        mine = write_sample_files(model.to(device), cfg, out, n, batch=args.batch_size, seed=seed, world=world,
                                  device=device, label=args.label, guidance=args.guidance)
        drawn = int(world.gather(torch.tensor([len(mine)])).sum())
        world.barrier()  # every file is written
        if world.is_main:
            npz = f" and {pack_npz(out, n)}" if args.format == "npz" else ""
            print(f"{out}: {n} sample files 000000.png ... ({drawn} drawn now by {world.size} process(es)){npz}")
    return 0


def _default_out(ck: Path) -> Path:
    run = ck.parent.parent if ck.parent.name == "checkpoints" else ck.parent
    return run / "samples" / "sampled"


def _fid(args: argparse.Namespace) -> int:
    from ddpm_edu.eval.fid import PAPER_FID_CIFAR10, PAPER_FID_SAMPLES, fid
    from ddpm_edu.training.config import DataConfig

    value = fid(args.samples, reference_root=args.data_root or DataConfig().root, weights=args.weights,
                verify_md5=not args.no_verify_md5, download=not args.no_download, device=args.device,
                batch_size=args.batch_size)
    print(f"FID {value:.2f} against the CIFAR-10 training set (Ho et al. 2020: {PAPER_FID_CIFAR10} "
          f"from {PAPER_FID_SAMPLES:,} samples)")
    return 0


def _figs(args: argparse.Namespace) -> int:
    from ddpm_edu.lab.figs import make_all

    paths = make_all(args.out)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
