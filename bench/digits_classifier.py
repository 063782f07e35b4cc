"""How the digits classifier of `ddpm_edu.eval.metrics` is chosen: the lowest cross-validated log-loss.

A sample counts as confident when the classifier gives one class a probability above 0.9, so the
score means what it says only if those probabilities are calibrated. Log-loss is a proper scoring
rule: it is lowest for calibrated, accurate probabilities. Each candidate is scored by 5-fold
cross-validation on the classifier's training split alone (the held-out 25 % and the generated
samples play no part in the choice), then refitted on the whole split and reported on the held-out
digits: accuracy, log-loss, mean top probability against accuracy (calibration), the confident
fraction of real held-out digits (ceiling) and of chapter 1's per-pixel Gaussian (floor).

    python bench/digits_classifier.py [--samples FILE.safetensors ...]

``--samples`` adds a column per EMA checkpoint of a digits model: the confident fraction of 512 of
its samples (DDIM, 50 steps, clipped, seed 1) under each candidate.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier

from ddpm_edu.eval import metrics as M

CANDIDATES = {
    **{f"logistic regression, C = {c:g}": (lambda c=c: LogisticRegression(C=c, max_iter=5000)) for c in (0.1, 1, 10, 100)},
    **{f"MLP, {h} hidden, L2 {a:g}": (lambda h=h, a=a: MLPClassifier((h,), alpha=a, max_iter=2000, random_state=0))
       for h in (64, 128) for a in (1e-4, 1e-2, 1)},
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", nargs="*", default=[], help="EMA weights of digits models to score")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = M.digits_split()
    Xtr, Xte, ytr, yte = xtr.flatten(1).double().numpy(), xte.flatten(1).double().numpy(), ytr.numpy(), yte.numpy()
    floor = M.pixel_gaussian_digits(1000, torch.Generator().manual_seed(2)).flatten(1).double().numpy()
    sets = {}
    for path in a.samples:
        from ddpm_edu.training.build import load_ema_model
        from ddpm_edu.training.generate import generate

        model, cfg = load_ema_model(None, path)
        cfg = cfg.replace(sample=dataclasses.replace(cfg.sample, sampler="ddim", steps=50, eta=0.0, clip_x0=1.0))
        x, _ = generate(model, cfg, num_samples=512, seed=1)
        sets[path] = x.clamp(-1, 1).flatten(1).double().numpy()
    head = "| classifier | CV log-loss | held-out accuracy | held-out log-loss | mean top p | ceiling | floor |"
    print(head + "".join(f" samples {i + 1} |" for i in range(len(sets))))
    print("|---" * (7 + len(sets)) + "|")
    for name, make in CANDIDATES.items():
        t0 = time.perf_counter()
        cv = -cross_val_score(make(), Xtr, ytr, cv=5, scoring="neg_log_loss").mean()
        clf = make().fit(Xtr, ytr)
        pr = clf.predict_proba(Xte)
        acc = (pr.argmax(1) == yte).mean()
        nll = -np.log(pr[np.arange(len(yte)), yte]).mean()
        conf = lambda X: (clf.predict_proba(X).max(1) > M.CONFIDENT).mean()  # noqa: E731
        row = (f"| {name} | {cv:.3f} | {acc:.3f} | {nll:.3f} | {pr.max(1).mean():.3f} | {conf(Xte):.1%} | "
               f"{conf(floor):.1%} |")
        print(row + "".join(f" {conf(X):.1%} |" for X in sets.values()) + f"  <!-- {time.perf_counter() - t0:.0f} s -->",
              flush=True)
    for i, path in enumerate(sets):
        print(f"samples {i + 1}: {path}")


if __name__ == "__main__":
    main()
