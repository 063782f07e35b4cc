"""Sample quality, measured: a classifier score for generated digits and the energy distance for 2-D points.

Chapter 8 compares samplers and their settings with them. FID, the paper's measure of CIFAR-10 samples
(chapter 9), is in :mod:`ddpm_edu.eval.fid`.

Digits. A logistic-regression classifier is fitted once per process on a fixed 75 % of
scikit-learn's 8x8 digits (:func:`digits_split`) and judged on the other 25 %. A sample counts
as *confident* when the classifier's largest class probability exceeds 0.9. Held-out real
digits give the ceiling of that fraction and chapter 1's per-pixel Gaussian
(:func:`pixel_gaussian_digits`) the floor; the class histogram shows whether every digit is
generated.

Guided digits (chapter 10). :func:`class_score` measures samples drawn for one requested class: the
fraction the classifier assigns to that class, the fraction it assigns to it with confidence, and the
diversity of the batch, the mean pairwise distance between its images (:func:`mean_pairwise_distance`),
beside the same for the real digits of that class. Guidance trades the second kind for the first.

2-D points. The energy distance between the laws of X and Y (Szekely and Rizzo 2013), halved::

    D(X, Y) = E||X - Y|| - 1/2 E||X - X'|| - 1/2 E||Y - Y'||  >= 0,

zero exactly when the two laws agree. :func:`energy_distance` estimates it with U-statistics
(the within-set means leave out the zero diagonal), so the estimate is unbiased.

Clipping. :func:`x0_hat_errors` measures the network's guess x0_hat on real data at chosen t, with and
without clamping to [-1, 1]; :class:`ClipProbe` wraps a network and records, at every t of a sampling
run, how much of x0_hat lies outside [-1, 1] and how far clamping it would move the reverse step's mean.

Moments. :func:`moment_z_scores` says how far a sample's mean and covariance lie from given ones,
in standard errors; chapter 8 checks DDIM's states against the closed-form q(x_t) with it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.forward import q_sample
from ddpm_edu.posterior import x0_from_eps
from ddpm_edu.schedules import Schedule

__all__ = [
    "CONFIDENT", "HELD_OUT", "digits_split", "digits_classifier", "classifier_accuracy", "digits_probs",
    "DigitsScore", "digits_score", "digits_confident", "ClassScore", "class_score", "mean_pairwise_distance",
    "pixel_gaussian_digits", "energy_distance", "energy_distance_se",
    "x0_hat_errors", "ClipProbe", "moment_z_scores",
]

CONFIDENT = 0.9  # a sample is "confident" when max_k p(k | x) > CONFIDENT
HELD_OUT = 0.25  # share of the digits held out from the classifier's training
SPLIT_SEED = 0


# --------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=1)
def digits_split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The fixed, class-stratified split of the 1797 digits: (x_train, y_train, x_test, y_test).

    x: (N, 1, 8, 8) floats in [-1, 1] (as :func:`ddpm_edu.data.digits.load_digits`), y: (N,) int64 labels.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    from ddpm_edu.data.digits import load_digits

    x, y = load_digits(), torch.from_numpy(_sk_digits().target).long()
    i_train, i_test = train_test_split(np.arange(len(y)), test_size=HELD_OUT, random_state=SPLIT_SEED,
                                       stratify=y.numpy())
    i_train, i_test = torch.from_numpy(i_train), torch.from_numpy(i_test)
    return x[i_train], y[i_train], x[i_test], y[i_test]


@functools.lru_cache(maxsize=1)
def digits_classifier():
    """A multinomial logistic regression on the 64 pixels of the training part, fitted once per process."""
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, _, _ = digits_split()
    return LogisticRegression(C=1.0, max_iter=2000).fit(x_train.flatten(1).double().numpy(), y_train.numpy())


def digits_probs(x: Tensor) -> Tensor:
    """Class probabilities p(k | x), (B, 10), for images x: (B, 1, 8, 8).

    Pixels are first clamped to [-1, 1], the range in which images are shown and saved.
    """
    if x.shape[1:] != (1, 8, 8):
        raise ValueError(f"expected digits of shape (B, 1, 8, 8), got {tuple(x.shape)}")
    feats = x.detach().double().cpu().clamp(-1, 1).flatten(1).numpy()
    return torch.from_numpy(digits_classifier().predict_proba(feats))


def classifier_accuracy() -> float:
    """The classifier's accuracy on the held-out digits."""
    _, _, x_test, y_test = digits_split()
    return float((digits_probs(x_test).argmax(1) == y_test).double().mean())


