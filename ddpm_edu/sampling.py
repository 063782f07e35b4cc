"""Sampling: DDPM ancestral sampling (Algorithm 2) and DDIM, with a trajectory callback.

Chapter 8. Ho et al. 2020, Algorithm 2 and eq. (11); Song, Meng & Ermon 2021 (DDIM), eqs. (12) and (16).

Each sampler is a plain loop over t: draw z, predict eps_hat = eps_theta(x_t, t), take one step.
The step functions :func:`ddpm_step` and :func:`ddim_step` are written with the posterior's
formulas (:mod:`ddpm_edu.posterior`), so every quantity has one definition.

Both samplers take a ``model(x_t, t) -> eps_hat``, with t a (B,) long tensor on x's device, and a
``callback(t, x_t, x0_hat)`` that receives every step: it is called for each visited t = T, ..., 1
with the state x_t that enters the step and the current prediction x0_hat, and once more with
t = 0, the final x_0 and x0_hat = x_0. That is the hook a trajectory GIF needs;
:class:`TrajectoryRecorder` is such a callback. The loop runs under ``torch.inference_mode``: a
callback receives inference tensors, which it may read or copy (as :class:`TrajectoryRecorder`
does) but should not keep for autograd, and a model cannot use autograd inside it (no gradient
guidance); the samplers return normal tensors.

:func:`check_sampler` and :func:`sampler_problems` hold the rules for the sampler's settings; the
config (``ddpm_edu.training.config``), the command line and the live samplers use them.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.posterior import VARIANCES, eps_from_x0, mean_from_eps, q_posterior, reverse_variance, x0_from_eps
from ddpm_edu.progress import progress_bar
from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["sample", "ddpm_step", "ddim_sample", "ddim_step", "ddim_timesteps", "TrajectoryRecorder",
           "VARIANCES", "SAMPLERS", "check_sampler", "sampler_problems"]

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t (B,)) -> eps_hat (B, ...)
Callback = Callable[[int, Tensor, Tensor], None]  # (t, x_t, x0_hat)
SAMPLERS = ("ddpm", "ddim")  # Algorithm 2, or DDIM


# --------------------------------------------------------------------------- DDPM (Algorithm 2)
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

    sigma_t^2 is ``variance`` ("beta_tilde" or "beta"); ``clip_x0 = c`` clamps x0_hat to [-c, c] in
    every step (see :func:`ddpm_step`). ``x_T`` overrides the initial N(0, I) draw; the noise comes
    from ``generator`` (on ``device``: by default the model's). Chapter 8 writes this loop out without
    the options and checks that it gives the same samples.
    """
    _raise(sampler_problems(variance=variance))
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)  # Alg. 2, line 1
    s = _schedule_on(s, x.device)
    with torch.inference_mode():
        for t in _progress(range(s.T, 0, -1), "DDPM" if progress else None):  # line 2: t = T, ..., 1
            z = _randn(x, generator) if t > 1 else torch.zeros_like(x)  # line 3
            eps_hat = _predict(model, x, t)  # eps_theta(x_t, t)
            if callback is not None:
                callback(t, x, _x0_hat(x, t, eps_hat, s, clip_x0))
            x = ddpm_step(x, t, eps_hat, s, z, variance=variance, clip_x0=clip_x0)  # line 4
        if callback is not None:
            callback(0, x, x)
    return x.clone()  # line 6; a normal tensor (an inference tensor refuses autograd outside inference mode)


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
    t = as_t(t, s.T)
    if clip_x0 is None:
        mean = mean_from_eps(xt, t, eps_hat, s)  # eq. (11)
    else:
        mean, _ = q_posterior(_x0_hat(xt, t, eps_hat, s, clip_x0), xt, t, s)  # eq. (7) at the clipped x0_hat
    t_all = torch.arange(s.T + 1, device=s.device)
    sigma = torch.where(t_all > 1, reverse_variance(s, variance).sqrt(), 0.0)  # Alg. 2, line 3: none at t = 1
    return mean + extract(sigma, t, xt) * z  # Alg. 2, line 4


# --------------------------------------------------------------------------- DDIM
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
    """DDIM sampling (Song et al. 2021) with ``steps`` model calls (S << T) and stochasticity ``eta``
    (0: deterministic, 1: the DDPM posterior variance). Returns x_0, shape ``shape``.

    The other arguments are those of :func:`sample`.
    """
    _raise(sampler_problems("ddim", steps, eta, T=s.T))
    taus = ddim_timesteps(s.T, steps)[::-1]  # tau_S = T > ... > tau_1
    x = _initial(shape, x_T, generator, device or _model_device(model), dtype)  # x_T ~ N(0, I)
    s = _schedule_on(s, x.device)
    with torch.inference_mode():
        for t, t_prev in _progress(list(zip(taus, taus[1:] + [0])), "DDIM" if progress else None):
            z = _randn(x, generator) if eta > 0 and t_prev > 0 else torch.zeros_like(x)
            eps_hat = _predict(model, x, t)  # eps_theta(x_t, t)
            if callback is not None:
                callback(t, x, _x0_hat(x, t, eps_hat, s, clip_x0))
            x = ddim_step(x, t, eps_hat, s, z, t_prev=t_prev, eta=eta, clip_x0=clip_x0)  # eq. (12)
        if callback is not None:
            callback(0, x, x)
    return x.clone()  # a normal tensor, as in sample


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
    _raise(sampler_problems(eta=eta))
    x0_hat = _x0_hat(xt, t, eps_hat, s, clip_x0)  # eq. (12): "predicted x0"
    if clip_x0 is not None:
        eps_hat = eps_from_x0(xt, t, x0_hat, s)  # the eps that goes with the clipped x0_hat
    ab_t, ab_prev = s.alpha_bar[t], s.alpha_bar[int(t_prev)]  # 0-d, float64
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()  # eq. (16)
    direction = (1 - ab_prev - sigma**2).clamp_min(0.0).sqrt()  # eq. (12): "direction pointing to x_t"
    c_x0, c_eps, c_z = (c.to(xt.device, xt.dtype) for c in (ab_prev.sqrt(), direction, sigma))
    return c_x0 * x0_hat + c_eps * eps_hat + c_z * z  # eq. (12)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The DDIM sub-sequence tau: ``steps`` evenly spaced, distinct time steps in 1..T, ending at T."""
    _raise(sampler_problems("ddim", steps, T=T))
    taus = torch.linspace(1, T, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(taus))


