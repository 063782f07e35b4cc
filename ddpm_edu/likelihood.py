"""The variational bound on -log p(x0), term by term, in bits per dimension.

Chapter 7. Ho et al. 2020, eq. (5) and Sec. 3.3. With q the forward process and p_theta the reverse one::

    -log p_theta(x0) <= L_T + sum_{t=2}^T L_{t-1} + L_0, where
    L_T     = KL(q(x_T | x0) || N(0, I))                       (the prior term; no parameters),
    L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p_theta(x_{t-1} | x_t)),  x_t ~ q(x_t | x0),
    L_0     = -log p_theta(x0 | x1),                              x_1 ~ q(x_1 | x0).

p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I) with mu_theta from eps_hat (eq. 11) and
sigma_t^2 = beta_tilde_t or beta_t. Both sides of each KL are Gaussian, so every term is a closed form.

L_0 is the discretized Gaussian decoder of Sec. 3.3: data take ``levels`` equally spaced values in
[-1, 1], and p_theta(x0 | x1) is the mass that N(mu_theta(x1, 1), sigma_1^2) puts on the bin of x0 (the
two end bins reach to -inf and +inf). Since beta_tilde_1 = 0, the decoder uses beta_tilde_2 as its
variance, as improved-diffusion does (Nichol & Dhariwal 2021), whichever sigma_t^2 the other steps use.

A sum over D dimensions divided by D ln 2 turns nats into bits per dimension.

:func:`path_bound` computes the same bound from its definition instead, along sampled forward paths::

    -log p_theta(x0) <= E_q[ log q(x_{1:T} | x0) - log p_theta(x_{0:T}) ],

one log density per step, with no KL in closed form: chapter 7 checks the two against each other.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from ddpm_edu.forward import q_sample
from ddpm_edu.posterior import VARIANCES, mean_from_eps, q_posterior, reverse_variance
from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = [
    "gaussian_kl", "gaussian_log_density", "discretized_gaussian_log_likelihood", "prior_bpd", "vb_term",
    "vb_terms", "vb_terms_per_variance", "nll_bpd", "path_bound",
]

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t (B,)) -> eps_hat (B, ...)


def gaussian_kl(mean1: Tensor, var1: Tensor, mean2: Tensor, var2: Tensor) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats.

    KL = 1/2 (log(var2 / var1) + (var1 + (mean1 - mean2)^2) / var2 - 1). Arguments broadcast.
    """
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def gaussian_log_density(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """log N(x; mean, var) per element, in nats: -1/2 (log(2 pi var) + (x - mean)^2 / var). Arguments broadcast."""
    return -0.5 * (torch.log(2 * math.pi * var) + (x - mean) ** 2 / var)


def _log_mass(lo: Tensor, hi: Tensor) -> Tensor:
    """log(Phi(hi) - Phi(lo)) for standardized bin edges lo < hi, accurate in both tails."""
    flip = lo > 0  # both edges in the upper tail: Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi)
    a, b = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)  # now log(Phi(b) - Phi(a)), b <= 0 or a < 0
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp(log_a - log_b))


def discretized_gaussian_log_likelihood(x0: Tensor, mean: Tensor, var: Tensor, levels: int) -> Tensor:
    """log of the mass that N(mean, var) puts on the bin of x0, per element (Ho et al. Sec. 3.3, in nats).

    x0 takes ``levels`` equally spaced values in [-1, 1], 2 / (levels - 1) apart; a bin reaches half a
    spacing either side of its value, and the first and last bins reach to -inf and +inf.
    x0, mean: (B, ...); var broadcastable. Returns (B, ...).
    """
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels!r}")
    half = 1.0 / (levels - 1)
    std = var.sqrt()
    lo = torch.where(x0 <= -1 + half, -math.inf, (x0 - half - mean) / std)
    hi = torch.where(x0 >= 1 - half, math.inf, (x0 + half - mean) / std)
    return _log_mass(lo, hi)



def _bits_per_dim(nats: Tensor) -> Tensor:
    """Sum over all but the batch dimension, divided by D ln 2: (B, ...) -> (B,)."""
    return nats.flatten(1).sum(1) / (nats[0].numel() * math.log(2.0))


def prior_bpd(x0: Tensor, s: Schedule) -> Tensor:
    """L_T = KL(q(x_T | x0) || N(0, I)) in bits per dimension; q(x_T | x0) = N(sqrt(ab_T) x0, (1 - ab_T) I).

    x0: (B, ...). Returns (B,).
    """
    ab = s.alpha_bar[s.T].to(x0.dtype)
    return _bits_per_dim(gaussian_kl(ab.sqrt() * x0, 1.0 - ab, torch.zeros_like(x0), torch.ones_like(x0)))


def vb_term(
    eps_model: Model,
    x0: Tensor,
    xt: Tensor,
    t: Tensor | int,
    s: Schedule,
    *,
    variance: str = "beta_tilde",
    levels: int = 256,
) -> Tensor:
    """One term of the bound at x_t, in bits per dimension: L_{t-1} for t > 1, L_0 for t = 1.

    x0, xt: (B, ...); t: int or (B,) in 1..T. Returns (B,).
    """
    t = as_t(t, s.T)
    reverse_variance(s, variance)  # a bad name fails before the network runs
    t_rows = torch.as_tensor(t, device=xt.device).expand(xt.shape[0])  # (B,)
    eps_hat = eps_model(xt, t_rows).to(xt.dtype)
    return _term_from_eps(x0, xt, t, t_rows, eps_hat, s, variance, levels)