@dataclass(frozen=True)
class DigitsScore:
    """How a batch of images looks to the digits classifier."""

    confident: float  # fraction of images with max_k p(k | x) > CONFIDENT
    histogram: tuple[int, ...]  # how many images are labelled 0, 1, ..., 9
    n: int  # number of images

    @property
    def classes_present(self) -> int:
        """How many of the 10 digits occur at least once among the labels."""
        return sum(c > 0 for c in self.histogram)

    @property
    def confident_se(self) -> float:
        """Standard error of ``confident``, a binomial proportion: sqrt(p (1 - p) / n)."""
        return (self.confident * (1 - self.confident) / self.n) ** 0.5


def digits_confident(x: Tensor) -> Tensor:
    """Which images the classifier is confident about, max_k p(k | x) > CONFIDENT: (B,) bool for x: (B, 1, 8, 8).

    Two sample sets drawn from the same x_T pair up image by image; the standard error of the difference
    of their confident fractions is then the standard deviation of the paired differences over sqrt(B).
    """
    return digits_probs(x).max(1).values > CONFIDENT


def digits_score(x: Tensor) -> DigitsScore:
    """The confident fraction and the class histogram of images x: (B, 1, 8, 8) in [-1, 1]."""
    p = digits_probs(x)
    conf, label = p.max(1)
    hist = torch.bincount(label, minlength=10)
    return DigitsScore(float((conf > CONFIDENT).double().mean()), tuple(int(c) for c in hist), len(p))


@dataclass(frozen=True)
class ClassScore:
    """How generated digits of one requested class look to the classifier, and how varied they are (chapter 10)."""

    label: int  # the requested class
    n: int  # number of images
    on_class: float  # fraction the classifier assigns to the class: argmax_k p(k | x) = label
    on_class_se: float  # its standard error, a binomial proportion's sqrt(p (1 - p) / n)
    confident: float  # fraction assigned to it with confidence: p(label | x) > CONFIDENT
    confident_se: float  # its standard error, likewise
    diversity: float  # mean pairwise L2 distance between the images (64 pixels in [-1, 1])
    diversity_se: float  # its jackknife standard error (:func:`mean_pairwise_distance`)
    real_diversity: float  # the same for every real digit of the class (about 180 of the 1797)
    real_diversity_se: float  # its jackknife standard error


def class_score(x: Tensor, label: int) -> ClassScore:
    """Fidelity and diversity of images x: (B, 1, 8, 8), B >= 3, drawn for class ``label`` (0..9).

    Pixels are clamped to [-1, 1] first, as :func:`digits_probs` and the saved images do.
    """
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label!r}")
    from ddpm_edu.data.digits import load_digit_labels, load_digits

    p = digits_probs(x)  # (B, 10), checks the shape
    on = (p.argmax(1) == label).double().mean().item()
    sure = (p[:, label] > CONFIDENT).double().mean().item()
    div, div_se = mean_pairwise_distance(x.detach().double().cpu().clamp(-1, 1))
    real, real_se = mean_pairwise_distance(load_digits()[load_digit_labels() == label])
    n = len(p)
    return ClassScore(label, n, on, (on * (1 - on) / n) ** 0.5, sure, (sure * (1 - sure) / n) ** 0.5,
                      div, div_se, real, real_se)


def mean_pairwise_distance(x: Tensor) -> tuple[float, float]:
    """The mean L2 distance between distinct rows of x: (n, ...), n >= 3, and its jackknife standard error.

    U = sum_{i != j} ||x_i - x_j|| / (n (n - 1)), a U-statistic; leaving row i out gives
    U_(i) = (S - 2 r_i) / ((n - 1)(n - 2)) with S the full double sum and r_i row i's sum, and
    SE^2 = (n - 1) / n sum_i (U_(i) - mean U_(.))^2. Computed in float64.
    """
    x = x.detach().double().cpu().reshape(len(x), -1)
    n = len(x)
    if n < 3:
        raise ValueError(f"mean_pairwise_distance needs at least 3 rows, got {n}")
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # (n, n), exact 0 on the diagonal
    S, r = d.sum(), d.sum(1)
    loo = (S - 2 * r) / ((n - 1) * (n - 2))  # U without row i, (n,)
    se = ((n - 1) / n * ((loo - loo.mean()) ** 2).sum()).sqrt()
    return float(S / (n * (n - 1))), float(se)


