"""Exact noise predictors for data whose diffused marginals are known in closed form.

Chapters 6 and 8, and the sampler tests. If x0 ~ N(mu, std^2 I), then x_t ~ N(sqrt(ab) mu,
(ab std^2 + 1 - ab) I) with ab = alpha_bar_t, and the minimiser of L_simple is::

    eps*(x_t, t) = E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab std^2 + 1 - ab).

For a mixture of such Gaussians, eps* is the same expression averaged over components with
their posterior weights given x_t. Driving a sampler with eps* separates sampler error from
model error.

Chapter 6 also uses the mixture's closed forms for its pictures of distributions: the density of
q(x_t), a mixture with means sqrt(ab) mu_k and variances ab std_k^2 + 1 - ab
(:meth:`MixtureEps.log_density`); the exact reverse conditional from Bayes' rule::

    q(x_{t-1} | x_t) = q(x_t | x_{t-1}) q(x_{t-1}) / q(x_t)

(:meth:`MixtureEps.reverse_log_density`); its exact mean and variance
(:meth:`MixtureEps.reverse_moments`), a mixture over k of Gaussian posteriors; and how far it is from
the Gaussian with those moments (:meth:`MixtureEps.reverse_gaussian_gap`), a total variation distance.
:func:`grid_moments` integrates a density on a grid, the brute-force oracle the chapter checks with.

Chapter 7 uses :func:`chain_nll_bpd`: with the eps* of Gaussian data every reverse step is an affine
map plus Gaussian noise, so the model's own likelihood p_theta(x0), which the variational bound
bounds, has a closed form too.

Chapter 10 reads the mixture's components as classes y = k. Then q(x_t | y = k) is component k alone, a
Gaussian, and its eps* is :meth:`MixtureEps.class_eps`. Classifier-free guidance (:mod:`ddpm_edu.guidance`)
claims that (1 + w) eps*(x_t | y) - w eps*(x_t) is the eps* of the tilted density
q_t(x | y)^(1 + w) / q_t(x)^w; :func:`tilted_eps` computes that eps* independently, from the gradient of
the tilted log density by autograd (eps = -sqrt(1 - alpha_bar_t) * score), and the tests hold the two
together.

Chapter 8 uses that eps* of Gaussian data is affine in x_t, eps* = k_t x_t + e_t. Every step of DDPM
(Ho et al. eq. 11) and of DDIM (Song et al. eq. 12) is then x_prev = a x_t + b + sigma z, and the
sampler's output is Gaussian with a mean and variance that follow exactly (:func:`ddpm_moments`,
:func:`ddim_moments`)::

    m_prev = a m + b,    V_prev = a^2 V + sigma^2,    from m_T = 0, V_T = 1 (x_T ~ N(0, 1)).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ddpm_edu.likelihood import discretized_gaussian_log_likelihood
from ddpm_edu.losses import eps_from_score
from ddpm_edu.posterior import mean_from_eps, reverse_variance
from ddpm_edu.sampling import ddim_timesteps, sampler_problems
from ddpm_edu.schedules import Schedule, as_t, extract

__all__ = ["GaussianEps", "MixtureEps", "tilted_log_density", "tilted_eps", "grid_moments", "square_grid",
           "grid_mean_spread", "chain_nll_bpd", "ddpm_moments", "ddim_moments"]


class GaussianEps:
    """eps*(x_t, t) for data x0 ~ N(mu, std^2 I); callable as ``model(xt, t)``."""

    def __init__(self, mu: float, std: float, s: Schedule):
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std!r}")
        self.mu, self.std, self.s = mu, std, s

    def __call__(self, xt: Tensor, t: Tensor) -> Tensor:
        ab = extract(self.s.alpha_bar, t, xt)
        return (1 - ab).sqrt() * (xt - ab.sqrt() * self.mu) / (ab * self.std**2 + 1 - ab)

    def affine(self, t: int) -> tuple[float, float]:
        """(k_t, e_t) with eps*(x_t, t) = k_t x_t + e_t: k_t = sqrt(1 - ab) / omega_t, e_t = -k_t sqrt(ab) mu,
        where omega_t = ab std^2 + 1 - ab is the variance of q(x_t) and ab = alpha_bar_t; t in 1..T."""
        ab = float(self.s.alpha_bar[as_t(t, self.s.T)])
        k = (1 - ab) ** 0.5 / (ab * self.std**2 + 1 - ab)
        return k, -k * ab**0.5 * self.mu


class MixtureEps:
    """eps*(x_t, t) for a mixture sum_k w_k N(mu_k, std_k^2 I) in D dimensions.

    weights: (K,), summing to 1; means: (K, D); stds: (K,). Callable as ``model(xt, t)`` with
    xt of shape (B, D).
    """

    def __init__(self, weights: Sequence[float], means: Sequence[Sequence[float]], stds: Sequence[float], s: Schedule):
        # the mixture weights, pi_k in the book (chapter 6); chapter 10's w is the guidance weight
        self.w = torch.as_tensor(weights, dtype=torch.float64)  # (K,)
        self.mu = torch.as_tensor(means, dtype=torch.float64).reshape(len(self.w), -1)  # (K, D)
        self.std = torch.as_tensor(stds, dtype=torch.float64)  # (K,)
        if not torch.allclose(self.w.sum(), torch.tensor(1.0, dtype=torch.float64)) or (self.w <= 0).any():
            raise ValueError(f"weights must be positive and sum to 1, got {self.w.tolist()}")
        if (self.std <= 0).any():
            raise ValueError(f"stds must be > 0, got {self.std.tolist()}")
        self.s = s

    def component_posterior(self, xt: Tensor, t: Tensor) -> Tensor:
        """p(k | x_t), shape (B, K)."""
        x = xt.double()
        ab = extract(self.s.alpha_bar, t, x)  # (B, 1)
        var = ab * self.std**2 + 1 - ab  # (B, K)
        d2 = ((x[:, None, :] - ab.sqrt()[:, :, None] * self.mu[None]) ** 2).sum(-1)  # (B, K)
        D = x.shape[1]
        logp = self.w.log() - 0.5 * D * var.log() - 0.5 * d2 / var
        return torch.softmax(logp, dim=1)

    def __call__(self, xt: Tensor, t: Tensor) -> Tensor:
        if isinstance(t, int) or (t.numel() > 0 and bool((t == t.reshape(-1)[0]).all())):
            return self._eps_one_t(xt, int(t if isinstance(t, int) else t.reshape(-1)[0]))
        x = xt.double()
        ab = extract(self.s.alpha_bar, t, x)[:, :, None]  # (B, 1, 1)
        var = ab * self.std[None, :, None] ** 2 + 1 - ab  # (B, K, 1)
        eps_k = (1 - ab).sqrt() * (x[:, None, :] - ab.sqrt() * self.mu[None]) / var  # (B, K, D)
        r = self.component_posterior(xt, t)[:, :, None]
        return (r * eps_k).sum(1).to(xt.dtype)

    def _eps_one_t(self, xt: Tensor, t: int) -> Tensor:
        """:meth:`__call__` when the whole batch shares one t (as in a sampler): the same formula with
        alpha_bar_t a scalar, about ten times faster than indexing it per row."""
        m, var = self._marginal(t)  # (K, D), (K,)
        x = xt.double()
        diff = x[:, None, :] - m[None]  # x_t - sqrt(ab) mu_k, (B, K, D)
        logp = self.w.log() - 0.5 * x.shape[1] * var.log() - 0.5 * (diff**2).sum(-1) / var  # (B, K)
        r = torch.softmax(logp, dim=1)[:, :, None]  # p(k | x_t)
        ab = float(self.s.alpha_bar[t])
        return ((1 - ab) ** 0.5 * (r * diff / var[None, :, None]).sum(1)).to(xt.dtype)

    # ------------------------------------------------------------------ chapter 10: components as classes
    def component(self, k: int) -> MixtureEps:
        """The mixture's component k alone, N(mu_k, std_k^2 I), as a one-component mixture: q(x_0 | y = k)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self.w):
            raise ValueError(f"class k must be an integer in 0..{len(self.w) - 1}, got {k!r}")
        return MixtureEps([1.0], self.mu[k:k + 1].tolist(), self.std[k:k + 1].tolist(), self.s)

    def class_eps(self, xt: Tensor, t: Tensor | int, y: int | Tensor | None = None) -> Tensor:
        """eps*(x_t, t | y), the exact noise predictor of the class y = k, whose data is component k alone.

        q(x_t | k) = N(sqrt(ab) mu_k, v_k I) with v_k = ab std_k^2 + 1 - ab, so eps*(x_t | k) =
        sqrt(1 - ab) (x_t - sqrt(ab) mu_k) / v_k (the Gaussian formula, as :class:`GaussianEps`).
        y: an int, a (B,) tensor of classes, or None for the unconditional eps* (``mix(xt, t)``): called as
        a conditional network is, ``model(x_t, t, y)``, so :func:`ddpm_edu.guidance.guided_model` takes it.
        xt: (B, D); t: int or (B,). Returns (B, D) in xt's dtype.
        """
        if y is None:
            return self(xt, t)
        x = xt.double()
        k = torch.as_tensor(y, dtype=torch.long).expand(x.shape[0])  # (B,)
        if ((k < 0) | (k >= len(self.w))).any():
            raise ValueError(f"classes must lie in 0..{len(self.w) - 1}, got {sorted(set(k.tolist()))}")
        ab = extract(self.s.alpha_bar, as_t(t, self.s.T), x)  # (B, 1), or 0-d for an int t
        var = ab * self.std[k, None] ** 2 + 1 - ab  # v_k, (B, 1)
        return ((1 - ab).sqrt() * (x - ab.sqrt() * self.mu[k]) / var).to(xt.dtype)

    # ------------------------------------------------------------------ chapter 6: densities
    def _marginal(self, t: int) -> tuple[Tensor, Tensor]:
        """Component means (K, D) and variances (K,) of q(x_t): sqrt(ab) mu_k and ab std_k^2 + 1 - ab."""
        ab = float(self.s.alpha_bar[t])
        return ab**0.5 * self.mu, ab * self.std**2 + 1 - ab

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws of x0 from the mixture, (n, D) float64: a component k ~ w, then mu_k + std_k z."""
        k = torch.multinomial(self.w, n, replacement=True, generator=generator)  # (n,)
        z = torch.randn(n, self.mu.shape[1], generator=generator, dtype=torch.float64)
        return self.mu[k] + self.std[k, None] * z

    def log_density(self, x: Tensor, t: int) -> Tensor:
        """log q(x_t) at points x (B, D), t in 0..T; t = 0 is the data density. Returns (B,) float64.

        q(x_t) = sum_k w_k N(x_t; sqrt(ab) mu_k, (ab std_k^2 + 1 - ab) I), ab = alpha_bar_t.
        """
        t = as_t(t, self.s.T, first=0)
        m, var = self._marginal(t)  # (K, D), (K,)
        x = x.double()
        d2 = ((x[:, None, :] - m[None]) ** 2).sum(-1)  # (B, K)
        D = x.shape[1]
        log_nk = -0.5 * d2 / var - 0.5 * D * torch.log(2 * math.pi * var)  # log N(x; m_k, var_k I)
        return torch.logsumexp(self.w.log() + log_nk, dim=1)

    def marginal_moments(self, t: int) -> tuple[Tensor, Tensor]:
        """Mean (D,) and covariance (D, D) of q(x_t), t in 0..T; chapter 8 checks samplers' states against them.

        mean = sum_k w_k m_k and cov = sum_k w_k (v_k I + m_k m_k^T) - mean mean^T, with m_k = sqrt(ab) mu_k and
        v_k = ab std_k^2 + 1 - ab (the law of total variance over the component k).
        """
        m, v = self._marginal(as_t(t, self.s.T, first=0))  # (K, D), (K,)
        mean = (self.w[:, None] * m).sum(0)
        eye = torch.eye(m.shape[1], dtype=torch.float64)
        second = (self.w[:, None, None] * (v[:, None, None] * eye + m[:, :, None] * m[:, None, :])).sum(0)
        return mean, second - mean[:, None] * mean[None, :]

    def density(self, x: Tensor, t: int) -> Tensor:
        """q(x_t) at points x (B, D); see :meth:`log_density`. Returns (B,) float64."""
        return self.log_density(x, t).exp()

    def reverse_log_density(self, x_prev: Tensor, xt: Tensor, t: int) -> Tensor:
        """log q(x_{t-1} | x_t) by Bayes' rule: log q(x_t | x_{t-1}) + log q(x_{t-1}) - log q(x_t).

        x_prev: (B, D) points x_{t-1}; xt: (B, D) or (1, D); t in 1..T. Returns (B,) float64.
        q(x_t | x_{t-1}) = N(x_t; sqrt(alpha_t) x_{t-1}, beta_t I) is one forward step (chapter 4).
        """
        t = as_t(t, self.s.T)
        alpha, beta = float(self.s.alphas[t]), float(self.s.betas[t])
        x_prev, xt = x_prev.double(), xt.double()
        D = x_prev.shape[1]
        log_lik = -0.5 * ((xt - alpha**0.5 * x_prev) ** 2).sum(-1) / beta - 0.5 * D * math.log(2 * math.pi * beta)
        return log_lik + self.log_density(x_prev, t - 1) - self.log_density(xt, t).expand(x_prev.shape[0])

    def reverse_moments(self, xt: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """Exact mean and per-coordinate variance of q(x_{t-1} | x_t), each (B, D) float64; t in 1..T.

        Given component k, x_{t-1} ~ N(m_k, v_k) (the marginal at t - 1) and x_t | x_{t-1} ~
        N(sqrt(alpha_t) x_{t-1}, beta_t), so x_{t-1} | x_t, k is Gaussian with precision
        1/v_k + alpha_t/beta_t and mean (m_k/v_k + sqrt(alpha_t) x_t/beta_t) / precision. The
        components are weighted by p(k | x_t); the variance follows from the law of total variance.
        """
        t = as_t(t, self.s.T)
        alpha, beta = float(self.s.alphas[t]), float(self.s.betas[t])
        m, v = self._marginal(t - 1)  # (K, D), (K,)
        x = xt.double()
        prec = 1 / v + alpha / beta  # (K,)
        mean_k = (m[None] / v[None, :, None] + alpha**0.5 * x[:, None, :] / beta) / prec[None, :, None]  # (B, K, D)
        r = self.component_posterior(x, torch.full((x.shape[0],), t))[:, :, None]  # p(k | x_t), (B, K, 1)
        mean = (r * mean_k).sum(1)
        second = (r * (1 / prec[None, :, None] + mean_k**2)).sum(1)
        return mean, second - mean**2

    def reverse_gaussian_gap(self, xt: float, t: int, *, n: int = 4001, width: float = 12.0) -> float:
        """Total variation between q(x_{t-1} | x_t) and the Gaussian with its mean m and variance v (1-D).

        ``TV = 1/2 int |q(x_{t-1} | x_t) - N(x_{t-1}; m, v)| dx_{t-1}``, a Riemann sum on ``n`` points that
        span m +- width sqrt(v), so the grid follows the step however narrow it is. Chapter 6 fits how it
        falls with beta_t. xt: the value of x_t; t in 1..T. Returns a float in [0, 1].
        """
        if self.mu.shape[1] != 1:
            raise ValueError(f"reverse_gaussian_gap is for 1-D mixtures, this one has D = {self.mu.shape[1]}")
        xt_ = torch.tensor([[float(xt)]], dtype=torch.float64)
        mean, var = (v.item() for v in self.reverse_moments(xt_, t))
        z = torch.linspace(-width, width, n, dtype=torch.float64)  # in standard deviations of the Gaussian
        x_prev = mean + var**0.5 * z
        exact = self.reverse_log_density(x_prev[:, None], xt_, t).exp()  # (n,)
        gauss = torch.exp(-(z**2) / 2) / math.sqrt(2 * math.pi * var)
        return 0.5 * (exact - gauss).abs().sum().item() * (x_prev[1] - x_prev[0]).item()


def tilted_log_density(mix: MixtureEps, x: Tensor, t: int, y: int, w: float) -> Tensor:
    """log of the tilted density q_t(x | y)^(1 + w) / q_t(x)^w, unnormalised: (1 + w) log q_t(x | y) - w log q_t(x).

    Chapter 10. q_t(x | y) is component y of ``mix`` noised to step t (:meth:`MixtureEps.component`), q_t(x)
    the whole mixture; t in 0..T, where t = 0 is the data. x: (B, D). Returns (B,) float64.
    """
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise ValueError(f"the guidance weight w must be a finite number >= 0, got {w!r}")
    t = as_t(t, mix.s.T, first=0)
    return (1 + w) * mix.component(y).log_density(x, t) - w * mix.log_density(x, t)


def tilted_eps(mix: MixtureEps, x: Tensor, t: int, y: int, w: float) -> Tensor:
    """The exact eps* of the tilted density q_t(x | y)^(1 + w) / q_t(x)^w, from its log density by autograd.

    Chapter 10's oracle for classifier-free guidance. log q_t(x | y) is the log density of component y
    (:meth:`MixtureEps.component`) and log q_t(x) that of the whole mixture (:meth:`MixtureEps.log_density`);
    the normalising constant of the tilted density does not depend on x, so its score is
    grad_x [(1 + w) log q_t(x | y) - w log q_t(x)], and eps = -sqrt(1 - alpha_bar_t) score
    (:func:`ddpm_edu.losses.eps_from_score`). Nothing here uses the closed-form eps*.
    x: (B, D) points; t in 1..T; y a class of ``mix``. Returns (B, D) float64.
    """
    t = as_t(t, mix.s.T)
    x = x.detach().double().requires_grad_(True)
    with torch.enable_grad():  # also under a caller's torch.no_grad()
        log_tilted = tilted_log_density(mix, x, t, y, w)  # (B,)
        (score,) = torch.autograd.grad(log_tilted.sum(), x)  # rows are independent: each row's gradient
    return eps_from_score(score, t, mix.s)  # eps = -sqrt(1 - alpha_bar_t) score


def grid_moments(x: Tensor, log_p: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of the density exp(log_p) on an evenly spaced 1-D grid x, normalised numerically.

    x: (N,); log_p: (..., N), unnormalised. Returns (mean, var), each of shape (...), float64.
    The brute-force oracle of chapter 6: nothing about the density is assumed but its values.
    """
    x, log_p = x.double(), log_p.double()
    p = (log_p - log_p.amax(-1, keepdim=True)).exp()
    p = p / p.sum(-1, keepdim=True)
    mean = (p * x).sum(-1)
    return mean, (p * (x - mean[..., None]) ** 2).sum(-1)


