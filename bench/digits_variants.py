"""Sample quality of variants of the `digits` preset: train each, then score 512 samples (issue 9's 80 % goal).

Each variant is the `digits` preset with some `--set` overrides, trained from one or more seeds. Its EMA
model draws 512 samples with DDIM (eta = 0, 50 steps, x0 clipped to [-1, 1]; noise seed 1), and
`metrics.digits_score` reports the confident fraction and the classes present. One JSON line per run goes
to <out>/variants.jsonl, and a Markdown table to standard output.

Runs are independent processes, `--jobs` at a time: the digits U-Net is far too small to fill a GPU, so
several share one without slowing each other much (train times are then only a rough guide).

    python bench/digits_variants.py --device cpu --variants preset v --seeds 0     # one variant at a time
    python bench/digits_variants.py --device cuda --jobs 12 --seeds 0 1            # every variant, on a GPU
    python bench/digits_variants.py --list                                          # the variants
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

V = ["diffusion.target=v"]
VARIANTS: dict[str, list[str]] = {
    "preset": [],
    "v": V,
    "v-2000": V + ["train.steps=2000"],
    "v-3000": V + ["train.steps=3000"],
    "v-lr2e-3": V + ["train.lr=2e-3"],
    "v-lr3e-3": V + ["train.lr=3e-3"],
    "v-ema0.99": V + ["train.ema_decay=0.99"],
    "v-ema0.998": V + ["train.ema_decay=0.998"],
    "v-warmup50": V + ["train.warmup=50"],
    "v-linear": V + ["diffusion.schedule=linear"],
    "v-T1000": V + ["diffusion.T=1000"],
    "v-noattn": V + ["model.attn_resolutions=[]"],
    "v-res2": V + ["model.num_res_blocks=2"],
    "v-ch48": V + ["model.ch=48"],
    "v-ch24-2100": V + ["model.ch=24", "train.steps=2100"],
    "v-ch16-3000": V + ["model.ch=16", "train.steps=3000"],
    "v-mult122": V + ["model.ch_mult=[1,2,2]"],
    "v-batch256": V + ["data.batch_size=256"],
    "eps-lr2e-3-ema0.99": ["train.lr=2e-3", "train.ema_decay=0.99"],
    "v-lr2e-3-ema0.99": V + ["train.lr=2e-3", "train.ema_decay=0.99"],
}
NUM_SAMPLES, SAMPLE_SEED, DDIM_STEPS = 512, 1, 50


def run_one(name: str, seed: int, device: str, out: Path, extra: list[str] = (), num_samples: int = NUM_SAMPLES) -> dict:
    """Train one variant from one seed and score its samples; returns the result row."""
    import torch

    from ddpm_edu.eval.metrics import digits_score
    from ddpm_edu.training.build import load_ema_model
    from ddpm_edu.training.config import load_config
    from ddpm_edu.training.generate import generate
    from ddpm_edu.training.train import train

    torch.set_num_threads(1)
    over = VARIANTS[name] + [f"seed={seed}", f"train.device={device}", "train.precision=fp32",
                             "train.progress=false", "train.sample_every=0", "train.ckpt_every=0", *extra]
    cfg = load_config("digits", over)
    t0 = time.perf_counter()
    r = train(cfg, out / f"{name}-s{seed}", samples=False)
    train_s = time.perf_counter() - t0
    model, mcfg = load_ema_model(None, r.run_dir / "ema.safetensors")
    mcfg = mcfg.replace(sample=dataclasses.replace(mcfg.sample, sampler="ddim", steps=DDIM_STEPS, eta=0.0,
                                                   clip_x0=1.0))
    x, _ = generate(model.to(device), mcfg, num_samples=num_samples, seed=SAMPLE_SEED, device=device)
    sc = digits_score(x.cpu())
    return dict(variant=name, overrides=VARIANTS[name], seed=seed, device=device, steps=r.step,
                train_s=round(train_s, 1), loss=round(r.last_loss, 4), confident=sc.confident,
                se=sc.confident_se, classes=sc.classes_present, histogram=sc.histogram, n=sc.n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names from --list (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, each its own process")
    p.add_argument("--out", type=Path, default=Path("/tmp/digits_variants"))
    p.add_argument("--num-samples", type=int, default=NUM_SAMPLES, help="samples scored per run")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides for every run")
    p.add_argument("--list", action="store_true", help="print the variants and exit")
    p.add_argument("--one", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.list:
        for k, v in VARIANTS.items():
            print(f"{k:22s} {' '.join(v) or '(the preset)'}")
        return 0
    unknown = sorted(set(a.variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {unknown}; --list shows them")
    a.out.mkdir(parents=True, exist_ok=True)
    log = a.out / "variants.jsonl"
    if a.one:
        row = run_one(a.one[0], int(a.one[1]), a.device, a.out, a.set, a.num_samples)
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return 0
    todo = [(v, s) for s in a.seeds for v in a.variants]
    running: list[subprocess.Popen] = []
    failed = 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    while todo or running:
        while todo and len(running) < a.jobs:
            v, s = todo.pop(0)
            cmd = [sys.executable, __file__, "--one", v, str(s), "--device", a.device, "--out", str(a.out),
                   "--num-samples", str(a.num_samples), "--set", *a.set]
            running.append(subprocess.Popen(cmd, env=env))
        time.sleep(0.5)
        for proc in [q for q in running if q.poll() is not None]:
            running.remove(proc)
            failed += proc.returncode != 0
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    print("| variant | seed | steps | train s | loss | confident (n) | classes |\n|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"])):
        print(f"| {r['variant']} | {r['seed']} | {r['steps']} | {r['train_s']} | {r['loss']} | "
              f"{r['confident']:.1%} ± {r['se']:.1%} ({r['n']}) | {r['classes']} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
