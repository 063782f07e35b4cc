"""2-D toy data and the MLP denoiser (chapters 7-8)."""

import math

import pytest
import torch

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.data.toy import MIXTURE, TOY_DATASETS, sample_toy
from ddpm_edu.losses import l_simple
from ddpm_edu.nets.mlp import MLPDenoiser
from ddpm_edu.schedules import Schedule

S = Schedule.linear(1000)


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_shape_dtype_range_and_reproducibility(name):
    x = sample_toy(name, 1000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert x.abs().max() < 1.5  # "roughly within [-1, 1]"
    assert x.std(0).min() > 0.1  # not collapsed
    assert torch.equal(x, sample_toy(name, 1000, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(x, sample_toy(name, 1000, generator=torch.Generator().manual_seed(1)))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="moons.*swiss_roll.*8gaussians.*mixture"):
        sample_toy("circles", 10)


def test_mixture_moments_match_declared_parameters():
    """Mean sum_k w_k mu_k and covariance sum_k w_k (s_k^2 I + mu_k mu_k^T) - m m^T, within 5 standard errors."""
    n = 200_000
    x = sample_toy("mixture", n, generator=torch.Generator().manual_seed(3)).double()
    w = torch.tensor(MIXTURE["weights"], dtype=torch.float64)
    mu = torch.tensor(MIXTURE["means"], dtype=torch.float64)
    sd = torch.tensor(MIXTURE["stds"], dtype=torch.float64)
    mean = w @ mu  # (2,)
    cov = (w[:, None, None] * (sd[:, None, None] ** 2 * torch.eye(2) + mu[:, :, None] * mu[:, None, :])).sum(0)
    cov = cov - mean[:, None] * mean[None, :]
    d = x - mean
    emp_cov = d.T @ d / n
    se_mean = (cov.diagonal() / n).sqrt()
    se_cov = ((d[:, :, None] * d[:, None, :] - cov) ** 2).mean(0).div(n).sqrt()  # std error of each entry
    assert ((x.mean(0) - mean).abs() < 5 * se_mean).all()
    assert ((emp_cov - cov).abs() < 5 * se_cov).all()


def test_8gaussians_have_equal_weights_on_the_circle():
    n = 80_000
    x = sample_toy("8gaussians", n, generator=torch.Generator().manual_seed(4))
    k = torch.round(torch.atan2(x[:, 1], x[:, 0]) / (math.pi / 4)).long() % 8
    counts = torch.bincount(k, minlength=8).double()
    p = 1 / 8  # binomial std error of each count: sqrt(n p (1 - p))
    assert ((counts - n * p).abs() < 5 * math.sqrt(n * p * (1 - p))).all()
    assert (x.norm(dim=1) - 0.8).abs().mean() < 0.1


def test_mlp_denoiser_shapes_and_gradients():
    model = MLPDenoiser(dim=3, hidden=32, layers=2, t_dim=16)
    x, t = torch.randn(5, 3), torch.tensor([1, 10, 100, 500, 1000])
    out = model(x, t)
    assert out.shape == (5, 3)
    torch.testing.assert_close(out, torch.zeros(5, 3))  # zero-initialised output layer
    with torch.no_grad():
        model.out.weight.normal_()
    model(x, t).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_mlp_denoiser_learns_the_mixture(one_thread):
    """A few hundred Adam steps of L_simple drop the loss far below 1 (the loss of eps_hat = 0),
    towards the loss of the exact eps* of the mixture, the smallest possible."""
    g = torch.Generator().manual_seed(0)
    model = MLPDenoiser(hidden=64, layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    n_eval = 10_000
    x_eval = sample_toy("mixture", n_eval, generator=g)
    t_eval, eps_eval = torch.randint(1, S.T + 1, (n_eval,), generator=g), torch.randn(n_eval, 2, generator=g)

    def eval_loss(m) -> float:
        with torch.no_grad():
            return l_simple(m, x_eval, S, t=t_eval, eps=eps_eval).item()

    before = eval_loss(model)
    for _ in range(300):
        loss = l_simple(model, sample_toy("mixture", 256, generator=g), S, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, best = eval_loss(model), eval_loss(MixtureEps(**MIXTURE, s=S))
    assert before == pytest.approx(1.0, abs=0.05)
    assert after < 0.5 * before
    assert after > best - 0.02  # no model beats eps* (up to sampling noise in the eval set)
    assert after < best + 0.1
