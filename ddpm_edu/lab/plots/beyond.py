"""The figures of Part IV, beyond DDPM: chapter 10's guidance figures, chapter 11's map of successors and its
variance figure.

The conventions are those of :mod:`ddpm_edu.lab.plots.base`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from ddpm_edu.analytic import MixtureEps, square_grid, tilted_log_density
from ddpm_edu.data.images import image_grid
from ddpm_edu.lab.plots.base import as_numpy, figure_and_axes, new_figure
from ddpm_edu.lab.successors import CHAPTERS, SUCCESSORS
from ddpm_edu.posterior import optimal_reverse_variance
from ddpm_edu.schedules import Schedule

__all__ = ["plot_successor_map", "plot_optimal_variance", "plot_tilted_density", "plot_guidance_grid"]


def plot_successor_map(ax: Axes | None = None) -> Figure:
    """Chapter 11: the book's chapters (left) joined to the successors that build on them (right, by year).

    The entries are :data:`ddpm_edu.lab.successors.SUCCESSORS`, the same as the chapter's table.
    """
    fig, ax = figure_and_axes(ax, (8.0, 4.2))
    chapters = list(CHAPTERS)
    y_ch = {c: 1 - i / (len(chapters) - 1) for i, c in enumerate(chapters)}  # top to bottom
    y_su = 1 - np.arange(len(SUCCESSORS)) / (len(SUCCESSORS) - 1)
    box = dict(boxstyle="round,pad=0.35", linewidth=0.8)
    for c, y in y_ch.items():
        ax.text(0.0, y, f"ch. {c}: {CHAPTERS[c]}", ha="right", va="center", fontsize=9,
                bbox=dict(box, facecolor="#e8eef7", edgecolor="C0"))
    for i, (s, y) in enumerate(zip(SUCCESSORS, y_su)):
        ax.text(1.0, y, f"{s.name} ({s.year})", ha="left", va="center", fontsize=9,
                bbox=dict(box, facecolor="#fbeee2", edgecolor="C1"))
        for c in s.chapters:
            ax.plot([0.02, 0.98], [y_ch[c], y], color=f"C{i}", lw=1.2, alpha=0.8)
    ax.set(xlim=(-0.75, 1.75), ylim=(-0.1, 1.1))
    ax.axis("off")
    return fig


def plot_optimal_variance(s: Schedule, sds: Sequence[float], ax: Axes | None = None) -> Figure:
    """Chapter 11: the best fixed reverse variance for Gaussian data N(0, sd^2), as a share of the way from
    beta_tilde_t to beta_t on a log scale (Improved DDPM's interpolation weight h_t, their v), against t.

    For x0 ~ N(0, sd^2), E[eps*^2] = (1 - alpha_bar_t) / (alpha_bar_t sd^2 + 1 - alpha_bar_t); the variance is
    :func:`ddpm_edu.posterior.optimal_reverse_variance` and the weight
    h_t = (log sigma*_t^2 - log beta_tilde_t) / (log beta_t - log beta_tilde_t), from t = 2.
    """
    fig, ax = figure_and_axes(ax, (6.0, 3.2))
    t = torch.arange(2, s.T + 1)
    ab, beta, beta_tilde = s.alpha_bar[2:], s.betas[2:], s.beta_tilde[2:]
    for sd in sds:
        eps_sq = (1 - ab) / (ab * sd**2 + 1 - ab)
        var = optimal_reverse_variance(s, t, eps_sq)
        v = (var.log() - beta_tilde.log()) / (beta.log() - beta_tilde.log())
        ax.plot(as_numpy(t), as_numpy(v), lw=1.5, label=f"data sd = {sd:g}")
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    ax.axhline(1, color="0.5", lw=0.8, ls=":")
    ax.text(s.T, 0.02, r"$\tilde\beta_t$", ha="right", va="bottom", fontsize=9)
    ax.text(s.T, 0.98, r"$\beta_t$", ha="right", va="top", fontsize=9)
    ax.set(xscale="log", xlabel="t", ylabel=r"$h_t$", ylim=(-0.05, 1.05),
           title=r"where $\sigma^{*2}_t$ lies between $\tilde\beta_t$ and $\beta_t$ (log scale)")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8, loc="center left")
    return fig


def plot_tilted_density(mix: MixtureEps, y: int, ws: Sequence[float], t: int = 0, *, lim: float = 3.0,
                        n: int = 161) -> Figure:
    """Chapter 10: the tilted density q_t(x | y)^(1 + w) / q_t(x)^w of a 2-D mixture, one panel per w.

    The log density is :func:`ddpm_edu.analytic.tilted_log_density` on an n x n grid over [-lim, lim]^2,
    normalised on the grid; the component means are marked, class y's filled. t = 0: the data.
    """
    fig = new_figure((2.6 * len(ws), 2.8))
    axes = np.atleast_1d(fig.subplots(1, len(ws), sharex=True, sharey=True))
    x = square_grid(lim, n)  # (n^2, 2), rows along x1
    mu = as_numpy(mix.mu)
    for ax, w in zip(axes, ws):
        log_p = tilted_log_density(mix, x, t, y, w)
        p = (log_p - log_p.max()).exp().reshape(n, n)
        ax.imshow(as_numpy(p / p.sum()), origin="lower", extent=(-lim, lim, -lim, lim), cmap="magma")
        ax.scatter(mu[:, 0], mu[:, 1], s=25, facecolors="none", edgecolors="w", lw=1)
        ax.scatter(mu[y, 0], mu[y, 1], s=25, color="w")
        ax.set_title(f"w = {w:g}", fontsize=10)
        ax.set_xlabel("$x_1$")
    axes[0].set_ylabel("$x_2$")
    return fig


def plot_guidance_grid(x: Tensor, ws: Sequence[float], labels: Sequence[int] | None = None) -> Figure:
    """Chapter 10: samples by class (rows) and guidance weight (columns), several per cell.

    x: (K, len(ws), n, C, H, W) images in [-1, 1]; row k is class labels[k] (default k), column j weight ws[j].
    Each cell tiles its n images in one row (:func:`~ddpm_edu.data.images.image_grid`).
    """
    if x.ndim != 6 or x.shape[1] != len(ws):
        raise ValueError(f"x must be (K, {len(ws)}, n, C, H, W), one column per weight, got {tuple(x.shape)}")
    labels = list(range(x.shape[0])) if labels is None else list(labels)
    if len(labels) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} rows of images but {len(labels)} labels")
    K, J, n = x.shape[:3]
    fig = new_figure((1.9 * J * max(n, 1) / 4 + 0.5, 0.55 * K + 0.5))
    axes = fig.subplots(K, J, squeeze=False)
    for k in range(K):
        for j in range(J):
            grid = image_grid(x[k, j], nrow=n)  # uint8, (H', W') or (H', W', 3)
            axes[k, j].imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255,
                              interpolation="nearest")
            axes[k, j].set_axis_off()
            if k == 0:
                axes[k, j].set_title(f"w = {ws[j]:g}", fontsize=10)
        axes[k, 0].text(-0.05, 0.5, str(labels[k]), transform=axes[k, 0].transAxes, ha="right", va="center")
    return fig
