"""The exact noise predictors against E[eps | x_t] computed by brute force."""

import math

import numpy as np
import pytest
import torch

from ddpm_edu.analytic import GaussianEps, MixtureEps
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
