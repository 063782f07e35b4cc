"""Samplers driven by exact noise predictors must return the data distribution (chapter 8)."""

import math

import pytest
import torch

from ddpm_edu.analytic import GaussianEps, MixtureEps
from ddpm_edu.posterior import mean_from_eps, x0_from_eps
from ddpm_edu.sampling import (
    SAMPLERS,
    VARIANCES,
    TrajectoryRecorder,
    check_sampler,
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    ddpm_step,
    sample,
    sampler_problems,
)
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


def test_sampling_loops_pass_t_as_an_int_and_check_no_tensor(monkeypatch):
    """The loops hand each step an int t: no tensor check (on a GPU, a device-side assert) per step."""
    import ddpm_edu.schedules as SCH

    calls = []
    real = SCH.check_t
    monkeypatch.setattr(SCH, "check_t", lambda *a, **k: calls.append(a) or real(*a, **k))
    small = Schedule.linear(10, 1e-3, 0.2)
    for clip_x0 in (None, 1.0):
        sample(lambda x, t: 0.1 * x, (3, 2), small, clip_x0=clip_x0, callback=lambda *a: None)
        ddim_sample(lambda x, t: 0.1 * x, (3, 2), small, 4, 0.5, clip_x0=clip_x0, callback=lambda *a: None)
    assert calls == []
    ddpm_step(torch.zeros(4, 2), torch.tensor([1, 2, 3, 4]), torch.zeros(4, 2), S, torch.zeros(4, 2))
    assert calls  # a tensor t passed in is checked


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


def test_check_sampler_names_every_bad_setting_at_once():
    check_sampler("ddpm", 1, 0.0, "beta", T=10)
    check_sampler("ddpm", 500, 0.0, "beta_tilde", T=10)  # DDPM takes T steps: steps is DDIM's alone
    check_sampler("ddim", 10, 1.0, "beta_tilde", T=10)
    with pytest.raises(ValueError) as e:
        check_sampler("dpm", 0, -1.0, "learned", T=10)
    msg = str(e.value)
    for name in ("sampler", "steps", "eta", "variance"):
        assert f"{name} must" in msg, msg
    with pytest.raises(ValueError, match=r"steps must lie in 1\.\.T \(T = 10\)"):
        check_sampler("ddim", 11, 0.0, "beta_tilde", T=10)
    assert set(SAMPLERS) == {"ddpm", "ddim"} and set(VARIANCES) == {"beta_tilde", "beta"}


@pytest.mark.parametrize("settings, bad", [
    (dict(sampler="ddpm", steps=3, eta=0.5, variance="beta"), set()),
    (dict(sampler=None, steps=None, eta=None, variance=None, T=None), set()),  # nothing given, nothing checked
    (dict(steps=2.0), {"steps"}), (dict(steps=True), {"steps"}), (dict(eta=float("nan")), {"eta"}),
    (dict(eta=float("inf")), {"eta"}), (dict(eta="0"), {"eta"}), (dict(sampler="DDPM"), {"sampler"}),
    (dict(sampler="ddim", steps=51, T=50), {"steps"}), (dict(sampler="ddpm", steps=51, T=50), set()),
    (dict(sampler="x", steps=0, eta=-1, variance="y", T=5), {"sampler", "steps", "eta", "variance"}),
])
def test_sampler_problems_by_setting(settings, bad):
    problems = sampler_problems(**settings)
    assert set(problems) == bad
    assert all(msg.startswith(f"{key} must") for key, msg in problems.items())


@pytest.mark.parametrize("clip_x0", [None, 0.5])
def test_model_gets_a_long_t_per_image_and_the_callback_gets_x0_hat(clip_x0):
    small = Schedule.linear(12, 1e-3, 0.2)
    seen = []

    def model(x, t):
        assert t.shape == (x.shape[0],) and t.dtype == torch.long and t.device == x.device
        assert (t == t[0]).all()
        seen.append(int(t[0]))
        return 0.3 * x

    def callback(t, xt, x0_hat):
        if t > 0:
            expected = x0_from_eps(xt, t, 0.3 * xt, small)
            if clip_x0 is not None:
                expected = expected.clamp(-clip_x0, clip_x0)
            torch.testing.assert_close(x0_hat, expected)

    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)) * 3
    sample(model, (5, 3), small, x_T=x, clip_x0=clip_x0, callback=callback)
    assert seen == list(range(12, 0, -1))
    seen.clear()
    ddim_sample(model, (5, 3), small, 4, x_T=x, clip_x0=clip_x0, callback=callback)
    assert seen == ddim_timesteps(12, 4)[::-1]


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


