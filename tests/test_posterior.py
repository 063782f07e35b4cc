"""The posterior q(x_{t-1} | x_t, x0) against brute force on a grid (chapter 6)."""

import math

import numpy as np
import pytest
import torch

from ddpm_edu.forward import q_sample, q_step
from ddpm_edu.analytic import MixtureEps
from ddpm_edu.posterior import (
    VARIANCES, eps_from_x0, mean_from_eps, optimal_reverse_variance, q_posterior, reverse_variance, x0_from_eps,
)
from ddpm_edu.schedules import Schedule

S = Schedule.linear(1000)


def brute_force_posterior(x0: float, xt: float, t: int, s: Schedule) -> tuple[float, float]:
    """Mean and variance of q(x_{t-1} | x0) q(x_t | x_{t-1}), normalised numerically on a 1-D grid."""
    ab_prev, alpha, beta = s.alpha_bar[t - 1].item(), s.alphas[t].item(), s.betas[t].item()
    # The grid covers both the prior's and the likelihood's mass, whatever the posterior turns out to be.
    centres = (math.sqrt(ab_prev) * x0, xt / math.sqrt(alpha))
    width = 12 * max(math.sqrt(1 - ab_prev), math.sqrt(beta / alpha))
    grid = np.linspace(min(centres) - width, max(centres) + width, 400_001)
    log_prior = -((grid - math.sqrt(ab_prev) * x0) ** 2) / (2 * (1 - ab_prev))
    log_lik = -((xt - math.sqrt(alpha) * grid) ** 2) / (2 * beta)
    logp = log_prior + log_lik
    p = np.exp(logp - logp.max())
    p /= p.sum()
    mean = (p * grid).sum()
    return mean, (p * (grid - mean) ** 2).sum()


@pytest.mark.parametrize("t", [2, 10, 100, 500, 1000])
@pytest.mark.parametrize("x0, xt", [(0.7, 0.1), (-1.0, 0.8)])
def test_posterior_matches_brute_force(t, x0, xt):
    mean, var = q_posterior(torch.tensor([[x0]], dtype=torch.float64), torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t]), S)
    bf_mean, bf_var = brute_force_posterior(x0, xt, t, S)
    assert var.item() == pytest.approx(bf_var, rel=1e-5)
    assert mean.item() == pytest.approx(bf_mean, rel=1e-6, abs=1e-9)


def test_posterior_at_t1_is_x0_with_zero_variance():
    x0, xt = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    mean, var = q_posterior(x0, xt, torch.ones(5, dtype=torch.long), S)
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()


