"""The forward (noising) process, from the naive step to the closed form.

Chapters 2-5. The naive step x_t = x_{t-1} + nu eps (chapter 2), the fixed-nu
variance-preserving step x_t = sqrt(1 - nu^2) x_{t-1} + nu eps (chapter 3), the
scheduled step q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I) (chapter 4, Ho et al.
2020 eq. (2)) and the closed form q(x_t | x0) = N(sqrt(alpha_bar_t) x0, (1 - alpha_bar_t) I)
(chapter 5, Ho et al. 2020 eq. (4)), which holds at t = 0 too (alpha_bar_0 = 1: x_0 itself).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor

from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["naive_step", "vp_step", "q_step", "q_sample", "trajectory"]

Step = Callable[[Tensor, int, Tensor], Tensor]  # (x_prev, t, eps) -> x_t


def naive_step(x_prev: Tensor, nu: float, eps: Tensor) -> Tensor:
    """Chapter 2: x_t = x_{t-1} + nu eps, nu the noise scale per step. Var[x_t] = Var[x_{t-1}] + nu^2."""
    return x_prev + nu * eps


def vp_step(x_prev: Tensor, nu: float, eps: Tensor) -> Tensor:
    """Chapter 3: x_t = sqrt(1 - nu^2) x_{t-1} + nu eps, which keeps Var[x_t] = 1."""
    if not 0.0 <= nu <= 1.0:
        raise ValueError(f"nu must lie in [0, 1] for the variance-preserving step, got {nu!r}")
    return math.sqrt(1.0 - nu**2) * x_prev + nu * eps


def q_step(x_prev: Tensor, t: int | Tensor, eps: Tensor, s: Schedule) -> Tensor:
    """Chapter 4: one draw from q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I).

    x_prev, eps: (B, ...); t: int or (B,) in 1..T.
    """
    t = as_t(t, s.T)
    return extract(s.alphas.sqrt(), t, x_prev) * x_prev + extract(s.betas.sqrt(), t, x_prev) * eps


def q_sample(x0: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """Chapter 5, the closed form (Ho et al. eq. (4)): x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.

    x0, eps: (B, ...) same shape; t: (B,) integer tensor in 0..T (or an int for the whole batch).
    t = 0 returns x0 exactly, since alpha_bar_0 = 1. Returns x_t, (B, ...), in x0's dtype.
    """
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have x0's shape {tuple(x0.shape)}, got {tuple(eps.shape)}")
    t = as_t(t, s.T, first=0)  # on a GPU checked on the device, so it never waits
    if isinstance(t, Tensor) and t.dim() == 1 and t.shape[0] != x0.shape[0]:
        raise ValueError(f"t has {t.shape[0]} entries but x0 has batch size {x0.shape[0]}")
    return closed_form(x0, t, eps, s)


def closed_form(x0: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """The formula of :func:`q_sample` for a t that the caller has already checked or drew in range.

    The training step (:func:`ddpm_edu.losses.l_simple`) uses it, so that no check waits for the device.
    """
    return extract(s.alpha_bar.sqrt(), t, x0) * x0 + extract((1.0 - s.alpha_bar).sqrt(), t, x0) * eps


def trajectory(
    x0: Tensor,
    n_steps: int,
    step: Step,
    *,
    generator: torch.Generator | None = None,
    keep: Iterable[int] | None = None,
) -> Tensor:
    """Iterate ``step(x_prev, t, eps)`` for t = 1..n_steps from x0 with fresh N(0, I) noise.

    Returns the states x_t for t in ``keep`` (default: every t = 0..n_steps) stacked on a new
    leading axis: ``(len(keep), *x0.shape)``. Example: ``trajectory(x0, 10, lambda x, t, e:
    naive_step(x, 0.1, e))``.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    keep_set = sorted(set(range(n_steps + 1) if keep is None else keep))
    if keep_set and (keep_set[0] < 0 or keep_set[-1] > n_steps):
        raise ValueError(f"keep must list steps in 0..{n_steps}, got {keep_set}")
    out, x = [], x0
    if 0 in keep_set:
        out.append(x0)
    for t in range(1, n_steps + 1):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = step(x, t, eps)
        if t in keep_set:
            out.append(x)
    return torch.stack(out)
