"""Sampling speed with a real network: the sampler loops against an earlier revision's, and images/s.

Part 1, loops. A preset's U-Net (``digits`` by default; random weights, since only the time matters)
samples ``--batch`` images with DDPM over the config's T steps and with DDIM over ``--ddim-steps``
(eta = 0), with the config's variance and clipping: once with ``ddpm_edu.sampling`` as it is, and
once with the ``ddpm_edu/sampling.py`` of git revision ``--base`` (default f068cfe, whose loop
read its coefficients once as Python floats), loaded from ``git show`` as a module of its own. Each
round runs both from the same x_T and noise, in a seeded random order; a row gives the median of
the per-round ratios new/old and their range, and max |x_0 new - x_0 old| (fp32, so not bit for bit).

Part 2, throughput. The same U-Net's images/s (the batch over the median time of a whole run) for
DDPM and DDIM. ``--variants`` times several ways of running the model side by side, interleaved
(tokens joined by ``+``): ``fp32``/``bf16``/``fp16`` (autocast), ``cl`` (channels_last),
``compile`` (torch.compile), ``graphs`` (torch.compile mode="reduce-overhead", CUDA graphs).

    python bench/sample_throughput.py                         # CPU: both parts, digits, batch 32
    python bench/sample_throughput.py --part loops --ddpm-repeats 5 --record
    python bench/sample_throughput.py --device cuda --preset cifar10 --batch 256 \
        --variants fp32,bf16+cl,bf16+cl+graphs
    python bench/sample_throughput.py --dry-run               # seconds: the smoke test's mode

``--record`` appends the rows to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import ddpm_edu.sampling as sampling  # noqa: E402
from ddpm_edu.schedules import Schedule  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BASE = "f068cfe"  # the last revision with the coefficient-tuple loop (_run, DDPMCoefs, DDIMCoefs)
TOKENS = {"fp32", "bf16", "fp16", "cl", "compile", "graphs"}  # what --variants may combine with "+"
LOOPS_HEADER = (
    "| date | machine | torch | device | threads | preset | sampler | model calls | batch | base | rounds "
    "| old s per run | new s per run | new/old (median of rounds) | new/old (min-max) | max abs diff |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
THROUGHPUT_HEADER = (
    "| date | machine | torch | device | threads | preset | sampler | model calls | batch | variant | rounds "
    "| s per run | img/s | ms per model call |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
Run = Callable[[torch.Generator], Tensor]  # (generator) -> x_0


# --------------------------------------------------------------------------- part 1: old loop against new
def base_sampling(rev: str) -> ModuleType:
    """``ddpm_edu/sampling.py`` as of git revision ``rev``, imported as a module of its own."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:ddpm_edu/sampling.py"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        why = getattr(e, "stderr", "") or e
        raise SystemExit(f"--base {rev}: cannot read ddpm_edu/sampling.py at that revision ({str(why).strip()}); "
                         f"run from a git checkout that has it") from None
    name = "sampling_at_" + re.sub(r"\W", "_", rev)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


