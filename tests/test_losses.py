"""L_simple, the v parameterisation and the score (chapter 7)."""

import math

import pytest
import torch

from ddpm_edu.analytic import GaussianEps, MixtureEps
from ddpm_edu.forward import q_sample
from ddpm_edu.losses import eps_from_score, eps_from_v, l_simple, sample_t, score_from_eps, v_target, x0_from_v
from ddpm_edu.schedules import Schedule

S = Schedule.linear(1000)


@pytest.mark.parametrize("t", [10, 300, 900])
def test_l_simple_of_exact_model_is_posterior_variance_of_eps(t):
    """For x0 ~ N(mu, sd^2), min L_simple at fixed t is Var[eps | x_t] = ab sd^2 / (ab sd^2 + 1 - ab)."""
    mu, sd, n = 0.5, 0.3, 200_000
    g = torch.Generator().manual_seed(t)
    x0 = mu + sd * torch.randn(n, 1, generator=g, dtype=torch.float64)
    loss = l_simple(GaussianEps(mu, sd, S), x0, S, t=torch.full((n,), t), generator=g).item()
    ab = S.alpha_bar[t].item()
    expected = ab * sd**2 / (ab * sd**2 + 1 - ab)
    # loss is a mean of n squared Gaussians with variance `expected`: its std is expected * sqrt(2 / n).
    assert abs(loss - expected) < 5 * expected * math.sqrt(2 / n)


def test_l_simple_uses_given_t_and_eps():
    x0, eps, t = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([1, 2, 3, 4, 5])
    seen = {}

    def model(xt, tt):
        seen["xt"], seen["t"] = xt, tt
        return torch.zeros_like(xt)

    loss = l_simple(model, x0, S, t=t, eps=eps)
    torch.testing.assert_close(seen["xt"], q_sample(x0, t, eps, S))
    assert torch.equal(seen["t"], t)
    assert loss.item() == pytest.approx((eps**2).mean().item(), rel=1e-6)
    loss_v = l_simple(model, x0, S, t=t, eps=eps, target="v")
    assert loss_v.item() == pytest.approx((v_target(x0, t, eps, S) ** 2).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="target"):
        l_simple(model, x0, S, target="x0")
    for bad in (torch.tensor([0, 2, 3, 4, 5]), torch.tensor([1, 2, 3, 4, S.T + 1])):  # L_simple's t is in 1..T
        with pytest.raises(ValueError, match=f"1..{S.T}"):
            l_simple(model, x0, S, t=bad, eps=eps)


def test_v_round_trips():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randn(16, 4, generator=g, dtype=torch.float64)
    t = sample_t(16, S.T, generator=g)
    assert t.min() >= 1 and t.max() <= S.T and t.dtype == torch.long
    xt, v = q_sample(x0, t, eps, S), v_target(x0, t, eps, S)
    torch.testing.assert_close(eps_from_v(xt, t, v, S), eps)
    torch.testing.assert_close(x0_from_v(xt, t, v, S), x0)


def test_sample_t_is_uniform_on_1_to_T():
    T, n = 10, 100_000
    t = sample_t(n, T, generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(t, minlength=T + 1)
    assert counts[0] == 0
    p = 1 / T
    assert (abs(counts[1:] / n - p) < 5 * math.sqrt(p * (1 - p) / n)).all()


def test_score_from_eps_is_the_gradient_of_log_q_xt_given_x0():
    """grad_{x_t} log N(x_t; sqrt(ab) x0, (1 - ab) I), by autograd, is -eps / sqrt(1 - ab)."""
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(32, 3, generator=g, dtype=torch.float64), torch.randn(32, 3, generator=g, dtype=torch.float64)
    t = sample_t(32, S.T, generator=g)
    xt = q_sample(x0, t, eps, S).requires_grad_(True)
    ab = S.alpha_bar[t][:, None]
    torch.distributions.Normal(ab.sqrt() * x0, (1 - ab).sqrt()).log_prob(xt).sum().backward()
    torch.testing.assert_close(score_from_eps(eps, t, S), xt.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eps_from_score(score_from_eps(eps, t, S), t, S), eps, rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="1..1000"):
        score_from_eps(eps, 0, S)


@pytest.mark.parametrize("t", [1, 30, 400, 1000])
def test_tweedie_the_score_of_q_xt_is_minus_eps_star_over_sqrt_one_minus_alpha_bar(t):
    """For a mixture, autograd on the exact log q(x_t) against score_from_eps(eps*), on a grid of x_t."""
    mix = MixtureEps([0.4, 0.6], [[-1.0], [0.8]], [0.15, 0.25], S)
    xt = torch.linspace(-2.5, 2.5, 201, dtype=torch.float64)[:, None].requires_grad_(True)
    mix.log_density(xt, t).sum().backward()
    tweedie = score_from_eps(mix(xt.detach(), torch.full((201,), t)), t, S)
    torch.testing.assert_close(tweedie, xt.grad, rtol=1e-10, atol=1e-10 * float(xt.grad.abs().max()))
