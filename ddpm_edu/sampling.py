"""Sampling: DDPM ancestral sampling (Algorithm 2) and DDIM, with a trajectory callback.

Chapter 8. Ho et al. 2020, Algorithm 2 and eq. (11); Song, Meng & Ermon 2021 (DDIM), eqs. (12) and (16).

Both samplers share one signature shape, take a ``model(x_t, t) -> eps_hat`` and a
``callback(t, x_t, x0_hat)`` that receives every step: it is called for each visited
t = T, ..., 1 with the state x_t that enters the step and the current prediction x0_hat,
and once more with t = 0, the final x_0 and x0_hat = x_0. That is the hook a trajectory GIF
needs; :class:`TrajectoryRecorder` is such a callback.

One loop serves both samplers: it visits (t, t_prev) pairs, predicts eps_hat, calls the
callback, draws z and applies the sampler's update (``_ddpm_step`` or ``_ddim_step``, the cores
of :func:`ddpm_step` and :func:`ddim_step`). The public step functions check t and read the
schedule at t. A sampler reads every coefficient it needs once per call, as Python floats
(``DDPMCoefs``, ``DDIMCoefs``), so its loop indexes no schedule tensor, casts nothing and
never waits for the device; a float multiplies a tensor in one kernel, in the tensor's precision.
Without a callback, nothing is computed for one. The loop runs under ``torch.inference_mode``: a
callback receives inference tensors, which it may read or copy (as :class:`TrajectoryRecorder`
does) but should not keep for autograd, and a model cannot use autograd inside it (no gradient
guidance); the samplers return normal tensors.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["ddpm_step", "sample", "ddim_timesteps", "ddim_step", "ddim_sample", "TrajectoryRecorder", "VARIANCES"]

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t (B,)) -> eps_hat (B, ...)
Callback = Callable[[int, Tensor, Tensor], None]  # (t, x_t, x0_hat)
Step = Callable[..., Tensor]  # (x_t, eps_hat, z or None, coefficients of step t, clip_x0) -> x_{t_prev}
VARIANCES = ("beta_tilde", "beta")


def _predict_x0(xt: Tensor, eps_hat: Tensor, sqrt_ab: float | Tensor, sqrt_1m_ab: float | Tensor,
                clip_x0: float | None) -> Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t), clamped to [-c, c] if clip_x0 = c.

    The coefficients are floats (one t) or tensors broadcastable to xt (B, ...). Returns (B, ...).
    """
    x0_hat = (xt - sqrt_1m_ab * eps_hat) / sqrt_ab
    return x0_hat if clip_x0 is None else x0_hat.clamp_(-clip_x0, clip_x0)  # in place: x0_hat is new


# --------------------------------------------------------------------------- DDPM (Algorithm 2)
class DDPMCoefs(NamedTuple):
    """The coefficients of one DDPM step: Python floats (in the samplers) or tensors broadcastable to x."""

    sqrt_ab: float | Tensor  # sqrt(alpha_bar_t)
    sqrt_1m_ab: float | Tensor  # sqrt(1 - alpha_bar_t)
    eps_coef: float | Tensor  # beta_t / sqrt(1 - alpha_bar_t), eq. (11)
    sqrt_alpha: float | Tensor  # sqrt(alpha_t), eq. (11)
    coef_x0: float | Tensor  # posterior-mean weight on x0, eq. (7)
    coef_xt: float | Tensor  # posterior-mean weight on x_t, eq. (7)
    sigma: float | Tensor  # sigma_t = sqrt(beta_tilde_t) or sqrt(beta_t); 0 at t = 1 (Alg. 2, line 3)


def _ddpm_per_t(s: Schedule, variance: str) -> DDPMCoefs:
    """Every DDPM coefficient as a (T + 1,) float64 tensor indexed by t."""
    sigma = (s.beta_tilde if variance == "beta_tilde" else s.betas).sqrt()
    sigma = sigma * (torch.arange(s.T + 1, device=sigma.device) > 1)  # no noise at t = 1
    eps_coef = s.betas / (1.0 - s.alpha_bar).clamp_min(1e-300).sqrt()
    return DDPMCoefs(s.alpha_bar.sqrt(), (1.0 - s.alpha_bar).sqrt(), eps_coef, s.alphas.sqrt(), s.coef_x0,
                     s.coef_xt, sigma)


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
    t = as_t(t, s.T)
    k = DDPMCoefs(*(extract(a, t, xt) for a in _ddpm_per_t(s, variance)))  # on xt's device: no host read
    return _ddpm_step(xt, eps_hat, z, k, clip_x0)


def _ddpm_step(xt: Tensor, eps_hat: Tensor, z: Tensor | None, k: DDPMCoefs, clip_x0: float | None) -> Tensor:
    """:func:`ddpm_step` with step t's coefficients ``k``; z = None adds no noise."""
    if clip_x0 is None:
        mean = (xt - k.eps_coef * eps_hat) / k.sqrt_alpha  # eq. (11)
    else:
        x0_hat = _predict_x0(xt, eps_hat, k.sqrt_ab, k.sqrt_1m_ab, clip_x0)
        mean = k.coef_x0 * x0_hat + k.coef_xt * xt  # eq. (7) at the clipped x0_hat
    return mean if z is None else mean + k.sigma * z  # Alg. 2, line 4


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
    k = [DDPMCoefs(*c) for c in zip(*(a.tolist() for a in _ddpm_per_t(s, variance)))]  # k[t]: floats, read once
    return _run(model, x, times, _ddpm_step, k, noisy=True, progress="DDPM" if progress else None,
                clip_x0=clip_x0, callback=callback, generator=generator)  # line 4 is _ddpm_step with k[t]


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
    k = DDIMCoefs.at(float(s.alpha_bar[t]), float(s.alpha_bar[t_prev]), eta)
    return _ddim_step(xt, eps_hat, z, k, clip_x0)