@pytest.mark.parametrize("t", [1, 2, 37, 999, 1000])
def test_eps_form_of_mean_equals_posterior_mean(t):
    """Substituting x0 = (x_t - sqrt(1 - ab) eps) / sqrt(ab) into eq. (7) gives eq. (11)."""
    g = torch.Generator().manual_seed(t)
    x0 = torch.randn(64, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 3, generator=g, dtype=torch.float64)
    tt = torch.full((64,), t)
    xt = q_sample(x0, tt, eps, S)
    torch.testing.assert_close(mean_from_eps(xt, tt, eps, S), q_posterior(x0, xt, tt, S)[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(x0_from_eps(xt, tt, eps, S), x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(eps_from_x0(xt, tt, x0, S), eps, rtol=1e-9, atol=1e-9)


def test_posterior_float32():
    x = torch.randn(4, 2)
    mean, var = q_posterior(x, x, torch.tensor([1, 2, 3, 4]), S)
    assert mean.dtype == torch.float32 and var.dtype == torch.float32 and var.shape == (4, 1)


@pytest.mark.parametrize("t", [2, 10, 100, 500, 1000])
def test_reverse_variance_beta_tilde_is_the_brute_force_posterior_variance(t):
    sigma2 = reverse_variance(S, "beta_tilde")
    assert sigma2.shape == (S.T + 1,) and sigma2.dtype == torch.float64
    assert sigma2[t].item() == pytest.approx(brute_force_posterior(0.3, -0.2, t, S)[1], rel=1e-5)
    assert sigma2[1] == 0  # alpha_bar_0 = 1: the last step of the posterior is certain


def test_reverse_variance_beta_is_the_forward_steps_variance():
    """beta_t = Var[x_t | x_{t-1}]: measured from draws of q(x_t | x_{t-1}) at x_{t-1} = 0."""
    sigma2 = reverse_variance(S, "beta")
    g = torch.Generator().manual_seed(0)
    n = 200_000
    for t in (1, 300, 1000):
        xt = q_step(torch.zeros(n, 1, dtype=torch.float64), t, torch.randn(n, 1, generator=g, dtype=torch.float64), S)
        var = xt.var().item()
        assert abs(var - sigma2[t].item()) < 5 * sigma2[t].item() * math.sqrt(2 / n)
    assert (reverse_variance(S, "beta_tilde")[1:] <= sigma2[1:]).all()  # the posterior is never wider


def test_reverse_variance_names_the_choices():
    assert VARIANCES == ("beta_tilde", "beta")
    with pytest.raises(ValueError, match="variance must be one of"):
        reverse_variance(S, "learned")


def gaussian_reverse_variance(sd: float, t: int, s: Schedule) -> float:
    """Var[x_{t-1} | x_t] for x0 ~ N(0, sd^2): (x_{t-1}, x_t) is jointly Gaussian with Var[x_k] = v_k and
    Cov = sqrt(alpha_t) v_{t-1}, so the conditional variance is v_{t-1} - alpha_t v_{t-1}^2 / v_t."""
    v = lambda k: s.alpha_bar[k].item() * sd**2 + 1 - s.alpha_bar[k].item()  # noqa: E731
    return v(t - 1) - s.alphas[t].item() * v(t - 1) ** 2 / v(t)


@pytest.mark.parametrize("sd", [0.05, 0.3, 1.0, 2.0])
def test_optimal_reverse_variance_is_the_true_one_for_gaussian_data(sd):
    """For Gaussian data q(x_{t-1} | x_t) is Gaussian, so the best fixed variance is its variance;
    E[eps*^2] = (1 - ab) / v_t, since eps* = sqrt(1 - ab) x_t / v_t and E[x_t^2] = v_t."""
    for t in (2, 10, 100, 500, 1000):
        ab = S.alpha_bar[t].item()
        eps_sq = (1 - ab) / (ab * sd**2 + 1 - ab)
        got = optimal_reverse_variance(S, t, eps_sq).item()
        assert got == pytest.approx(gaussian_reverse_variance(sd, t, S), rel=1e-10)


def test_optimal_reverse_variance_ends_are_the_papers_two_choices():
    t = torch.arange(2, S.T + 1)
    assert torch.allclose(optimal_reverse_variance(S, t, 1.0), S.beta_tilde[2:], rtol=1e-12)  # a single x0
    eps_sq = 1 - S.alpha_bar[2:]  # x0 ~ N(0, I)
    assert torch.allclose(optimal_reverse_variance(S, t, eps_sq), S.betas[2:], rtol=1e-10)


def test_optimal_reverse_variance_is_the_mean_true_variance_for_a_mixture():
    """Bao et al.'s theorem for non-Gaussian data: E_x_t Var[x_{t-1} | x_t] (MixtureEps.reverse_moments)
    equals the formula with E[eps*^2], both integrated over q(x_t) on a fine grid."""
    mix = MixtureEps([0.4, 0.6], [[-1.0], [0.8]], [0.15, 0.25], S)
    x = torch.linspace(-6, 6, 24001, dtype=torch.float64)[:, None]
    for t in (2, 50, 200, 600):
        w = mix.density(x, t)
        w = w / w.sum()
        mean_var = (w * mix.reverse_moments(x, t)[1][:, 0]).sum().item()
        eps_sq = (w * mix(x, torch.full((x.shape[0],), t))[:, 0] ** 2).sum().item()
        assert optimal_reverse_variance(S, t, eps_sq).item() == pytest.approx(mean_var, rel=1e-8)


def test_optimal_reverse_variance_refuses_eps_sq_outside_0_1():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        optimal_reverse_variance(S, 10, 1.2)
    with pytest.raises(ValueError, match="t must lie in"):
        optimal_reverse_variance(S, 0, 0.5)
