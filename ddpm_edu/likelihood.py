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
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ddpm_edu.forward import q_sample
from ddpm_edu.posterior import mean_from_eps, q_posterior, reverse_variance
from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["gaussian_kl", "discretized_gaussian_log_likelihood", "prior_bpd", "vb_term", "vb_terms", "nll_bpd"]

Model = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t (B,)) -> eps_hat (B, ...)


def gaussian_kl(mean1: Tensor, var1: Tensor, mean2: Tensor, var2: Tensor) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats.

    KL = 1/2 (log(var2 / var1) + (var1 + (mean1 - mean2)^2) / var2 - 1). Arguments broadcast.
    """
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


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
    t_rows = torch.as_tensor(t, device=xt.device).expand(xt.shape[0])  # (B,)
    mean_p = mean_from_eps(xt, t, eps_model(xt, t_rows).to(xt.dtype), s)  # mu_theta, eq. (11)
    var_p = extract(reverse_variance(s, variance), t, xt)
    mean_q, var_q = q_posterior(x0, xt, t, s)  # eq. (7)
    kl = gaussian_kl(mean_q, var_q.clamp_min(torch.finfo(xt.dtype).tiny), mean_p, var_p)  # t = 1 unused
    var_0 = s.beta_tilde[min(2, s.T)].to(xt.dtype)  # the decoder's variance (beta_tilde_1 = 0)
    nll = -discretized_gaussian_log_likelihood(x0, mean_p, var_0, levels)
    first = (t_rows == 1).view(-1, *([1] * (x0.dim() - 1)))
    return _bits_per_dim(torch.where(first, nll, kl))


@torch.no_grad()
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
    terms = []
    for t in range(1, s.T + 1):  # no sampling of t: every term once
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        xt = q_sample(x0, t, eps, s)  # chapter 5's closed form
        terms.append(vb_term(eps_model, x0, xt, t, s, variance=variance, levels=levels))
    terms.append(prior_bpd(x0, s))
    return torch.stack(terms, dim=1)


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
