"""Classifier-free guidance (Ho & Salimans 2022; chapter 10): eq. (6), the sampler's guided model, label dropout
and the checks on a request for guided samples. The guided eps against the exact eps* of a tilted density is
in tests/test_analytic.py."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.guidance import check_guidance, drop_labels, guidance_problems, guided_eps, guided_model
from ddpm_edu.sampling import ddim_sample
from ddpm_edu.schedules import Schedule


def draws(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class Recorder:
    """A stand-in conditional network, eps = x + t + 10 * label (0 for "no label"), that records its calls."""

    def __init__(self):
        self.calls: list[torch.Tensor | None] = []

    def __call__(self, xt, t, y):
        self.calls.append(y)
        label = torch.zeros(len(xt), dtype=xt.dtype) if y is None else y.to(xt.dtype)
        return xt + t[:, None].to(xt.dtype) + 10 * label[:, None]


# --------------------------------------------------------------------------- eq. (6)
@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 3.0])
def test_guided_eps_extrapolates_from_the_unconditional_past_the_conditional(w):
    c, u = draws(0, 5, 3), draws(1, 5, 3)
    e = guided_eps(c, u, w)
    torch.testing.assert_close(e - c, w * (c - u), rtol=0, atol=1e-12)  # w times the step from u to c, past c
    torch.testing.assert_close(guided_eps(c, c, w), c, rtol=0, atol=1e-12)  # no disagreement: nothing to amplify


def test_guided_eps_at_w_zero_is_the_conditional_eps_exactly():
    c, u = draws(0, 4, 1, 8, 8), draws(1, 4, 1, 8, 8)
    assert torch.equal(guided_eps(c, u, 0.0), c)


def test_guided_eps_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"one shape.*\(2, 3\).*\(3, 2\)"):
        guided_eps(torch.zeros(2, 3), torch.zeros(3, 2), 1.0)


# --------------------------------------------------------------------------- the sampler's model
def test_guided_model_runs_the_network_with_and_without_the_label():
    net, x, t = Recorder(), draws(2, 4, 3), torch.full((4,), 7)
    out = guided_model(net, 2, w=1.5)(x, t)
    assert len(net.calls) == 2 and net.calls[1] is None  # the second pass is unlabelled
    assert torch.equal(net.calls[0], torch.full((4,), 2))  # one label, repeated for every row
    torch.testing.assert_close(out, 2.5 * (x + 7 + 20) - 1.5 * (x + 7), rtol=0, atol=1e-12)


def test_guided_model_at_w_zero_is_one_conditional_pass():
    net, x, t = Recorder(), draws(3, 4, 3), torch.full((4,), 5)
    y = torch.tensor([0, 1, 2, 3])  # one label per row
    assert torch.equal(guided_model(net, y, 0.0)(x, t), net(x, t, y))
    assert len(net.calls) == 2 and torch.equal(net.calls[0], y)  # one pass by guided_model, one by the check


def test_guided_model_refuses_bad_weights_and_label_shapes():
    for w in (-0.5, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="finite number >= 0"):
            guided_model(Recorder(), 1, w)
    with pytest.raises(ValueError, match=r"\(4,\) tensor of labels.*\(3,\)"):
        guided_model(Recorder(), torch.tensor([1, 2, 3]), 1.0)(torch.zeros(4, 2), torch.ones(4, dtype=torch.long))


def test_guided_model_of_exact_class_eps_at_w_zero_samples_that_class():
    """With w = 0, DDIM driven by the guided model of the mixture's class eps* is DDIM driven by that component
    alone: the same deterministic map of the same x_T."""
    s = Schedule.make("linear", 100, 1e-4, 0.05)
    mix = MixtureEps([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]], [0.3, 0.4], s)
    x_T = draws(4, 64, 2)
    guided = ddim_sample(guided_model(mix.class_eps, 1, 0.0), (64, 2), s, 20, x_T=x_T, dtype=torch.float64)
    alone = ddim_sample(mix.component(1), (64, 2), s, 20, x_T=x_T, dtype=torch.float64)
    torch.testing.assert_close(guided, alone, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- label dropout (Algorithm 1, line 3)
def test_drop_labels_replaces_exactly_the_rows_whose_coin_falls_below_p():
    y, u = torch.tensor([3, 1, 4, 1, 5, 9]), torch.tensor([0.05, 0.5, 0.09, 0.1, 0.99, 0.0])
    assert drop_labels(y, 0.1, 10, u=u).tolist() == [10, 1, 10, 1, 5, 10]
    assert y.tolist() == [3, 1, 4, 1, 5, 9]  # a new tensor


def test_drop_labels_drops_a_fraction_p_reproducibly():
    y, p, n = torch.arange(20_000) % 10, 0.2, 20_000
    a = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(0))
    b = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    dropped = (a == 10).double().mean().item()
    assert abs(dropped - p) < 5 * (p * (1 - p) / n) ** 0.5  # 5 standard errors of a binomial proportion
    assert torch.equal(a[a != 10], y[a != 10])  # the others keep their labels
    assert torch.equal(drop_labels(y, 0.0, 10, generator=torch.Generator().manual_seed(1)), y)


def test_drop_labels_refuses_bad_settings():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"p_uncond must lie in \[0, 1\)"):
            drop_labels(torch.zeros(3, dtype=torch.long), p, 10)
    with pytest.raises(ValueError, match=r"u must have y's shape \(3,\)"):
        drop_labels(torch.zeros(3, dtype=torch.long), 0.1, 10, u=torch.zeros(4))


# --------------------------------------------------------------------------- a request for guided samples
def test_guidance_problems_name_every_bad_request():
    assert guidance_problems(None, None, None) == {} and guidance_problems(None, None, 10) == {}
    assert guidance_problems(7, None, 10) == {} and guidance_problems(0, 2.0, 10) == {}
    assert "unconditional" in guidance_problems(3, None, None)["label"]
    assert "unconditional" in guidance_problems(None, 1.0, None)["label"]
    assert guidance_problems(10, None, 10)["label"] == "label 10 is not one of the model's classes 0..9"
    assert set(guidance_problems(-1, -2.0, 10)) == {"label", "w"}
    assert "0..9" in guidance_problems(True, None, 10)["label"]  # a bool is no class
    assert "needs a label" in guidance_problems(None, 2.0, 10)["w"]
    assert "finite" in guidance_problems(1, math.nan, 10)["w"]
    with pytest.raises(ValueError) as e:
        check_guidance(12, -1.0, 10)
    assert all(msg in str(e.value) for msg in guidance_problems(12, -1.0, 10).values())
