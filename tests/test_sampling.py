"""Samplers driven by exact noise predictors must return the data distribution (chapter 8)."""

import math

import pytest
import torch

from ddpm_edu.analytic import GaussianEps, MixtureEps
from ddpm_edu.posterior import mean_from_eps
from ddpm_edu.sampling import TrajectoryRecorder, ddim_sample, ddim_step, ddim_timesteps, ddpm_step, sample
from ddpm_edu.schedules import Schedule

S = Schedule.linear(1000)
MU, SD, N = 0.5, 0.3, 4000


def assert_gaussian(x: torch.Tensor, mu: float, sd: float) -> None:
    n = x.numel()
    assert abs(x.mean().item() - mu) < 5 * sd / math.sqrt(n), x.mean().item()
    assert abs(x.std().item() - sd) < 5 * sd / math.sqrt(2 * n), x.std().item()


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_sampler_reproduces_gaussian_data(variance):
    g = torch.Generator().manual_seed(0)
    x = sample(GaussianEps(MU, SD, S), (N, 1), S, generator=g, variance=variance)
    assert x.dtype == torch.float32
    assert_gaussian(x, MU, SD)


def test_ddim_full_steps_reproduces_gaussian_data():
    g = torch.Generator().manual_seed(1)
    assert_gaussian(ddim_sample(GaussianEps(MU, SD, S), (N, 1), S, steps=S.T, eta=0.0, generator=g), MU, SD)


def test_ddim_eta_one_reproduces_gaussian_data():
    g = torch.Generator().manual_seed(5)
    assert_gaussian(ddim_sample(GaussianEps(MU, SD, S), (N, 1), S, steps=S.T, eta=1.0, generator=g), MU, SD)


def ddim_output_std(steps: int) -> tuple[float, float]:
    """For Gaussian data, eta = 0 DDIM is an affine map of x_T, so pushing x_T = 0 and x_T = 1
    through it gives the exact output mean and std, with no sampling noise."""
    model = GaussianEps(MU, SD, S)
    ends = ddim_sample(model, (2, 1), S, steps=steps, x_T=torch.tensor([[0.0], [1.0]], dtype=torch.float64), dtype=torch.float64)
    return ends[0].item(), (ends[1] - ends[0]).item()


def test_ddim_discretisation_error_shrinks_with_steps():
    errors = {}
    for steps in (10, 50, 250, 1000):
        mean, std = ddim_output_std(steps)
        errors[steps] = abs(std - SD)
        assert abs(mean - MU) < 0.05
    assert errors[10] > errors[50] > errors[250] > errors[1000], errors
    assert errors[1000] < 0.01  # S = T: the ODE discretisation error is small but real


def test_ddpm_sampler_reproduces_mixture_weights():
    w, m, sd = (0.3, 0.7), (-0.6, 0.5), (0.1, 0.15)
    model = MixtureEps(w, [[m[0]], [m[1]]], sd, S)
    x = sample(model, (N, 1), S, generator=torch.Generator().manual_seed(2))
    left = (x < (m[0] + m[1]) / 2).float().mean().item()
    assert abs(left - w[0]) < 5 * math.sqrt(w[0] * w[1] / N)
    xl, xr = x[x < -0.05], x[x >= -0.05]
    assert abs(xl.mean().item() - m[0]) < 5 * sd[0] / math.sqrt(xl.numel())
    assert abs(xr.std().item() - sd[1]) < 5 * sd[1] / math.sqrt(2 * xr.numel())


def test_ddim_reproduces_mixture_weights():
    w, m, sd = (0.3, 0.7), (-0.6, 0.5), (0.1, 0.15)
    model = MixtureEps(w, [[m[0]], [m[1]]], sd, S)
    x = ddim_sample(model, (N, 1), S, steps=200, generator=torch.Generator().manual_seed(3))
    left = (x < (m[0] + m[1]) / 2).float().mean().item()
    assert abs(left - w[0]) < 5 * math.sqrt(w[0] * w[1] / N)


