"""Sampling speed: the sampler's own cost against diffusers and a bare loop, and images/s of the U-Net.

Part 1, overhead. A trivial noise predictor, eps_hat = 0.1 x, makes the model free, so what is timed
is the sampler: its per-step arithmetic, its noise draws and its Python. Three loops run the same
computation from the same x_T with the same noise stream:

* ``ours``: ``ddpm_edu.sampling.sample`` (Algorithm 2, beta_tilde, x0_hat clipped to [-1, 1]) and
  ``ddim_sample`` (eta = 0, x0_hat clipped and eps_hat recomputed from it);
* ``diffusers``: the loop a diffusers user writes, ``DDPMScheduler.step`` (fixed_small = beta_tilde,
  clip_sample) and ``DDIMScheduler.step`` (eta = 0, clip_sample, use_clipped_model_output), both built
  from our betas;
* ``bare``: the same arithmetic with every coefficient precomputed as a Python float, the floor.

All three run under ``torch.inference_mode`` (ours enters it itself; the other two are wrapped), so the
grad mode is the same. Each round runs every loop once, in a random order; the ratios in the rows are medians
of the per-round ratios (the ratios of the medians and of the minima are printed too).
The outputs are compared too: ours and diffusers against the bare loop, which runs both time grids
(diffusers' DDIM visits T - 19, T - 39, ..., 1 with stride T / S, ours ``ddim_timesteps``; the step
arithmetic and its cost do not depend on which t are visited).

Part 2, throughput. A preset's U-Net (random weights: only the time matters) samples ``--batch``
images with DDPM over the config's T steps and with DDIM over 50 steps; images/s is the batch over
the median time of a whole run. ``--variants`` times several ways of running the model side by side,
interleaved (tokens joined by ``+``): ``fp32``/``bf16``/``fp16`` (autocast), ``cl`` (channels_last),
``compile`` (torch.compile), ``graphs`` (torch.compile mode="reduce-overhead", CUDA graphs).
The samplers always run under torch.inference_mode; part 1's "bare no_grad" column measures what it saves.

    python bench/sample_throughput.py                         # CPU: overhead + digits, batch 256
    python bench/sample_throughput.py --device cuda --preset cifar10 \
        --variants fp32,bf16+cl,bf16+cl+compile,bf16+cl+graphs
    python bench/sample_throughput.py --dry-run               # seconds: the smoke test's mode

``--record`` appends the rows to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ddpm_edu.sampling import ddim_sample, ddim_timesteps, sample  # noqa: E402
from ddpm_edu.schedules import Schedule  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TOKENS = {"fp32", "bf16", "fp16", "cl", "compile", "graphs"}  # what --variants may combine with "+"
OVERHEAD_HEADER = (
    "| date | machine | torch | device | threads | loop | shape | rounds | ours ms | diffusers ms | bare ms "
    "| ours/diffusers | ours/bare | bare no_grad/bare | max abs diff to bare: ours, diffusers |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
# The loops agree when max |x_0 - bare x_0| <= TOLERANCE. The same float32 arithmetic agrees exactly;
# diffusers keeps alpha_bar in float32 (relative error ~1e-7 in each coefficient), which over 1000
# steps of values of order 1 stays far below 1e-3. A wrong coefficient or noise draw is off by O(0.01-1).
TOLERANCE = 1e-3
THROUGHPUT_HEADER = (
    "| date | machine | torch | device | threads | preset | sampler | model calls | batch | variant | rounds "
    "| s per run | img/s | ms per model call |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
Loop = Callable[[Tensor, "torch.Generator"], Tensor]  # (x_T, generator) -> x_0


def trivial_eps(x: Tensor, t: Tensor) -> Tensor:
    """eps_hat = 0.1 x: a noise predictor that costs one multiplication, so the sampler is what is timed."""
    return 0.1 * x


# --------------------------------------------------------------------------- part 1: the three loops
def ours_loops(s: Schedule, steps: int) -> dict[str, Loop]:
    """ddpm_edu's samplers, as the library is called."""
    return {
        "ddpm": lambda x_T, g: sample(trivial_eps, x_T.shape, s, generator=g, clip_x0=1.0, x_T=x_T),
        "ddim": lambda x_T, g: ddim_sample(trivial_eps, x_T.shape, s, steps, 0.0, generator=g, clip_x0=1.0,
                                           x_T=x_T),
    }