class DDIMCoefs(NamedTuple):
    """The coefficients of one DDIM step t -> t_prev as Python floats (Song et al. 2021, eqs. 12 and 16)."""

    sqrt_ab: float  # sqrt(alpha_bar_t)
    sqrt_1m_ab: float  # sqrt(1 - alpha_bar_t)
    sqrt_ab_prev: float  # sqrt(alpha_bar_{t_prev})
    direction: float  # sqrt(1 - alpha_bar_{t_prev} - sigma^2), eq. (12): "direction pointing to x_t"
    sigma: float  # eq. (16)

    @classmethod
    def at(cls, ab_t: float, ab_prev: float, eta: float) -> "DDIMCoefs":
        """From ab_t = alpha_bar_t and ab_prev = alpha_bar_{t_prev}."""
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))  # eq. (16)
        direction = math.sqrt(max(1 - ab_prev - sigma**2, 0.0))
        return cls(math.sqrt(ab_t), math.sqrt(1 - ab_t), math.sqrt(ab_prev), direction, sigma)


def _ddim_step(xt: Tensor, eps_hat: Tensor, z: Tensor | None, k: DDIMCoefs, clip_x0: float | None) -> Tensor:
    """:func:`ddim_step` with the step's coefficients ``k``; z = None adds no noise."""
    x0_hat = _predict_x0(xt, eps_hat, k.sqrt_ab, k.sqrt_1m_ab, clip_x0)  # eq. (12), "predicted x0"
    if clip_x0 is not None:
        eps_hat = (xt - k.sqrt_ab * x0_hat) / k.sqrt_1m_ab  # the eps that goes with the clipped x0_hat
    x_prev = k.sqrt_ab_prev * x0_hat + k.direction * eps_hat  # eq. (12)
    return x_prev if z is None else x_prev + k.sigma * z


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
    ab = s.alpha_bar.tolist()  # alpha_bar_t as floats, read once
    k = {t: DDIMCoefs.at(ab[t], ab[t_prev], eta) for t, t_prev in times}
    return _run(model, x, times, _ddim_step, k, noisy=eta > 0, progress="DDIM" if progress else None,
                clip_x0=clip_x0, callback=callback, generator=generator)


# --------------------------------------------------------------------------- the shared loop
def _run(
    model: Model,
    x: Tensor,
    times: list[tuple[int, int]],
    step: Step,
    k: Sequence[DDPMCoefs] | dict[int, DDIMCoefs],
    *,
    noisy: bool,
    progress: str | None,
    clip_x0: float | None,
    callback: Callback | None,
    generator: torch.Generator | None,
) -> Tensor:
    """The loop both samplers share: x_t -> x_{t_prev} for each (t, t_prev) in ``times`` (Alg. 2, lines 2-6).

    The update is ``step(x_t, eps_hat, z, k[t], clip_x0)`` (:func:`_ddpm_step` or :func:`_ddim_step`), with k[t]
    the coefficients of step t as floats; z ~ N(0, I) is drawn when ``noisy`` and t_prev > 0, else z = None
    (no noise is added). ``progress``: a progress bar's title, or None for no bar. x: (B, ...) is x_T;
    returns x_0.

    The loop runs under ``torch.inference_mode`` (no autograd bookkeeping on any operation), so the
    callback sees inference tensors; the x_0 returned is a normal tensor again (a clone made outside).
    """
    with torch.inference_mode():
        t_rows = _t_rows([t for t, _ in times], x)
        for i, (t, t_prev) in enumerate(_progress(times, progress)):  # Alg. 2, line 2
            eps_hat = model(x, t_rows[i])
            if eps_hat.dtype != x.dtype:
                eps_hat = eps_hat.to(x.dtype)
            if callback is not None:  # x0_hat as the update clamps it
                callback(t, x, _predict_x0(x, eps_hat, k[t].sqrt_ab, k[t].sqrt_1m_ab, clip_x0))
            z = None
            if noisy and t_prev > 0:  # line 3
                z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = step(x, eps_hat, z, k[t], clip_x0)  # line 4
        if callback is not None:
            callback(0, x, x)
    return x.clone()  # line 6; inference tensors refuse autograd and in-place updates outside inference mode


def _t_rows(ts: list[int], x: Tensor) -> Tensor:
    """(len(ts), B) long on x's device, row i filled with ts[i]: the model's t for every step, made at once."""
    return torch.tensor(ts, device=x.device).repeat_interleave(x.shape[0]).view(len(ts), x.shape[0])


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


def _progress(it: Sequence[tuple[int, int]], desc: str | None) -> Iterable[tuple[int, int]]:
    if desc is None:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


# --------------------------------------------------------------------------- trajectories
class TrajectoryRecorder:
    """A sampler ``callback`` that keeps about ``frames`` evenly spaced states of one sampling run.

    Pass ``T``, the number of model calls (s.T for DDPM, the step count for DDIM). After sampling,
    ``.frames`` is a list of (t, x_t) and ``.x0_frames`` a list of (t, x0_hat), both on the CPU,
    in sampling order (t = T first, t = 0 last); :func:`ddpm_edu.data.images.trajectory_frames` turns
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
            with torch.inference_mode(False):  # normal tensors, even when the sampler's are inference tensors
                self.frames.append((t, xt.detach().to("cpu", copy=True)))
                self.x0_frames.append((t, x0_hat.detach().to("cpu", copy=True)))
