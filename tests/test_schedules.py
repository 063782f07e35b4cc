"""Schedules against their defining formulas (chapter 4)."""

import math

import numpy as np
import pytest
import torch

from ddpm_edu.schedules import (
    FINISHED,
    KINDS,
    NOISED,
    Schedule,
    beta_T_for_sum,
    check_t,
    extract,
    schedule_problems,
    summarize,
    summary_table,
)

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


# ------------------------------------------------------------------ comparing schedules (chapters 4-5)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("beta_T", [0.05, 0.01])  # with T = 400 the first finishes for every kind, the second for none but cosine
def test_summarize_matches_sums_and_products_of_the_betas(kind, beta_T):
    s = Schedule.make(kind, 400, 1e-4, beta_T)
    b = s.betas.numpy()[1:]
    ab = np.cumprod(1 - b)  # alpha_bar_1 .. alpha_bar_T, from the betas alone
    out = summarize(s)
    assert out.sum_beta == pytest.approx(b.sum(), rel=1e-12)
    assert out.alpha_bar_1 == pytest.approx(1 - b[0], rel=1e-12)
    assert out.alpha_bar_T == pytest.approx(ab[-1], rel=1e-9)
    assert out.sqrt_alpha_bar_T == pytest.approx(math.sqrt(ab[-1]), rel=1e-9)
    assert out.t_snr_1 == next((t for t in range(1, 401) if ab[t - 1] <= 0.5), None)  # SNR <= 1 iff alpha_bar <= 1/2
    assert out.finishes == (ab[-1] <= FINISHED)
    if out.finishes:
        assert out.share_noised == pytest.approx(np.mean(ab < NOISED), abs=1e-15)
    else:
        assert out.share_noised is None  # not comparable: never rewarded for not finishing


@pytest.mark.parametrize("beta, T", [(0.01, 1000), (1e-4, 1000), (0.3, 7), (0.5, 1)])
def test_summary_of_a_constant_schedule(beta, T):
    # beta_1 = beta_T = beta: alpha_bar_t = (1 - beta)^t, so every readout has a closed form.
    got = summarize(Schedule.linear(T, beta, beta))
    ab_T = (1 - beta) ** T
    assert math.isclose(got.alpha_bar_T, ab_T, rel_tol=1e-12) and math.isclose(got.sqrt_alpha_bar_T, ab_T**0.5, rel_tol=1e-12)
    assert math.isclose(got.alpha_bar_1, 1 - beta, rel_tol=1e-15)
    assert math.isclose(got.sum_beta, T * beta, rel_tol=1e-12)
    assert got.finishes == (ab_T <= FINISHED)
    first_noised = math.floor(math.log(NOISED) / math.log(1 - beta)) + 1  # first t with (1 - beta)^t < 0.01
    if got.finishes:
        assert math.isclose(got.share_noised, max(0, T - first_noised + 1) / T)
    else:
        assert got.share_noised is None
    t_half = math.ceil(math.log(0.5) / math.log(1 - beta))  # first t with (1 - beta)^t <= 1/2, i.e. SNR_t <= 1
    assert got.t_snr_1 == (t_half if t_half <= T else None)


