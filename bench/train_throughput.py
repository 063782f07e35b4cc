"""Training throughput of the DDPM U-Net: forward + backward + Adam step on random data.

Times one step of Algorithm 1 (``ddpm_edu.losses.l_simple`` with ``Schedule.linear(1000)``) and
reports the median step time, steps/s and images/s. With ``--compare-diffusers`` it also builds
diffusers' ``UNet2DModel`` of the same shape and times it interleaved with ours in the same run
(step by step, alternating), so both see the same machine state; the ratio is ours / theirs.

    python bench/train_throughput.py --preset digits --batch 128 --steps 20 --compare-diffusers
    python bench/train_throughput.py --preset cifar10 --batch 128 --precision bf16 --device cuda \
        --channels-last --compile --record

With ``--trainer`` it times ddpm_edu's own ``Trainer`` instead: the step the ``ddpm-edu train``
command runs (warmup, gradient clipping, the non-finite guard, EMA, a data stream that lives on the
device). That step never waits for the device, so it is timed as a whole window of ``--steps``
steps between two synchronisations, and steps/s is ``--steps`` over that time:

    python bench/train_throughput.py --trainer --preset cifar10 --batch 128 --device cuda \
        --precision bf16 --channels-last --compile --steps 300 --record

``--record`` appends the markdown row to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ddpm_edu.lab.cost import train_flops  # noqa: E402
from ddpm_edu.losses import l_simple  # noqa: E402
from ddpm_edu.nets.unet import PRESETS, UNet, count_params  # noqa: E402
from ddpm_edu.schedules import Schedule  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "| date | machine | torch | preset | batch | device | precision | channels_last | compile "
    "| ours ms/step | ours steps/s | ours img/s | diffusers ms/step | ours/diffusers | min ms ours / diffusers |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> str:
    """auto: bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU."""
    if name != "auto":
        return name
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def diffusers_twin(kw: dict) -> nn.Module:
    """diffusers' UNet2DModel with the shape of ``UNet(**kw)``: same widths, blocks, attention, dropout."""
    from diffusers import UNet2DModel

    ch, mult, res = kw["ch"], kw["ch_mult"], kw["image_size"]
    attn_levels = [res // 2**i in kw["attn_resolutions"] for i in range(len(mult))]
    return UNet2DModel(
        sample_size=res,
        in_channels=kw["in_ch"],
        out_channels=kw.get("out_ch") or kw["in_ch"],
        block_out_channels=tuple(ch * m for m in mult),
        layers_per_block=kw["num_res_blocks"],
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn_levels),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn_levels)),
        attention_head_dim=ch * mult[-1] // kw.get("num_heads", 1),  # one head, as in DDPM
        norm_num_groups=32,
        dropout=kw["dropout"],
        downsample_padding=1,
    )


class Trainer:
    """One model, its Adam optimizer and its (optional) grad scaler; ``step()`` is one training step."""

    def __init__(self, name: str, model: nn.Module, call: Callable[[Tensor, Tensor], Tensor],
                 x0: Tensor, precision: str, device: torch.device):
        self.name, self.model, self.x0, self.device = name, model, x0, device
        self.call = call
        self.opt = torch.optim.Adam(model.parameters(), lr=2e-4, fused=True)  # same optimizer for both models
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.sched = Schedule.linear(1000).to(device)
        self.g = torch.Generator(device).manual_seed(0)
        self.times: list[float] = []

    def step(self, timed: bool) -> None:
        sync(self.device)
        t0 = time.perf_counter()
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            loss = l_simple(self.call, self.x0, self.sched, generator=self.g)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        sync(self.device)
        if timed:
            self.times.append(time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def build(args: argparse.Namespace, device: torch.device, precision: str) -> list[Trainer]:
    kw = PRESETS[args.preset]
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(args.batch, kw["in_ch"], kw["image_size"], kw["image_size"], generator=g) * 2 - 1)
    x0 = x0.to(device).contiguous(memory_format=fmt)
    torch.manual_seed(0)  # benchmark script: the models' init draws from the global RNG
    ours = UNet(**kw).to(device, memory_format=fmt)
    print(f"ours: UNet {args.preset}, {count_params(ours):,} parameters")
    trainers = [Trainer("ours", ours, maybe_compile(ours, args.compile), x0, precision, device)]
    if args.compare_diffusers:
        theirs = diffusers_twin(kw).to(device, memory_format=fmt)
        print(f"diffusers: UNet2DModel, {count_params(theirs):,} parameters")
        fn = maybe_compile(theirs, args.compile)
        trainers.append(Trainer("diffusers", theirs, lambda x, t: fn(x, t).sample, x0, precision, device))
    return trainers


def maybe_compile(model: nn.Module, on: bool) -> Callable:
    return torch.compile(model) if on else model


