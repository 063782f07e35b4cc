"""ddpm_edu.likelihood: each term of the bound against an independent computation, and the whole bound
against the exact NLL of discretized Gaussian data (chapter 7)."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_edu.analytic import GaussianEps, chain_nll_bpd
from ddpm_edu.likelihood import (
    discretized_gaussian_log_likelihood,
    gaussian_kl,
    gaussian_log_density,
    nll_bpd,
    path_bound,
    prior_bpd,
    vb_term,
    vb_terms,
    vb_terms_per_variance,
)
from ddpm_edu.posterior import reverse_variance
from ddpm_edu.schedules import Schedule

D64 = torch.float64


def test_gaussian_kl_is_torch_distributions_kl():
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(50, generator=g, dtype=D64), torch.randn(50, generator=g, dtype=D64)
    v1, v2 = torch.rand(50, generator=g, dtype=D64) + 0.1, torch.rand(50, generator=g, dtype=D64) + 0.1
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(m1, v1.sqrt()),
                                                 torch.distributions.Normal(m2, v2.sqrt()))
    assert torch.allclose(gaussian_kl(m1, v1, m2, v2), expected, rtol=1e-12, atol=1e-14)


def test_gaussian_log_density_is_torch_distributions_log_prob():
    g = torch.Generator().manual_seed(1)
    x, m = torch.randn(50, generator=g, dtype=D64), torch.randn(50, generator=g, dtype=D64)
    v = torch.rand(50, generator=g, dtype=D64) + 0.01
    expected = torch.distributions.Normal(m, v.sqrt()).log_prob(x)
    assert torch.allclose(gaussian_log_density(x, m, v), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_the_bins_hold_all_the_mass_and_each_bin_is_the_integral_of_the_density(levels):
    x = torch.linspace(-1, 1, levels, dtype=D64)  # every value the data can take
    for mean, var in ((0.3, 0.04), (-0.95, 1e-5), (0.2, 4.0), (1.7, 0.01)):
        logp = discretized_gaussian_log_likelihood(x, torch.tensor(mean, dtype=D64), torch.tensor(var, dtype=D64),
                                                   levels)
        assert torch.isclose(logp.exp().sum(), torch.tensor(1.0, dtype=D64), rtol=0, atol=1e-12)
        # the middle bins against the trapezoid rule on the density, an independent integral
        half, k = 1.0 / (levels - 1), levels // 2
        if 0 < k < levels - 1:
            grid = torch.linspace(x[k] - half, x[k] + half, 20001, dtype=D64)
            dens = torch.exp(-0.5 * (grid - mean) ** 2 / var) / math.sqrt(2 * math.pi * var)
            assert torch.isclose(logp[k].exp(), torch.trapezoid(dens, grid), rtol=1e-6, atol=1e-300)


def test_the_log_mass_stays_finite_far_in_both_tails():
    x = torch.linspace(-1, 1, 17, dtype=D64)
    for mean in (-40.0, 40.0):  # every bin but one end carries a mass below 1e-300
        logp = discretized_gaussian_log_likelihood(x, torch.tensor(mean, dtype=D64), torch.tensor(1.0, dtype=D64), 17)
        assert torch.isfinite(logp).all() and (logp <= 0).all()
        near, far = (logp[-1], logp[0]) if mean > 0 else (logp[0], logp[-1])
        assert near > -1e-12  # the end bin next to the mean holds almost everything
        # the far end bin: log Phi(-z) by the tail expansion log phi(z) - log(z), to 0.1 %
        z = 40.0 + 1 - 1 / 16  # the far bin ends at -1 + 1/16, 40.9375 sd from the mean
        assert abs(float(far) - (-0.5 * z * z - 0.5 * math.log(2 * math.pi) - math.log(z))) < 1e-3 * z * z / 2


def _posterior_on_a_grid(x0: float, xt: float, t: int, s: Schedule, grid: torch.Tensor) -> torch.Tensor:
    """q(x_{t-1} | x_t, x0) on a grid by Bayes' rule, normalised numerically (chapter 6's oracle)."""
    ab_prev, alpha, beta = s.alpha_bar[t - 1], s.alphas[t], s.betas[t]
    log_prior = -0.5 * (grid - ab_prev.sqrt() * x0) ** 2 / (1 - ab_prev)  # q(x_{t-1} | x0)
    log_lik = -0.5 * (xt - alpha.sqrt() * grid) ** 2 / beta  # q(x_t | x_{t-1})
    w = torch.exp(log_prior + log_lik - (log_prior + log_lik).max())
    return w / torch.trapezoid(w, grid)


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
@pytest.mark.parametrize("t", [2, 37, 399])
def test_a_kl_term_is_the_kl_integrated_on_a_grid(t, variance):
    s = Schedule.make("cosine", 400)
    model = GaussianEps(0.1, 0.4, s)
    x0, xt = torch.tensor([[0.25]], dtype=D64), torch.tensor([[0.1]], dtype=D64)
    bits = vb_term(model, x0, xt, t, s, variance=variance)
    # independent: posterior by Bayes on a grid, p_theta's density written out, KL = int q log(q / p)
    mu_p = (xt - s.betas[t] / (1 - s.alpha_bar[t]).sqrt() * model(xt, torch.tensor([t]))) / s.alphas[t].sqrt()
    var_p = reverse_variance(s, variance)[t]
    sd = float(s.beta_tilde[t].sqrt())
    center = float(mu_p)
    grid = torch.linspace(center - 60 * sd - 1e-3, center + 60 * sd + 1e-3, 400001, dtype=D64)
    q = _posterior_on_a_grid(0.25, 0.1, t, s, grid)
    log_p = -0.5 * (grid - mu_p.squeeze()) ** 2 / var_p - 0.5 * torch.log(2 * math.pi * var_p)
    integrand = torch.where(q > 0, q * (torch.log(q.clamp_min(1e-300)) - log_p), torch.zeros_like(q))
    kl_grid = torch.trapezoid(integrand, grid) / math.log(2)
    assert torch.isclose(bits.squeeze(), kl_grid, rtol=1e-5, atol=1e-8)


def test_the_first_term_is_the_decoders_bin_mass_with_beta_tilde_2():
    s, levels = Schedule.make("linear", 100), 17
    model = GaussianEps(0.0, 0.5, s)
    x0 = torch.tensor([[-1.0], [0.125], [1.0]], dtype=D64)
    x1 = torch.tensor([[-0.9], [0.1], [1.02]], dtype=D64)
    bits = vb_term(model, x0, x1, 1, s, levels=levels)
    mean = (x1 - s.betas[1].sqrt() * model(x1, torch.ones(3, dtype=torch.long))) / s.alphas[1].sqrt()  # = x0_hat
    normal = torch.distributions.Normal(mean.squeeze(1), s.beta_tilde[2].sqrt())
    half = 1 / (levels - 1)
    upper = torch.where(x0.squeeze(1) >= 1, torch.ones(3, dtype=D64), normal.cdf(x0.squeeze(1) + half))
    lower = torch.where(x0.squeeze(1) <= -1, torch.zeros(3, dtype=D64), normal.cdf(x0.squeeze(1) - half))
    assert torch.allclose(bits, -torch.log2(upper - lower), rtol=1e-9)


def test_the_prior_term_is_the_kl_to_the_standard_normal():
    s = Schedule.make("linear", 10, beta_1=0.1, beta_T=0.3)  # short, so that q(x_T | x0) is far from N(0, I)
    x0 = torch.tensor([[0.5, -1.0]], dtype=D64)
    ab = s.alpha_bar[10]
    q = torch.distributions.Normal(ab.sqrt() * x0, (1 - ab).sqrt())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean() / math.log(2)
    assert torch.isclose(prior_bpd(x0, s), expected.reshape(1), rtol=1e-12).all()


def test_vb_terms_has_one_column_per_term_and_sums_to_the_bound():
    s = Schedule.make("cosine", 20)
    model, x0 = GaussianEps(0.0, 0.5, s), torch.linspace(-1, 1, 17, dtype=D64)[:8].reshape(2, 1, 2, 2)
    terms = vb_terms(model, x0, s, levels=17, generator=torch.Generator().manual_seed(0))
    assert terms.shape == (2, 21) and (terms >= 0).all()
    assert torch.allclose(terms[:, -1], prior_bpd(x0, s))
    total = nll_bpd(model, x0, s, levels=17, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(total, terms.sum(1))


def test_vb_terms_per_variance_is_vb_terms_for_each_variance():
    s = Schedule.make("cosine", 20)
    model, x0 = GaussianEps(0.0, 0.5, s), torch.linspace(-1, 1, 17, dtype=D64)[3:11].reshape(2, 1, 2, 2)
    calls = []
    counted = lambda xt, t: calls.append(t) or model(xt, t)  # noqa: E731 (counts the network's calls)
    both = vb_terms_per_variance(counted, x0, s, ("beta", "beta_tilde"), levels=17,
                                 generator=torch.Generator().manual_seed(3))
    assert len(calls) == s.T  # one network call per t, shared by the two variances
    for variance in ("beta", "beta_tilde"):  # the same draws of x_t, so the same numbers as one at a time
        alone = vb_terms(model, x0, s, variance=variance, levels=17, generator=torch.Generator().manual_seed(3))
        assert torch.equal(both[variance], alone)
    assert torch.equal(both["beta"][:, 0], both["beta_tilde"][:, 0])  # L_0's decoder ignores sigma_t^2
    assert torch.equal(both["beta"][:, -1], both["beta_tilde"][:, -1])  # and so does L_T
    assert (both["beta"][:, 1:-1] != both["beta_tilde"][:, 1:-1]).all()  # the KL terms do not


def test_bad_settings_are_refused():
    s = Schedule.make("cosine", 20)
    with pytest.raises(ValueError, match="variance must be one of"):
        reverse_variance(s, "sigma")
    with pytest.raises(ValueError, match="levels must be >= 2"):
        discretized_gaussian_log_likelihood(torch.zeros(1), torch.zeros(1), torch.ones(1), 1)
    with pytest.raises(ValueError, match="t must lie in 1..20"):
        vb_term(GaussianEps(0.0, 0.5, s), torch.zeros(1, 1), torch.zeros(1, 1), 0, s)
    with pytest.raises(ValueError, match="variance must be one of"):
        vb_terms_per_variance(GaussianEps(0.0, 0.5, s), torch.zeros(1, 1), s, ("beta", "sigma"))
    with pytest.raises(ValueError, match="variance must be one of"):
        path_bound(GaussianEps(0.0, 0.5, s), torch.zeros(1, 1), s, variance="sigma")


def _discretized_gaussian(mu: float, sd: float, levels: int, n: int, g: torch.Generator):
    """n draws of N(mu, sd^2) rounded to ``levels`` values in [-1, 1] (end bins open), with each draw's exact
    -log2 P(its bin) and the entropy H in bits."""
    values = torch.linspace(-1, 1, levels, dtype=D64)
    half = 1 / (levels - 1)
    inf = torch.tensor([math.inf], dtype=D64)
    normal = torch.distributions.Normal(torch.tensor(mu, dtype=D64), torch.tensor(sd, dtype=D64))
    mass = normal.cdf(torch.cat([values[:-1] + half, inf])) - normal.cdf(torch.cat([-inf, values[1:] - half]))
    k = torch.multinomial(mass, n, replacement=True, generator=g)
    entropy = -(mass[mass > 0] * mass[mass > 0].log2()).sum()
    return values[k].view(n, 1), -mass[k].log2(), entropy


def test_the_bound_on_gaussian_data_holds_and_is_tight_with_beta():
    """E[bound] >= E[-log2 p_theta(x0)] >= H for any model. With the continuous data's exact eps* and
    sigma_t^2 = beta_t, data this smooth (sd 0.3 against bins 0.008 wide) come within 2 % of H; a model
    of the wrong width, or beta_tilde_t, is measurably looser."""
    s, n = Schedule.make("cosine", 400), 20_000
    x0, exact, entropy = _discretized_gaussian(0.2, 0.3, 256, n, torch.Generator().manual_seed(0))
    bounds = {name: nll_bpd(GaussianEps(0.2, sd, s), x0, s, variance=variance, levels=256,
                            generator=torch.Generator().manual_seed(1))  # the same x_t draws for all three
              for name, sd, variance in (("beta", 0.3, "beta"), ("beta_tilde", 0.3, "beta_tilde"), ("wide", 0.4, "beta"))}

    def mean_se(d: torch.Tensor) -> tuple[float, float]:  # per-example differences: paired, so their SE is small
        return float(d.mean()), float(d.std() / n**0.5)

    assert abs(float(exact.mean() - entropy)) < 4 * float(exact.std() / n**0.5)  # the draws are the data
    gap, se = mean_se(bounds["beta"] - exact)  # estimates E[bound] - H
    assert gap > -3 * se  # the bound holds
    assert gap < 0.02 * float(entropy), (gap, se)  # and is tight: within 2 % of H = 7.28 bits
    looser, se_looser = mean_se(bounds["beta_tilde"] - bounds["beta"])
    assert looser > 10 * se_looser, (looser, se_looser)  # beta_tilde_t leaves a much looser bound here
    wrong, se_wrong = mean_se(bounds["wide"] - bounds["beta"])
    assert wrong > 5 * se_wrong, (wrong, se_wrong)  # and so does a model of the wrong data


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_the_bound_from_sampled_paths_has_the_expectation_of_the_kl_sum(variance):
    """path_bound (log densities along forward paths, no KL) and nll_bpd (closed-form KLs) are two unbiased
    estimates of one expectation, E_x0 E_q[log q(x_{1:T} | x0) - log p_theta(x_{0:T})]: their means agree
    within their standard errors. Both lie above the model's exact NLL (chain_nll_bpd), as the bound must."""
    s, n = Schedule.make("cosine", 100), 20_000
    x0, _, _ = _discretized_gaussian(0.1, 0.4, 17, n, torch.Generator().manual_seed(4))
    model = GaussianEps(0.0, 0.5, s)  # not the data's eps*: the bound is loose, and still a bound
    kl_sum = nll_bpd(model, x0, s, variance=variance, levels=17, generator=torch.Generator().manual_seed(5))
    paths = path_bound(model, x0, s, variance=variance, levels=17, generator=torch.Generator().manual_seed(6))
    diff = float(paths.mean() - kl_sum.mean())
    se = (float(paths.var()) / n + float(kl_sum.var()) / n) ** 0.5  # independent draws
    assert abs(diff) < 4 * se, (diff, se)
    exact = chain_nll_bpd(model, x0, variance=variance, levels=17)
    gap = kl_sum - exact  # per example: E over x_t of the bound minus the exact -log2 p_theta(x0)
    assert float(gap.mean()) > -3 * float(gap.std()) / n**0.5
    assert float(exact.mean()) > 0