def pixel_gaussian_digits(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Chapter 1's baseline generator: n draws of N(mu_px, diag(sigma_px^2)), (n, 1, 8, 8), clamped to [-1, 1].

    mu_px and sigma_px are the per-pixel mean and standard deviation of all 1797 digits.
    """
    from ddpm_edu.data.digits import load_digits

    digits = load_digits()  # (1797, 1, 8, 8)
    mu_px, sigma_px = digits.mean(0), digits.std(0)
    return (mu_px + sigma_px * torch.randn((n, 1, 8, 8), generator=generator)).clamp(-1, 1)


# --------------------------------------------------------------------------- 2-D points
def energy_distance(x: Tensor, y: Tensor) -> float:
    """Unbiased estimate of D = E||X - Y|| - 1/2 E||X - X'|| - 1/2 E||Y - Y'|| from x: (n, d) and y: (m, d).

    A 1-D input (n,) is read as n points on the line. Computed in float64.
    """
    x, y = (v.detach().double().cpu() for v in (x, y))
    x, y = (v[:, None] if v.dim() == 1 else v for v in (x, y))
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"energy_distance needs at least 2 points in each set, got {n} and {m}")
    dist = functools.partial(torch.cdist, compute_mode="donot_use_mm_for_euclid_dist")  # exact 0 on the diagonal
    xy = dist(x, y).mean()
    xx = dist(x, x).sum() / (n * (n - 1))  # the diagonal is 0: a mean over i != j
    yy = dist(y, y).sum() / (m * (m - 1))
    return float(xy - 0.5 * xx - 0.5 * yy)


def energy_distance_se(
    x: Tensor, y: Tensor, groups: int = 8, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """The energy distance of x: (n, d) and y: (m, d) with its standard error, from ``groups`` disjoint parts.

    Each set is shuffled (a set may be ordered: ``sample_toy``'s moons list one moon, then the other) and
    cut into ``groups`` parts of equal size, the remainder dropped; each pair of parts gives an
    independent, unbiased :func:`energy_distance`. Returns their mean and its standard error,
    sd / sqrt(groups). The shuffles come from ``generator`` (by default a generator seeded with 0, so the
    result is reproducible). The mean is noisier than the estimate from all points, but its error is known.
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 2:
        raise ValueError(f"groups must be an integer >= 2, got {groups!r}")
    k, l = len(x) // groups, len(y) // groups
    if k < 2 or l < 2:
        raise ValueError(f"{groups} groups need at least {2 * groups} points in each set, got {len(x)} and {len(y)}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x, y = x[torch.randperm(len(x), generator=g)], y[torch.randperm(len(y), generator=g)]
    est = torch.tensor([energy_distance(x[i * k:(i + 1) * k], y[i * l:(i + 1) * l]) for i in range(groups)])
    return float(est.mean()), float(est.std() / groups**0.5)


def x0_hat_errors(
    model: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    s: Schedule,
    ts: Sequence[int],
    generator: torch.Generator | None = None,
) -> list[dict[str, float]]:
    """How far the network's guess x0_hat is from the true x0 at each t in ``ts``, unclamped and clamped.

    For each t: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps with fresh eps, eps_hat = model(x_t, t) and x0_hat
    = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t). Then x0_hat - x0 = -(eps_hat - eps) / sqrt(SNR_t) exactly,
    so the mean squared error of x0_hat is that of eps_hat divided by SNR_t. For x0 in [-1, 1], clamping
    moves every entry of x0_hat towards x0 or leaves it, so it never increases the error.
    x0: (B, ...) in [-1, 1]. Returns one dict per t with keys t, snr, mse_eps, mse_x0, mse_x0_clamped and
    outside (the share of x0_hat's entries outside [-1, 1]); the arithmetic is in float64.
    """
    x0 = x0.detach().double().cpu()
    rows = []
    with torch.inference_mode():
        for t in ts:
            eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
            xt = q_sample(x0, int(t), eps, s)
            eps_hat = model(xt.float(), torch.full((len(x0),), int(t))).double()
            x0_hat = x0_from_eps(xt, int(t), eps_hat, s)
            rows.append({"t": int(t), "snr": float(s.snr[int(t)]), "mse_eps": float((eps_hat - eps).pow(2).mean()),
                         "mse_x0": float((x0_hat - x0).pow(2).mean()),
                         "mse_x0_clamped": float((x0_hat.clamp(-1, 1) - x0).pow(2).mean()),
                         "outside": float((x0_hat.abs() > 1).double().mean())})
    return rows


class ClipProbe:
    """A network wrapper that records what clamping x0_hat to [-c, c] does at each step of a sampling run.

    Call it like the model, ``probe(x_t, t) -> eps_hat``: it returns the network's eps_hat unchanged, so
    the sampler runs as it would without it. From each call (one t for the whole batch) it records, for
    x0_hat = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), ab = alpha_bar (the guess before any clamping):

    * ``outside[t]``: the share of x0_hat's entries outside [-c, c];
    * ``max_abs[t]``: the largest abs(x0_hat);
    * ``shift[t]``: the mean over entries of abs(mu(clamp(x0_hat)) - mu(x0_hat)) / sigma_t, how far clamping
      moves the step's mean in units of its noise. The posterior mean (eq. 7) is linear in x0, so the
      move is coef_x0_t (clamp(x0_hat) - x0_hat); sigma_t = sqrt(beta_tilde_t), so t = 1 gives NaN.
    """

    def __init__(self, model: Callable[[Tensor, Tensor], Tensor], s: Schedule, c: float = 1.0):
        if not c > 0:
            raise ValueError(f"the clipping range c must be > 0, got {c!r}")
        self.model, self.s, self.c = model, s, c
        self.outside: dict[int, float] = {}
        self.max_abs: dict[int, float] = {}
        self.shift: dict[int, float] = {}

    def __call__(self, xt: Tensor, t: Tensor) -> Tensor:
        eps_hat = self.model(xt, t)
        step = int(t.reshape(-1)[0])
        if not bool((t == step).all()):
            raise ValueError("ClipProbe records one t per call: the batch must share its time step")
        x0_hat = x0_from_eps(xt, step, eps_hat.to(xt.dtype), self.s)
        moved = (x0_hat.clamp(-self.c, self.c) - x0_hat).abs()  # |clamp(x0_hat) - x0_hat|
        sigma = float(self.s.beta_tilde[step]) ** 0.5
        self.outside[step] = float((x0_hat.abs() > self.c).double().mean())
        self.max_abs[step] = float(x0_hat.abs().max())
        self.shift[step] = float(self.s.coef_x0[step]) * float(moved.double().mean()) / sigma if sigma > 0 else float("nan")
        return eps_hat


# --------------------------------------------------------------------------- moments
def moment_z_scores(x: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """How far the sample moments of x: (n, D) lie from ``mean`` (D,) and ``cov`` (D, D), in standard errors.

    Each moment is an average of n independent terms: x_i for the mean, and (x_i - mean)_j (x_i - mean)_k,
    centred at the given mean, for the covariance, so its expectation is cov_jk exactly. The standard error
    of an average is the terms' sample standard deviation over sqrt(n). Returns D + D (D + 1) / 2 z-scores,
    float64: the D means, then the covariance's upper triangle row by row.
    """
    x = x.detach().double().cpu().reshape(len(x), -1)
    mean, cov = mean.double().cpu().reshape(-1), cov.double().cpu()
    n, D = x.shape
    if n < 2 or mean.shape != (D,) or cov.shape != (D, D):
        raise ValueError(f"need x (n >= 2, D), mean (D,), cov (D, D); got {tuple(x.shape)}, "
                         f"{tuple(mean.shape)}, {tuple(cov.shape)}")
    j, k = torch.triu_indices(D, D)
    d = x - mean
    terms = torch.cat([x, d[:, j] * d[:, k]], 1)  # (n, D + D (D + 1) / 2)
    target = torch.cat([mean, cov[j, k]])
    return (terms.mean(0) - target) / (terms.std(0) / n**0.5)
