"""ddpm_edu.eval.metrics: the energy distance against its closed form for Gaussians, and the digits classifier score."""

import math

import pytest
import torch

from ddpm_edu.eval import metrics

REPS, N = 20, 300  # replicates of the estimate, and points per set in each


def replicated(a: float, b: float, seed: int) -> tuple[float, float]:
    """Mean and standard error of REPS independent estimates of D(N(a, 1), N(b, 1)) from N points each."""
    g = torch.Generator().manual_seed(seed)
    est = torch.tensor([metrics.energy_distance(a + torch.randn(N, generator=g, dtype=torch.float64),
                                                b + torch.randn(N, generator=g, dtype=torch.float64))
                        for _ in range(REPS)])
    return float(est.mean()), float(est.std() / math.sqrt(REPS))


def gaussian_energy_distance(a: float, b: float) -> float:
    """Closed form: X - Y ~ N(mu, 2) with mu = a - b, so E|X - Y| is a folded normal's mean,
    2/sqrt(pi) exp(-mu^2 / 4) + mu erf(mu / 2); and E|X - X'| = E|Y - Y'| = 2 / sqrt(pi)."""
    mu = a - b
    e_xy = 2 / math.sqrt(math.pi) * math.exp(-(mu**2) / 4) + mu * math.erf(mu / 2)
    return e_xy - 2 / math.sqrt(math.pi)


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (0.0, 1.0), (0.5, -1.5)])
def test_energy_distance_matches_the_closed_form_for_gaussians(a, b):
    mean, se = replicated(a, b, seed=int(10 * (a + 3 * b)) + 7)
    assert abs(mean - gaussian_energy_distance(a, b)) < 5 * se, (mean, se, gaussian_energy_distance(a, b))