def test_no_noise_at_t_equals_one():
    x, eps, z = torch.randn(8, 2), torch.randn(8, 2), torch.randn(8, 2)
    for variance in ("beta", "beta_tilde"):
        torch.testing.assert_close(ddpm_step(x, 1, eps, S, z, variance=variance), mean_from_eps(x, 1, eps, S))
        t = torch.tensor([1, 1, 2, 2, 3, 3, 4, 4])
        out = ddpm_step(x, t, eps, S, z, variance=variance)
        torch.testing.assert_close(out[:2], mean_from_eps(x, t, eps, S)[:2])
        assert not torch.allclose(out[2:], mean_from_eps(x, t, eps, S)[2:])
    x4, z4 = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)  # the t = 1 mask broadcasts over image dimensions
    out = ddpm_step(x4, torch.tensor([1, 2, 1, 2]), x4, S, z4, variance="beta")
    torch.testing.assert_close(out[[0, 2]], mean_from_eps(x4[[0, 2]], 1, x4[[0, 2]], S))
    torch.testing.assert_close(out[[1, 3]], ddpm_step(x4[[1, 3]], 2, x4[[1, 3]], S, z4[[1, 3]], variance="beta"))


def test_ddpm_step_with_clipping_uses_clipped_x0():
    x, eps = torch.full((1, 1), 3.0), torch.zeros(1, 1)  # x0_hat = 3 / sqrt(ab) > 1
    t = 5
    out = ddpm_step(x, t, eps, S, torch.zeros(1, 1), clip_x0=1.0)
    expected = S.coef_x0[t].item() * 1.0 + S.coef_xt[t].item() * 3.0
    assert out.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("t", [0, S.T + 1])
def test_ddpm_step_rejects_t_outside_one_to_T(t):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=f"1..{S.T}"):
        ddpm_step(x, t, x, S, x)
    with pytest.raises(ValueError, match=f"1..{S.T}"):
        ddpm_step(x, torch.tensor([5, t]), x, S, x)
    with pytest.raises(ValueError, match=f"1..{S.T}"):
        ddim_step(x, t, x, S, x, t_prev=0, eta=0.0)


def test_ddpm_step_checks_a_tensor_t_once(monkeypatch):
    """The public entry checks t; the posterior cores behind it do not check it again."""
    import ddpm_edu.schedules as SCH

    calls = []
    real = SCH.check_t
    monkeypatch.setattr(SCH, "check_t", lambda *a, **k: calls.append(a) or real(*a, **k))
    x, t = torch.randn(4, 2), torch.tensor([1, 2, 3, 4])
    for clip_x0 in (None, 1.0):
        calls.clear()
        ddpm_step(x, t, x, S, x, clip_x0=clip_x0)
        assert len(calls) == 1


@pytest.mark.parametrize("clip_x0", [None, 1.0])
@pytest.mark.parametrize("t", [1, 2, 50, 999, 1000])
def test_ddim_step_with_eta_one_is_the_ddpm_step(t, clip_x0):
    """With t_prev = t - 1, eta = 1 gives sigma^2 = beta_tilde_t and the posterior mean: Algorithm 2's step."""
    g = torch.Generator().manual_seed(t)
    x, eps, z = (torch.randn(16, 3, generator=g, dtype=torch.float64) * 2 for _ in range(3))
    ddim = ddim_step(x, t, eps, S, z, t_prev=t - 1, eta=1.0, clip_x0=clip_x0)
    ddpm = ddpm_step(x, t, eps, S, z, variance="beta_tilde", clip_x0=clip_x0)
    torch.testing.assert_close(ddim, ddpm, rtol=1e-9, atol=1e-9)


def test_ddim_step_eta_zero_is_deterministic_and_lands_on_x0_hat_at_t_prev_zero():
    x, eps = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    a = ddim_step(x, 300, eps, S, torch.randn(8, 2, dtype=torch.float64), t_prev=100, eta=0.0)
    b = ddim_step(x, 300, eps, S, torch.randn(8, 2, dtype=torch.float64), t_prev=100, eta=0.0)
    assert torch.equal(a, b)  # eta = 0: z is not used
    ab = S.alpha_bar[300].item()
    x0_hat = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    torch.testing.assert_close(ddim_step(x, 300, eps, S, torch.randn(8, 2, dtype=torch.float64), t_prev=0, eta=1.0), x0_hat)


