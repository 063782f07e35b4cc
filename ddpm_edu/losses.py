"""Training objective L_simple, for the eps target and the v target, and the score that eps gives.

Chapter 7. Ho et al. 2020, eq. (14) and Algorithm 1::

    L_simple = E_{x0, t, eps} || eps - eps_theta(sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, t) ||^2,

with t ~ Uniform{1..T}. The v target (Salimans & Ho 2022) is::

    v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0.

Given x_t, the noise also fixes the score of q(x_t | x0), and the optimal eps* fixes the score of q(x_t)
(Tweedie's formula, chapter 7)::

    grad_{x_t} log q(x_t) = -eps*(x_t, t) / sqrt(1 - alpha_bar_t).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ddpm_edu.forward import closed_form
from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["sample_t", "v_target", "eps_from_v", "x0_from_v", "score_from_eps", "eps_from_score", "l_simple", "TARGETS"]

Model = Callable[[Tensor, Tensor], Tensor]
TARGETS = ("eps", "v")


def sample_t(batch: int, T: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """Algorithm 1, line 3: t ~ Uniform{1, ..., T}, shape (batch,), int64."""
    return torch.randint(1, T + 1, (batch,), generator=generator, device=device)


def v_target(x0: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 (Salimans & Ho 2022, sec. 4)."""
    return _v_target(x0, as_t(t, s.T), eps, s)


def _v_target(x0: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """:func:`v_target` for a t already checked."""
    return extract(s.alpha_bar.sqrt(), t, x0) * eps - extract((1.0 - s.alpha_bar).sqrt(), t, x0) * x0


def eps_from_v(xt: Tensor, t: Tensor | int, v: Tensor, s: Schedule) -> Tensor:
    """eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v, the inverse of :func:`v_target` given x_t."""
    t = as_t(t, s.T)
    return extract((1.0 - s.alpha_bar).sqrt(), t, xt) * xt + extract(s.alpha_bar.sqrt(), t, xt) * v


def x0_from_v(xt: Tensor, t: Tensor | int, v: Tensor, s: Schedule) -> Tensor:
    """x0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v."""
    t = as_t(t, s.T)
    return extract(s.alpha_bar.sqrt(), t, xt) * xt - extract((1.0 - s.alpha_bar).sqrt(), t, xt) * v


def score_from_eps(eps: Tensor, t: Tensor | int, s: Schedule) -> Tensor:
    """score = -eps / sqrt(1 - alpha_bar_t): the gradient of log q(x_t | x0) in x_t, and, with eps*, of log q(x_t).

    eps: (B, ...); t: (B,) in 1..T or an int. Returns (B, ...).
    """
    t = as_t(t, s.T)
    return -eps / extract((1.0 - s.alpha_bar).sqrt(), t, eps)


def eps_from_score(score: Tensor, t: Tensor | int, s: Schedule) -> Tensor:
    """eps = -sqrt(1 - alpha_bar_t) score, the inverse of :func:`score_from_eps`."""
    t = as_t(t, s.T)
    return -extract((1.0 - s.alpha_bar).sqrt(), t, score) * score


def l_simple(
    model: Model,
    x0: Tensor,
    s: Schedule,
    *,
    target: str = "eps",
    t: Tensor | None = None,
    eps: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Algorithm 1, lines 2-5: the mean squared error between the target and the model's output.

    x0: (B, ...) data in [-1, 1]; t: (B,) in 1..T (drawn uniformly if None); eps: (B, ...) N(0, I)
    noise (drawn if None). ``target`` is "eps" (Ho et al.) or "v". Returns a 0-d tensor, the mean
    over batch and every dimension. A t drawn here is in range by construction, so only a t passed
    in is checked: a training step checks nothing, and never waits for the device.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if t is None:
        t = sample_t(x0.shape[0], s.T, generator=generator, device=x0.device)  # Alg. 1, line 3
    else:
        t = as_t(t, s.T)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)  # line 4
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have x0's shape {tuple(x0.shape)}, got {tuple(eps.shape)}")
    xt = closed_form(x0, t, eps, s)  # eq. (4), chapter 5
    goal = eps if target == "eps" else _v_target(x0, t, eps, s)
    out = model(xt, t)  # line 5: the gradient step is the caller's
    return torch.mean((goal - out.to(goal.dtype)) ** 2)
