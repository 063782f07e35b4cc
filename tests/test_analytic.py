"""The exact noise predictors against E[eps | x_t] computed by brute force."""

import math

import numpy as np
import pytest
import torch

from ddpm_edu.analytic import (GaussianEps, MixtureEps, ddim_moments, ddpm_moments, grid_mean_spread, grid_moments,
                              square_grid, tilted_eps, tilted_log_density)
from ddpm_edu.guidance import guided_eps
from ddpm_edu.posterior import mean_from_eps
from ddpm_edu.sampling import ddim_sample, ddim_timesteps, sample
from ddpm_edu.schedules import Schedule

S = Schedule.linear(1000)


def brute_eps(xt: float, t: int, density) -> float:
    """E[eps | x_t] = integral of (x_t - sqrt(ab) x0)/sqrt(1 - ab) p(x0 | x_t) dx0 on a grid."""
    ab = S.alpha_bar[t].item()
    x0 = np.linspace(-6, 6, 200_001)
    w = density(x0) * np.exp(-((xt - math.sqrt(ab) * x0) ** 2) / (2 * (1 - ab)))
    w /= w.sum()
    return float((w * (xt - math.sqrt(ab) * x0) / math.sqrt(1 - ab)).sum())


def normal(x, m, s):
    return np.exp(-((x - m) ** 2) / (2 * s**2)) / s


@pytest.mark.parametrize("t", [5, 100, 700, 1000])
@pytest.mark.parametrize("xt", [-1.3, 0.2, 0.9])
def test_gaussian_eps_is_posterior_mean_of_noise(t, xt):
    model = GaussianEps(0.5, 0.3, S)
    got = model(torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t])).item()
    assert got == pytest.approx(brute_eps(xt, t, lambda x: normal(x, 0.5, 0.3)), abs=1e-6)


@pytest.mark.parametrize("t", [5, 100, 700, 1000])
@pytest.mark.parametrize("xt", [-1.3, 0.2, 0.9])
def test_mixture_eps_is_posterior_mean_of_noise(t, xt):
    w, m, sd = (0.3, 0.7), (-0.8, 0.6), (0.15, 0.25)
    model = MixtureEps(w, [[m[0]], [m[1]]], sd, S)
    got = model(torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t])).item()
    dens = lambda x: w[0] * normal(x, m[0], sd[0]) + w[1] * normal(x, m[1], sd[1])
    assert got == pytest.approx(brute_eps(xt, t, dens), abs=1e-6)


def test_bad_mixture_arguments():
    with pytest.raises(ValueError, match="sum to 1"):
        MixtureEps([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0], S)
    with pytest.raises(ValueError, match="stds"):
        MixtureEps([0.5, 0.5], [[0.0], [1.0]], [1.0, 0.0], S)
    with pytest.raises(ValueError, match="std"):
        GaussianEps(0.0, -1.0, S)


# ------------------------------------------------------------------ chapter 6: densities of a 1-D mixture
W, M, SD = (0.3, 0.7), (-0.8, 0.6), (0.15, 0.25)


def mixture(s=S):
    return MixtureEps(W, [[M[0]], [M[1]]], SD, s)


def data_density(x):
    return sum(w * normal(x, m, sd) for w, m, sd in zip(W, M, SD)) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("t", [0, 1, 30, 300, 1000])
