"""The one switch that shrinks all compute for tests: ``DDPM_EDU_FAST=1``.

This is the only place in the library that reads the variable. Code that wants a smaller
problem in fast mode calls :func:`fast` or :func:`pick`.
"""

from __future__ import annotations

import os
from typing import TypeVar

V = TypeVar("V")  #: the type of the value that :func:`pick` chooses


def fast() -> bool:
    """True when the environment asks for the fast (test-sized) mode."""
    return os.environ.get("DDPM_EDU_FAST", "").strip().lower() in ("1", "true", "yes", "on")


def pick(full: V, fast_value: V) -> V:
    """``fast_value`` in fast mode, otherwise ``full``."""
    return fast_value if fast() else full


def eval_samples(dataset: str) -> int:
    """How many samples chapter 8 draws per sampler setting; fast mode shrinks each.

    * "digits": 512 images per row of the comparison (16 in fast mode). A DDPM run costs T = 400
      network calls whatever the model's training, so fast mode shrinks the batch instead.
    * "toy2d": 2000 points per setting of the 2-D model (500).
    * "gaussian": 1 000 000 draws of the 1-D Gaussian check (200 000): enough to resolve a 0.4 % bias
      of the standard deviation, sd / sqrt(2 n), by about 6 standard errors.
    * "mixture": 20 000 points of the 2-D mixture for the DDIM checks (5000).
    """
    sizes = {
        "digits": pick(512, 16),
        "toy2d": pick(2000, 500),
        "gaussian": pick(1_000_000, 200_000),
        "mixture": pick(20_000, 5_000),
    }
    if dataset not in sizes:
        raise ValueError(f"dataset must be one of {sorted(sizes)}, got {dataset!r}")
    return sizes[dataset]


def nll_examples() -> int:
    """How many held-out digits chapter 7 puts through the variational bound: 128 (8 in fast mode).

    The bound needs all T = 400 network calls per batch, so its cost grows with the batch and not with
    the model's training; fast mode shrinks the batch.
    """
    return pick(128, 8)


def guidance_samples(kind: str) -> int:
    """How many samples chapter 10 draws per guidance weight; fast mode shrinks each.

    * "digits_per_class": 52 digits of each of the ten classes, 520 per weight (3 per class, the fewest
      a within-class pairwise distance with a standard error needs, in fast mode).
    * "mixture": 20 000 points of the 2-D mixture per weight (2000).
    """
    sizes = {"digits_per_class": pick(52, 3), "mixture": pick(20_000, 2000)}
    if kind not in sizes:
        raise ValueError(f"kind must be one of {sorted(sizes)}, got {kind!r}")
    return sizes[kind]


def folder_example_steps() -> int:
    """How many steps the page "Train on your own images" trains its example: 1200 (30 in fast mode).

    1200 steps of 16 drawings at 16x16 take about two minutes on two CPU cores.
    """
    return pick(1200, 30)
