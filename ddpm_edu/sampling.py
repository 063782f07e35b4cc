"""Sampling: DDPM ancestral sampling (Algorithm 2) and DDIM, with a trajectory callback.

Chapter 8. Ho et al. 2020, Algorithm 2 and eq. (11); Song, Meng & Ermon 2021 (DDIM), eqs. (12) and (16).

Both samplers share one signature shape, take a ``model(x_t, t) -> eps_hat`` and a
``callback(t, x_t, x0_hat)`` that receives every step: it is called for each visited
t = T, ..., 1 with the state x_t that enters the step and the current prediction x0_hat,
and once more with t = 0, the final x_0 and x0_hat = x_0. That is the hook a trajectory GIF
needs; :class:`TrajectoryRecorder` is such a callback.

One loop serves both samplers: it visits (t, t_prev) pairs, predicts eps_hat, calls the
callback, draws z and applies the sampler's update (:func:`ddpm_step` or :func:`ddim_step`).
The public step functions check t; the loop's t come from ``range`` or :func:`ddim_timesteps`,
so it calls the unchecked cores (``_ddpm_step``, ``_ddim_step`` and those of
:mod:`ddpm_edu.posterior`) directly.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from .posterior import _eps_from_x0, _mean_from_eps, _q_posterior, _x0_from_eps
from .schedules import Schedule, as_t, extract

__all__ = ["ddpm_step", "sample", "ddim_timesteps", "ddim_step", "ddim_sample", "TrajectoryRecorder", "VARIANCES"]

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t (B,)) -> eps_hat (B, ...)
Callback = Callable[[int, Tensor, Tensor], None]  # (t, x_t, x0_hat)
Update = Callable[[Tensor, int, int, Tensor, Tensor], Tensor]  # (x_t, t, t_prev, eps_hat, z) -> x_{t_prev}
VARIANCES = ("beta_tilde", "beta")


# --------------------------------------------------------------------------- DDPM (Algorithm 2)
def ddpm_step(
    xt: Tensor,
    t: Tensor | int,
    eps_hat: Tensor,
    s: Schedule,
    z: Tensor,
    *,
    variance: str = "beta_tilde",
    clip_x0: float | None = None,
) -> Tensor:
    """One reverse step x_t -> x_{t-1} (Algorithm 2, line 4).

    x_{t-1} = mu_theta(x_t, t) + sigma_t z, with sigma_t^2 = beta_tilde_t or beta_t, and no noise at t = 1.
    Without clipping, mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_t) (eq. 11);
    with ``clip_x0 = c``, x0_hat is clamped to [-c, c] and mu_theta is the posterior mean (eq. 7) at x0_hat.
    xt, eps_hat, z: (B, ...); t: int or (B,) in 1..T. Returns x_{t-1}, (B, ...).
    """
    _check_variance(variance)
    return _ddpm_step(xt, as_t(t, s.T), eps_hat, s, z, variance, clip_x0)


def _ddpm_step(xt: Tensor, t: Tensor | int, eps_hat: Tensor, s: Schedule, z: Tensor, variance: str, clip_x0: float | None) -> Tensor:
    """:func:`ddpm_step` for a t and a variance already checked."""
    if clip_x0 is None:
        mean = _mean_from_eps(xt, t, eps_hat, s)  # eq. (11)
    else:
        x0_hat = _x0_from_eps(xt, t, eps_hat, s).clamp(-clip_x0, clip_x0)
        mean, _ = _q_posterior(x0_hat, xt, t, s)  # eq. (7) at the clipped x0_hat
    sigma = extract((s.beta_tilde if variance == "beta_tilde" else s.betas).sqrt(), t, xt)  # sigma_t, in float64 first
    return mean + sigma * _not_last(t, xt) * z  # Alg. 2, line 4 (z = 0 when t = 1)


def _not_last(t: Tensor | int, x: Tensor) -> Tensor | float:
    """1 where t > 1 and 0 where t = 1, broadcastable to x: (B, 1, ..., 1) for a tensor t."""
    if isinstance(t, int):
        return float(t > 1)
    return (t > 1).to(x.dtype).reshape(t.shape + (1,) * (x.dim() - t.dim()))


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
    _check_variance(variance)
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)  # Alg. 2, line 1
    times = [(t, t - 1) for t in range(s.T, 0, -1)]  # line 2: t = T, ..., 1

    def update(xt: Tensor, t: int, t_prev: int, eps_hat: Tensor, z: Tensor) -> Tensor:
        return _ddpm_step(xt, t, eps_hat, s, z, variance, clip_x0)  # line 4

    return _run(model, x, _progress(times, progress, "DDPM"), update, s, noisy=True, clip_x0=clip_x0,
                callback=callback, generator=generator)


# --------------------------------------------------------------------------- DDIM
def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The DDIM sub-sequence tau: ``steps`` evenly spaced, distinct time steps in 1..T, ending at T."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must lie in 1..T (T = {T}), got {steps!r}")
    taus = torch.linspace(1, T, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(taus))


def ddim_step(
    xt: Tensor,
    t: int,
    eps_hat: Tensor,
    s: Schedule,
    z: Tensor,
    *,
    t_prev: int,
    eta: float,
    clip_x0: float | None = None,
) -> Tensor:
    """One DDIM update x_t -> x_{t_prev} (Song et al. 2021, eq. 12), 0 <= t_prev < t.

    x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps_hat + sigma z, with ab = alpha_bar and
    sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev) (eq. 16); eta = 0 is deterministic,
    eta = 1 with t_prev = t - 1 is the DDPM step with beta_tilde. With ``clip_x0 = c``, x0_hat is clamped
    to [-c, c] and eps_hat recomputed from it. xt, eps_hat, z: (B, ...); t in 1..T, t_prev: ints.
    """
    if isinstance(t, Tensor):
        raise ValueError(f"ddim_step takes t as an integer in 1..{s.T} for the whole batch, got a tensor")
    t = as_t(t, s.T)
    if isinstance(t_prev, bool) or not isinstance(t_prev, numbers.Integral) or not 0 <= t_prev < t:
        raise ValueError(f"t_prev must be an integer in 0..{t - 1} (below t = {t}), got {t_prev!r}")
    _check_eta(eta)
    return _ddim_step(xt, t, eps_hat, s, z, int(t_prev), eta, clip_x0)


def _ddim_step(xt: Tensor, t: int, eps_hat: Tensor, s: Schedule, z: Tensor, t_prev: int, eta: float, clip_x0: float | None) -> Tensor:
    """:func:`ddim_step` for t, t_prev and eta already checked."""
    ab_t, ab_prev = float(s.alpha_bar[t]), float(s.alpha_bar[t_prev])  # Python floats: float64 on every device
    x0_hat = _x0_from_eps(xt, t, eps_hat, s)  # eq. (12), "predicted x0"
    if clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)
        eps_hat = _eps_from_x0(xt, t, x0_hat, s)  # the eps that goes with the clipped x0_hat
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))  # eq. (16)
    direction = math.sqrt(max(1 - ab_prev - sigma**2, 0.0))  # eq. (12), "direction pointing to x_t"
    return math.sqrt(ab_prev) * x0_hat + direction * eps_hat + sigma * z


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
    _check_eta(eta)
    taus = ddim_timesteps(s.T, steps)[::-1]  # tau_S = T > ... > tau_1
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)
    times = list(zip(taus, taus[1:] + [0]))

    def update(xt: Tensor, t: int, t_prev: int, eps_hat: Tensor, z: Tensor) -> Tensor:
        return _ddim_step(xt, t, eps_hat, s, z, t_prev, eta, clip_x0)

    return _run(model, x, _progress(times, progress, "DDIM"), update, s, noisy=eta > 0, clip_x0=clip_x0,
                callback=callback, generator=generator)


# --------------------------------------------------------------------------- the shared loop
def _run(
    model: Model,
    x: Tensor,
    times: Iterable[tuple[int, int]],
    update: Update,
    s: Schedule,
    *,
    noisy: bool,
    clip_x0: float | None,
    callback: Callback | None,
    generator: torch.Generator | None,
) -> Tensor:
    """The loop both samplers share: x_t -> x_{t_prev} for each (t, t_prev) in ``times`` (Alg. 2, lines 2-6).

    z ~ N(0, I) is drawn when ``noisy`` and t_prev > 0, else z = 0. x: (B, ...) is x_T; returns x_0.
    """
    for t, t_prev in times:  # Alg. 2, line 2
        eps_hat = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).to(x.dtype)
        if callback is not None:
            callback(t, x, _x0_hat(x, t, eps_hat, s, clip_x0))
        if noisy and t_prev > 0:  # line 3
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            z = torch.zeros_like(x)
        x = update(x, t, t_prev, eps_hat, z)  # line 4
    if callback is not None:
        callback(0, x, x)
    return x  # line 6


def _x0_hat(x: Tensor, t: int, eps_hat: Tensor, s: Schedule, clip_x0: float | None) -> Tensor:
    """The prediction the callback sees: x0_hat from eps_hat, clamped as the update clamps it."""
    x0 = _x0_from_eps(x, t, eps_hat, s)
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def _check_variance(variance: str) -> None:
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")


def _check_eta(eta: float) -> None:
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")


def _model_device(model: Model) -> torch.device | None:
    """The device of an nn.Module's parameters, or None for a plain callable."""
    params = getattr(model, "parameters", None)
    p = next(params(), None) if callable(params) else None
    return p.device if p is not None else None


def _initial(
    shape: Sequence[int],
    x_T: Tensor | None,
    generator: torch.Generator | None,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    """x_T: the given one (moved to ``device`` and ``dtype``), or a fresh N(0, I) draw of ``shape``."""
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
        return x_T.to(device=device or x_T.device, dtype=dtype)
    if device is None:
        device = generator.device if generator is not None else "cpu"
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def _progress(it: Sequence[tuple[int, int]], enabled: bool, desc: str) -> Iterable[tuple[int, int]]:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


# --------------------------------------------------------------------------- trajectories
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