def diffusers_loops(s: Schedule, steps: int) -> tuple[dict[str, Loop], list[int]]:
    """diffusers' DDPM and DDIM scheduler loops on our betas, and the t (1..T) its DDIM visits."""
    from diffusers import DDIMScheduler, DDPMScheduler

    betas = s.betas[1:].tolist()
    ddpm = DDPMScheduler(num_train_timesteps=s.T, trained_betas=betas, variance_type="fixed_small",
                         clip_sample=True, clip_sample_range=1.0, prediction_type="epsilon")
    ddim = DDIMScheduler(num_train_timesteps=s.T, trained_betas=betas, clip_sample=True, clip_sample_range=1.0,
                         set_alpha_to_one=True, steps_offset=0, prediction_type="epsilon")
    ddim.set_timesteps(steps)

    def run_ddpm(x_T: Tensor, g: torch.Generator) -> Tensor:
        x = x_T.clone()
        for t in ddpm.timesteps:  # diffusers counts t from 0: its t is our t - 1
            x = ddpm.step(trivial_eps(x, t), t, x, generator=g).prev_sample
        return x

    def run_ddim(x_T: Tensor, g: torch.Generator) -> Tensor:
        x = x_T.clone()
        for t in ddim.timesteps:
            x = ddim.step(trivial_eps(x, t), t, x, eta=0.0, use_clipped_model_output=True).prev_sample
        return x

    return {"ddpm": run_ddpm, "ddim": run_ddim}, [int(t) + 1 for t in ddim.timesteps]


def under(mode: Callable, loop: Loop) -> Loop:
    """``loop`` under a grad mode: torch.inference_mode (as ddpm_edu's samplers run) or torch.no_grad."""
    def run(x_T: Tensor, g: torch.Generator) -> Tensor:
        with mode():
            return loop(x_T, g)

    return run


def bare_ddpm(s: Schedule) -> Loop:
    """Algorithm 2 with clipping, each step's five coefficients precomputed as Python floats."""
    ab, ab_prev, beta, alpha = (a.tolist() for a in (s.alpha_bar, s.alpha_bar_prev, s.betas, s.alphas))
    steps = [(t, math.sqrt(1 - ab[t]), math.sqrt(ab[t]),  # x0_hat = (x - sqrt(1 - ab) eps) / sqrt(ab)
              math.sqrt(ab_prev[t]) * beta[t] / (1 - ab[t]),  # eq. (7): weight on x0_hat
              math.sqrt(alpha[t]) * (1 - ab_prev[t]) / (1 - ab[t]),  # eq. (7): weight on x_t
              math.sqrt((1 - ab_prev[t]) / (1 - ab[t]) * beta[t]))  # sigma_t = sqrt(beta_tilde_t)
             for t in range(s.T, 0, -1)]

    def run(x_T: Tensor, g: torch.Generator) -> Tensor:
        x, t_rows = x_T.clone(), _t_rows([t for t, *_ in steps], x_T)
        for i, (t, s1, sa, c0, ct, sigma) in enumerate(steps):
            eps = trivial_eps(x, t_rows[i])
            x0 = ((x - s1 * eps) / sa).clamp_(-1.0, 1.0)
            x = c0 * x0 + ct * x
            if t > 1:
                x += sigma * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        return x

    return run


def bare_ddim(s: Schedule, taus: list[int]) -> Loop:
    """DDIM eta = 0 with clipping over ``taus`` (descending, ending at 0), coefficients as Python floats."""
    ab = s.alpha_bar.tolist()
    steps = [(math.sqrt(1 - ab[t]), math.sqrt(ab[t]), math.sqrt(1 - ab[p]), math.sqrt(ab[p]))
             for t, p in zip(taus, taus[1:] + [0])]

    def run(x_T: Tensor, g: torch.Generator) -> Tensor:
        x, t_rows = x_T.clone(), _t_rows(taus, x_T)
        for i, (s1, sa, s1_prev, sa_prev) in enumerate(steps):
            eps = trivial_eps(x, t_rows[i])
            x0 = ((x - s1 * eps) / sa).clamp_(-1.0, 1.0)
            eps = (x - sa * x0) / s1  # the eps that goes with the clipped x0_hat
            x = sa_prev * x0 + s1_prev * eps
        return x

    return run


