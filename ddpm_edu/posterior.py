"""The reverse-process target: the posterior q(x_{t-1} | x_t, x0), x0 recovered from eps, and sigma_t^2.

Chapter 6. Ho et al. 2020, eqs. (6)-(7)::

    q(x_{t-1} | x_t, x0) = N(mu_tilde, beta_tilde_t I),
    mu_tilde = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0
             + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t,
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.

Substituting x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) gives eq. (11)::

    mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t),

which :func:`mean_from_eps` computes and the tests show is the same mean. The reverse step
p_theta(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) fixes sigma_t^2 in advance (sec. 3.2):
:func:`reverse_variance` gives both of the paper's choices; :func:`optimal_reverse_variance`
gives the best fixed sigma_t^2 for given data (Bao et al. 2022, Theorem 1; chapter 11), which lies
between them.

Each function that takes t checks it (1..T). The samplers (:mod:`ddpm_edu.sampling`, chapter 8)
are written with these functions, so each formula lives here and only here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["q_posterior", "x0_from_eps", "eps_from_x0", "mean_from_eps", "reverse_variance", "optimal_reverse_variance",
           "VARIANCES"]

VARIANCES = ("beta_tilde", "beta")  # the two choices of sigma_t^2 in Ho et al., sec. 3.2


def q_posterior(x0: Tensor, xt: Tensor, t: Tensor | int, s: Schedule) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x0) (Ho et al. eq. (7)).

    x0, xt: (B, ...); t: (B,) in 1..T or an int. Returns (mu_tilde (B, ...),
    beta_tilde broadcastable to x, shape (B, 1, ..., 1) or 0-d).
    """
    t = as_t(t, s.T)
    mean = extract(s.coef_x0, t, xt) * x0 + extract(s.coef_xt, t, xt) * xt  # eq. (7)
    return mean, extract(s.beta_tilde, t, xt)


def x0_from_eps(xt: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t): the closed form solved for x0.

    xt, eps: (B, ...); t: (B,) in 1..T or an int. Returns (B, ...).
    """
    t = as_t(t, s.T)
    return (xt - extract((1.0 - s.alpha_bar).sqrt(), t, xt) * eps) / extract(s.alpha_bar.sqrt(), t, xt)


def eps_from_x0(xt: Tensor, t: Tensor | int, x0: Tensor, s: Schedule) -> Tensor:
    """eps = (x_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t): the closed form solved for eps.

    xt, x0: (B, ...); t: (B,) in 1..T or an int. Returns (B, ...).
    """
    t = as_t(t, s.T)
    return (xt - extract(s.alpha_bar.sqrt(), t, xt) * x0) / extract((1.0 - s.alpha_bar).sqrt(), t, xt)


def mean_from_eps(xt: Tensor, t: Tensor | int, eps: Tensor, s: Schedule) -> Tensor:
    """The eps form of the posterior mean (Ho et al. eq. (11), Algorithm 2 line 4):
    mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t).

    xt, eps: (B, ...); t: (B,) in 1..T or an int. Returns (B, ...).
    """
    t = as_t(t, s.T)
    coef = extract(s.betas / (1.0 - s.alpha_bar).clamp_min(1e-300).sqrt(), t, xt)  # beta_t / sqrt(1 - alpha_bar_t)
    return (xt - coef * eps) / extract(s.alphas.sqrt(), t, xt)  # eq. (11)


def reverse_variance(s: Schedule, variance: str = "beta_tilde") -> Tensor:
    """sigma_t^2 of the reverse step p_theta(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) (Ho et al. sec. 3.2).

    "beta_tilde": sigma_t^2 = beta_tilde_t, the posterior's variance (eq. 7), optimal for a single x0;
    "beta": sigma_t^2 = beta_t, the forward step's, optimal for x0 ~ N(0, I).
    Returns a (T + 1,) float64 tensor indexed by t, like the schedule's own (read it with ``extract``).
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    return s.beta_tilde if variance == "beta_tilde" else s.betas


def optimal_reverse_variance(s: Schedule, t: Tensor | int, eps_sq: Tensor | float) -> Tensor:
    """The sigma_t^2 that minimises the bound for the data, given E||eps*(x_t, t)||^2 / d (chapter 11).

    Bao et al. 2022 (Analytic-DPM), Theorem 1, with the DDPM posterior (lambda_t^2 = beta_tilde_t)::

        sigma*_t^2 = beta_tilde_t + beta_t^2 / (alpha_t (1 - alpha_bar_t)) * (1 - E||eps*||^2 / d).

    Their (sqrt(beta_bar_t / alpha_t) - sqrt(beta_bar_{t-1} - lambda_t^2))^2 simplifies to the factor
    shown, and (1 - alpha_bar_t) E||score||^2 = E||eps*||^2 by Tweedie's formula. A single point x0
    (eps* = eps, E||eps*||^2 / d = 1) gives beta_tilde_t; x0 ~ N(0, I) (E||eps*||^2 / d = 1 - alpha_bar_t)
    gives beta_t. eps_sq lies in [0, 1] for the true eps* (it is a conditional mean of eps, whose
    E||eps||^2 / d is 1): clip an estimate made with a network to it, as Bao et al. do.
    t: (B,) in 1..T or an int; eps_sq: broadcastable to t. Returns float64, shaped like t.
    """
    t = as_t(t, s.T)
    eps_sq = torch.as_tensor(eps_sq, dtype=torch.float64)
    if eps_sq.lt(0).any() or eps_sq.gt(1).any():
        raise ValueError(f"eps_sq = E||eps*||^2 / d must lie in [0, 1], got {eps_sq.tolist()}")
    spread = s.betas[t] ** 2 / (s.alphas[t] * (1.0 - s.alpha_bar[t]))
    return s.beta_tilde[t] + spread * (1.0 - eps_sq)