def square_grid(lim: float, n: int) -> Tensor:
    """n x n evenly spaced points over [-lim, lim]^2, (n^2, 2) float64; x1 varies fastest (an image's rows)."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    return torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)


def grid_mean_spread(x: Tensor, log_p: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and spread E||x - mean||^2 of the density exp(log_p) on evenly spaced points x, normalised numerically.

    x: (N, D) grid points (e.g. :func:`square_grid`); log_p: (N,), unnormalised. Returns ((D,), ()) float64:
    :func:`grid_moments` for a density in D dimensions, as chapter 10 integrates the tilted density.
    """
    x, log_p = x.double(), log_p.double()
    p = (log_p - log_p.max()).exp()
    p = p / p.sum()  # (N,)
    mean = (p[:, None] * x).sum(0)
    return mean, (p * ((x - mean) ** 2).sum(1)).sum()


def chain_nll_bpd(model: GaussianEps, x0: Tensor, *, variance: str = "beta_tilde", levels: int = 256) -> Tensor:
    """The exact -log2 p_theta(x0) / D of the reverse chain that ``model`` drives, per example, (B,).

    Chapter 7's oracle for the bound of :mod:`ddpm_edu.likelihood`. p_theta is that module's model: x_T ~
    N(0, I), x_{t-1} ~ N(mu_theta(x_t, t), sigma_t^2 I) for t = T..2, and x0's bin mass under
    N(mu_theta(x_1, 1), beta_tilde_2 I). With GaussianEps, mu_theta(x, t) = a_t x + b_t (eq. 11 of a
    linear eps*), so each marginal is Gaussian: from (m, v) = (0, 1) at T, m <- a_t m + b_t and
    v <- a_t^2 v + sigma_t^2; at t = 1 the decoder's mean is N(a_1 m + b_1, a_1^2 v), and adding the
    decoder's own variance gives the distribution whose bin masses are p_theta(x0).
    x0: (B, ...) on the levels' grid. Returns (B,) float64.
    """
    s, x0 = model.s, x0.double()
    var_p = reverse_variance(s, variance)
    one = torch.ones(1, 1, dtype=torch.float64)

    def affine(t: int) -> tuple[Tensor, Tensor]:  # mu_theta(x, t) = a x + b, read off at x = 0 and x = 1
        b = mean_from_eps(0 * one, t, model(0 * one, torch.tensor([t])), s)
        return mean_from_eps(one, t, model(one, torch.tensor([t])), s) - b, b

    m, v = torch.zeros(1, 1, dtype=torch.float64), one.clone()  # x_T ~ N(0, 1), per coordinate
    for t in range(s.T, 1, -1):
        a, b = affine(t)
        m, v = a * m + b, a**2 * v + var_p[t]  # x_{t-1} = a_t x_t + b_t + sigma_t z
    a, b = affine(1)
    var_x0 = a**2 * v + s.beta_tilde[min(2, s.T)]  # the decoder's mean is Gaussian; add its variance
    logp = discretized_gaussian_log_likelihood(x0, (a * m + b).reshape(()), var_x0.reshape(()), levels)
    return -logp.flatten(1).sum(1) / (logp[0].numel() * math.log(2.0))