def test_trajectory_recorder_keeps_the_first_images_of_the_batch_when_asked():
    s = Schedule.linear(20, 1e-3, 0.2)
    rec = TrajectoryRecorder(s.T, frames=5, images=3)
    out = sample(GaussianEps(0.0, 0.5, s), (7, 2), s, callback=rec, generator=torch.Generator().manual_seed(0))
    assert all(x.shape == (3, 2) for _, x in rec.frames + rec.x0_frames)
    assert torch.equal(rec.frames[-1][1], out[:3])
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="images"):
            TrajectoryRecorder(10, images=bad)


def _folded_steps(model, shape, s, seed, taus, step):
    """The reference loop: the public step functions applied one by one, z drawn as the samplers draw it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    for t, t_prev in zip(taus, taus[1:] + [0]):
        eps = model(x, torch.full((shape[0],), t))
        z = torch.randn(shape, generator=g, dtype=torch.float64) if t_prev > 0 else torch.zeros_like(x)
        x = step(x, t, t_prev, eps, z)
    return x


@pytest.mark.parametrize("clip_x0", [None, 1.0])
@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_sampler_is_the_public_step_applied_T_times(variance, clip_x0):
    """sample is Algorithm 2's loop around ddpm_step: x_T, then one z per step for t > 1, in this order."""
    s = Schedule.cosine(60)
    model = MixtureEps((0.4, 0.6), [[-0.8, 0.2], [0.7, -0.3]], (0.1, 0.2), s)
    ref = _folded_steps(model, (64, 2), s, 4, list(range(s.T, 0, -1)),
                        lambda x, t, _, eps, z: ddpm_step(x, t, eps, s, z, variance=variance, clip_x0=clip_x0))
    out = sample(model, (64, 2), s, generator=torch.Generator().manual_seed(4), variance=variance, clip_x0=clip_x0,
                 dtype=torch.float64)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("clip_x0", [None, 1.0])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_sampler_is_the_public_step_applied_S_times(eta, clip_x0):
    s = Schedule.cosine(60)
    model = MixtureEps((0.4, 0.6), [[-0.8, 0.2], [0.7, -0.3]], (0.1, 0.2), s)
    ref = _folded_steps(model, (64, 2), s, 5, ddim_timesteps(s.T, 7)[::-1],
                        lambda x, t, tp, eps, z: ddim_step(x, t, eps, s, z, t_prev=tp, eta=eta, clip_x0=clip_x0))
    out = ddim_sample(model, (64, 2), s, 7, eta, generator=torch.Generator().manual_seed(5), clip_x0=clip_x0,
                      dtype=torch.float64)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_samplers_return_normal_tensors_though_the_loop_runs_in_inference_mode():
    """Inference tensors refuse in-place updates and autograd outside inference mode; the results must not."""
    small = Schedule.linear(10, 1e-3, 0.2)
    rec, seen = TrajectoryRecorder(small.T, frames=4), []
    x = sample(lambda x, t: seen.append(torch.is_inference_mode_enabled()) or 0.1 * x, (3, 2), small, callback=rec)
    y = ddim_sample(lambda x, t: 0.1 * x, (3, 2), small, steps=4)
    assert all(seen) and not torch.is_inference_mode_enabled()
    for v in [x, y] + [f for _, f in rec.frames + rec.x0_frames]:
        assert not v.is_inference()
    w = torch.ones(2, requires_grad=True)
    (x * w).sum().backward()  # usable in autograd ...
    x.add_(1.0)  # ... and in place


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_sampling_loop_never_waits_for_the_gpu():
    """The host may wait a fixed number of times per call (reading the schedule), never once per step."""
    import warnings

    def syncs(T: int, sampler) -> int:
        s = Schedule.linear(T, 1e-3, 0.2).to("cuda")
        g = torch.Generator("cuda").manual_seed(0)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                sampler(s, g)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(x.message) for x in w)

    for sampler in (lambda s, g: sample(lambda x, t: 0.1 * x, (4, 3), s, generator=g, clip_x0=1.0, device="cuda"),
                    lambda s, g: ddim_sample(lambda x, t: 0.1 * x, (4, 3), s, s.T // 2, 0.5, generator=g,
                                             clip_x0=1.0, device="cuda")):
        assert syncs(10, sampler) == syncs(40, sampler)
