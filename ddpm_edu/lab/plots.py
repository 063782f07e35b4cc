"""Figures: the plot functions of chapters 1-8, and the plumbing that makes and saves figures.

Plot functions never re-implement math: they call the library. They take ``ax=None`` (single-panel
ones) or build a new figure (multi-panel ones, which accept ``fig=`` to redraw in place), return
the :class:`matplotlib.figure.Figure`, and leave global rcParams alone: figures are made without
pyplot, each with its own Agg canvas. Images in [-1, 1] are shown through
:func:`ddpm_edu.data.images.to_uint8`. The chapter that uses a function is named in its docstring;
``ddpm_edu.lab.figs.make_all`` regenerates the README's figures from these same functions.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ddpm_edu.analytic import MixtureEps
from ddpm_edu.data.files import atomic_write
from ddpm_edu.data.images import image_grid, to_uint8
from ddpm_edu.forward import naive_step, q_sample, trajectory, vp_step
from ddpm_edu.schedules import Schedule
from ddpm_edu.training.runlog import draw_loss_curve

__all__ = [
    "BookFigure", "new_figure", "figure_png", "figure_bytes", "save_figure",
    "plot_images", "plot_px_pz", "plot_image_strip", "plot_naive_noise", "plot_variance", "plot_fixed_noise",
    "plot_schedules", "plot_forward_steps", "plot_pixel_histograms",
    "plot_loss_curve", "scatter_rgb",
    "plot_density_over_t", "plot_samples_over_t", "plot_reverse_conditional", "plot_posterior_variances",
    "plot_samples_2d", "plot_t_weights", "plot_reverse_steps", "plot_sample_panels", "gif_html",
    "plot_forward_batches",
]


# =====================================================================================
# Figure plumbing. Figures are made without pyplot: each one owns an Agg canvas, so no global
# state (rcParams, the pyplot figure list, the backend) changes, and a notebook shows a figure
# exactly once, when a cell returns it.
# =====================================================================================


class BookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that displays itself in Jupyter as a PNG.

    Figures made without pyplot have no notebook display hook unless the inline backend happens
    to be active; ``_repr_png_`` gives them one, so a cell that returns a figure shows it once.
    """

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(figsize: tuple[float, float] = (6.4, 4.0), dpi: float = 100) -> Figure:
    """An empty figure with its own Agg canvas and constrained layout (no pyplot involved)."""
    fig = BookFigure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _fig_ax(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def _reset(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    """A fresh figure, or ``fig`` cleared for redrawing (widgets and animations reuse one figure)."""
    if fig is None:
        return new_figure(figsize)
    fig.clear()
    return fig


def _show_image(ax: Axes, x: Tensor, title: str | None = None) -> None:
    ax.imshow(to_uint8(x), interpolation="nearest")  # values outside [-1, 1] saturate (to_uint8 clips)
    ax.set_axis_off()  # also skips tick layout, which dominates redraw time
    if title:
        ax.set_title(title, fontsize=9)


def _np(x: Tensor) -> np.ndarray:
    return x.detach().double().cpu().numpy()


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure rendered as PNG bytes (how a figure shows itself in a notebook)."""
    return figure_bytes(fig, "png", dpi)


def figure_bytes(fig: Figure, fmt: str = "png", dpi: float | None = None, jpeg_quality: int = 85) -> bytes:
    """The figure rendered as image bytes, PNG or JPEG (JPEG keeps pictures of noise small)."""
    buf = io.BytesIO()
    kwargs = {"pil_kwargs": {"quality": jpeg_quality}} if fmt in ("jpeg", "jpg") else {}
    fig.savefig(buf, format=fmt, dpi=dpi, **kwargs)
    return buf.getvalue()


def plot_loss_curve(metrics: Sequence[Mapping[str, float]], ax: Axes | None = None) -> Figure:
    """Loss against step from metrics.jsonl records (the run's loss.png, drawn by :func:`~ddpm_edu.training.runlog.draw_loss_curve`)."""
    fig, ax = _fig_ax(ax, (6.0, 3.5))
    draw_loss_curve(ax, metrics)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float = 100) -> Path:
    """Write a figure as a PNG, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


# =====================================================================================
# Training figures: the loss curve and 2-D sample clouds (the trainer and the command line).
# =====================================================================================


# =====================================================================================
# Chapter 1: from p(z) to p(x).
# =====================================================================================


def plot_images(x: Tensor, nrow: int | None = None, *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Chapters 1-2: a batch of images in [-1, 1], (B, C, H, W), tiled by :func:`~ddpm_edu.data.images.image_grid` on one axes."""
    fig, ax = _fig_ax(ax, (4.0, 4.0))
    grid = image_grid(x, nrow)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_px_pz(z: Tensor, x: Tensor, data: Tensor, mu: float, sigma: float, bins: int = 60) -> Figure:
    """Chapter 1: samples z ~ p(z) = N(0, 1), and x = mu_hat + sigma_hat z against the data and p(x).

    z, x, data: 1-D tensors (samples of the latent, the generated x and the training data);
    mu, sigma: the true parameters of p(x) = N(mu, sigma^2), drawn as a density curve.
    """
    fig = new_figure((9.0, 3.4))
    ax_z, ax_x = fig.subplots(1, 2)
    z, x, data = _np(z.flatten()), _np(x.flatten()), _np(data.flatten())
    grid = torch.linspace(-4.5, 4.5, 400, dtype=torch.float64)
    std = torch.distributions.Normal(0.0, 1.0)
    ax_z.hist(z, bins=bins, density=True, color="0.6", label=r"samples $z$")
    ax_z.plot(grid, std.log_prob(grid).exp(), "k", lw=1.5, label=r"$p(z)=\mathcal{N}(0,1)$")
    ax_z.set_title(r"latent $z \sim p(z)$")
    ax_z.set_xlabel("z")
    ax_z.legend(fontsize=8, loc="upper left")
    lo, hi = min(data.min(), x.min()), max(data.max(), x.max())
    edges = np.linspace(lo, hi, bins + 1)
    grid = torch.linspace(float(lo), float(hi), 400, dtype=torch.float64)
    ax_x.hist(data, bins=edges, density=True, color="C0", alpha=0.45, label="data")
    ax_x.hist(x, bins=edges, density=True, histtype="step", color="C3", lw=1.5, label=r"generated $\hat\mu+\hat\sigma z$")
    ax_x.plot(grid, torch.distributions.Normal(mu, sigma).log_prob(grid).exp(), "k", lw=1.5, label=r"true $p(x)$")
    ax_x.set_title(r"data $x \sim p(x)$")
    ax_x.set_xlabel("x")
    ax_x.legend(fontsize=8, loc="upper left")
    return fig


# =====================================================================================
# Chapters 2-3: noising a photograph with a fixed sigma.
# =====================================================================================


def plot_image_strip(
    states: Tensor,
    ts: Sequence[int],
    *,
    hist: bool = False,
    suptitle: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """A row of images x_t, one per t in ``ts``, each titled with t and its pixel range.

    states: (K, C, H, W) in the library's [-1, 1] scale (values outside saturate on screen);
    with ``hist=True`` a second row shows each state's pixel histogram on a shared x-axis,
    which makes a growing scale visible (chapter 2).
    """
    K = states.shape[0]
    if len(ts) != K:
        raise ValueError(f"got {K} states but {len(ts)} time steps")
    fig = _reset(fig, (1.9 * K, 4.0 if hist else 2.3))
    axes = fig.subplots(2 if hist else 1, K, squeeze=False, height_ratios=[1.6, 1] if hist else None)
    lim = max(1.0, float(states.abs().max()))
    for k, t in enumerate(ts):
        x = states[k]
        _show_image(axes[0, k], x, f"t = {t}\nrange [{x.min():.2g}, {x.max():.2g}]")
        if hist:
            axes[1, k].hist(_np(x.flatten()), bins=60, range=(-lim, lim), color="C0")
            axes[1, k].axvspan(-1, 1, color="C2", alpha=0.15, lw=0)  # the range images should live in
            axes[1, k].set_yticks([])
            axes[1, k].set_xlabel("pixel value", fontsize=8)
            axes[1, k].tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_naive_noise(x0: Tensor, sigma: float, ts: Sequence[int], generator: torch.Generator | None = None) -> Figure:
    """Chapter 2: the naive process x_t = x_{t-1} + sigma eps on an image, with pixel histograms.

    Runs :func:`ddpm_edu.forward.trajectory` with :func:`ddpm_edu.forward.naive_step`. x0: (C, H, W).
    The green band in the histograms is [-1, 1], the range the data started in.
    """
    states = trajectory(x0, max(ts), lambda x, t, e: naive_step(x, sigma, e), generator=generator, keep=ts)
    return plot_image_strip(states, sorted(set(ts)), hist=True, suptitle=rf"naive noise $x_t = x_{{t-1}} + \sigma\epsilon_t$, $\sigma = {sigma:g}$")


def plot_variance(
    ts: Sequence[int] | Tensor,
    empirical: Mapping[str, Sequence[float] | Tensor],
    theory: Mapping[str, Sequence[float] | Tensor],
    *,
    logy: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Chapters 2-3: measured Var[x_t] (markers) against a formula (lines), one colour per label.

    ``empirical`` and ``theory`` map a label to one value per t in ``ts``; matching labels share a colour.
    """
    fig, ax = _fig_ax(ax, (5.0, 3.4))
    ts = np.asarray(ts)
    for i, (label, v) in enumerate(theory.items()):
        ax.plot(ts, np.asarray(v, dtype=float), color=f"C{i}", lw=1.5, label=f"{label} (formula)")
        if label in empirical:
            ax.plot(ts, np.asarray(empirical[label], dtype=float), "o", color=f"C{i}", ms=4, mfc="none", label=f"{label} (measured)")
    for j, (label, v) in enumerate((k, v) for k, v in empirical.items() if k not in theory):
        ax.plot(ts, np.asarray(v, dtype=float), "o", color=f"C{len(theory) + j}", ms=4, label=f"{label} (measured)")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(r"Var$[x_t]$")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_fixed_noise(
    x0: Tensor,
    sigmas: float | Sequence[float],
    ts: Sequence[int],
    generator: torch.Generator | None = None,
) -> Figure:
    """Chapter 3: the variance-preserving step with a fixed sigma, one row of images per sigma.

    x_t = sqrt(1 - sigma^2) x_{t-1} + sigma eps (:func:`ddpm_edu.forward.vp_step`), iterated by
    :func:`ddpm_edu.forward.trajectory`. ``sigma`` is the noise *standard deviation* per step;
    the per-step variance is sigma^2. x0: (C, H, W).
    """
    sigmas = [sigmas] if isinstance(sigmas, (int, float)) else list(sigmas)
    ts = sorted(set(ts))
    fig = new_figure((1.45 * len(ts), 1.85 * len(sigmas) + 0.2))
    rows = fig.subfigures(len(sigmas), 1, squeeze=False)[:, 0]
    for row, sigma in zip(rows, sigmas):
        states = trajectory(x0, ts[-1], lambda x, t, e, sg=sigma: vp_step(x, sg, e), generator=generator, keep=ts)
        axes = row.subplots(1, len(ts), squeeze=False)[0]
        for ax, t, x in zip(axes, ts, states):
            _show_image(ax, x, f"t = {t}")
        row.suptitle(rf"$\sigma = {sigma:g}$ per step ($\sigma^2 = {sigma**2:g}$)", fontsize=10)
    return fig


# =====================================================================================
# Chapter 4: variance schedules.
# =====================================================================================


def _schedule_axes(
    axes: Sequence[Axes], schedules: Mapping[str, Schedule], panels: Sequence[str], beta_scale: str, legend: bool = True
) -> None:
    for i, (label, s) in enumerate(schedules.items()):
        t = np.arange(1, s.T + 1)
        curves = {"beta": _np(s.betas[1:]), "alpha_bar": _np(s.alpha_bar[1:]), "snr": _np(s.snr[1:])}
        for ax, p in zip(axes, panels):
            ax.plot(t, curves[p], color=f"C{i}", lw=1.5, label=label)
    labels = {"beta": (r"$\beta_t$", beta_scale), "alpha_bar": (r"$\bar\alpha_t$", "linear"), "snr": (r"SNR$_t = \bar\alpha_t/(1-\bar\alpha_t)$", "log")}
    for ax, p in zip(axes, panels):
        title, scale = labels[p]
        ax.set_title(title, fontsize=10)
        ax.set_yscale(scale)
        ax.set_xlabel("t")
        ax.tick_params(labelsize=8)
    if legend:
        axes[0].legend(fontsize=8)


def plot_schedules(
    schedules: Schedule | Mapping[str, Schedule],
    *,
    panels: Sequence[str] = ("beta", "alpha_bar", "snr"),
    beta_scale: str = "log",
    fig: Figure | None = None,
) -> Figure:
    """Chapter 4: beta_t, alpha_bar_t and the SNR of one or several schedules, each on its own axes.

    ``schedules`` is a :class:`ddpm_edu.schedules.Schedule` or a mapping label -> Schedule; ``panels``
    picks from "beta", "alpha_bar", "snr" (the SNR is always on a log scale). Every curve is a
    tensor of the Schedule itself; nothing is recomputed here.
    """
    if isinstance(schedules, Schedule):
        schedules = {"schedule": schedules}
    unknown = set(panels) - {"beta", "alpha_bar", "snr"}
    if unknown or not panels:
        raise ValueError(f"panels must be a non-empty choice of 'beta', 'alpha_bar', 'snr'; got {list(panels)}")
    fig = _reset(fig, (3.3 * len(panels), 3.0))
    _schedule_axes(fig.subplots(1, len(panels), squeeze=False)[0], schedules, panels, beta_scale)
    return fig


# =====================================================================================
# Chapter 5: the closed-form forward process.
# =====================================================================================


def plot_forward_steps(x0: Tensor, s: Schedule, ts: Sequence[int], eps: Tensor) -> Figure:
    """The README's figure of chapter 5 (``figs.make_all``): x0 noised by q(x_t | x0) at each t in ``ts`` (t = 0 shows x0).

    The chapter itself shows this next to a batch of digits with :func:`plot_forward_batches`.

    Calls :func:`ddpm_edu.forward.q_sample` with one shared eps (C, H, W) for every t.
    """
    fig = new_figure((1.9 * len(ts), 2.4))
    axes = fig.subplots(1, len(ts), squeeze=False)[0]
    for ax, t in zip(axes, ts):
        xt = q_sample(x0[None], t, eps[None], s)[0]
        _show_image(ax, xt, rf"$t={t}$" + "\n" + rf"$\bar\alpha_t={float(s.alpha_bar[t]):.2g}$")
    return fig


def plot_pixel_histograms(
    samples: Mapping[str, Tensor],
    ts: Sequence[int],
    *,
    bins: int = 60,
    fig: Figure | None = None,
) -> Figure:
    """Chapter 5: pixel-value histograms at each t, one overlaid histogram per label.

    ``samples`` maps a label (e.g. "iterated", "closed form") to a tensor (K, ...) holding the
    state at each of the K times in ``ts``. Matching histograms mean matching distributions.
    """
    fig = _reset(fig, (2.3 * len(ts), 2.6))
    axes = fig.subplots(1, len(ts), squeeze=False, sharey=False)[0]
    for i, (label, x) in enumerate(samples.items()):
        if x.shape[0] != len(ts):
            raise ValueError(f"{label!r} has {x.shape[0]} states but there are {len(ts)} time steps")
        for k, ax in enumerate(axes):
            ax.hist(_np(x[k].flatten()), bins=bins, range=(-3.5, 3.5), density=True, histtype="step", lw=1.5, color=f"C{i}", label=label)
    for ax, t in zip(axes, ts):
        ax.set_title(f"t = {t}", fontsize=10)
        ax.set_yticks([])
        ax.set_xlabel("pixel value", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


# =====================================================================================
# Chapter 6: the reverse process and the posterior.
# =====================================================================================


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
    fig, ax = _fig_ax(ax, (7.0, 3.2))
    t_np, x_np = np.asarray(ts, dtype=float), _np(torch.as_tensor(x))
    d = np.asarray(density, dtype=float)
    if d.shape != (len(t_np), len(x_np)):
        raise ValueError(f"density must have shape (len(ts), len(x)) = {(len(t_np), len(x_np))}, got {d.shape}")
    ax.pcolormesh(t_np, x_np, d.T, shading="nearest", cmap="magma", vmin=0, vmax=vmax, rasterized=True)
    if paths is not None:
        ax.plot(t_np, _np(torch.as_tensor(paths)), color="w", lw=0.7, alpha=0.8)
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
    e = _np(torch.as_tensor(edges))
    st = _np(torch.as_tensor(states))
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
    fig, ax = _fig_ax(ax, (4.6, 3.2))
    pts, xt_ = x_prev.double()[:, None], torch.tensor([[float(xt)]], dtype=torch.float64)
    alpha, beta = float(mix.s.alphas[t]), float(mix.s.betas[t])
    exact = mix.reverse_log_density(pts, xt_, t).exp()
    mean, var = (m.item() for m in mix.reverse_moments(xt_, t))
    gauss = torch.distributions.Normal(mean, var**0.5).log_prob(x_prev.double()).exp()
    lik = torch.distributions.Normal(float(xt) / alpha**0.5, (beta / alpha) ** 0.5).log_prob(x_prev.double()).exp()
    xp = _np(x_prev)
    ax.plot(xp, _np(mix.density(pts, t - 1)), color="0.6", lw=1, ls=":", label=r"prior $q(x_{t-1})$")
    ax.plot(xp, _np(lik), color="C0", lw=1, ls="--", alpha=0.7, label=r"likelihood $q(x_t \mid x_{t-1})$, normalised")
    ax.plot(xp, _np(exact), color="k", lw=2, label=r"exact $q(x_{t-1} \mid x_t)$")
    ax.plot(xp, _np(gauss), color="C3", lw=1.5, ls="--", label="Gaussian, same mean and variance")
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
    beta, beta_tilde = _np(s.betas[1:]), _np(s.beta_tilde[1:])
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


# =====================================================================================
# Chapter 7: training.
# =====================================================================================


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
    fig, ax = _fig_ax(ax, (4.2, 4.2))
    d, x = _np(data), _np(samples)
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
    fig, ax = _fig_ax(ax, (6.0, 3.4))
    for label, w in weights.items():
        t = np.arange(1, len(w))
        y = _np(w)[1:]
        ok = np.isfinite(y)
        ax.plot(t[ok], y[ok], lw=1.5, label=label)
    ax.set(xlabel="t", ylabel="weight of $\\|\\epsilon - \\epsilon_\\theta\\|^2$", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# =====================================================================================
# Chapter 8: sampling.
# =====================================================================================


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
    """Chapter 8: samples of several samplers side by side, one panel per label.

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
                r = _np(reference)
                ax.scatter(r[:, 0], r[:, 1], s=1, color="0.75")
            p = _np(x)
            ax.scatter(p[:, 0], p[:, 1], s=1, color="C0", alpha=0.6)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
        else:
            raise ValueError(f"{label!r}: expected images (B, C, H, W) or points (N, 2), got {tuple(x.shape)}")
        ax.set_title(label, fontsize=9)
    return fig


def gif_html(gif: bytes | str | os.PathLike, width: int | None = None):
    """Chapter 8: a GIF (bytes or a file) as an ``IPython.display.HTML`` image with an embedded base64 data URI.

    The page then shows the animation with no kernel and no network: the bytes live in the HTML.
    """
    import base64

    from IPython.display import HTML

    data = gif if isinstance(gif, bytes) else Path(gif).read_bytes()
    if not data.startswith(b"GIF8"):
        raise ValueError("not a GIF file")
    size = f' width="{int(width)}"' if width else ""
    return HTML(f'<img src="data:image/gif;base64,{base64.b64encode(data).decode("ascii")}"{size} '
                f'style="image-rendering: pixelated" alt="sampling trajectory (animated GIF)"/>')


# =====================================================================================
# Chapter 5, second edition: the forward process on several data sets at once.
# =====================================================================================


def plot_forward_batches(
    batches: Mapping[str, Tensor],
    s: Schedule,
    ts: Sequence[int],
    eps: Mapping[str, Tensor],
    *,
    fig: Figure | None = None,
) -> Figure:
    """Chapter 5: each batch noised by the closed form at the same steps ``ts``, one row per batch.

    batches: label -> (B, C, H, W) in [-1, 1] (B = 1 for a single photograph); eps: label -> noise
    of the same shape, shared by every t of a row so that only t changes along it. Each panel is the
    :func:`ddpm_edu.data.images.image_grid` of :func:`ddpm_edu.forward.q_sample` (batch, t, eps);
    column titles give t and alpha_bar_t. Pass ``fig`` to redraw in place.
    """
    ts = list(ts)
    fig = _reset(fig, (1.7 * len(ts), 2.0 * len(batches) + 0.3))
    rows = fig.subfigures(len(batches), 1, squeeze=False)[:, 0]
    for r, (row, (label, x0)) in enumerate(zip(rows, batches.items())):
        if eps[label].shape != x0.shape:
            raise ValueError(f"eps[{label!r}] has shape {tuple(eps[label].shape)}, the batch {tuple(x0.shape)}")
        axes = row.subplots(1, len(ts), squeeze=False)[0]
        for ax, t in zip(axes, ts):
            grid = image_grid(q_sample(x0, t, eps[label], s))
            ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(rf"$t={t}$, $\bar\alpha_t={float(s.alpha_bar[t]):.2g}$", fontsize=9)
        row.suptitle(label, fontsize=10, x=0.02, ha="left")
    return fig