def _term_from_eps(
    x0: Tensor, xt: Tensor, t: Tensor | int, t_rows: Tensor, eps_hat: Tensor, s: Schedule, variance: str, levels: int
) -> Tensor:
    """:func:`vb_term` given the network's eps_hat at (x_t, t): L_{t-1} in bits per dimension, (B,)."""
    mean_p = mean_from_eps(xt, t, eps_hat, s)  # mu_theta, eq. (11)
    var_p = extract(reverse_variance(s, variance), t, xt)
    mean_q, var_q = q_posterior(x0, xt, t, s)  # eq. (7)
    kl = gaussian_kl(mean_q, var_q.clamp_min(torch.finfo(xt.dtype).tiny), mean_p, var_p)  # t = 1 unused
    var_0 = s.beta_tilde[min(2, s.T)].to(xt.dtype)  # the decoder's variance (beta_tilde_1 = 0)
    nll = -discretized_gaussian_log_likelihood(x0, mean_p, var_0, levels)
    first = (t_rows == 1).view(-1, *([1] * (x0.dim() - 1)))
    return _bits_per_dim(torch.where(first, nll, kl))


def vb_terms(
    eps_model: Model,
    x0: Tensor,
    s: Schedule,
    *,
    variance: str = "beta_tilde",
    levels: int = 256,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Every term of the bound for each example, in bits per dimension, shape (B, T + 1).

    Column 0 is L_0, column t - 1 is L_{t-1} for t = 2..T (each at its own x_t ~ q(x_t | x0)), column T is
    L_T. Their sum over columns is :func:`nll_bpd`. x0: (B, ...) on the levels' grid.
    """
    return vb_terms_per_variance(eps_model, x0, s, (variance,), levels=levels, generator=generator)[variance]


@torch.no_grad()
def vb_terms_per_variance(
    eps_model: Model,
    x0: Tensor,
    s: Schedule,
    variances: Sequence[str] = VARIANCES,
    *,
    levels: int = 256,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """:func:`vb_terms` for several choices of sigma_t^2 at once: variance -> (B, T + 1).

    The network runs once per t (T calls in all), and every variance sees the same x_t and eps_hat, so
    differences between them are paired. With one variance this is :func:`vb_terms`.
    """
    for variance in variances:
        reverse_variance(s, variance)  # a bad name fails before the network runs
    terms: dict[str, list[Tensor]] = {v: [] for v in variances}
    for t in range(1, s.T + 1):  # no sampling of t: every term once
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        xt = q_sample(x0, t, eps, s)  # chapter 5's closed form
        t_rows = torch.full((x0.shape[0],), t, device=x0.device)
        eps_hat = eps_model(xt, t_rows).to(xt.dtype)
        for v in variances:
            terms[v].append(_term_from_eps(x0, xt, t, t_rows, eps_hat, s, v, levels))
    prior = prior_bpd(x0, s)
    return {v: torch.stack(terms[v] + [prior], dim=1) for v in variances}


def nll_bpd(
    eps_model: Model,
    x0: Tensor,
    s: Schedule,
    *,
    variance: str = "beta_tilde",
    levels: int = 256,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The whole bound L_T + sum_t L_{t-1} + L_0 >= -log2 p_theta(x0) / D, per example, shape (B,)."""
    return vb_terms(eps_model, x0, s, variance=variance, levels=levels, generator=generator).sum(1)


@torch.no_grad()
def path_bound(
    eps_model: Model,
    x0: Tensor,
    s: Schedule,
    *,
    variance: str = "beta_tilde",
    levels: int = 256,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The bound from its definition, log q(x_{1:T} | x0) - log p_theta(x_{0:T}), along one sampled path.

    In bits per dimension, per example, shape (B,); x0: (B, ...) on the levels' grid. The path is drawn
    one forward step at a time, x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z, and both joint densities are
    sums of one-step log densities: q's forward steps; p_theta's prior N(0, I) at x_T, its reverse steps
    N(mu_theta(x_t, t), sigma_t^2 I) at x_{t-1} for t >= 2, and the decoder's bin mass at x0. Its
    expectation is the same number as that of :func:`nll_bpd`, reached without Bayes' rule or a KL.
    """
    var_p = reverse_variance(s, variance).to(x0.dtype)
    var_0 = s.beta_tilde[min(2, s.T)].to(x0.dtype)  # the decoder's variance, as in vb_term
    log_q = log_p = torch.zeros_like(x0)
    x_prev = x0
    for t in range(1, s.T + 1):
        alpha, beta = s.alphas[t].to(x0.dtype), s.betas[t].to(x0.dtype)
        z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        xt = alpha.sqrt() * x_prev + beta.sqrt() * z  # one forward step, q(x_t | x_{t-1})
        log_q = log_q + gaussian_log_density(xt, alpha.sqrt() * x_prev, beta)
        t_rows = torch.full((x0.shape[0],), t, device=x0.device)
        mean_p = mean_from_eps(xt, t, eps_model(xt, t_rows).to(x0.dtype), s)  # mu_theta(x_t, t), eq. (11)
        if t == 1:  # the decoder p_theta(x0 | x1)
            log_p = log_p + discretized_gaussian_log_likelihood(x0, mean_p, var_0, levels)
        else:  # p_theta(x_{t-1} | x_t)
            log_p = log_p + gaussian_log_density(x_prev, mean_p, var_p[t])
        x_prev = xt
    log_p = log_p + gaussian_log_density(x_prev, torch.zeros_like(x_prev), torch.ones_like(x_prev))  # p(x_T)
    return _bits_per_dim(log_q - log_p)