def test_summarize_closed_forms_and_the_flag_for_schedules_that_do_not_finish():
    T, b1, bT = 1000, 1e-4, 0.02
    lin = summarize(Schedule.linear(T, b1, bT))
    assert lin.sum_beta == pytest.approx(T * (b1 + bT) / 2, rel=1e-12)  # arithmetic series
    assert lin.finishes and 1e-5 < lin.alpha_bar_T < FINISHED and 0 < lin.share_noised < 1
    # With the same beta_1, beta_T the quadratic schedule adds less noise (sqrt(beta) is linear, so
    # sum beta = T (b1 + bT + sqrt(b1 bT)) / 3 + O(1)) and stops short of the 1e-4 threshold.
    quad = summarize(Schedule.quadratic(T, b1, bT))
    assert quad.sum_beta == pytest.approx(T * (b1 + bT + math.sqrt(b1 * bT)) / 3, rel=2e-3)
    assert not quad.finishes and quad.share_noised is None  # never rewarded for not finishing
    sq = float((Schedule.quadratic(T, b1, bT).betas ** 2).sum())  # b + b^2/2 <= -log(1 - b) <= b + b^2 for b <= 1/2
    assert math.exp(-quad.sum_beta - sq) < quad.alpha_bar_T < math.exp(-quad.sum_beta - sq / 2)
    assert summarize(Schedule.cosine(T)).finishes
    # chapter 3's sigma = 0.01 (beta = 1e-4): never near noise, no SNR = 1 crossing, and no share to compare.
    slow = summarize(Schedule.linear(T, 1e-4, 1e-4))
    assert not slow.finishes and slow.share_noised is None and slow.t_snr_1 is None


def _quadratic_beta_T(T, b1, total):
    """Closed form: sum_k (a + d u_k)^2 = T a^2 + a d T + d^2 T (2T - 1) / (6 (T - 1)), u_k = (k-1)/(T-1), a = sqrt(b1)."""
    a, C = math.sqrt(b1), T * (2 * T - 1) / (6 * (T - 1))
    d = (-a * T + math.sqrt((a * T) ** 2 - 4 * C * (T * a * a - total))) / (2 * C)
    return (a + d) ** 2


@pytest.mark.parametrize("T, b1, total", [(1000, 1e-4, 10.05), (200, 1e-3, 5.0), (50, 1e-2, 3.0)])
def test_beta_T_for_sum_against_closed_forms(T, b1, total):
    # linear: sum = T (b1 + bT) / 2; sigmoid: its curve is symmetric about the middle step, so the same sum.
    assert beta_T_for_sum("linear", T, b1, total) == pytest.approx(2 * total / T - b1, rel=1e-9)
    assert beta_T_for_sum("sigmoid", T, b1, total) == pytest.approx(2 * total / T - b1, rel=1e-9)
    assert beta_T_for_sum("quadratic", T, b1, total) == pytest.approx(_quadratic_beta_T(T, b1, total), rel=1e-9)


def test_beta_T_for_sum_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="cosine"):
        beta_T_for_sum("cosine", 100, 1e-4, 1.0)
    with pytest.raises(ValueError, match="cannot reach"):
        beta_T_for_sum("linear", 100, 1e-2, 0.5)  # below T beta_1 = 1
    with pytest.raises(ValueError, match="cannot reach"):
        beta_T_for_sum("linear", 100, 1e-2, 200.0)  # more than T


def test_summary_table_has_one_row_per_schedule_and_flags_the_unfinished():
    table = summary_table({"lin": Schedule.linear(1000), "quad": Schedule.quadratic(1000)})
    head, rule, lin, quad = table.splitlines()  # a Markdown table: header, rule, one row per schedule
    cells = lambda row: [c.strip() for c in row.strip("|").split("|")]
    assert "finishes" in cells(head) and len({len(cells(r)) for r in (head, rule, lin, quad)}) == 1
    r = summarize(Schedule.linear(1000))
    assert cells(lin) == ["lin", f"{r.sum_beta:.2f}", f"{r.alpha_bar_T:.1e}", f"{r.sqrt_alpha_bar_T:.2g}", "yes",
                          str(r.t_snr_1), f"{r.share_noised:.0%}"]
    assert cells(quad)[0] == "quad" and cells(quad)[4] == "no"
    assert cells(quad)[-1] == "-"  # no share of near-noise steps for an unfinished schedule


def test_assert_on_device_passes_and_fails():
    from ddpm_edu.schedules import assert_on_device

    assert_on_device(torch.tensor(True), "never shown")
    with pytest.raises(RuntimeError, match="t must lie in 1..10"):  # on the CPU the assert fires at once
        assert_on_device(torch.tensor(False), "t must lie in 1..10")
