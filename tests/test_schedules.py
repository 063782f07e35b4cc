"""Schedules against their defining formulas (chapter 4)."""

import math

import numpy as np
import pytest
import torch

from ddpm_edu.schedules import FINISHED, NOISED, Schedule, check_t, extract, schedule_problems, summarize

ALL = [
    Schedule.linear(1000, 1e-4, 0.02),
    Schedule.cosine(1000),
    Schedule.quadratic(500, 1e-4, 0.02),
    Schedule.sigmoid(300, 1e-4, 0.02),
]


@pytest.mark.parametrize("s", ALL)
def test_alpha_bar_is_cumprod_of_one_minus_beta(s):
    b = s.betas.numpy()
    assert b[0] == 0 and s.alpha_bar[0] == 1
    np.testing.assert_allclose(s.alpha_bar.numpy(), np.cumprod(1 - b), rtol=1e-12)
    np.testing.assert_allclose(s.alphas.numpy(), 1 - b, rtol=0, atol=0)
    assert s.betas.dtype == torch.float64 and s.betas.shape == (s.T + 1,)


@pytest.mark.parametrize("s", ALL)
def test_derived_tensors_follow_their_definitions(s):
    t = np.arange(1, s.T + 1)
    ab, b = s.alpha_bar.numpy(), s.betas.numpy()
    np.testing.assert_allclose(s.alpha_bar_prev.numpy()[t], ab[t - 1])
    np.testing.assert_allclose(s.beta_tilde.numpy()[t], (1 - ab[t - 1]) / (1 - ab[t]) * b[t], rtol=1e-12)
    np.testing.assert_allclose(s.coef_x0.numpy()[t], np.sqrt(ab[t - 1]) * b[t] / (1 - ab[t]), rtol=1e-12)
    np.testing.assert_allclose(s.coef_xt.numpy()[t], np.sqrt(1 - b[t]) * (1 - ab[t - 1]) / (1 - ab[t]), rtol=1e-12)
    np.testing.assert_allclose(s.snr.numpy()[t], ab[t] / (1 - ab[t]), rtol=1e-12)
    assert math.isinf(s.snr[0].item())
    assert (np.diff(ab) < 0).all(), "alpha_bar must decrease strictly"


@pytest.mark.parametrize("s", ALL)
def test_beta_tilde_1_is_exactly_zero(s):
    # alpha_bar_0 = 1, so beta_tilde_1 = (1 - 1) / (1 - alpha_bar_1) * beta_1 = 0 exactly, not approximately.
    assert s.beta_tilde[1].item() == 0.0
    assert (s.beta_tilde[2:] > 0).all()
    assert (s.beta_tilde[1:] <= s.betas[1:]).all()


def test_linear_alpha_bar_T_matches_closed_product():
    T, b1, bT = 1000, 1e-4, 0.02
    s = Schedule.linear(T, b1, bT)
    expected = math.prod(1 - (b1 + (k - 1) * (bT - b1) / (T - 1)) for k in range(1, T + 1))
    assert s.alpha_bar[T].item() == pytest.approx(expected, rel=1e-10)
    assert s.alpha_bar[1].item() == pytest.approx(1 - b1, rel=1e-14)
    assert s.betas[1].item() == pytest.approx(b1) and s.betas[T].item() == pytest.approx(bT)


def test_cosine_matches_defining_formula():
    T, off = 1000, 0.008
    s = Schedule.cosine(T, s=off)
    f = lambda t: math.cos((t / T + off) / (1 + off) * math.pi / 2) ** 2
    # Clipping at 0.999 only touches the last steps; before them alpha_bar_t = f(t) / f(0).
    unclipped = [t for t in range(1, T + 1) if s.betas[t] < 0.999]
    assert len(unclipped) > 0.99 * T
    for t in unclipped[:: 37] + [unclipped[-1]]:
        assert s.alpha_bar[t].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert s.betas.max().item() <= 0.999


def test_quadratic_and_sigmoid_endpoints_and_monotone():
    for s in (Schedule.quadratic(100, 1e-4, 0.02), Schedule.sigmoid(100, 1e-4, 0.02)):
        assert s.betas[1].item() == pytest.approx(1e-4) and s.betas[100].item() == pytest.approx(0.02)
        assert (torch.diff(s.betas[1:]) >= 0).all()
    q = Schedule.quadratic(100, 1e-4, 0.02)
    np.testing.assert_allclose(np.sqrt(q.betas[1:].numpy()), np.linspace(1e-2, math.sqrt(0.02), 100), rtol=1e-12)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Schedule.linear(0), "T"),
        (lambda: Schedule.linear(-3), "T"),
        (lambda: Schedule.linear(10.5), "T"),
        (lambda: Schedule.cosine(0), "T"),
        (lambda: Schedule.linear(10, 0.0, 0.02), "beta_1"),
        (lambda: Schedule.linear(10, 1e-4, 1.0), "beta_T"),
        (lambda: Schedule.linear(10, -0.1, 0.02), "beta_1"),
        (lambda: Schedule.linear(10, 0.03, 0.02), "beta_1 <= beta_T"),
        (lambda: Schedule.quadratic(10, 0.03, 0.02), "beta_1 <= beta_T"),
        (lambda: Schedule.linear(10, float("nan"), 0.02), "beta_1"),
        (lambda: Schedule.linear(10, 1e-4, float("inf")), "beta_T"),
        (lambda: Schedule.from_betas([0.1, float("nan")]), "finite"),
        (lambda: Schedule.from_betas([0.1, 1.5]), "(0, 1)"),
        (lambda: Schedule.from_betas([0.1, 0.0]), "(0, 1)"),
        (lambda: Schedule.from_betas([]), "T"),
        (lambda: Schedule.make("wiggly", 10), "linear"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, words):
    with pytest.raises(ValueError) as err:
        make()
    assert words in str(err.value)