def test_the_gap_of_the_bound_is_non_negative_and_wider_with_beta_tilde():
    """The gap E[bound] - E[-log2 p_theta(x0)] is a KL between the forward path's posterior and the model's
    path, so it is >= 0 for either sigma_t^2; for Gaussian data's own eps*, beta_tilde_t leaves a wider one
    than beta_t on the same draws (chapter 7 shows the same ordering on the digits)."""
    s, n = Schedule.make("cosine", 100), 5_000
    x0, _, entropy = _discretized_gaussian(0.2, 0.3, 256, n, torch.Generator().manual_seed(7))
    model = GaussianEps(0.2, 0.3, s)
    both = vb_terms_per_variance(model, x0, s, levels=256, generator=torch.Generator().manual_seed(8))
    gaps = {v: both[v].sum(1) - chain_nll_bpd(model, x0, variance=v, levels=256) for v in both}
    for v, gap in gaps.items():
        assert float(gap.mean()) > -3 * float(gap.std()) / n**0.5, v
    wider = gaps["beta_tilde"] - gaps["beta"]
    assert float(wider.mean()) > 10 * float(wider.std()) / n**0.5
    # the exact NLL of a model of the right data is a cross-entropy: at least H, within its SE
    nll = chain_nll_bpd(model, x0, variance="beta", levels=256)
    assert float(nll.mean() - entropy) > -4 * float(nll.std()) / n**0.5