# --------------------------------------------------------------------------- the settings
def sampler_problems(
    sampler: str | None = None,
    steps: int | None = None,
    eta: float | None = None,
    variance: str | None = None,
    T: int | None = None,
) -> dict[str, str]:
    """What is wrong with sampler settings, by setting name ({} when nothing is); only given ones are checked.

    ``steps`` counts DDIM's model calls: an integer >= 1, and at most T when the sampler is "ddim" and T
    is given (DDPM always takes T steps). ``ddpm_edu.training.config`` reports these under ``sample.*``.
    """
    p = {}
    if sampler is not None and sampler not in SAMPLERS:
        p["sampler"] = f"sampler must be one of {SAMPLERS}, got {sampler!r}"
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1):
        p["steps"] = f"steps must be an integer >= 1 (DDIM's model calls), got {steps!r}"
    elif steps is not None and sampler == "ddim" and T is not None and steps > T:
        p["steps"] = f"steps must lie in 1..T (T = {T}) for DDIM, got {steps!r}"
    if eta is not None and (isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not eta >= 0
                            or not math.isfinite(eta)):
        p["eta"] = f"eta must be a finite number >= 0 (DDIM's stochasticity), got {eta!r}"
    if variance is not None and variance not in VARIANCES:
        p["variance"] = f"variance must be one of {VARIANCES}, got {variance!r}"
    return p


def check_sampler(sampler: str, steps: int, eta: float, variance: str, T: int) -> None:
    """Raise one ValueError that names every bad setting (see :func:`sampler_problems`)."""
    _raise(sampler_problems(sampler, steps, eta, variance, T))


def _raise(problems: dict[str, str]) -> None:
    if problems:
        raise ValueError("; ".join(problems.values()))


# --------------------------------------------------------------------------- the loops' small parts
def _x0_hat(xt: Tensor, t: Tensor | int, eps_hat: Tensor, s: Schedule, clip_x0: float | None) -> Tensor:
    """x0_hat from eps_hat (:func:`ddpm_edu.posterior.x0_from_eps`), clamped to [-c, c] when clip_x0 = c."""
    x0_hat = x0_from_eps(xt, t, eps_hat, s)
    return x0_hat if clip_x0 is None else x0_hat.clamp_(-clip_x0, clip_x0)  # in place: x0_hat is new


def _predict(model: Model, x: Tensor, t: int) -> Tensor:
    """eps_theta(x_t, t), with t as the (B,) long tensor a network takes, in x's dtype (autocast may differ)."""
    return model(x, torch.full((x.shape[0],), t, device=x.device)).to(x.dtype)


def _randn(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """z ~ N(0, I) like x."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _schedule_on(s: Schedule, device: torch.device) -> Schedule:
    """The schedule on the samples' device, so that reading alpha_bar_t never waits for a GPU; MPS has no
    float64, so there the schedule stays on the CPU and ``extract`` casts each value it reads."""
    return s if device.type == "mps" or s.device == device else s.to(device)


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


def _progress(it: Sequence, desc: str | None) -> Iterable:
    if desc is None:
        return it
    return progress_bar(it, desc=desc, leave=False)  # a widget in Jupyter; nothing left on a built page


# --------------------------------------------------------------------------- trajectories
class TrajectoryRecorder:
    """A sampler ``callback`` that keeps about ``frames`` evenly spaced states of one sampling run.

    Pass ``T``, the number of model calls (s.T for DDPM, the step count for DDIM). After sampling,
    ``.frames`` is a list of (t, x_t) and ``.x0_frames`` a list of (t, x0_hat), both on the CPU,
    in sampling order (t = T first, t = 0 last); :func:`ddpm_edu.data.images.trajectory_frames` turns
    either into GIF frames. ``images = k`` keeps only the first k samples of the batch (a GIF of a
    large batch shows a few of them); by default all are kept.
    """

    def __init__(self, T: int, frames: int = 30, images: int | None = None):
        if frames < 2:
            raise ValueError(f"frames must be >= 2, got {frames!r}")
        if images is not None and (isinstance(images, bool) or not isinstance(images, int) or images < 1):
            raise ValueError(f"images must be a positive integer or None, got {images!r}")
        self.T, self.n, self.images = T, min(frames, T + 1), images
        # The callback is called T + 1 times (t = T, ..., 1 and the final t = 0); keep n of those calls.
        self._keep = set(np.round(np.linspace(0, T, self.n)).astype(int).tolist())
        self.frames: list[tuple[int, Tensor]] = []
        self.x0_frames: list[tuple[int, Tensor]] = []
        self._calls = 0

    def __call__(self, t: int, xt: Tensor, x0_hat: Tensor) -> None:
        i, self._calls = self._calls, self._calls + 1
        if i in self._keep:
            k = self.images
            with torch.inference_mode(False):  # normal tensors, even when the sampler's are inference tensors
                self.frames.append((t, xt[:k].detach().to("cpu", copy=True)))
                self.x0_frames.append((t, x0_hat[:k].detach().to("cpu", copy=True)))
