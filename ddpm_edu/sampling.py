"""Sampling: DDPM ancestral sampling (Algorithm 2) and DDIM.

Chapter 8. Ho et al. 2020, Algorithm 2 and eq. (11); Song, Meng & Ermon 2021 (DDIM), eq. (12).

Both samplers share one signature shape, take a ``model(x_t, t) -> eps_hat`` and a
``callback(t, x_t, x0_hat)`` that receives every step: it is called for each visited
t = T, ..., 1 with the state x_t that enters the step and the current prediction x0_hat,
and once more with t = 0, the final x_0 and x0_hat = x_0. That is the hook a trajectory GIF needs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .forward import _as_t
from .posterior import mean_from_eps, q_posterior, x0_from_eps
from .schedules import Schedule, extract

__all__ = ["ddpm_step", "sample", "ddim_timesteps", "ddim_step", "ddim_sample", "TrajectoryRecorder", "VARIANCES"]

Model = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[int, Tensor, Tensor], None]
VARIANCES = ("beta_tilde", "beta")


def ddpm_step(
    xt: Tensor,
    t: Tensor | int,
    eps_hat: Tensor,
    s: Schedule,
    z: Tensor,
    variance: str = "beta_tilde",
    clip_x0: float | None = None,
) -> Tensor:
    """One reverse step x_t -> x_{t-1} (Algorithm 2, line 4).

    x_{t-1} = mu_theta(x_t, t) + sigma_t z, with sigma_t^2 = beta_tilde_t or beta_t, and no noise at t = 1.
    Without clipping, mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_t) (eq. 11);
    with ``clip_x0 = c``, x0_hat is clamped to [-c, c] and mu_theta is the posterior mean (eq. 7) at x0_hat.
    xt, eps_hat, z: (B, ...); t: int or (B,) in 1..T.
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    t = _as_t(t, s)
    if clip_x0 is None:
        mean = mean_from_eps(xt, t, eps_hat, s)
    else:
        x0_hat = x0_from_eps(xt, t, eps_hat, s).clamp(-clip_x0, clip_x0)
        mean, _ = q_posterior(x0_hat, xt, t, s)
    var = s.beta_tilde if variance == "beta_tilde" else s.betas
    sigma = extract(var.sqrt(), t, xt)
    not_last = (t > 1) if isinstance(t, int) else extract((torch.arange(s.T + 1) > 1).double(), t, xt)
    return mean + sigma * not_last * z  # Alg. 2, line 4 (z = 0 when t = 1)


@torch.no_grad()
def sample(
    model: Model,
    shape: Sequence[int],
    s: Schedule,
    *,
    generator: torch.Generator | None = None,
    variance: str = "beta_tilde",
    clip_x0: float | None = None,
    callback: Callback | None = None,
    x_T: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """DDPM ancestral sampling, Algorithm 2 of Ho et al. 2020. Returns x_0, shape ``shape``.

    ``x_T`` overrides the initial N(0, I) draw. Noise comes from ``generator`` (on ``device``).
    """
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)  # Alg. 2, line 1
    for t in _progress(range(s.T, 0, -1), progress, "DDPM"):  # line 2
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps_hat = model(x, tt).to(x.dtype)
        if callback is not None:
            callback(t, x, _x0_hat(x, t, eps_hat, s, clip_x0))
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if t > 1 else torch.zeros_like(x)  # line 3
        x = ddpm_step(x, t, eps_hat, s, z, variance=variance, clip_x0=clip_x0)  # line 4
    if callback is not None:
        callback(0, x, x)
    return x  # line 6


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The DDIM sub-sequence tau: ``steps`` evenly spaced, distinct time steps in 1..T, ending at T."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must lie in 1..T (T = {T}), got {steps!r}")
    taus = torch.linspace(1, T, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(taus))


def ddim_step(xt: Tensor, t: int, t_prev: int, eps_hat: Tensor, s: Schedule, eta: float, z: Tensor, clip_x0: float | None = None) -> Tensor:
    """One DDIM update x_t -> x_{t_prev} (Song et al. 2021, eq. 12), t_prev < t, t_prev = 0 allowed.

    x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev).
    """
    ab_t, ab_prev = s.alpha_bar[t].item(), s.alpha_bar[t_prev].item()
    x0_hat = x0_from_eps(xt, t, eps_hat, s)
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        eps_hat = (xt - ab_t**0.5 * x0_hat) / (1 - ab_t) ** 0.5
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
    direction = max(1 - ab_prev - sigma**2, 0.0) ** 0.5
    return ab_prev**0.5 * x0_hat + direction * eps_hat + sigma * z


@torch.no_grad()
def ddim_sample(
    model: Model,
    shape: Sequence[int],
    s: Schedule,
    steps: int,
    eta: float = 0.0,
    *,
    generator: torch.Generator | None = None,
    clip_x0: float | None = None,
    callback: Callback | None = None,
    x_T: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> Tensor:
    """DDIM sampling with ``steps`` model calls (S << T) and stochasticity ``eta`` (0: deterministic,
    1: the DDPM posterior variance). Returns x_0, shape ``shape``."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    taus = ddim_timesteps(s.T, steps)
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)
    for t, t_prev in _progress(list(zip(taus[::-1], taus[::-1][1:] + [0])), progress, "DDIM"):
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps_hat = model(x, tt).to(x.dtype)
        if callback is not None:
            callback(t, x, _x0_hat(x, t, eps_hat, s, clip_x0))
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if eta > 0 else torch.zeros_like(x)
        x = ddim_step(x, t, t_prev, eps_hat, s, eta, z, clip_x0)
    if callback is not None:
        callback(0, x, x)
    return x


class TrajectoryRecorder:
    """A sampler ``callback`` that keeps about ``frames`` evenly spaced states of one sampling run.

    Pass ``T``, the number of model calls (s.T for DDPM, the step count for DDIM). After sampling,
    ``.frames`` is a list of (t, x_t) and ``.x0_frames`` a list of (t, x0_hat), both on the CPU,
    in sampling order (t = T first, t = 0 last); :func:`ddpm_edu.images.trajectory_frames` turns
    either into GIF frames.
    """

    def __init__(self, T: int, frames: int = 30):
        if frames < 2:
            raise ValueError(f"frames must be >= 2, got {frames!r}")
        self.T, self.n = T, min(frames, T + 1)
        # The callback is called T + 1 times (t = T, ..., 1 and the final t = 0); keep n of those calls.
        self._keep = set(np.round(np.linspace(0, T, self.n)).astype(int).tolist())
        self.frames: list[tuple[int, Tensor]] = []
        self.x0_frames: list[tuple[int, Tensor]] = []
        self._calls = 0

    def __call__(self, t: int, xt: Tensor, x0_hat: Tensor) -> None:
        i, self._calls = self._calls, self._calls + 1
        if i in self._keep:
            self.frames.append((t, xt.detach().cpu()))
            self.x0_frames.append((t, x0_hat.detach().cpu()))


def _x0_hat(x: Tensor, t: int, eps_hat: Tensor, s: Schedule, clip_x0: float | None) -> Tensor:
    x0 = x0_from_eps(x, t, eps_hat, s)
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def _model_device(model: Model) -> torch.device | None:
    """The device of an nn.Module's parameters, or None for a plain callable."""
    params = getattr(model, "parameters", None)
    p = next(params(), None) if callable(params) else None
    return p.device if p is not None else None


def _initial(shape, x_T, generator, device, dtype) -> Tensor:
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
        return x_T.to(device=device or x_T.device, dtype=dtype)
    if device is None:
        device = generator.device if generator is not None else "cpu"
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)