def loops(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Part 1: the same DDPM and DDIM runs with this checkout's sampling module and with --base's."""
    from ddpm_edu.training.build import build_schedule, data_shape
    from ddpm_edu.training.config import load_config

    cfg = load_config(args.preset, [f"diffusion.T={args.T_model}"] if args.T_model else [])
    s, sc = build_schedule(cfg, device), cfg.sample
    eps, _ = variant_model(args.preset, "fp32", device)
    x_T = torch.randn((args.batch, *data_shape(cfg)), generator=torch.Generator().manual_seed(0)).to(device)
    modules = {"old": base_sampling(args.base), "new": sampling}
    rows = []
    for kind, rounds in (("ddim", args.repeats), ("ddpm", args.ddpm_repeats)):
        runs = {k: sampler_run(m, eps, x_T, s, kind, args.ddim_steps, sc.clip_x0, sc.variance)
                for k, m in modules.items()}
        times, outs = interleave(runs, rounds, device, warmup=kind == "ddim")  # DDIM warms the model up
        diff = (outs["new"].double() - outs["old"].double()).abs().max().item()
        calls = s.T if kind == "ddpm" else len(sampling.ddim_timesteps(s.T, args.ddim_steps))
        rows.append(loops_row(args, device, kind, calls, times, diff))
    return rows


def loops_row(args: argparse.Namespace, device: torch.device, kind: str, calls: int,
              times: dict[str, list[float]], diff: float) -> dict:
    """Print part 1's timings and make its row: medians, the per-round ratios new/old, the difference."""
    ratios = [n / o for n, o in zip(times["new"], times["old"])]  # a round's two runs saw the same load
    med = {k: statistics.median(v) for k, v in times.items()}
    name = "DDPM" if kind == "ddpm" else "DDIM eta=0"
    print(f"  {name}, {calls} calls: old {med['old']:.3f} s, new {med['new']:.3f} s per run; new/old "
          f"{statistics.median(ratios):.4f} (median of {len(ratios)} rounds, {min(ratios):.4f}-{max(ratios):.4f}); "
          f"max |x_0 new - x_0 old| {diff:.1e}")
    md = (f"| {common(device)} | {args.preset} | {name} | {calls} | {args.batch} | {args.base} | {len(ratios)} "
          f"| {med['old']:.3f} | {med['new']:.3f} | {statistics.median(ratios):.4f} "
          f"| {min(ratios):.4f}-{max(ratios):.4f} | {diff:.1e} |")
    return dict(kind="loops", sampler=name, calls=calls, old_s=med["old"], new_s=med["new"],
                ratio=statistics.median(ratios), ratios=ratios, diff=diff, md=md)


def sampler_run(mod: ModuleType, eps: Callable, x_T: Tensor, s: Schedule, kind: str, steps: int,
                clip: float | None, variance: str) -> Run:
    """One whole sampling run with module ``mod``'s samplers, as the config samples (DDIM with eta = 0)."""
    def run(g: torch.Generator) -> Tensor:
        if kind == "ddpm":
            return mod.sample(eps, x_T.shape, s, generator=g, variance=variance, clip_x0=clip, x_T=x_T)
        return mod.ddim_sample(eps, x_T.shape, s, steps, 0.0, generator=g, clip_x0=clip, x_T=x_T)

    return run


def interleave(runs: dict[str, Run], rounds: int, device: torch.device,
               warmup: bool = True) -> tuple[dict[str, list[float]], dict[str, Tensor]]:
    """Seconds per run of each run, and its output: one warm-up run each (if ``warmup``), then ``rounds``
    rounds, each in a fresh random order (seeded), so that no run always goes first or follows the same one."""
    names, order = list(runs), random.Random(0)
    times: dict[str, list[float]] = {n: [] for n in names}
    outs: dict[str, Tensor] = {}
    for n in names if warmup else []:
        runs[n](torch.Generator(device).manual_seed(1))
    for _ in range(rounds):
        for n in order.sample(names, len(names)):
            g = torch.Generator(device).manual_seed(1)
            sync(device)
            t0 = time.perf_counter()
            outs[n] = runs[n](g)
            sync(device)
            times[n].append(time.perf_counter() - t0)
    return times, outs


# --------------------------------------------------------------------------- part 2: the U-Net's images/s
def variant_model(preset: str, variant: str, device: torch.device) -> tuple[Callable, torch.memory_format]:
    """The preset's U-Net run as ``variant`` says: (eps model, memory format of x)."""
    from ddpm_edu.training.build import build_model
    from ddpm_edu.training.config import load_config

    tokens = set(variant.split("+"))
    torch.manual_seed(0)  # benchmark script: the model's init draws from the global RNG; weights do not matter
    fmt = torch.channels_last if "cl" in tokens else torch.contiguous_format
    model = build_model(load_config(preset)).to(device, memory_format=fmt).eval()
    if "graphs" in tokens:
        model = torch.compile(model, mode="reduce-overhead")
    elif "compile" in tokens:
        model = torch.compile(model)
    dtype = torch.bfloat16 if "bf16" in tokens else torch.float16 if "fp16" in tokens else None

    def eps(x: Tensor, t: Tensor) -> Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            return model(x, t)

    return eps, fmt


def throughput(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Part 2: images/s of DDPM (T model calls) and DDIM (``--ddim-steps``) for each variant, interleaved."""
    from ddpm_edu.training.build import build_schedule, data_shape
    from ddpm_edu.training.config import load_config

    cfg = load_config(args.preset, [f"diffusion.T={args.T_model}"] if args.T_model else [])
    s, sc = build_schedule(cfg, device), cfg.sample
    shape = (args.batch, *data_shape(cfg))
    runs: dict[str, dict[str, Run]] = {}
    rows = []
    for v in args.variants.split(","):
        try:
            eps, fmt = variant_model(args.preset, v, device)
            x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, memory_format=fmt)
            runs[v] = {k: sampler_run(sampling, eps, x_T, s, k, args.ddim_steps, sc.clip_x0, sc.variance)
                       for k in ("ddim", "ddpm")}
            runs[v]["ddim"](torch.Generator(device).manual_seed(1))  # warm-up: compiles, autotunes cuDNN
            sync(device)
        except Exception as e:  # noqa: BLE001 - a path never run on this machine may fail: time the others
            print(f"  variant {v} FAILED: {type(e).__name__}: {e}")
            runs.pop(v, None)
            rows.append(dict(kind="failed", variant=v, error=f"{type(e).__name__}: {e}"))
    for kind, reps in (("ddim", args.repeats), ("ddpm", args.ddpm_repeats)):
        times, _ = interleave({v: r[kind] for v, r in runs.items()}, reps, device, warmup=False)
        calls = s.T if kind == "ddpm" else len(sampling.ddim_timesteps(s.T, args.ddim_steps))
        rows += [throughput_row(args, device, kind, v, calls, ts) for v, ts in times.items()]
    return rows


def throughput_row(args: argparse.Namespace, device: torch.device, kind: str, variant: str, calls: int,
                   times: list[float]) -> dict:
    med = statistics.median(times)
    name = "DDPM" if kind == "ddpm" else "DDIM eta=0"
    print(f"  {args.preset} {name} {variant}: {med:.3f} s per run of {calls} calls "
          f"(min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs), {args.batch / med:.1f} img/s")
    md = (f"| {common(device)} | {args.preset} | {name} | {calls} | {args.batch} | {variant} | {len(times)} "
          f"| {med:.3f} | {args.batch / med:.1f} | {med / calls * 1e3:.2f} |")
    return dict(kind="throughput", sampler=name, variant=variant, calls=calls, s_per_run=med,
                img_per_s=args.batch / med, md=md)


# --------------------------------------------------------------------------- common
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def common(device: torch.device) -> str:
    """The first five cells of every row: date, machine, torch, device, threads."""
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.machine()} CPU, {os.cpu_count()} cores"
    threads = torch.get_num_threads()
    return f"{datetime.date.today().isoformat()} | {machine} | {torch.__version__} | {device.type} | {threads}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (set explicitly; default 1)")
    p.add_argument("--part", choices=["all", "loops", "throughput"], default="all")
    p.add_argument("--base", default=BASE, help=f"part 1: the git revision whose sampling.py is 'old' (default {BASE})")
    p.add_argument("--preset", default="digits", help="the config preset whose U-Net is timed")
    p.add_argument("--T-model", type=int, default=0, help="override the config's T (0: keep it)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ddim-steps", type=int, default=50, help="DDIM model calls")
    p.add_argument("--repeats", type=int, default=11, help="interleaved rounds of DDIM")
    p.add_argument("--ddpm-repeats", type=int, default=1, help="interleaved rounds of the full DDPM chain")
    p.add_argument("--variants", default="fp32", help="part 2: comma-separated, e.g. fp32,bf16+cl+compile")
    p.add_argument("--dry-run", action="store_true", help="everything tiny: seconds, for the smoke test")
    p.add_argument("--record", action="store_true", help=f"append the rows to {RESULTS}")
    args = p.parse_args(argv)
    if args.dry_run:
        args.ddim_steps, args.repeats, args.ddpm_repeats, args.batch = 5, 2, 1, 4
        args.T_model = args.T_model or 10
    unknown = {tok for v in args.variants.split(",") for tok in v.split("+")} - TOKENS
    if unknown:
        p.error(f"unknown --variants token(s) {sorted(unknown)}; combine {sorted(TOKENS)} with '+'")
    if min(args.ddim_steps, args.repeats, args.ddpm_repeats, args.batch) < 1:
        p.error("--ddim-steps, --repeats, --ddpm-repeats and --batch must be >= 1")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, {args.preset} U-Net "
          f"(random weights), batch {args.batch}")
    rows = []
    if args.part in ("all", "loops"):
        print(f"part 1: the sampler loops, this checkout's against {args.base}'s")
        rows += loops(args, device)
    if args.part in ("all", "throughput"):
        print(f"part 2: images/s, variants {args.variants}")
        rows += throughput(args, device)
    for header, kind in ((LOOPS_HEADER, "loops"), (THROUGHPUT_HEADER, "throughput")):
        mine = [r["md"] for r in rows if r["kind"] == kind]
        if mine:
            print(header + "\n".join(mine))
    if args.record:
        record(rows, sys.argv[1:] if argv is None else argv)
    failed = [r["variant"] for r in rows if r["kind"] == "failed"]
    if failed:
        raise SystemExit(f"variant(s) {', '.join(failed)} failed (see above); the others were timed")
    return rows


def record(rows: list[dict], argv: list[str]) -> None:
    """Append this run's tables to RESULTS.md, each with its header, after a line naming the command."""
    with RESULTS.open("a") as f:
        f.write(f"\n`python bench/sample_throughput.py {' '.join(argv)}`\n")
        for header, kind in ((LOOPS_HEADER, "loops"), (THROUGHPUT_HEADER, "throughput")):
            mine = [r["md"] for r in rows if r["kind"] == kind]
            if mine:
                f.write("\n" + header + "\n".join(mine) + "\n")


if __name__ == "__main__":
    main()
