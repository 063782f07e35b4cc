"""The figures of Part II, reversing the process: chapters 6 to 8 (and the loss curve and samples of chapter 9).

Chapter 6 (:func:`plot_density_over_t`, :func:`plot_samples_over_t`, :func:`plot_reverse_conditional`,
:func:`plot_posterior_variances`): densities, posteriors and variances that
:class:`ddpm_edu.analytic.MixtureEps` and :class:`ddpm_edu.schedules.Schedule` compute. Chapter 7
(:func:`plot_loss_curve`, :func:`plot_samples_2d`, :func:`plot_t_weights`, :func:`plot_vb_terms`): training
and the likelihood. Chapter 8
(:func:`plot_reverse_steps`, :func:`plot_sample_panels`, :func:`plot_clipping`): sampling. The conventions are those of
:mod:`ddpm_edu.lab.plots.base`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.data.images import image_grid
from ddpm_edu.lab.plots.base import as_numpy, figure_and_axes, new_figure
from ddpm_edu.schedules import Schedule
from ddpm_edu.training.runlog import draw_loss_curve

__all__ = [
    "plot_density_over_t", "plot_samples_over_t", "plot_reverse_conditional", "plot_posterior_variances",
    "plot_loss_curve", "plot_samples_2d", "plot_t_weights", "plot_vb_terms", "plot_reverse_steps",
    "plot_sample_panels", "plot_clipping",
]


# ------------------------------------------------------ chapter 6: the reverse process and the posterior


def plot_density_over_t(
    ts: Sequence[int] | Tensor,
    x: Tensor,
    density: Tensor | np.ndarray,
    *,
    paths: Tensor | None = None,
    title: str | None = None,
    vmax: float | None = None,
    reverse: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Chapter 6: a 1-D density at each t as a heat map (t across, x up), with sample paths drawn on top.

    ts: (K,) times; x: (N,) evenly spaced points; density: (K, N), the density at x for each t (e.g.
    :meth:`ddpm_edu.analytic.MixtureEps.density`); paths: (K, P), P samples' states at the same ts.
    ``reverse=True`` runs t from T on the left down to 0 on the right, the order of the reverse process.
    """
    fig, ax = figure_and_axes(ax, (7.0, 3.2))
    t_np, x_np = np.asarray(ts, dtype=float), as_numpy(torch.as_tensor(x))
    d = np.asarray(density, dtype=float)
    if d.shape != (len(t_np), len(x_np)):
        raise ValueError(f"density must have shape (len(ts), len(x)) = {(len(t_np), len(x_np))}, got {d.shape}")
    ax.pcolormesh(t_np, x_np, d.T, shading="nearest", cmap="magma", vmin=0, vmax=vmax, rasterized=True)
    if paths is not None:
        ax.plot(t_np, as_numpy(torch.as_tensor(paths)), color="w", lw=0.7, alpha=0.8)
    t_range = (t_np.max(), t_np.min()) if reverse else (t_np.min(), t_np.max())
    ax.set(xlabel="t", ylabel="x", ylim=(x_np[0], x_np[-1]), xlim=t_range)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_samples_over_t(
    ts: Sequence[int] | Tensor,
    states: Tensor,
    edges: Tensor,
    *,
    n_paths: int = 0,
    title: str | None = None,
    vmax: float | None = None,
    reverse: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Chapter 6: :func:`plot_density_over_t` for samples: the histogram (as a density) of states[k] at each ts[k].

    states: (K, n) samples at each of the K times; edges: (N + 1,) bin edges; the first ``n_paths``
    samples are drawn as paths; ``reverse`` as in :func:`plot_density_over_t`.
    """
    e = as_numpy(torch.as_tensor(edges))
    st = as_numpy(torch.as_tensor(states))
    hist = np.stack([np.histogram(row, bins=e, density=True)[0] for row in st])  # (K, N)
    centres = torch.as_tensor((e[1:] + e[:-1]) / 2)
    paths = torch.as_tensor(st[:, :n_paths]) if n_paths else None
    return plot_density_over_t(ts, centres, hist, paths=paths, title=title, vmax=vmax, reverse=reverse, ax=ax)


def plot_reverse_conditional(
    mix: MixtureEps, xt: float, t: int, x_prev: Tensor, *, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Chapter 6: the exact q(x_{t-1} | x_t) of a 1-D mixture and the Gaussian with its mean and variance.

    Also drawn, faintly: the prior q(x_{t-1}) and the likelihood q(x_t | x_{t-1}) as a function of
    x_{t-1}, normalised (a Gaussian centred on x_t / sqrt(alpha_t) with variance beta_t / alpha_t).
    Every curve comes from :class:`ddpm_edu.analytic.MixtureEps`. x_prev: (N,) points.
    """
    fig, ax = figure_and_axes(ax, (4.6, 3.2))
    pts, xt_ = x_prev.double()[:, None], torch.tensor([[float(xt)]], dtype=torch.float64)
    alpha, beta = float(mix.s.alphas[t]), float(mix.s.betas[t])
    exact = mix.reverse_log_density(pts, xt_, t).exp()
    mean, var = (m.item() for m in mix.reverse_moments(xt_, t))
    gauss = torch.distributions.Normal(mean, var**0.5).log_prob(x_prev.double()).exp()
    lik = torch.distributions.Normal(float(xt) / alpha**0.5, (beta / alpha) ** 0.5).log_prob(x_prev.double()).exp()
    xp = as_numpy(x_prev)
    ax.plot(xp, as_numpy(mix.density(pts, t - 1)), color="0.6", lw=1, ls=":", label=r"prior $q(x_{t-1})$")
    ax.plot(xp, as_numpy(lik), color="C0", lw=1, ls="--", alpha=0.7, label=r"likelihood $q(x_t \mid x_{t-1})$, normalised")
    ax.plot(xp, as_numpy(exact), color="k", lw=2, label=r"exact $q(x_{t-1} \mid x_t)$")
    ax.plot(xp, as_numpy(gauss), color="C3", lw=1.5, ls="--", label="Gaussian, same mean and variance")
    ax.set(xlabel=r"$x_{t-1}$", ylim=(0, 1.15 * float(max(exact.max(), gauss.max()))))
    ax.set_yticks([])
    ax.set_title(title or rf"$\beta_t = {beta:g}$, $x_t = {float(xt):g}$", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_posterior_variances(s: Schedule) -> Figure:
    """Chapter 6: the two reverse-step variances, beta_t and beta_tilde_t, and their ratio over t.

    Left, on a log scale from t = 2 (beta_tilde_1 = 0 has no logarithm): beta_t and beta_tilde_t.
    Right: beta_tilde_t / beta_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) from t = 1. Both are
    tensors of the :class:`ddpm_edu.schedules.Schedule`.
    """
    fig = new_figure((8.0, 3.0))
    ax_v, ax_r = fig.subplots(1, 2)
    t = np.arange(1, s.T + 1)
    beta, beta_tilde = as_numpy(s.betas[1:]), as_numpy(s.beta_tilde[1:])
    ax_v.plot(t[1:], beta[1:], color="C0", lw=1.5, label=r"$\beta_t$")
    ax_v.plot(t[1:], beta_tilde[1:], color="C1", lw=1.5, ls="--", label=r"$\tilde\beta_t$")
    ax_v.set(yscale="log", xlabel="t", title=r"variances (log scale, $t \geq 2$)")
    ax_v.legend(fontsize=8)
    ax_r.plot(t, beta_tilde / beta, color="C1", lw=1.5)
    ax_r.plot([1], [beta_tilde[0] / beta[0]], "o", color="C1", ms=4)
    ax_r.set(xlabel="t", ylim=(0, 1.05), title=r"$\tilde\beta_t / \beta_t = (1-\bar\alpha_{t-1})/(1-\bar\alpha_t)$")
    ax_r.set_xscale("log")
    for ax in (ax_v, ax_r):
        ax.tick_params(labelsize=8)
        ax.title.set_fontsize(10)
    return fig


# ----------------------------------------------------------------------------------- chapter 7: training


def plot_loss_curve(metrics: Sequence[Mapping[str, float]], ax: Axes | None = None) -> Figure:
    """Chapters 7 and 9: loss against step from metrics.jsonl records, drawn as the run's loss.png is.

    The drawing is :func:`ddpm_edu.training.runlog.draw_loss_curve`; this gives it a figure or ``ax``.
    """
    fig, ax = figure_and_axes(ax, (6.0, 3.5))
    draw_loss_curve(ax, metrics)
    return fig


def plot_samples_2d(
    data: Tensor,
    samples: Tensor,
    *,
    title: str | None = None,
    lim: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Chapter 7: generated 2-D points (colour) drawn over the training data (grey); both (N, 2).

    ``lim`` sets the square frame [-lim, lim]^2; by default it is 1.2 times the data's largest
    coordinate, so samples that land far from the data fall outside the frame, as they should.
    """
    fig, ax = figure_and_axes(ax, (4.2, 4.2))
    d, x = as_numpy(data), as_numpy(samples)
    lim = 1.2 * float(np.abs(d).max()) if lim is None else lim
    ax.scatter(d[:, 0], d[:, 1], s=3, color="0.7", alpha=0.5, lw=0, label=f"data ({len(d)})")
    ax.scatter(x[:, 0], x[:, 1], s=3, color="C3", alpha=0.6, lw=0, label=f"samples ({len(x)})")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    ax.legend(fontsize=8, loc="upper right", markerscale=3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_t_weights(weights: Mapping[str, Tensor], *, ax: Axes | None = None) -> Figure:
    """Chapter 7: per-step weights of the loss terms against t, on a log scale.

    Each tensor is indexed by t itself, like the :class:`~ddpm_edu.schedules.Schedule` tensors:
    shape (T + 1,), entry t for t = 1..T, entry 0 ignored. Non-finite entries (e.g. a weight that
    is infinite at t = 1) are left out of the curve.
    """
    fig, ax = figure_and_axes(ax, (6.0, 3.4))
    for label, w in weights.items():
        t = np.arange(1, len(w))
        y = as_numpy(w)[1:]
        ok = np.isfinite(y)
        ax.plot(t[ok], y[ok], lw=1.5, label=label)
    ax.set(xlabel="t", ylabel="weight of $\\|\\epsilon - \\epsilon_\\theta\\|^2$", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_vb_terms(terms: Mapping[str, Tensor], *, ax: Axes | None = None) -> Figure:
    """Chapter 7: the terms of the variational bound against t, averaged over examples, in bits/dim.

    Each tensor is (B, T + 1) as :func:`ddpm_edu.likelihood.vb_terms` returns it: column t - 1 holds L_{t-1}
    (L_0 at t = 1), drawn at t = 1..T with a band of two standard errors of the mean; the last column,
    L_T, is left out (it is one number, which has no t). Both axes are logarithmic.
    """
    fig, ax = figure_and_axes(ax, (6.0, 3.4))
    for label, x in terms.items():
        x = as_numpy(x.double())[:, :-1]  # (B, T): L_0 .. L_{T-1}
        t = np.arange(1, x.shape[1] + 1)
        mean = x.mean(0)
        se = x.std(0, ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.zeros_like(mean)  # SE of the mean
        line, = ax.plot(t, mean, lw=1.5, label=label)
        ax.fill_between(t, np.clip(mean - 2 * se, mean / 10, None), mean + 2 * se, color=line.get_color(),
                        alpha=0.2, lw=0)
    ax.set(xlabel="t", ylabel=r"$L_{t-1}$ (bits/dim)", xscale="log", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------- chapter 8: sampling


def plot_reverse_steps(
    frames: Sequence[tuple[int, Tensor]],
    x0_frames: Sequence[tuple[int, Tensor]],
    *,
    columns: int = 6,
    images: int = 4,
) -> Figure:
    """Chapter 8: the state x_t (top row) and the prediction x0_hat (bottom row) at several t of one run.

    frames, x0_frames: the (t, x) lists of a :class:`ddpm_edu.sampling.TrajectoryRecorder`
    (``.frames`` and ``.x0_frames``), x: (B, C, H, W). ``columns`` evenly spaced recorded steps are
    shown, each as a grid of the first ``images`` images of the batch.
    """
    if len(frames) != len(x0_frames) or not frames:
        raise ValueError(f"need as many x_t frames as x0_hat frames (at least one), got {len(frames)} and {len(x0_frames)}")
    keep = np.unique(np.round(np.linspace(0, len(frames) - 1, min(columns, len(frames)))).astype(int))
    nrow = max(1, int(np.ceil(np.sqrt(images))))
    fig = new_figure((1.5 * len(keep), 3.4))
    axes = fig.subplots(2, len(keep), squeeze=False)
    for j, k in enumerate(keep):
        t = frames[k][0]
        ax_x, ax_0 = axes[0, j], axes[1, j]
        ax_x.imshow(image_grid(frames[k][1][:images], nrow), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax_0.imshow(image_grid(x0_frames[k][1][:images], nrow), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax_x.set_title(f"t = {t}", fontsize=9)
        for ax in (ax_x, ax_0):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(r"$x_t$")
    axes[1, 0].set_ylabel(r"$\hat x_0$")
    return fig


def plot_sample_panels(samples: Mapping[str, Tensor], *, reference: Tensor | None = None, lim: float = 1.6) -> Figure:
    """Chapters 8-9: samples of several samplers side by side, one panel per label.

    Images (B, C, H, W) in [-1, 1] are tiled with :func:`ddpm_edu.data.images.image_grid` (values outside
    [-1, 1] saturate); 2-D points (N, 2) are scattered over ``reference`` points (e.g. the data) in grey,
    on [-lim, lim]^2.
    """
    fig = new_figure((2.2 * len(samples), 2.6))
    axes = fig.subplots(1, len(samples), squeeze=False)[0]
    for ax, (label, x) in zip(axes, samples.items()):
        if x.dim() == 4:
            grid = image_grid(x)
            ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_axis_off()
        elif x.dim() == 2 and x.shape[1] == 2:
            if reference is not None:
                r = as_numpy(reference)
                ax.scatter(r[:, 0], r[:, 1], s=1, color="0.75")
            p = as_numpy(x)
            ax.scatter(p[:, 0], p[:, 1], s=1, color="C0", alpha=0.6)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        else:
            raise ValueError(f"{label!r}: expected images (B, C, H, W) or points (N, 2), got {tuple(x.shape)}")
        ax.set_title(label, fontsize=9)
    return fig


def plot_clipping(probes: Mapping[str, object]) -> Figure:
    """Chapter 8: what clamping x0_hat to [-1, 1] does at each t, for one or more sampling runs.

    probes: label -> a :class:`ddpm_edu.eval.metrics.ClipProbe` after a run (anything with the dicts
    ``outside``, ``max_abs`` and ``shift``, keyed by t). Three panels against t, drawn from T on the left
    down to 1: the share of x0_hat's entries outside [-1, 1], the largest abs(x0_hat) (log scale), and how far
    clamping moves the step's mean, in units of sigma_t (log scale; t = 1 has no sigma_t and is left out).
    """
    fig = new_figure((10.0, 3.0))
    axes = fig.subplots(1, 3)
    panels = (("outside", r"share of $\hat x_0$ outside $[-1, 1]$", "linear"),
              ("max_abs", r"largest $|\hat x_0|$", "log"),
              ("shift", r"move of the mean by clamping, in $\sigma_t$", "log"))
    for ax, (key, title, scale) in zip(axes, panels):
        for label, probe in probes.items():
            rec = getattr(probe, key)
            t = np.array(sorted(rec))
            y = np.array([rec[k] for k in t], dtype=float)
            ok = np.isfinite(y) & ((y > 0) if scale == "log" else True)
            ax.plot(t[ok], y[ok], lw=1.3, label=label)
        ax.set(xlabel="t", yscale=scale)
        ax.set_title(title, fontsize=9)
        ax.invert_xaxis()  # the order of sampling: t = T on the left
        ax.tick_params(labelsize=8)
    axes[0].legend(fontsize=8)
    return fig