# ------------------------------------------------------------------ chapter 8: samplers of Gaussian data, exactly
def ddpm_moments(model: GaussianEps, variance: str = "beta_tilde") -> tuple[float, float]:
    """Exact mean and standard deviation of x_0 from Algorithm 2 driven by ``model`` (eps* of N(mu, std^2)).

    Each step is x_{t-1} = p x_t + q eps* + sigma_t z with p = 1/sqrt(alpha_t), q = -beta_t / (sqrt(alpha_t)
    sqrt(1 - alpha_bar_t)) (eq. 11), sigma_t^2 = ``variance`` (beta_tilde_t or beta_t) and no noise at t = 1.
    No clipping. Returns (mean, std) of the sampler's output, started from x_T ~ N(0, 1).
    """
    s = model.s
    sigma2 = reverse_variance(s, variance)
    steps = []
    for t in range(s.T, 0, -1):
        alpha, ab = float(s.alphas[t]), float(s.alpha_bar[t])
        q = -float(s.betas[t]) / (alpha * (1 - ab)) ** 0.5
        steps.append((t, alpha**-0.5, q, float(sigma2[t]) if t > 1 else 0.0))  # Alg. 2, line 3: none at t = 1
    return _propagate(model, steps)


def ddim_moments(model: GaussianEps, steps: int, eta: float = 0.0) -> tuple[float, float]:
    """Exact mean and standard deviation of x_0 from DDIM (``steps`` model calls, ``eta``) driven by ``model``.

    Each step t -> t' is x_{t'} = p x_t + q eps* + sigma z (Song et al. eq. 12, with x0_hat substituted):
    p = sqrt(ab_{t'} / ab_t), q = sqrt(1 - ab_{t'} - sigma^2) - sqrt(ab_{t'} (1 - ab_t) / ab_t), sigma from
    eq. (16), ab = alpha_bar. No clipping. Returns (mean, std), started from x_T ~ N(0, 1).
    """
    s = model.s
    problems = sampler_problems("ddim", steps, eta, T=s.T)
    if problems:
        raise ValueError("; ".join(problems.values()))
    taus = ddim_timesteps(s.T, steps)[::-1]
    path = []
    for t, t_prev in zip(taus, taus[1:] + [0]):
        ab, ab_prev = float(s.alpha_bar[t]), float(s.alpha_bar[t_prev])
        sigma2 = eta**2 * (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)  # eq. (16), squared
        p = (ab_prev / ab) ** 0.5
        q = max(1 - ab_prev - sigma2, 0.0) ** 0.5 - (ab_prev * (1 - ab) / ab) ** 0.5
        path.append((t, p, q, sigma2))
    return _propagate(model, path)


def _propagate(model: GaussianEps, path: Sequence[tuple[int, float, float, float]]) -> tuple[float, float]:
    """Push N(0, 1) through steps x_prev = p x_t + q eps*(x_t, t) + sigma z, given as (t, p, q, sigma^2).

    With eps* = k x_t + e the step is affine, x_prev = a x_t + b + sigma z with a = p + q k, b = q e, so
    m_prev = a m + b and V_prev = a^2 V + sigma^2. Returns (m, sqrt(V)) after the last step.
    """
    m, V = 0.0, 1.0  # x_T ~ N(0, 1)
    for t, p, q, sigma2 in path:
        k, e = model.affine(t)
        a, b = p + q * k, q * e
        m, V = a * m + b, a * a * V + sigma2
    return m, V**0.5