def test_energy_distance_is_symmetric_and_uses_u_statistics_within_sets():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 2, generator=g), torch.randn(150, 2, generator=g) + 0.3
    assert metrics.energy_distance(x, y) == pytest.approx(metrics.energy_distance(y, x), rel=1e-12)
    # A set against itself: with S the sum of all n^2 distances, the cross term is S / n^2 (diagonal
    # included) and each within term S / (n (n - 1)) (diagonal left out), so D = S / n^2 - S / (n (n - 1)).
    d = torch.cdist(x.double(), x.double())
    assert metrics.energy_distance(x, x) == pytest.approx(float(d.mean() - d.sum() / (200 * 199)), rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.energy_distance(x[:1], y)


def test_classifier_is_accurate_on_held_out_digits():
    x_train, y_train, x_test, y_test = metrics.digits_split()
    assert len(x_test) == pytest.approx(metrics.HELD_OUT * 1797, abs=1)
    assert set(y_test.tolist()) == set(range(10))
    assert metrics.classifier_accuracy() > 0.9  # pixel-wise logistic regression gets ~0.97 on these digits


def test_real_digits_are_mostly_confident_and_the_per_pixel_gaussian_is_not():
    _, _, x_test, _ = metrics.digits_split()
    real = metrics.digits_score(x_test)
    floor = metrics.digits_score(metrics.pixel_gaussian_digits(1000, torch.Generator().manual_seed(0)))
    assert real.n == len(x_test) and sum(real.histogram) == real.n and real.classes_present == 10
    assert real.confident > 0.7 and floor.confident < 0.3, (real, floor)
    assert real.confident_se == pytest.approx(math.sqrt(real.confident * (1 - real.confident) / real.n))


def test_digits_confident_flags_the_images_that_digits_score_counts():
    _, _, x_test, _ = metrics.digits_split()
    x = torch.cat([x_test[:100], metrics.pixel_gaussian_digits(100, torch.Generator().manual_seed(3))])
    flags = metrics.digits_confident(x)
    assert flags.shape == (200,) and flags.dtype == torch.bool
    assert flags.double().mean().item() == metrics.digits_score(x).confident
    assert torch.equal(flags, metrics.digits_probs(x).max(1).values > metrics.CONFIDENT)


def test_pixel_gaussian_has_the_digits_per_pixel_moments():
    from ddpm_edu.data.digits import load_digits

    d = load_digits()
    n = 4000
    x = metrics.pixel_gaussian_digits(n, torch.Generator().manual_seed(1))
    assert x.shape == (n, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    inner = (d.std(0) > 0.2) & (d.mean(0).abs() < 0.2)  # pixels that clamping to [-1, 1] barely touches
    se = d.std(0) / math.sqrt(n)  # standard error of a per-pixel mean
    assert ((x.mean(0) - d.mean(0)).abs()[inner] < 5 * se[inner]).all()


def test_digits_probs_rejects_other_shapes():
    with pytest.raises(ValueError, match="8, 8"):
        metrics.digits_probs(torch.zeros(3, 64))


# ---------------------------------------------------------------------- moments
def test_moment_z_scores_of_correct_moments_are_standard_normal():
    """Over many independent samples with the right moments, every z-score has mean 0 and sd 1 (up to the
    spread of 400 replicates: SE 1/sqrt(400) = 0.05 for the mean, about 0.035 for the sd)."""
    g = torch.Generator().manual_seed(0)
    L = torch.tensor([[1.0, 0.0], [0.6, 0.5]], dtype=torch.float64)
    mean, cov = torch.tensor([0.3, -1.0], dtype=torch.float64), L @ L.T
    z = torch.stack([metrics.moment_z_scores(mean + torch.randn(500, 2, generator=g, dtype=torch.float64) @ L.T,
                                             mean, cov) for _ in range(400)])  # (400, 5)
    assert z.shape == (400, 5)
    assert (z.mean(0).abs() < 4 * 0.05).all(), z.mean(0)
    assert ((z.std(0) - 1).abs() < 4 * 0.035).all(), z.std(0)


def test_moment_z_scores_flag_a_wrong_variance_and_need_no_gaussian():
    """Uniform(-1, 1) has variance 1/3: n = 20 000 resolve that to about 0.5 %, so claiming 0.36 is
    off by about 12 SE (the SE of a variance estimate is sqrt((mu_4 - sigma^4) / n), 0.0021 here)."""
    x = torch.rand(20_000, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    zero = torch.zeros(1, dtype=torch.float64)
    right = metrics.moment_z_scores(x, zero, torch.tensor([[1 / 3]], dtype=torch.float64))
    wrong = metrics.moment_z_scores(x, zero, torch.tensor([[0.36]], dtype=torch.float64))
    assert right.abs().max() < 4 and wrong[1] < -8
    with pytest.raises(ValueError, match="cov"):
        metrics.moment_z_scores(x, zero, torch.eye(2))


def test_energy_distance_se_is_unbiased_and_its_standard_error_matches_the_spread_of_replicates():
    """50 replicates of D(N(0, 1), N(1, 1)) from 8 groups of 100 points: their mean lies within 4 standard
    errors of the closed form, and the reported SE agrees with the replicates' own spread. The spread of
    50 replicates is known to about 1 / sqrt(2 * 49) = 10 %, the mean SE to a few %, so a ratio within
    [0.7, 1.4] (3 to 4 of those errors) still catches an SE off by a factor sqrt(2) either way."""
    g = torch.Generator().manual_seed(11)
    reps = [metrics.energy_distance_se(torch.randn(800, generator=g, dtype=torch.float64),
                                       1 + torch.randn(800, generator=g, dtype=torch.float64)) for _ in range(50)]
    means, ses = torch.tensor([m for m, _ in reps]), torch.tensor([se for _, se in reps])
    assert abs(means.mean() - gaussian_energy_distance(0.0, 1.0)) < 4 * means.std() / math.sqrt(50)
    assert 0.7 < float(means.std() / ses.mean()) < 1.4, (float(means.std()), float(ses.mean()))
    with pytest.raises(ValueError, match="groups"):
        metrics.energy_distance_se(torch.zeros(10, 2), torch.zeros(10, 2), groups=8)


def test_energy_distance_se_does_not_depend_on_the_order_of_the_points():
    """Two draws of the same two-cluster law, one listed cluster by cluster: cut into consecutive parts
    without shuffling, its parts would hold one cluster each and the distance would be far from 0."""
    g = torch.Generator().manual_seed(5)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    ordered = torch.cat([centres[0] + 0.3 * torch.randn(800, 2, generator=g),
                         centres[1] + 0.3 * torch.randn(800, 2, generator=g)])
    mixed = centres[torch.randint(0, 2, (1600,), generator=g)] + 0.3 * torch.randn(1600, 2, generator=g)
    d, se = metrics.energy_distance_se(ordered, mixed)
    assert abs(d) < 4 * se and se < 0.05
    assert metrics.energy_distance_se(ordered, mixed) == (d, se)  # reproducible by default


# ---------------------------------------------------------------------- clipping
def test_clip_probe_passes_eps_through_and_sees_every_step():
    from ddpm_edu.analytic import GaussianEps
    from ddpm_edu.sampling import sample
    from ddpm_edu.schedules import Schedule

    s = Schedule.cosine(30)
    model = GaussianEps(0.0, 0.8, s)
    probe = metrics.ClipProbe(model, s)
    plain = sample(model, (64, 1), s, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    probed = sample(probe, (64, 1), s, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(plain, probed)
    assert sorted(probe.outside) == sorted(probe.max_abs) == sorted(probe.shift) == list(range(1, 31))


def test_clip_probe_measures_the_guess_and_the_move_of_the_posterior_mean():
    """x_t built from a chosen x0 and eps, so that x0_hat is that x0; the move of the mean is checked
    against q_posterior at the clamped and the raw guess."""
    from ddpm_edu.forward import q_sample
    from ddpm_edu.posterior import q_posterior
    from ddpm_edu.schedules import Schedule

    s, t = Schedule.cosine(50), 20
    x0 = torch.tensor([[0.5, -1.5, 3.0, 0.9], [-0.2, 1.2, 0.0, -4.0]], dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xt = q_sample(x0, t, eps, s)
    probe = metrics.ClipProbe(lambda x, tt: eps, s)
    assert torch.equal(probe(xt, torch.full((2,), t)), eps)
    assert probe.outside[t] == pytest.approx(4 / 8) and probe.max_abs[t] == pytest.approx(4.0)
    moved = (q_posterior(x0.clamp(-1, 1), xt, t, s)[0] - q_posterior(x0, xt, t, s)[0]).abs().mean()
    assert probe.shift[t] == pytest.approx(float(moved) / s.beta_tilde[t].item() ** 0.5, rel=1e-9)
    probe(q_sample(x0, 1, eps, s), torch.full((2,), 1))
    assert math.isnan(probe.shift[1])  # sigma_1 = 0: no unit to measure the move in
    with pytest.raises(ValueError, match="share its time step"):
        probe(xt, torch.tensor([t, t + 1]))


def test_x0_hat_errors_divide_the_noise_error_by_the_snr_and_clamping_never_hurts():
    """A model that knows x0 but errs by a constant 0.1 in eps: mse_eps = 0.01 and mse_x0 = 0.01 / SNR_t;
    clamping can only help, and without the error the guess is x0 itself."""
    from ddpm_edu.posterior import eps_from_x0
    from ddpm_edu.schedules import Schedule

    s = Schedule.cosine(100)
    g = torch.Generator().manual_seed(4)
    x0 = torch.rand(64, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    knows_x0 = lambda xt, t: eps_from_x0(xt.double(), t, x0, s)  # noqa: E731
    ts = [1, 30, 90, 100]
    for row, t in zip(metrics.x0_hat_errors(lambda xt, t: knows_x0(xt, t) + 0.1, x0, s, ts, g), ts):
        assert row["t"] == t and row["snr"] == s.snr[t].item()
        assert row["mse_eps"] == pytest.approx(0.01, rel=1e-4)  # the float32 input to the model rounds x_t
        assert row["mse_x0"] == pytest.approx(row["mse_eps"] / row["snr"], rel=1e-9)
        assert row["mse_x0_clamped"] <= row["mse_x0"]
    exact = metrics.x0_hat_errors(knows_x0, x0, s, [50], g)[0]
    assert exact["mse_x0"] < 1e-12 and exact["outside"] == 0.0


# --------------------------------------------------------------------------- guided digits (chapter 10)
def test_mean_pairwise_distance_is_the_pair_average_and_its_se_the_jackknife():
    x = torch.randn(9, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    flat = x.flatten(1)

    def pair_mean(rows: list[int]) -> float:
        d = [float((flat[i] - flat[j]).norm()) for i in rows for j in rows if i != j]
        return sum(d) / len(d)

    mean, se = metrics.mean_pairwise_distance(x)
    assert mean == pytest.approx(pair_mean(list(range(9))), abs=1e-12)
    loo = torch.tensor([pair_mean([j for j in range(9) if j != i]) for i in range(9)], dtype=torch.float64)
    assert se == pytest.approx(math.sqrt(8 / 9 * float(((loo - loo.mean()) ** 2).sum())), abs=1e-12)
    with pytest.raises(ValueError, match="at least 3 rows"):
        metrics.mean_pairwise_distance(x[:2])


def test_mean_pairwise_distance_is_unbiased_and_its_se_matches_the_spread_of_replicates():
    """For N(0, I_d), X - X' ~ N(0, 2 I_d), so E||X - X'|| = 2 Gamma((d + 1) / 2) / Gamma(d / 2). 60 replicates
    of 40 points in 5-D: the mean lies within 4 standard errors of it, and the jackknife SE agrees with the
    replicates' spread (known to about 9 %, so [0.7, 1.4] still catches a factor sqrt(2))."""
    d, g = 5, torch.Generator().manual_seed(3)
    exact = 2 * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
    reps = [metrics.mean_pairwise_distance(torch.randn(40, d, generator=g, dtype=torch.float64)) for _ in range(60)]
    means, ses = torch.tensor([m for m, _ in reps]), torch.tensor([s for _, s in reps])
    assert abs(float(means.mean()) - exact) < 4 * float(means.std()) / math.sqrt(60)
    assert 0.7 < float(means.std() / ses.mean()) < 1.4, (float(means.std()), float(ses.mean()))


def test_class_score_of_real_digits_of_the_class_and_of_another():
    from ddpm_edu.data.digits import load_digit_labels, load_digits

    x, y = load_digits(), load_digit_labels()
    _, _, x_test, y_test = metrics.digits_split()
    sevens = metrics.class_score(x_test[y_test == 7], 7)  # held-out sevens, asked for as sevens
    assert sevens.on_class > 0.9 and sevens.confident <= sevens.on_class
    assert sevens.n == int((y_test == 7).sum())
    assert sevens.on_class_se == pytest.approx(math.sqrt(sevens.on_class * (1 - sevens.on_class) / sevens.n))
    assert (sevens.real_diversity, sevens.real_diversity_se) == metrics.mean_pairwise_distance(x[y == 7])
    assert abs(sevens.diversity - sevens.real_diversity) < 4 * math.hypot(sevens.diversity_se, sevens.real_diversity_se)
    ones = metrics.class_score(x_test[y_test == 1], 7)  # ones, asked for as sevens
    assert ones.on_class < 0.1 and ones.confident < 0.1
    same = metrics.class_score(x_test[y_test == 7][:1].repeat(20, 1, 1, 1), 7)  # no variety at all
    assert same.diversity == 0 and same.diversity_se == 0


def test_class_score_refuses_bad_input():
    for label in (10, -1, True, 2.0):
        with pytest.raises(ValueError, match="label must be a digit"):
            metrics.class_score(torch.zeros(4, 1, 8, 8), label)
    with pytest.raises(ValueError, match="expected digits"):
        metrics.class_score(torch.zeros(4, 3, 8, 8), 1)
