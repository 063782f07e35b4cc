"""The Trainer's step time at two git revisions, measured side by side on one machine in one run.

Each round runs ``bench/train_throughput.py --trainer`` once in a checkout of ``--base`` and once in
this checkout, alternating which goes first, in fresh processes; the result is the median over the
rounds of the per-round ratio (this checkout / base), so slow drifts of a noisy machine cancel.

    python bench/compare_revisions.py --base ea4a369 --preset digits --batch 128 --steps 30 --rounds 5

The base checkout is a temporary ``git worktree`` that is removed afterwards. Extra arguments after
``--`` go to both benchmark runs (e.g. ``-- --threads 2``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MS = re.compile(r"^ours \(Trainer\): ([0-9.]+) ms/step", re.M)


def step_ms(tree: Path, bench_args: list[str]) -> float:
    """ms per Trainer step of one benchmark run in checkout ``tree`` (its own ddpm_edu on the path)."""
    out = subprocess.run([sys.executable, str(tree / "bench" / "train_throughput.py"), "--trainer", *bench_args],
                         cwd=tree, env={**_env(), "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
    m = MS.search(out.stdout)
    if m is None:
        raise SystemExit(f"no timing in the output of the run in {tree}:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def _env() -> dict[str, str]:
    """This environment without fast mode, which would shrink nothing here but is not the benchmark's."""
    return {k: v for k, v in os.environ.items() if k != "DDPM_EDU_FAST"}


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the git revision to compare against")
    p.add_argument("--preset", default="digits")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30, help="timed steps per run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("rest", nargs="*", help="more arguments for train_throughput.py (after --)")
    args = p.parse_args(argv)
    bench_args = ["--preset", args.preset, "--batch", str(args.batch), "--steps", str(args.steps), "--device", "cpu",
                  *args.rest]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        try:
            ratios = []
            for r in range(args.rounds):
                order = [("base", base), ("this", ROOT)][:: 1 if r % 2 == 0 else -1]
                ms = {name: step_ms(tree, bench_args) for name, tree in order}
                ratios.append(ms["this"] / ms["base"])
                print(f"round {r + 1}: base {ms['base']:.1f} ms/step, this {ms['this']:.1f} ms/step, "
                      f"ratio {ratios[-1]:.3f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    med = statistics.median(ratios)
    print(f"this / {args.base}: median ratio {med:.3f} over {args.rounds} rounds "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    return med


if __name__ == "__main__":
    main()