def test_callback_sees_every_step_and_final_state():
    seen = []
    small = Schedule.linear(20, 1e-3, 0.2)
    out = sample(GaussianEps(0.0, 1.0, small), (3, 2), small, generator=torch.Generator().manual_seed(0),
                 callback=lambda t, xt, x0: seen.append((t, xt.shape, x0.shape)))
    assert [t for t, _, _ in seen] == list(range(20, -1, -1))
    assert all(a == (3, 2) and b == (3, 2) for _, a, b in seen)
    seen.clear()
    ddim_sample(GaussianEps(0.0, 1.0, small), (3, 2), small, steps=5, callback=lambda t, xt, x0: seen.append(t))
    assert seen == ddim_timesteps(20, 5)[::-1] + [0]
    assert out.shape == (3, 2)


def test_sampler_is_reproducible_with_a_generator():
    model = GaussianEps(0.0, 1.0, S)
    a = sample(model, (4, 1), S, generator=torch.Generator().manual_seed(9))
    b = sample(model, (4, 1), S, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_bad_sampler_arguments():
    model = GaussianEps(0.0, 1.0, S)
    with pytest.raises(ValueError, match="variance"):
        ddpm_step(torch.zeros(1, 1), 3, torch.zeros(1, 1), S, torch.zeros(1, 1), variance="learned")
    with pytest.raises(ValueError, match="steps"):
        ddim_sample(model, (1, 1), S, steps=0)
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(10, 11)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(model, (1, 1), S, steps=10, eta=-1)
    with pytest.raises(ValueError, match="x_T"):
        sample(model, (2, 1), S, x_T=torch.zeros(3, 1))
    with pytest.raises(ValueError, match="variance"):
        sample(model, (2, 1), S, variance="learned")
    x = torch.zeros(1, 1)
    for t_prev in (5, 6, -1, 2.0):
        with pytest.raises(ValueError, match="t_prev"):
            ddim_step(x, 5, x, S, x, t_prev=t_prev, eta=0.0)
    with pytest.raises(ValueError, match="eta"):
        ddim_step(x, 5, x, S, x, t_prev=4, eta=-0.5)
    assert ddim_timesteps(1000, 1000) == list(range(1, 1001))
    assert ddim_timesteps(1000, 10)[-1] == 1000 and len(ddim_timesteps(1000, 10)) == 10


def test_trajectory_recorder_keeps_requested_frames_in_order():
    s = Schedule.linear(100, 1e-3, 0.1)
    rec = TrajectoryRecorder(s.T, frames=12)
    model = GaussianEps(0.0, 0.5, s)
    out = sample(lambda x, t: model(x.flatten(1), t).view_as(x), (2, 1, 4, 4), s, callback=rec,
                 generator=torch.Generator().manual_seed(0))
    ts = [t for t, _ in rec.frames]
    assert len(ts) == 12 and ts[0] == s.T and ts[-1] == 0 and ts == sorted(ts, reverse=True)
    assert [t for t, _ in rec.x0_frames] == ts
    assert all(x.shape == (2, 1, 4, 4) and x.device.type == "cpu" for _, x in rec.frames + rec.x0_frames)
    assert torch.equal(rec.frames[-1][1], out) and torch.equal(rec.x0_frames[-1][1], out)  # t = 0: x_0 itself


def test_trajectory_recorder_keeps_every_state_when_asked_for_more_than_there_are():
    small = Schedule.linear(5, 1e-3, 0.2)
    rec = TrajectoryRecorder(3, frames=30)  # DDIM with 3 model calls: 4 callback calls
    ddim_sample(GaussianEps(0.0, 1.0, small), (2, 1), small, steps=3, callback=rec)
    assert [t for t, _ in rec.frames] == ddim_timesteps(5, 3)[::-1] + [0]
    with pytest.raises(ValueError, match="frames"):
        TrajectoryRecorder(10, frames=1)