def test_schedule_problems_names_every_bad_argument():
    assert schedule_problems(1000, 1e-4, 0.02) == {} and schedule_problems() == {}
    assert set(schedule_problems(0, 0.0, 1.5)) == {"T", "beta_1", "beta_T"}
    assert set(schedule_problems(10, 0.03, 0.02)) == {"beta_1"}  # beta_1 > beta_T
    assert set(schedule_problems(beta_T=float("nan"))) == {"beta_T"}
    with pytest.raises(ValueError) as err:
        Schedule.sigmoid(0, 0.0, 1.5)
    assert all(msg in str(err.value) for msg in schedule_problems(0, 0.0, 1.5).values())  # all of them at once


def test_check_t_and_extract():
    s = Schedule.linear(10)
    check_t(torch.tensor([0, 3, 10]), 10)  # by default any index of the schedule, t = 0 included
    with pytest.raises(ValueError, match="0..10"):
        check_t(torch.tensor([-1, 3]), 10)
    with pytest.raises(ValueError, match="1..10"):
        check_t(torch.tensor([0, 3]), 10, first=1)  # a reverse step starts at t = 1
    with pytest.raises(ValueError, match="1..10"):
        check_t(torch.tensor([11]), 10, first=1)
    with pytest.raises(ValueError, match="integer"):
        check_t(torch.tensor([1.0]), 10)
    x = torch.zeros(3, 2, 4, 4, dtype=torch.float32)
    out = extract(s.alpha_bar, torch.tensor([1, 5, 10]), x)
    assert out.shape == (3, 1, 1, 1) and out.dtype == torch.float32
    assert out.flatten().tolist() == pytest.approx([s.alpha_bar[i].item() for i in (1, 5, 10)])


def test_make_and_to():
    s = Schedule.make("linear", 50, 1e-3, 0.05)
    assert torch.equal(s.betas, Schedule.linear(50, 1e-3, 0.05).betas)
    assert Schedule.make("cosine", 50).T == 50
    assert s.to("cpu").alpha_bar.dtype == torch.float64


@pytest.mark.parametrize("beta, T", [(0.01, 1000), (1e-4, 1000), (0.3, 7), (0.5, 1)])
def test_summary_of_a_constant_schedule(beta, T):
    # beta_1 = beta_T = beta: alpha_bar_t = (1 - beta)^t, so every readout has a closed form.
    got = summarize(Schedule.linear(T, beta, beta))
    ab_T = (1 - beta) ** T
    assert math.isclose(got.alpha_bar_T, ab_T, rel_tol=1e-12) and math.isclose(got.sqrt_alpha_bar_T, ab_T**0.5, rel_tol=1e-12)
    assert math.isclose(got.sum_beta, T * beta, rel_tol=1e-12)
    first_noised = math.floor(math.log(NOISED) / math.log(1 - beta)) + 1  # first t with (1 - beta)^t < 0.01
    assert math.isclose(got.share_noised, max(0, T - first_noised + 1) / T)
    t_half = math.ceil(math.log(0.5) / math.log(1 - beta))  # first t with (1 - beta)^t <= 1/2, i.e. SNR_t <= 1
    assert got.t_snr_1 == (t_half if t_half <= T else None)
    assert got.finishes == (ab_T <= FINISHED)


def test_summary_flags_schedules_that_do_not_finish():
    ddpm, quad, cos = (summarize(Schedule.make(k, 1000, 1e-4, 0.02)) for k in ("linear", "quadratic", "cosine"))
    assert ddpm.finishes and 1e-5 < ddpm.alpha_bar_T < FINISHED
    assert not quad.finishes and 5e-4 < quad.alpha_bar_T < 1e-3  # about 2.7% of x0 is left in x_T
    assert cos.finishes and cos.alpha_bar_T < 1e-8
    slow = summarize(Schedule.linear(1000, 1e-4, 1e-4))  # chapter 3's sigma = 0.01: never below 0.01
    assert slow.share_noised == 0 and not slow.finishes and slow.t_snr_1 is None
