"""Exact noise predictors for data whose diffused marginals are known in closed form.

Chapters 6 and 8, and the sampler tests. If x0 ~ N(mu, std^2 I), then x_t ~ N(sqrt(ab) mu,
(ab std^2 + 1 - ab) I) with ab = alpha_bar_t, and the minimiser of L_simple is
    eps*(x_t, t) = E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab std^2 + 1 - ab).
For a mixture of such Gaussians, eps* is the same expression averaged over components with
their posterior weights given x_t. Driving a sampler with eps* separates sampler error from
model error.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .schedules import Schedule, extract

__all__ = ["GaussianEps", "MixtureEps"]


class GaussianEps:
    """eps*(x_t, t) for data x0 ~ N(mu, std^2 I); callable as ``model(xt, t)``."""

    def __init__(self, mu: float, std: float, s: Schedule):
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std!r}")
        self.mu, self.std, self.s = mu, std, s

    def __call__(self, xt: Tensor, t: Tensor) -> Tensor:
        ab = extract(self.s.alpha_bar, t, xt)
        return (1 - ab).sqrt() * (xt - ab.sqrt() * self.mu) / (ab * self.std**2 + 1 - ab)


class MixtureEps:
    """eps*(x_t, t) for a mixture sum_k w_k N(mu_k, std_k^2 I) in D dimensions.

    weights: (K,), summing to 1; means: (K, D); stds: (K,). Callable as ``model(xt, t)`` with
    xt of shape (B, D).
    """

    def __init__(self, weights: Sequence[float], means: Sequence[Sequence[float]], stds: Sequence[float], s: Schedule):
        self.w = torch.as_tensor(weights, dtype=torch.float64)
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
        x = xt.double()
        ab = extract(self.s.alpha_bar, t, x)[:, :, None]  # (B, 1, 1)
        var = ab * self.std[None, :, None] ** 2 + 1 - ab  # (B, K, 1)
        eps_k = (1 - ab).sqrt() * (x[:, None, :] - ab.sqrt() * self.mu[None]) / var  # (B, K, D)
        r = self.component_posterior(xt, t)[:, :, None]
        return (r * eps_k).sum(1).to(xt.dtype)