def time_trainer(args: argparse.Namespace, device: torch.device, precision: str) -> list[float]:
    """Seconds per step of ``ddpm_edu.training.train.Trainer`` over one window of ``args.steps`` steps (one entry)."""
    from ddpm_edu.data.stream import BatchIterator
    from ddpm_edu.training.build import cudnn_autotune
    from ddpm_edu.training.config import load_config
    from ddpm_edu.training.train import Trainer

    kw = PRESETS[args.preset]
    cfg = load_config("cifar10" if kw["in_ch"] == 3 else "digits", [
        f"model.preset={args.preset}", f"data.batch_size={args.batch}", f"train.device={device.type}",
        f"train.precision={precision}", f"train.compile={str(args.compile).lower()}",
        f"train.channels_last={str(args.channels_last).lower()}", f"train.steps={args.warmup + args.steps}",
        "train.log_every=1000000", "train.ckpt_every=0", "train.sample_every=0", "train.progress=false"])
    g = torch.Generator().manual_seed(0)
    n = max(4 * args.batch, 1024)  # random uint8 images, resident on the device like CIFAR-10 on a GPU
    images = torch.randint(0, 256, (n, kw["in_ch"], kw["image_size"], kw["image_size"]), generator=g,
                           dtype=torch.uint8).to(device)
    data = BatchIterator(images, args.batch, device=device, hflip=True, channels_last=args.channels_last)
    with tempfile.TemporaryDirectory() as tmp, cudnn_autotune(device):  # as Trainer.fit sets it
        tr = Trainer(cfg, tmp, samples=False, progress=False, data=data)
        tr.setup()  # the benchmark drives the step loop itself
        print(f"ours: Trainer on {args.preset}, {count_params(tr.model):,} parameters, "
              f"optimizer fused={tr.opt.defaults.get('fused')}")
        for k in range(1, args.warmup + 1):
            tr.train_step(k)
        sync(device)
        t0 = time.perf_counter()
        for k in range(args.warmup + 1, args.warmup + args.steps + 1):
            tr.train_step(k)
        tr.check_finite()  # reads the device: the window ends when the last step has finished
        sync(device)
        return [(time.perf_counter() - t0) / args.steps]


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="digits")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps (per model)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (per model)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile the model(s)")
    p.add_argument("--channels-last", action="store_true", help="channels_last weights and inputs")
    p.add_argument("--compare-diffusers", action="store_true", help="also time diffusers' UNet2DModel")
    p.add_argument("--trainer", action="store_true",
                   help="time ddpm_edu's Trainer step (EMA, clipping, guard, device data) over one window")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--record", action="store_true", help=f"append the row to {RESULTS}")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.warmup < 0:
        p.error("--steps and --batch must be >= 1, --warmup >= 0")
    if args.trainer and args.compare_diffusers:
        p.error("--trainer times ddpm_edu's Trainer alone; drop --compare-diffusers")

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    precision = pick_precision(args.precision, device)
    if args.trainer:  # with the Trainer's own settings (cuDNN autotuning on CUDA, torch's TF32 defaults)
        return report(args, device, precision, [("ours (Trainer)", time_trainer(args, device, precision))])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    trainers = build(args, device, precision)
    for _ in range(args.warmup):
        for tr in trainers:
            tr.step(timed=False)
    for i in range(args.steps):  # interleaved, alternating who goes first: ours, theirs, theirs, ours, ...
        for tr in trainers[:: 1 if i % 2 == 0 else -1]:
            tr.step(timed=True)
    return report(args, device, precision, [(tr.name, tr.times) for tr in trainers])


def report(args: argparse.Namespace, device: torch.device, precision: str, results: list[tuple[str, list[float]]]) -> str:
    """Print the timings (name, seconds per step) and the markdown row; with --record append the row."""
    med = [statistics.median(times) for _, times in results]
    flops = train_flops(PRESETS[args.preset], args.batch)
    print(f"{args.preset} at batch {args.batch}: {flops / 1e12:.3f} TFLOP per forward + backward; "
          f"{flops / med[0] / 1e12:.2f} TFLOP/s achieved by {results[0][0]}")
    for (name, times), m in zip(results, med):
        spread = (f" (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f} ms over {len(times)} steps)"
                  if len(times) > 1 else f" (mean over one window of {args.steps} steps)")
        print(f"{name}: {m * 1e3:.1f} ms/step, {1 / m:.2f} steps/s, {args.batch / m:.1f} img/s{spread}")
    theirs = f"{med[1] * 1e3:.1f}" if len(med) > 1 else "-"
    mins = " / ".join(f"{min(times) * 1e3:.1f}" for _, times in results)
    ratio = f"{med[0] / med[1]:.3f}" if len(med) > 1 else "-"
    if len(med) > 1:  # step i of both models ran back to back, under the same machine load
        paired = statistics.median(a / b for a, b in zip(results[0][1], results[1][1]))
        print(f"ours/diffusers: {ratio} (ratio of medians), {paired:.3f} (median of per-step ratios)")
    preset = f"{args.preset} (Trainer, {args.steps}-step window)" if args.trainer else args.preset
    row = (f"| {datetime.date.today().isoformat()} | {machine(device)} | {torch.__version__} | {preset} "
           f"| {args.batch} | {device.type} | {precision} | {args.channels_last} | {args.compile} "
           f"| {med[0] * 1e3:.1f} | {1 / med[0]:.2f} | {args.batch / med[0]:.1f} | {theirs} | {ratio} | {mins} |")
    print(row)
    if args.record:
        if not RESULTS.exists() or "| date |" not in RESULTS.read_text():
            with RESULTS.open("a") as f:
                f.write("\n" + HEADER)
        with RESULTS.open("a") as f:
            f.write(row + "\n")
    return row


if __name__ == "__main__":
    main()
