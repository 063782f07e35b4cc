"""Variance schedules: beta_t, alpha_t, alpha_bar_t and everything derived from them.

Chapter 4 (variance schedules) and chapter 6 (posterior variance). Ho et al. 2020, sec. 2
and eq. (7); the cosine schedule is Nichol & Dhariwal 2021, eq. (17).

Convention: every per-t tensor has T + 1 entries and is indexed by t itself, so
``s.alpha_bar[t]`` *is* alpha_bar_t. Entry 0 is the clean-data convention:
beta_0 = 0, alpha_0 = alpha_bar_0 = 1, beta_tilde_0 = 0, snr_0 = inf.
All schedule tensors are float64; they are cast to the data's dtype only when indexed
(see :func:`extract`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Mapping

import torch
from torch import Tensor

__all__ = [
    "Schedule", "extract", "check_t", "as_t", "schedule_problems", "KINDS",
    "ScheduleSummary", "summarize", "summary_table", "beta_T_for_sum", "NOISED", "FINISHED", "assert_on_device",
]

KINDS = ("linear", "cosine", "quadratic", "sigmoid")

NOISED = 0.01  # a step counts as "almost pure noise" when alpha_bar_t < NOISED (under 1% of x0's variance left)
FINISHED = 1e-4  # a schedule finishes noising when alpha_bar_T <= FINISHED: x_T keeps at most sqrt(1e-4) = 1% of x0


def schedule_problems(T: int | None = None, beta_1: float | None = None, beta_T: float | None = None) -> dict[str, str]:
    """What is wrong with schedule arguments, by argument name ({} when nothing is); only given ones are checked.

    :meth:`Schedule.cosine` and :meth:`Schedule.from_betas` take no beta_1, beta_T.
    ``ddpm_edu.training.config`` reports these problems under ``diffusion.*``.
    """
    p = {}
    if T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
        p["T"] = f"T must be an integer >= 1 (the number of diffusion steps), got {T!r}"
    for name, v in (("beta_1", beta_1), ("beta_T", beta_T)):
        if v is None:
            continue
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            p[name] = f"{name} must be a finite number in (0, 1), got {v!r}"
        elif not 0.0 < v < 1.0:
            p[name] = f"{name} must lie in the open interval (0, 1), got {v!r}"
    if None not in (beta_1, beta_T) and not p.keys() & {"beta_1", "beta_T"} and beta_1 > beta_T:
        p["beta_1"] = (f"the schedule needs beta_1 <= beta_T (noise grows with t), "
                       f"got beta_1={beta_1!r} > beta_T={beta_T!r}")
    return p


def _check(T: int, beta_1: float | None = None, beta_T: float | None = None) -> None:
    """Raise ValueError naming every problem :func:`schedule_problems` finds."""
    problems = schedule_problems(T, beta_1, beta_T)
    if problems:
        raise ValueError("; ".join(problems.values()))


@dataclass(frozen=True, eq=False)
class Schedule:
    """A variance schedule and its precomputed per-t tensors, each of shape (T + 1,), float64.

    Build one with :meth:`linear`, :meth:`cosine`, :meth:`quadratic`, :meth:`sigmoid`
    or :meth:`from_betas`; do not call the constructor directly.
    """

    betas: Tensor  # beta_t, the variance added at step t; betas[0] = 0
    alphas: Tensor  # alpha_t = 1 - beta_t
    alpha_bar: Tensor  # alpha_bar_t = prod_{s=1}^t alpha_s; alpha_bar[0] = 1
    alpha_bar_prev: Tensor  # alpha_bar_{t-1}; entry 0 is 1 by convention
    beta_tilde: Tensor  # posterior variance (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
    coef_x0: Tensor  # posterior-mean weight on x0: sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)
    coef_xt: Tensor  # posterior-mean weight on xt: sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
    snr: Tensor  # signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t); snr[0] = inf

    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return self.betas.shape[0] - 1

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def to(self, device: torch.device | str) -> "Schedule":
        """The same schedule with every tensor on ``device`` (still float64)."""
        return Schedule(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_betas(cls, betas: Tensor | list[float]) -> "Schedule":
        """Build a schedule from beta_1..beta_T (length T, each in (0, 1))."""
        b = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
        _check(b.numel())
        if not torch.isfinite(b).all():
            bad = int((~torch.isfinite(b)).nonzero()[0]) + 1
            raise ValueError(f"betas must be finite; beta_{bad} = {b[bad - 1].item()!r}")
        if not ((b > 0) & (b < 1)).all():
            bad = int((~((b > 0) & (b < 1))).nonzero()[0]) + 1
            raise ValueError(
                f"every beta_t must lie in the open interval (0, 1); beta_{bad} = {b[bad - 1].item()!r}"
            )
        betas = torch.cat([torch.zeros(1, dtype=torch.float64), b])  # index by t: betas[0] = 0
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, dim=0)  # alpha_bar[0] = 1
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        one_minus = 1.0 - alpha_bar
        safe = torch.where(one_minus > 0, one_minus, torch.ones_like(one_minus))
        beta_tilde = torch.where(one_minus > 0, (1.0 - alpha_bar_prev) / safe * betas, torch.zeros_like(betas))
        coef_x0 = torch.where(one_minus > 0, alpha_bar_prev.sqrt() * betas / safe, torch.ones_like(betas))
        coef_xt = torch.where(one_minus > 0, alphas.sqrt() * (1.0 - alpha_bar_prev) / safe, torch.zeros_like(betas))
        snr = torch.where(one_minus > 0, alpha_bar / safe, torch.full_like(betas, math.inf))
        return cls(betas, alphas, alpha_bar, alpha_bar_prev, beta_tilde, coef_x0, coef_xt, snr)

    @classmethod
    def linear(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """Ho et al. 2020: beta_t rises linearly from beta_1 to beta_T."""
        _check(T, beta_1, beta_T)
        return cls.from_betas(torch.linspace(beta_1, beta_T, T, dtype=torch.float64))

    @classmethod
    def quadratic(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """sqrt(beta_t) rises linearly from sqrt(beta_1) to sqrt(beta_T)."""
        _check(T, beta_1, beta_T)
        return cls.from_betas(torch.linspace(beta_1**0.5, beta_T**0.5, T, dtype=torch.float64) ** 2)

    @classmethod
    def sigmoid(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """beta_t follows a logistic curve over [-6, 6], rescaled to [beta_1, beta_T]."""
        _check(T, beta_1, beta_T)
        u = torch.sigmoid(torch.linspace(-6.0, 6.0, T, dtype=torch.float64))
        u = (u - u.min()) / (u.max() - u.min()) if T > 1 else torch.ones(1, dtype=torch.float64)
        return cls.from_betas(beta_1 + (beta_T - beta_1) * u)

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "Schedule":
        """Nichol & Dhariwal 2021, eq. (17): alpha_bar_t = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2).

        beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped at ``max_beta``.
        """
        _check(T)
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s >= 0):
            raise ValueError(f"s must be a finite offset >= 0, got {s!r}")
        if not (isinstance(max_beta, (int, float)) and 0 < max_beta < 1):
            raise ValueError(f"max_beta must lie in the open interval (0, 1), got {max_beta!r}")
        t = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)
        return cls.from_betas(betas)

    @classmethod
    def make(cls, kind: str, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> "Schedule":
        """Build a schedule by name ("linear", "cosine", "quadratic", "sigmoid"); cosine ignores beta_1/beta_T."""
        if kind == "cosine":
            return cls.cosine(T)
        if kind not in KINDS:
            raise ValueError(f"unknown schedule kind {kind!r}; choose one of {', '.join(KINDS)}")
        return getattr(cls, kind)(T, beta_1, beta_T)


def check_t(t: Tensor, T: int, first: int = 0) -> None:
    """Raise ValueError unless every entry of the integer tensor t lies in first..T.

    The default, 0..T, accepts every index of the schedule's tensors (t = 0 is the clean data, as in
    :func:`ddpm_edu.forward.q_sample`); a reverse step or the posterior needs ``first = 1``. Off the
    CPU the check runs on the device (:func:`ddpm_edu.schedules.assert_on_device`), so validating never waits for it.
    """
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"t must be an integer tensor of time steps in {first}..{T}, got dtype {t.dtype}")
    if not t.numel():
        return
    if t.device.type != "cpu":  # checking on the device avoids a host sync in every training step
        assert_on_device(((t >= first) & (t <= T)).all(), f"t must lie in {first}..{T}")
    elif int(t.min()) < first or int(t.max()) > T:
        raise ValueError(f"t must lie in {first}..{T} (T = {T}); got values from {int(t.min())} to {int(t.max())}")


def as_t(t: Tensor | int, T: int, first: int = 1) -> Tensor | int:
    """A time step checked once, at a public entry: an integer tensor with entries in first..T (see
    :func:`check_t`), or an int (numpy integers become ints). Functions behind that entry take t as it is."""
    if isinstance(t, Tensor):
        check_t(t, T, first)
        return t
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise ValueError(f"t must be an integer in {first}..{T} or an integer tensor, got {t!r}")
    if not first <= t <= T:
        raise ValueError(f"t must lie in {first}..{T} (T = {T}), got {t!r}")
    return int(t)


def extract(a: Tensor, t: Tensor | int, x: Tensor) -> Tensor:
    """Index the per-t tensor ``a`` at ``t`` and shape it to broadcast against x.

    a: (T + 1,) float64; t: int or (B,) integer tensor; x: (B, ...).
    Returns a[t] in x's dtype and device, shaped (B, 1, ..., 1) (or a 0-d tensor for an int t).
    """
    if isinstance(t, int):
        return a[t].to(device=x.device, dtype=x.dtype)
    if t.device.type == "mps":  # MPS has no float64: index a float32 copy there
        a = a.float()
    out = a.to(t.device)[t].to(device=x.device, dtype=x.dtype)
    return out.reshape(out.shape + (1,) * (x.dim() - out.dim()))


# ------------------------------------------------------------------ comparing schedules (chapters 4-5)
@dataclass(frozen=True)
class ScheduleSummary:
    """What a schedule does to the data over all T steps: chapters 4-5 and the explorer's readouts.

    See :func:`summarize`; ``ddpm_edu/web/js/schedule.js`` computes the same fields in the browser.
    """

    sum_beta: float  # sum_{t=1}^T beta_t; equals -log alpha_bar_T to first order when every beta_t is small
    alpha_bar_1: float  # alpha_bar_1 = 1 - beta_1: how gentle the first step is
    alpha_bar_T: float  # the share of x0's variance left in x_T
    sqrt_alpha_bar_T: float  # the weight of x0 left in x_T = sqrt(alpha_bar_T) x0 + sqrt(1 - alpha_bar_T) eps
    finishes: bool  # alpha_bar_T <= FINISHED: x0 is noised away (at most 1% of its amplitude is left)
    t_snr_1: int | None  # the first t with SNR_t <= 1 (alpha_bar_t <= 1/2); None when SNR_T > 1
    share_noised: float | None  # share of t in 1..T with alpha_bar_t < NOISED; None when it does not finish


def summarize(s: Schedule) -> ScheduleSummary:
    """Chapters 4-5 and the explorer: sum of beta, alpha_bar_1, alpha_bar_T, its square root, and two shape numbers.

    A schedule ``finishes`` when alpha_bar_T <= FINISHED (1e-4: x0 enters x_T with at most 1% of its
    amplitude). ``share_noised``, the share of steps spent where less than NOISED of x0's variance is
    left, rewards a schedule for reaching noise late; one that never reaches it would score 0, the best
    value. So the share is given only for schedules that finish, and is None ("not comparable") otherwise.
    """
    ab = s.alpha_bar[1:]  # alpha_bar_1 .. alpha_bar_T
    alpha_bar_T = float(ab[-1])
    finishes = alpha_bar_T <= FINISHED
    crossed = (s.snr[1:] <= 1).nonzero()  # SNR_t = alpha_bar_t / (1 - alpha_bar_t) <= 1
    return ScheduleSummary(
        sum_beta=float(s.betas[1:].sum()),
        alpha_bar_1=float(ab[0]),
        alpha_bar_T=alpha_bar_T,
        sqrt_alpha_bar_T=math.sqrt(alpha_bar_T),
        finishes=finishes,
        t_snr_1=int(crossed[0]) + 1 if crossed.numel() else None,
        share_noised=float((ab < NOISED).double().mean()) if finishes else None,
    )


def summary_table(schedules: Mapping[str, Schedule]) -> str:
    """Chapters 4-5: one row of :func:`summarize` per labelled schedule, as a Markdown table.

    Columns: sum of beta, alpha_bar_T, the weight sqrt(alpha_bar_T) of x0 in x_T, finishes or not, the
    first t with SNR_t <= 1, and the share of steps with alpha_bar_t < NOISED. A schedule that does
    not finish shows "no" and a dash instead of its share of near-noise steps. A notebook shows it
    rendered with ``IPython.display.Markdown(summary_table(...))``.
    """
    rows = ["| schedule | sum of beta | alpha_bar_T | x0 weight | finishes | SNR = 1 at t | share near noise |",
            "|---|---:|---:|---:|---|---:|---:|"]
    for label, s in schedules.items():
        r = summarize(s)
        share = f"{r.share_noised:.0%}" if r.share_noised is not None else "-"
        t_half = str(r.t_snr_1) if r.t_snr_1 is not None else "-"
        rows.append(f"| {label} | {r.sum_beta:.2f} | {r.alpha_bar_T:.1e} | {r.sqrt_alpha_bar_T:.2g} "
                    f"| {'yes' if r.finishes else 'no'} | {t_half} | {share} |")
    return "\n".join(rows)


def beta_T_for_sum(kind: str, T: int, beta_1: float, sum_beta: float, *, tol: float = 1e-12) -> float:
    """Chapter 4: the beta_T that gives a schedule of ``kind`` (not cosine) the total sum_{t} beta_t = sum_beta.

    Schedules with the same sum of beta end, to first order, at the same alpha_bar_T, so this puts
    schedules of different shapes on an equal footing. Bisection on beta_T in [beta_1, 1): every
    beta_t of the linear, quadratic and sigmoid schedules grows with beta_T.
    """
    if kind == "cosine" or kind not in KINDS:
        raise ValueError(f"beta_T_for_sum needs a kind with a beta_T (linear, quadratic, sigmoid), got {kind!r}")

    def total(beta_T: float) -> float:
        return float(Schedule.make(kind, T, beta_1, beta_T).betas.sum())

    lo, hi = beta_1, 1.0 - 1e-12
    if not total(lo) <= sum_beta <= total(hi):
        raise ValueError(f"a {kind} schedule with T={T}, beta_1={beta_1} has sum of beta in "
                         f"[{total(lo):.4g}, {total(hi):.4g}], so it cannot reach {sum_beta!r}")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if total(mid) < sum_beta else (lo, mid)
    return 0.5 * (lo + hi)


def assert_on_device(condition: Tensor, message: str) -> None:
    """Fail (a device-side assert, reported at the next synchronisation) unless the 0-d bool ``condition`` is true.

    Unlike ``if not condition: raise``, this queues the check on the tensor's device and does not wait for it.
    """
    torch._assert_async(condition, message)