def test_marginal_density_is_the_data_density_pushed_through_q_xt_given_x0(t):
    """q(x_t) = integral q(x_t | x0) p(x0) dx0, integrated numerically over x0 (at t = 0: p itself)."""
    xt = np.array([-1.1, -0.3, 0.0, 0.55, 1.4])
    got = mixture().density(torch.tensor(xt)[:, None], t).numpy()
    if t == 0:
        want = data_density(xt)
    else:
        ab = S.alpha_bar[t].item()
        x0 = np.linspace(-4, 4, 80_001)
        kernel = normal(xt[:, None], math.sqrt(ab) * x0[None], math.sqrt(1 - ab)) / math.sqrt(2 * math.pi)
        want = (kernel * data_density(x0)[None]).sum(1) * (x0[1] - x0[0])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_marginal_density_in_two_dimensions_integrates_to_one():
    mix = MixtureEps([0.5, 0.5], [[-1.0, 0.5], [1.0, 0.0]], [0.3, 0.5], S)
    g = torch.linspace(-5, 5, 501, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    p = mix.density(torch.stack([xx.flatten(), yy.flatten()], 1), 20)
    assert (p.sum() * (g[1] - g[0]) ** 2).item() == pytest.approx(1.0, abs=1e-6)


def test_sample_has_the_mixture_moments():
    n = 200_000
    x = mixture().sample(n, torch.Generator().manual_seed(0))[:, 0]
    mean = sum(w * m for w, m in zip(W, M))
    var = sum(w * (sd**2 + m**2) for w, m, sd in zip(W, M, SD)) - mean**2
    assert abs(x.mean().item() - mean) < 5 * math.sqrt(var / n)  # SE of a sample mean
    p_neg = sum(w * 0.5 * (1 + math.erf(-m / (sd * math.sqrt(2)))) for w, m, sd in zip(W, M, SD))  # P(x0 < 0)
    assert abs((x < 0).double().mean().item() - p_neg) < 5 * math.sqrt(p_neg * (1 - p_neg) / n)  # SE of a proportion


@pytest.mark.parametrize("betas, t", [(None, 10), (None, 400), ([0.2, 0.01], 2), ([0.2, 0.6], 2)])
@pytest.mark.parametrize("xt", [-0.9, 0.1, 0.8])
def test_reverse_conditional_is_normalised_and_has_the_exact_moments(betas, t, xt):
    """Bayes' rule gives a density that integrates to 1, whose grid moments match the closed form."""
    s = S if betas is None else Schedule.from_betas(betas)
    mix = mixture(s)
    grid = torch.linspace(-6, 6, 60_001, dtype=torch.float64)
    logp = mix.reverse_log_density(grid[:, None], torch.tensor([[xt]]), t)
    assert (logp.exp().sum() * (grid[1] - grid[0])).item() == pytest.approx(1.0, abs=1e-7)
    bf_mean, bf_var = grid_moments(grid, logp)
    mean, var = mix.reverse_moments(torch.tensor([[xt]], dtype=torch.float64), t)
    assert mean.item() == pytest.approx(bf_mean.item(), abs=1e-7)
    assert var.item() == pytest.approx(bf_var.item(), rel=1e-5)


@pytest.mark.parametrize("t", [1, 2, 50, 999])
def test_reverse_mean_is_the_eps_form_with_the_exact_eps(t):
    """E[x_{t-1} | x_t] = (x_t - beta_t / sqrt(1 - ab_t) E[eps | x_t]) / sqrt(alpha_t), exactly."""
    mix = mixture()
    xt = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    tt = torch.full((9,), t)
    torch.testing.assert_close(mix.reverse_moments(xt, t)[0], mean_from_eps(xt, tt, mix(xt, tt), S), rtol=1e-10, atol=1e-12)


def test_reverse_variance_at_t1_is_positive_but_below_the_likelihood_width():
    """q(x_0 | x_1) is not a point mass (beta_tilde_1 = 0 is the variance given x0 as well), but a
    component's posterior variance 1/(1/v_k + alpha_1/beta_1) is below beta_1/alpha_1; at x_1 = 0.3
    the other component has negligible weight, so the total variance is too."""
    _, var = mixture().reverse_moments(torch.tensor([[0.3]]), 1)
    assert 0 < var.item() < S.betas[1].item() / S.alphas[1].item()


def test_grid_moments_of_a_gaussian():
    x = torch.linspace(-20, 20, 200_001, dtype=torch.float64)
    mean, var = grid_moments(x, torch.stack([-(x - 1.5) ** 2 / (2 * 0.49), -(x + 2) ** 2 / 8]))
    torch.testing.assert_close(mean, torch.tensor([1.5, -2.0], dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(var, torch.tensor([0.49, 4.0], dtype=torch.float64), atol=1e-7, rtol=0)


def test_grid_mean_spread_of_a_2d_gaussian_on_a_square_grid():
    """A correlated 2-D Gaussian: mean mu and spread trace(Sigma), against the closed form."""
    x = square_grid(12.0, 1201)
    assert x.shape == (1201**2, 2)
    torch.testing.assert_close(x[1] - x[0], torch.tensor([0.02, 0.0], dtype=torch.float64))  # x1 varies fastest
    torch.testing.assert_close(x[[0, -1]], torch.tensor([[-12.0, -12.0], [12.0, 12.0]], dtype=torch.float64))
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[0.8, 0.3], [0.3, 0.5]], dtype=torch.float64)
    d = x - mu
    log_p = -0.5 * (d @ torch.linalg.inv(cov) * d).sum(1) + 7.0  # unnormalised
    mean, spread = grid_mean_spread(x, log_p)
    torch.testing.assert_close(mean, mu, atol=1e-9, rtol=0)
    torch.testing.assert_close(spread, cov.trace(), atol=1e-7, rtol=0)


def test_density_rejects_t_out_of_range():
    with pytest.raises(ValueError, match="t must lie"):
        mixture().log_density(torch.zeros(1, 1), S.T + 1)
    with pytest.raises(ValueError, match="t must lie"):
        mixture().reverse_moments(torch.zeros(1, 1), 0)


def test_mixture_eps_with_one_t_equals_the_per_row_formula():
    """The shared-t shortcut gives what each row gets on its own (mixed t takes the per-row path)."""
    mix = MixtureEps([0.2, 0.5, 0.3], [[-1.0, 0.0], [0.5, 0.5], [1.0, -1.0]], [0.2, 0.3, 0.1], S)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mixed = torch.tensor([3, 3, 3, 3, 3, 800])
    shared = mix(x[:5], torch.full((5,), 3))
    torch.testing.assert_close(shared, mix(x, mixed)[:5], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(mix(x[5:], torch.tensor([800])), mix(x, mixed)[5:], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_chain_nll_is_the_bin_frequency_of_the_sampled_reverse_chain(variance):
    """Run the reverse chain of chain_nll_bpd's docstring n times (x_T ~ N(0, 1), one Gaussian step at a
    time) and average the decoder's bin masses at x_1: an unbiased estimate of each bin's p_theta(x0),
    with the spread of those masses as its standard error. The closed form must lie within 5 SE."""
    from ddpm_edu.analytic import chain_nll_bpd
    from ddpm_edu.likelihood import discretized_gaussian_log_likelihood
    from ddpm_edu.posterior import reverse_variance

    s, levels, n = Schedule.make("cosine", 30), 17, 100_000
    model, g = GaussianEps(0.3, 0.4, s), torch.Generator().manual_seed(0)
    sigma2 = reverse_variance(s, variance)
    x = torch.randn(n, 1, generator=g, dtype=torch.float64)  # x_T
    for t in range(s.T, 1, -1):
        x = mean_from_eps(x, t, model(x, torch.full((n,), t)), s) + sigma2[t].sqrt() * torch.randn(
            x.shape, generator=g, dtype=torch.float64)
    mean_0 = mean_from_eps(x, 1, model(x, torch.ones(n, dtype=torch.long)), s)  # (n, 1)
    bins = torch.linspace(-1, 1, levels, dtype=torch.float64)
    mass = discretized_gaussian_log_likelihood(bins[None, :], mean_0, s.beta_tilde[2], levels).exp()  # (n, 17)
    estimate, se = mass.mean(0), mass.std(0) / n**0.5
    exact = torch.exp2(-chain_nll_bpd(model, bins[:, None], variance=variance, levels=levels))  # (17,)
    assert torch.isclose(exact.sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-12)
    assert ((estimate - exact).abs() <= 5 * se + 1e-15).all(), ((estimate - exact) / se).abs().max()
    # and it depends on sigma_t^2: the other choice is more than 5 SE away somewhere
    other = "beta" if variance == "beta_tilde" else "beta_tilde"
    wrong = torch.exp2(-chain_nll_bpd(model, bins[:, None], variance=other, levels=levels))
    assert ((estimate - wrong).abs() > 5 * se).any()
# ------------------------------------------------------------------ chapter 8: the moments of q(x_t) and of samplers
def test_marginal_moments_are_the_grid_moments_of_the_density():
    """Mean and covariance of q(x_t) in 2-D, integrated numerically from log_density on a grid."""
    mix = MixtureEps([0.3, 0.7], [[-0.5, -0.4], [0.45, 0.35]], [0.12, 0.2], S)
    g = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    for t in (0, 40, 300):
        p = mix.log_density(pts, t).exp()
        p = p / p.sum()
        mean = (p[:, None] * pts).sum(0)
        d = pts - mean
        cov = (p[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
        got_mean, got_cov = mix.marginal_moments(t)
        torch.testing.assert_close(got_mean, mean, atol=1e-8, rtol=0)
        torch.testing.assert_close(got_cov, cov, atol=1e-6, rtol=0)  # the grid step 0.01 vs std 0.12 at t = 0


def ddim_push(model: GaussianEps, s: Schedule, steps: int) -> tuple[float, float]:
    """eta = 0 DDIM is an affine map of x_T: pushing x_T = 0 and 1 through ddim_sample gives its output's
    mean and standard deviation for x_T ~ N(0, 1), with no sampling noise."""
    ends = ddim_sample(model, (2, 1), s, steps=steps, x_T=torch.tensor([[0.0], [1.0]]), dtype=torch.float64)
    return ends[0].item(), (ends[1] - ends[0]).item()


@pytest.mark.parametrize("steps", [1, 7, 50, 200])
def test_ddim_moments_at_eta_zero_are_the_sampler_pushed_as_an_affine_map(steps):
    s = Schedule.cosine(200)
    model = GaussianEps(0.5, 0.3, s)
    assert ddim_moments(model, steps, 0.0) == pytest.approx(ddim_push(model, s, steps), abs=1e-12)


@pytest.mark.parametrize("steps", [3, 20, 100])
def test_ddim_at_eta_zero_for_standard_normal_data_is_a_product_of_cosines(steps):
    """For x0 ~ N(0, 1), eps* = sqrt(1 - ab) x_t, and with ab = cos^2(theta) one step t -> t' multiplies x_t
    by sqrt(ab' ab) + sqrt((1 - ab')(1 - ab)) = cos(theta_t - theta_t')."""
    s = Schedule.cosine(100)
    theta = torch.arccos(s.alpha_bar.sqrt())
    taus = ddim_timesteps(s.T, steps)[::-1] + [0]
    want = math.prod(math.cos(float(theta[a] - theta[b])) for a, b in zip(taus, taus[1:]))
    assert ddim_moments(GaussianEps(0.0, 1.0, s), steps) == pytest.approx((0.0, want), abs=1e-12)


def test_ddpm_with_beta_keeps_standard_normal_data_until_the_noiseless_last_step():
    """For x0 ~ N(0, 1) and sigma_t^2 = beta_t every step is x_{t-1} = sqrt(alpha_t) x_t + sqrt(beta_t) z, which
    keeps variance 1; the last step adds no noise, so the output's standard deviation is sqrt(alpha_1)."""
    s = Schedule.linear(300, 1e-3, 0.05)
    assert ddpm_moments(GaussianEps(0.0, 1.0, s), "beta") == pytest.approx((0.0, s.alphas[1].item() ** 0.5), abs=1e-12)


def test_ddim_with_every_step_and_eta_one_is_ddpm_with_beta_tilde():
    s = Schedule.cosine(150)
    model = GaussianEps(-0.3, 0.2, s)
    assert ddim_moments(model, s.T, 1.0) == pytest.approx(ddpm_moments(model, "beta_tilde"), abs=1e-12)


@pytest.mark.parametrize("sampler, setting, seed", [
    ("ddpm", "beta_tilde", 0), ("ddpm", "beta", 1), ("ddim", (10, 1.0), 2), ("ddim", (25, 0.5), 3),
])
def test_sampler_moments_match_sampling_with_many_draws(sampler, setting, seed):
    """The recursion against the samplers themselves: n = 400 000 draws resolve the standard deviation to
    sd / sqrt(2 n), about 0.1 %; the output of these narrow data is off by many times that."""
    s, n = Schedule.cosine(100), 400_000
    model = GaussianEps(0.5, 0.1, s)
    g = torch.Generator().manual_seed(seed)
    if sampler == "ddpm":
        mean, sd = ddpm_moments(model, setting)
        x = sample(model, (n, 1), s, generator=g, variance=setting, dtype=torch.float64)
    else:
        mean, sd = ddim_moments(model, *setting)
        x = ddim_sample(model, (n, 1), s, *setting, generator=g, dtype=torch.float64)
    assert abs(x.mean().item() - mean) < 4 * sd / math.sqrt(n)
    assert abs(x.std().item() - sd) < 4 * sd / math.sqrt(2 * n)
    assert abs(sd - 0.1) > 10 * sd / math.sqrt(2 * n)  # so the test tells the recursion from "returns the data"


def test_sampler_moments_reject_bad_settings():
    model = GaussianEps(0.0, 1.0, Schedule.cosine(50))
    with pytest.raises(ValueError, match="steps"):
        ddim_moments(model, 51)
    with pytest.raises(ValueError, match="eta"):
        ddim_moments(model, 10, -1.0)
    with pytest.raises(ValueError, match="variance"):
        ddpm_moments(model, "beta_hat")

def test_reverse_gaussian_gap_is_zero_for_gaussian_data():
    """With one component, q(x_{t-1}) is Gaussian, so q(x_{t-1} | x_t) is exactly Gaussian: the gap is rounding."""
    one = MixtureEps([1.0], [[0.4]], [0.3], Schedule.from_betas([0.1, 0.3]))
    assert 0 <= one.reverse_gaussian_gap(0.7, 2) < 1e-9


@pytest.mark.parametrize("beta, xt", [(0.5, 0.3), (0.05, 0.3), (0.002, -0.6)])
def test_reverse_gaussian_gap_against_a_brute_force_from_the_densities(beta, xt):
    """The gap from Bayes' rule done by hand in numpy on a fixed fine grid: the prior q(x_1) (a mixture with
    means sqrt(0.9) mu_k and variances 0.9 std_k^2 + 0.1) times the likelihood N(x_t; sqrt(alpha) x_1, beta),
    normalised, its moments, and half the L1 distance to the Gaussian with them."""
    w, mu, std = np.array([0.4, 0.6]), np.array([-1.0, 0.8]), np.array([0.15, 0.25])
    mix = MixtureEps(w.tolist(), mu[:, None].tolist(), std.tolist(), Schedule.from_betas([0.1, beta]))
    x = np.linspace(-6, 6, 1_200_001)
    dx = x[1] - x[0]
    prior = sum(wk * normal(x, 0.9**0.5 * mk, (0.9 * sk**2 + 0.1) ** 0.5) for wk, mk, sk in zip(w, mu, std))
    post = prior * np.exp(-((xt - (1 - beta) ** 0.5 * x) ** 2) / (2 * beta))
    post /= post.sum() * dx
    m = (post * x).sum() * dx
    v = (post * (x - m) ** 2).sum() * dx
    tv = 0.5 * np.abs(post - normal(x, m, v**0.5) / math.sqrt(2 * math.pi)).sum() * dx
    # The sums of |f - g| err by O(dx^2) relative at its sign changes: (24 sd / 4000)^2 ~ 4e-5 for the method.
    assert mix.reverse_gaussian_gap(xt, 2) == pytest.approx(tv, rel=1e-4, abs=1e-9)


def test_reverse_gaussian_gap_is_one_dimensional():
    mix = MixtureEps([0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], [0.2, 0.2], S)
    with pytest.raises(ValueError, match="1-D"):
        mix.reverse_gaussian_gap(0.1, 5)


# ------------------------------------------------------------------ chapter 10: the components as classes
CLASSES = MixtureEps([0.2, 0.5, 0.3], [[-2.0, 0.5], [1.0, 1.5], [1.5, -1.5]], [0.3, 0.6, 0.45], Schedule.linear(200))


def grid2d(n: int = 21, lim: float = 3.0) -> torch.Tensor:
    """An n x n grid of points over [-lim, lim]^2, (n^2, 2) float64."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    return torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


@pytest.mark.parametrize("t", [1, 30, 200])
def test_class_eps_is_the_gaussian_eps_of_its_component(t):
    x, tt = grid2d(), torch.full((441,), t)
    for k in range(3):
        gauss = GaussianEps(CLASSES.mu[k], float(CLASSES.std[k]), CLASSES.s)  # N(mu_k, std_k^2 I), per coordinate
        torch.testing.assert_close(CLASSES.class_eps(x, tt, k), gauss(x, tt), rtol=0, atol=1e-12)
        torch.testing.assert_close(CLASSES.class_eps(x, t, torch.full((441,), k)), gauss(x, tt), rtol=0, atol=1e-12)
        torch.testing.assert_close(CLASSES.component(k)(x, tt), gauss(x, tt), rtol=0, atol=1e-12)
    assert torch.equal(CLASSES.class_eps(x, tt, None), CLASSES(x, tt))  # no class: the mixture's eps*


@pytest.mark.parametrize("t", [1, 30, 200])
def test_the_unconditional_eps_is_the_class_eps_averaged_over_the_class_posterior(t):
    """E[eps | x_t] = sum_k p(k | x_t) E[eps | x_t, k]: the tower rule, with p(k | x_t) from Bayes' rule."""
    x, tt = grid2d(), torch.full((441,), t)
    r = CLASSES.component_posterior(x, tt)  # (B, K)
    avg = sum(r[:, k, None] * CLASSES.class_eps(x, tt, k) for k in range(3))
    torch.testing.assert_close(avg, CLASSES(x, tt), rtol=0, atol=1e-12)


@pytest.mark.parametrize("t", [1, 10, 60, 200])
@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 2.0, 4.0])
def test_guided_eps_is_the_exact_eps_of_the_tilted_density(t, w):
    """(1 + w) eps*(x_t | y) - w eps*(x_t) is the eps* of q_t(x | y)^(1 + w) / q_t(x)^w, here found by autograd
    of the tilted log density, for every class and on a grid of x_t (Ho & Salimans 2022, eq. 6; chapter 10)."""
    x, tt = grid2d(), torch.full((441,), t)
    for y in range(3):
        want = tilted_eps(CLASSES, x, t, y, w)
        got = guided_eps(CLASSES.class_eps(x, tt, y), CLASSES(x, tt), w)
        assert float(want.abs().max()) > 0.1  # not a vanishing eps* (at t = 1 it is of order sqrt(beta_1) / std^2)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_tilted_eps_differs_from_the_conditional_once_w_is_positive():
    x = grid2d(7)
    assert not torch.allclose(tilted_eps(CLASSES, x, 30, 0, 1.0), tilted_eps(CLASSES, x, 30, 0, 0.0), atol=1e-3)


def test_classes_out_of_range_are_refused():
    for k in (-1, 3, True):
        with pytest.raises(ValueError, match=r"0\.\.2"):
            CLASSES.component(k)
    with pytest.raises(ValueError, match=r"0\.\.2, got \[0, 1, 3\]"):
        CLASSES.class_eps(grid2d(3), 5, torch.tensor([0, 1, 3] * 3))
    with pytest.raises(ValueError, match="t must lie in"):
        tilted_eps(CLASSES, grid2d(3), 0, 1, 1.0)


@pytest.mark.parametrize("t", [0, 20, 200])
def test_tilted_log_density_is_the_closed_form(t):
    """The library's unnormalised log density equals (1 + w) log N(x; m_y, v_y I) - w log sum_k pi_k N(x; m_k, v_k I),
    written out here from the noised components; w = 0 is class y's own log density (chapter 10)."""
    x = grid2d(9)
    ab = CLASSES.s.alpha_bar[t].item()
    m, v = math.sqrt(ab) * CLASSES.mu, ab * CLASSES.std**2 + 1 - ab  # (K, 2), (K,)
    log_n = -((x[:, None] - m[None]) ** 2).sum(-1) / (2 * v) - torch.log(2 * math.pi * v)  # (B, K), D = 2
    log_mix = torch.logsumexp(CLASSES.w.log() + log_n, 1)
    for y, w in ((0, 0.0), (1, 1.5), (2, 4.0)):
        want = (1 + w) * log_n[:, y] - w * log_mix
        torch.testing.assert_close(tilted_log_density(CLASSES, x, t, y, w), want, rtol=0, atol=1e-10)


def test_tilted_log_density_refuses_a_bad_weight():
    for w in (-0.5, float("nan"), True):
        with pytest.raises(ValueError, match="guidance weight"):
            tilted_log_density(CLASSES, grid2d(3), 5, 0, w)
