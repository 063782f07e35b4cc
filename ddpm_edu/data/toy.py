"""2-D toy data sets: the data that the book's smallest models learn in seconds on a CPU.

Chapters 6-8. Every data set is drawn with torch
from an explicit ``generator`` and scaled to lie roughly within [-1, 1], the range the
library uses for images, so the same schedules (Ho et al. 2020's linear beta_t) apply:

* ``moons``: two interleaving half circles, scaled by 1/1.6 and centred (x in [-0.95, 0.95],
  y in [-0.5, 0.5]), plus N(0, 0.03^2) noise.
* ``swiss_roll``: the 2-D spiral (t cos t, t sin t), t in [1.5 pi, 4.5 pi], scaled by 1/(4.5 pi),
  plus N(0, 0.02^2) noise.
* ``8gaussians``: eight N(c_k, 0.05^2 I) on the circle of radius 0.8, equal weights.
* ``mixture``: the two-component Gaussian mixture :data:`MIXTURE`, whose exact eps* is
  ``ddpm_edu.analytic.MixtureEps(**MIXTURE, s=schedule)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["TOY_DATASETS", "MIXTURE", "sample_toy", "load_toy"]

TOY_DATASETS: tuple[str, ...] = ("moons", "swiss_roll", "8gaussians", "mixture")

# sum_k weights[k] N(means[k], stds[k]^2 I) in 2-D; pass as MixtureEps(**MIXTURE, s=...).
MIXTURE: dict = dict(weights=[0.3, 0.7], means=[[-0.5, -0.4], [0.45, 0.35]], stds=[0.12, 0.2])


def _gaussian_mixture(n: int, weights: Tensor, means: Tensor, stds: Tensor, g: torch.Generator | None) -> Tensor:
    """n draws of x = mu_k + std_k z with k ~ Categorical(weights), z ~ N(0, I)."""
    k = torch.multinomial(weights, n, replacement=True, generator=g)  # (n,)
    z = torch.randn(n, means.shape[1], generator=g)
    return means[k] + stds[k, None] * z


def _moons(n: int, g: torch.Generator | None) -> Tensor:
    n_out = n // 2
    theta = math.pi * torch.rand(n, generator=g)  # (n,)
    outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)  # upper half circle
    inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)  # lower one, shifted
    x = torch.where(torch.arange(n)[:, None] < n_out, outer, inner)
    x = (x - torch.tensor([0.5, 0.25])) / 1.6
    return x + 0.03 * torch.randn(n, 2, generator=g)


def _swiss_roll(n: int, g: torch.Generator | None) -> Tensor:
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))  # (n,) in [1.5 pi, 4.5 pi]
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / (4.5 * math.pi)
    return x + 0.02 * torch.randn(n, 2, generator=g)


def _8gaussians(n: int, g: torch.Generator | None) -> Tensor:
    angle = torch.arange(8) * (math.pi / 4)
    centres = 0.8 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)  # (8, 2)
    return _gaussian_mixture(n, torch.full((8,), 1 / 8), centres, torch.full((8,), 0.05), g)


def _mixture(n: int, g: torch.Generator | None) -> Tensor:
    w, mu, sd = (torch.tensor(MIXTURE[k]) for k in ("weights", "means", "stds"))
    return _gaussian_mixture(n, w, mu, sd, g)


_SAMPLERS = {"moons": _moons, "swiss_roll": _swiss_roll, "8gaussians": _8gaussians, "mixture": _mixture}


def sample_toy(name: str, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """n i.i.d. points of the toy data set ``name`` (one of :data:`TOY_DATASETS`): (n, 2) float32 on the CPU.

    All randomness comes from ``generator`` (a CPU generator), so the same seed gives the same points.
    """
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy data set {name!r}; valid names: {', '.join(TOY_DATASETS)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _SAMPLERS[name](n, generator).float()


def load_toy(name: str, n: int, seed: int = 0) -> Tensor:
    """A fixed set of ``n`` 2-D points from :func:`sample_toy`, shape (n, 2)."""
    return sample_toy(name, n, generator=torch.Generator().manual_seed(seed)).float()