def _t_rows(ts: list[int], x: Tensor) -> Tensor:
    """(steps, B) long: row i is step i's t for every image, made once."""
    return torch.tensor(ts, device=x.device)[:, None].expand(len(ts), x.shape[0])


def overhead(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Part 1: time ours, diffusers and bare side by side for DDPM (T steps) and DDIM (``--ddim-steps``).

    ours, diffusers and bare run under inference_mode; "bare no_grad" is the bare loop under torch.no_grad,
    which measures what inference_mode saves.
    """
    s = Schedule.linear(args.T)
    loops = {"ours": ours_loops(s, args.ddim_steps)}
    ddpm_floor = bare_ddpm(s)  # DDPM: diffusers visits the same t as we do
    bare = {"ddpm": (ddpm_floor, ddpm_floor), "ddim": (bare_ddim(s, ddim_timesteps(s.T, args.ddim_steps)[::-1]), None)}
    if has_diffusers(args):
        theirs, their_taus = diffusers_loops(s, args.ddim_steps)
        loops["diffusers"] = {k: under(torch.inference_mode, v) for k, v in theirs.items()}
        bare["ddim"] = (bare["ddim"][0], bare_ddim(s, their_taus))
    x_T = torch.randn(args.overhead_shape, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for kind, rounds in (("ddpm", args.repeats), ("ddim", 20 * args.repeats)):  # a DDIM run is short: more rounds
        contestants = {name: loops[name][kind] for name in loops} | {
            "bare": under(torch.inference_mode, bare[kind][0]), "bare no_grad": under(torch.no_grad, bare[kind][0])}
        times = interleave(contestants, x_T, rounds, device)
        floors = (contestants["bare"], under(torch.inference_mode, bare[kind][1]) if bare[kind][1] else None)
        rows.append(overhead_row(args, device, kind, times, agreement(contestants, floors, x_T, device)))
    return rows


def has_diffusers(args: argparse.Namespace) -> bool:
    """Whether part 1 runs diffusers' loops: unless --no-diffusers, and only where diffusers imports."""
    if args.no_diffusers:
        return False
    try:
        import diffusers  # noqa: F401
    except ImportError:
        print("  diffusers does not import: part 1 times ours and the bare loop only")
        return False
    return True


def agreement(contestants: dict[str, Loop], bare: tuple[Loop, Loop | None], x_T: Tensor,
              device: torch.device) -> dict[str, float]:
    """max |x_0 - bare x_0| for ours (against bare on our grid) and diffusers (against bare on theirs)."""
    def run(loop: Loop) -> Tensor:
        return loop(x_T, torch.Generator(device).manual_seed(1)).double()

    diffs = {"ours": (run(contestants["ours"]) - run(bare[0])).abs().max().item()}
    if "diffusers" in contestants:
        diffs["diffusers"] = (run(contestants["diffusers"]) - run(bare[1])).abs().max().item()
    return diffs


def interleave(loops: dict[str, Callable], x_T: Tensor | None, repeats: int, device: torch.device,
               warmup: bool = True) -> dict[str, list[float]]:
    """Seconds per run of each loop: one warm-up run each (if ``warmup``), then ``repeats`` rounds, each in
    a fresh random order (seeded), so that no loop always runs first or always follows the same other one."""
    names, order = list(loops), random.Random(0)
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names if warmup else []:
        loops[n](x_T, torch.Generator(device).manual_seed(1))
    for _ in range(repeats):
        for n in order.sample(names, len(names)):
            g = torch.Generator(device).manual_seed(1)
            sync(device)
            t0 = time.perf_counter()
            loops[n](x_T, g)
            sync(device)
            times[n].append(time.perf_counter() - t0)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-repeat ratios a_i / b_i (a repeat's runs saw the same machine load)."""
    return statistics.median(x / y for x, y in zip(a, b))


def overhead_row(args: argparse.Namespace, device: torch.device, kind: str, times: dict[str, list[float]],
                 diffs: dict[str, float]) -> dict:
    """Print the timings of part 1 and make its row: medians in ms, paired ratios, the agreement."""
    med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
    for n, v in times.items():
        print(f"  {kind} {n}: median {med[n]:.2f} ms (min {min(v) * 1e3:.2f}, max {max(v) * 1e3:.2f}, {len(v)} runs)")
    for n in ("diffusers", "bare"):  # the machine's noise only adds time: the minima show the unloaded cost
        if n in times:
            print(f"  {kind} ours/{n}: {paired_ratio(times['ours'], times[n]):.3f} (median of per-round ratios), "
                  f"{med['ours'] / med[n]:.3f} (ratio of medians), {min(times['ours']) / min(times[n]):.3f} (of minima)")
    theirs = "diffusers" in times
    loop = f"DDPM, {args.T} steps" if kind == "ddpm" else f"DDIM eta=0, {args.ddim_steps} steps"
    row = dict(kind="overhead", loop=loop, ours_ms=med["ours"], bare_ms=med["bare"], diffusers_ms=med.get("diffusers"),
               ours_bare=paired_ratio(times["ours"], times["bare"]),
               ours_diffusers=paired_ratio(times["ours"], times["diffusers"]) if theirs else None,
               no_grad_bare=paired_ratio(times["bare no_grad"], times["bare"]),
               diff_ours=diffs["ours"], diff_diffusers=diffs.get("diffusers"))
    row["agree"] = all(d <= TOLERANCE for d in diffs.values())
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    row["md"] = (f"| {common(device)} | {row['loop']} | {'x'.join(map(str, args.overhead_shape))} "
                 f"| {len(times['ours'])} | {med['ours']:.2f} | {fmt(row['diffusers_ms'], '.2f')} | {med['bare']:.2f} "
                 f"| {fmt(row['ours_diffusers'], '.3f')} | {row['ours_bare']:.3f} | {row['no_grad_bare']:.3f} "
                 f"| {row['diff_ours']:.1e}, {fmt(row['diff_diffusers'], '.1e')} |")
    return row


# --------------------------------------------------------------------------- part 2: the U-Net
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
    s, clip = build_schedule(cfg, device), cfg.sample.clip_x0
    shape = (args.batch, *data_shape(cfg))
    runs: dict[str, dict[str, Callable]] = {}
    rows = []
    for v in args.variants.split(","):
        try:
            eps, fmt = variant_model(args.preset, v, device)
            x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, memory_format=fmt)
            runs[v] = {k: _sampler_run(eps, x_T, s, k, args.ddim_steps, clip, cfg.sample.variance)
                       for k in ("ddim", "ddpm")}
            runs[v]["ddim"](None, torch.Generator(device).manual_seed(1))  # warm-up: compiles, autotunes cuDNN
            sync(device)
        except Exception as e:  # noqa: BLE001 - a path never run on this machine may fail: time the others
            print(f"  variant {v} FAILED: {type(e).__name__}: {e}")
            runs.pop(v, None)
            rows.append(dict(kind="failed", variant=v, error=f"{type(e).__name__}: {e}"))
    for kind, reps in (("ddim", args.repeats), ("ddpm", args.ddpm_repeats)):
        times = interleave({v: r[kind] for v, r in runs.items()}, None, reps, device, warmup=False)
        calls = s.T if kind == "ddpm" else len(ddim_timesteps(s.T, args.ddim_steps))
        rows += [throughput_row(args, device, kind, v, calls, ts) for v, ts in times.items()]
    return rows


def _sampler_run(eps: Callable, x_T: Tensor, s: Schedule, kind: str, steps: int, clip: float | None,
                 variance: str) -> Callable:
    """One whole sampling run, as the config samples (its variance and clipping; DDIM with eta = 0)."""
    def run(_: object, g: torch.Generator) -> Tensor:
        if kind == "ddpm":
            return sample(eps, x_T.shape, s, generator=g, variance=variance, clip_x0=clip, x_T=x_T)
        return ddim_sample(eps, x_T.shape, s, steps, 0.0, generator=g, clip_x0=clip, x_T=x_T)

    return run


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
    p.add_argument("--part", choices=["all", "overhead", "throughput"], default="all")
    p.add_argument("--T", type=int, default=1000, help="part 1: diffusion steps of the DDPM loop")
    p.add_argument("--ddim-steps", type=int, default=50, help="DDIM model calls (both parts)")
    p.add_argument("--overhead-shape", type=lambda v: tuple(map(int, v.split("x"))), default=None,
                   help="part 1: x's shape, e.g. 256x1x8x8 (default: the preset's images at --batch)")
    p.add_argument("--repeats", type=int, default=11,
                   help="interleaved rounds: part 1 DDPM (DDIM: 20x as many) and part 2 DDIM")
    p.add_argument("--ddpm-repeats", type=int, default=1, help="part 2: rounds of the full DDPM chain")
    p.add_argument("--preset", default="digits", help="part 2: the config preset whose U-Net is timed")
    p.add_argument("--T-model", type=int, default=0, help="part 2: override the config's T (0: keep it)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--variants", default="fp32", help="part 2: comma-separated, e.g. fp32,bf16+cl+compile")
    p.add_argument("--no-diffusers", action="store_true", help="part 1 without diffusers (ours and bare only)")
    p.add_argument("--dry-run", action="store_true", help="everything tiny: seconds, for the smoke test")
    p.add_argument("--record", action="store_true", help=f"append the rows to {RESULTS}")
    args = p.parse_args(argv)
    if args.dry_run:
        args.T, args.ddim_steps, args.repeats, args.ddpm_repeats, args.batch = 20, 5, 2, 1, 4
        args.T_model = args.T_model or 10
    shape = (3, 32, 32) if args.preset.startswith("cifar10") else (1, 8, 8)
    args.overhead_shape = args.overhead_shape or (args.batch, *shape)
    unknown = {tok for v in args.variants.split(",") for tok in v.split("+")} - TOKENS
    if unknown:
        p.error(f"unknown --variants token(s) {sorted(unknown)}; combine {sorted(TOKENS)} with '+'")
    if min(args.T, args.ddim_steps, args.repeats, args.ddpm_repeats, args.batch) < 1 or args.ddim_steps > args.T:
        p.error("--T, --ddim-steps, --repeats, --ddpm-repeats and --batch must be >= 1, --ddim-steps <= --T")
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
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads")
    rows = []
    if args.part in ("all", "overhead"):
        print(f"part 1: sampler overhead, eps_hat = 0.1 x, x {args.overhead_shape}, {args.repeats} rounds")
        rows += overhead(args, device)
    if args.part in ("all", "throughput"):
        print(f"part 2: {args.preset} U-Net (random weights), batch {args.batch}, variants {args.variants}")
        rows += throughput(args, device)
    for header, kind in ((OVERHEAD_HEADER, "overhead"), (THROUGHPUT_HEADER, "throughput")):
        mine = [r["md"] for r in rows if r["kind"] == kind]
        if mine:
            print(header + "\n".join(mine))
    if args.record:
        record(rows, sys.argv[1:] if argv is None else argv)
    if not all(r.get("agree", True) for r in rows):
        raise SystemExit(f"the loops of part 1 disagree by more than {TOLERANCE}: they do not compute the same thing")
    failed = [r["variant"] for r in rows if r["kind"] == "failed"]
    if failed:
        raise SystemExit(f"variant(s) {', '.join(failed)} failed (see above); the others were timed")
    return rows


def record(rows: list[dict], argv: list[str]) -> None:
    """Append this run's tables to RESULTS.md, each with its header, after a line naming the command."""
    with RESULTS.open("a") as f:
        f.write(f"\n`python bench/sample_throughput.py {' '.join(argv)}`\n")
        for header, kind in ((OVERHEAD_HEADER, "overhead"), (THROUGHPUT_HEADER, "throughput")):
            mine = [r["md"] for r in rows if r["kind"] == kind]
            if mine:
                f.write("\n" + header + "\n".join(mine) + "\n")


if __name__ == "__main__":
    main()
