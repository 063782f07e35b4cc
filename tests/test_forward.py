"""The forward process against its closed forms (chapters 2-5)."""

import math

import pytest
import torch

from ddpm_edu.forward import naive_step, q_sample, q_step, trajectory, vp_step
from ddpm_edu.schedules import Schedule

N = 200_000  # samples per moment check


def var_tol(v: float, n: int = N) -> float:
    """Five standard deviations of the sample variance of n Gaussian draws with variance v."""
    return 5 * v * math.sqrt(2 / (n - 1))


def test_naive_variance_grows_as_one_plus_t_nu_squared():
    g = torch.Generator().manual_seed(0)
    nu = 0.1
    x0 = torch.randn(N, generator=g, dtype=torch.float64)
    traj = trajectory(x0, 50, lambda x, t, e: naive_step(x, nu, e), generator=g, keep=[1, 10, 50])
    for xt, t in zip(traj, [1, 10, 50]):
        v = 1 + t * nu**2  # boxed: Var[x_t] = 1 + t nu^2
        assert abs(xt.var().item() - v) < var_tol(v), (t, xt.var().item(), v)


def test_vp_step_keeps_variance_one():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(N, generator=g, dtype=torch.float64)
    for nu in (0.05, 0.5, 0.99):
        xt = trajectory(x0, 20, lambda x, t, e: vp_step(x, nu, e), generator=g, keep=[20])[0]
        assert abs(xt.var().item() - 1) < var_tol(1.0)
    with pytest.raises(ValueError, match="nu must lie"):
        vp_step(x0, 1.5, x0)


def test_closed_form_matches_iterating_q_step():
    """Iterate q(x_t | x_{t-1}) t times; the closed form gives the same mean, variance and cov with x0."""
    s = Schedule.linear(100, 1e-3, 0.1)
    g = torch.Generator().manual_seed(2)
    x0 = 0.5 + 0.3 * (torch.rand(N, generator=g, dtype=torch.float64) * 2 - 1)  # non-Gaussian data
    m0, v0 = x0.mean().item(), x0.var().item()
    keep = [1, 10, 40, 100]
    it = trajectory(x0, 100, lambda x, t, e: q_step(x, t, e, s), generator=g, keep=keep)
    for xt_it, t in zip(it, keep):
        xt_cf = q_sample(x0, torch.full((N,), t), torch.randn(N, generator=g, dtype=torch.float64), s)
        ab = s.alpha_bar[t].item()
        mean, var, cov = math.sqrt(ab) * m0, ab * v0 + 1 - ab, math.sqrt(ab) * v0
        for xt in (xt_it, xt_cf):
            assert abs(xt.mean().item() - mean) < 5 * math.sqrt(var / N)
            assert abs(xt.var().item() - var) < var_tol(var)
            c = ((xt - xt.mean()) * (x0 - m0)).mean().item()
            assert abs(c - cov) < 5 * math.sqrt(var * v0 / N) + 1e-12


def test_q_sample_per_example_t_equals_loop():
    s = Schedule.cosine(200)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(6, 3, 4, 4, generator=g)
    eps = torch.randn(6, 3, 4, 4, generator=g)
    t = torch.tensor([1, 7, 50, 100, 199, 200])
    batched = q_sample(x0, t, eps, s)
    for i in range(6):
        one = q_sample(x0[i : i + 1], torch.tensor([t[i]]), eps[i : i + 1], s)
        ab = s.alpha_bar[t[i]].item()
        by_hand = math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * eps[i]
        torch.testing.assert_close(batched[i], one[0])
        torch.testing.assert_close(batched[i], by_hand.float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_q_sample_at_t0_is_x0_bit_for_bit(dtype):
    """alpha_bar_0 = 1, so x_0 = 1 * x0 + 0 * eps: the closed form returns the data unchanged."""
    s = Schedule.cosine(50)
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(4, 3, 5, 5, generator=g, dtype=dtype)
    eps = 10 * torch.randn(4, 3, 5, 5, generator=g, dtype=dtype)
    assert torch.equal(q_sample(x0, 0, eps, s), x0)
    assert torch.equal(q_sample(x0, torch.zeros(4, dtype=torch.long), eps, s), x0)
    mixed = q_sample(x0, torch.tensor([0, 7, 0, 50]), eps, s)  # t = 0 rows next to noised rows
    assert torch.equal(mixed[[0, 2]], x0[[0, 2]])
    torch.testing.assert_close(mixed[[1, 3]], q_sample(x0[[1, 3]], torch.tensor([7, 50]), eps[[1, 3]], s))
    assert not torch.equal(mixed[1], x0[1])


def test_q_sample_keeps_float32_while_schedule_is_float64():
    s = Schedule.linear(1000)
    x0 = torch.randn(4, 2)
    xt = q_sample(x0, torch.tensor([1, 2, 3, 1000]), torch.randn(4, 2), s)
    assert xt.dtype == torch.float32 and s.alpha_bar.dtype == torch.float64
    assert q_step(x0, 5, torch.randn(4, 2), s).dtype == torch.float32


def test_t_out_of_range_raises():
    s = Schedule.linear(10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="0..10"):
        q_sample(x, torch.tensor([-1, 1]), x, s)
    with pytest.raises(ValueError, match="0..10"):
        q_sample(x, torch.tensor([1, 11]), x, s)
    with pytest.raises(ValueError, match="0..10"):
        q_sample(x, 11, x, s)
    with pytest.raises(ValueError, match="0..10"):
        q_sample(x, -1, x, s)
    with pytest.raises(ValueError, match="integer"):
        q_sample(x, 1.0, x, s)
    with pytest.raises(ValueError, match="1..10"):
        q_step(x, 0, x, s)  # one forward step goes from t - 1 to t >= 1
    with pytest.raises(ValueError, match="1..10"):
        q_step(x, torch.tensor([0, 1]), x, s)
    with pytest.raises(ValueError, match="integer"):
        q_step(x, 2.0, x, s)
    import numpy as np

    torch.testing.assert_close(q_step(x, np.int64(3), x, s), q_step(x, 3, x, s))  # numpy integers are integers
    with pytest.raises(ValueError, match="batch size"):
        q_sample(x, torch.tensor([1, 2, 3]), x, s)
    with pytest.raises(ValueError, match="shape"):
        q_sample(x, torch.tensor([1, 2]), torch.zeros(2, 4), s)


def test_trajectory_shapes():
    x0 = torch.zeros(3, 2)
    full = trajectory(x0, 5, lambda x, t, e: naive_step(x, 0.1, e))
    assert full.shape == (6, 3, 2) and torch.equal(full[0], x0)
    assert trajectory(x0, 5, lambda x, t, e: x + 1, keep=[0, 5]).tolist() == [[[0, 0]] * 3, [[5, 5]] * 3]
    with pytest.raises(ValueError, match="keep"):
        trajectory(x0, 5, lambda x, t, e: x, keep=[6])
