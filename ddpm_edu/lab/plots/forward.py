"""The figures of Part I, the forward process: chapters 1 to 5.

Chapter 1 (:func:`plot_px_pz`), chapters 2-3 (:func:`plot_image_strip`, :func:`plot_naive_noise`,
:func:`plot_variance`, :func:`plot_fixed_noise`), chapter 4 (:func:`plot_schedules`) and chapter 5
(:func:`plot_forward_steps`, :func:`plot_pixel_histograms`, :func:`plot_forward_batches`). Each draws
tensors that :mod:`ddpm_edu.forward` and :class:`ddpm_edu.schedules.Schedule` compute; the conventions
(``ax=None``, ``fig=`` to redraw, rcParams untouched) are those of :mod:`ddpm_edu.lab.plots.base`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from ddpm_edu.data.images import image_grid
from ddpm_edu.forward import naive_step, q_sample, trajectory, vp_step
from ddpm_edu.lab.plots.base import as_numpy, figure_and_axes, fresh_figure, new_figure, show_image
from ddpm_edu.schedules import Schedule

__all__ = [
    "plot_px_pz", "plot_image_strip", "plot_naive_noise", "plot_variance", "plot_fixed_noise",
    "plot_schedules", "plot_forward_steps", "plot_pixel_histograms", "plot_forward_batches",
]


# -------------------------------------------------------------------------- chapter 1: from p(z) to p(x)


def plot_px_pz(z: Tensor, x: Tensor, data: Tensor, mu_data: float, sigma_data: float, bins: int = 60) -> Figure:
    """Chapter 1: samples z ~ p(z) = N(0, 1), and x = mu_data_hat + sigma_data_hat z against the data and p(x).

    z, x, data: 1-D tensors (samples of the latent, the generated x and the training data);
    mu_data, sigma_data: the true parameters of p(x) = N(mu_data, sigma_data^2), drawn as a density curve.
    """
    fig = new_figure((9.0, 3.4))
    ax_z, ax_x = fig.subplots(1, 2)
    z, x, data = as_numpy(z.flatten()), as_numpy(x.flatten()), as_numpy(data.flatten())
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
    ax_x.hist(x, bins=edges, density=True, histtype="step", color="C3", lw=1.5, label=r"generated $\hat\mu_\mathrm{data}+\hat\sigma_\mathrm{data} z$")
    ax_x.plot(grid, torch.distributions.Normal(mu_data, sigma_data).log_prob(grid).exp(), "k", lw=1.5, label=r"true $p(x)$")
    ax_x.set_title(r"data $x \sim p(x)$")
    ax_x.set_xlabel("x")
    ax_x.legend(fontsize=8, loc="upper left")
    return fig


# ---------------------------------------------------- chapters 2-3: noising a photograph with a fixed nu


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
    fig = fresh_figure(fig, (1.9 * K, 4.0 if hist else 2.3))
    axes = fig.subplots(2 if hist else 1, K, squeeze=False, height_ratios=[1.6, 1] if hist else None)
    lim = max(1.0, float(states.abs().max()))
    for k, t in enumerate(ts):
        x = states[k]
        show_image(axes[0, k], x, f"t = {t}\nrange [{x.min():.2g}, {x.max():.2g}]")
        if hist:
            axes[1, k].hist(as_numpy(x.flatten()), bins=60, range=(-lim, lim), color="C0")
            axes[1, k].axvspan(-1, 1, color="C2", alpha=0.15, lw=0)  # the range images should live in
            axes[1, k].set_yticks([])
            axes[1, k].set_xlabel("pixel value", fontsize=8)
            axes[1, k].tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_naive_noise(x0: Tensor, nu: float, ts: Sequence[int], generator: torch.Generator | None = None) -> Figure:
    """Chapter 2: the naive process x_t = x_{t-1} + nu eps on an image, with pixel histograms.

    Runs :func:`ddpm_edu.forward.trajectory` with :func:`ddpm_edu.forward.naive_step`. x0: (C, H, W).
    The green band in the histograms is [-1, 1], the range the data started in.
    """
    states = trajectory(x0, max(ts), lambda x, t, e: naive_step(x, nu, e), generator=generator, keep=ts)
    title = rf"naive noise $x_t = x_{{t-1}} + \nu\epsilon_t$, $\nu = {nu:g}$"
    return plot_image_strip(states, sorted(set(ts)), hist=True, suptitle=title)


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
    fig, ax = figure_and_axes(ax, (5.0, 3.4))
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
    nus: float | Sequence[float],
    ts: Sequence[int],
    generator: torch.Generator | None = None,
) -> Figure:
    """Chapter 3: the variance-preserving step with a fixed nu, one row of images per nu.

    x_t = sqrt(1 - nu^2) x_{t-1} + nu eps (:func:`ddpm_edu.forward.vp_step`), iterated by
    :func:`ddpm_edu.forward.trajectory`. ``nu`` is the noise *standard deviation* per step;
    the per-step variance is nu^2. x0: (C, H, W).
    """
    nus = [nus] if isinstance(nus, (int, float)) else list(nus)
    ts = sorted(set(ts))
    fig = new_figure((1.45 * len(ts), 1.85 * len(nus) + 0.2))
    rows = fig.subfigures(len(nus), 1, squeeze=False)[:, 0]
    for row, nu in zip(rows, nus):
        states = trajectory(x0, ts[-1], lambda x, t, e, nu_=nu: vp_step(x, nu_, e), generator=generator, keep=ts)
        axes = row.subplots(1, len(ts), squeeze=False)[0]
        for ax, t, x in zip(axes, ts, states):
            show_image(ax, x, f"t = {t}")
        row.suptitle(rf"$\nu = {nu:g}$ per step ($\nu^2 = {nu**2:g}$)", fontsize=10)
    return fig


# ------------------------------------------------------------------------- chapter 4: variance schedules


def _schedule_axes(
    axes: Sequence[Axes], schedules: Mapping[str, Schedule], panels: Sequence[str], beta_scale: str, legend: bool = True
) -> None:
    for i, (label, s) in enumerate(schedules.items()):
        t = np.arange(1, s.T + 1)
        curves = {"beta": as_numpy(s.betas[1:]), "alpha_bar": as_numpy(s.alpha_bar[1:]), "snr": as_numpy(s.snr[1:])}
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
    fig = fresh_figure(fig, (3.3 * len(panels), 3.0))
    _schedule_axes(fig.subplots(1, len(panels), squeeze=False)[0], schedules, panels, beta_scale)
    return fig


# ------------------------------------------------------------ chapter 5: the closed-form forward process


def plot_forward_steps(x0: Tensor, s: Schedule, ts: Sequence[int], eps: Tensor) -> Figure:
    """The README's figure of chapter 5 (``figs.make_all``): x0 noised by q(x_t | x0) at each t in ``ts`` (t = 0 shows x0).

    The chapter itself shows this next to a batch of digits with :func:`plot_forward_batches`.

    Calls :func:`ddpm_edu.forward.q_sample` with one shared eps (C, H, W) for every t.
    """
    fig = new_figure((1.9 * len(ts), 2.4))
    axes = fig.subplots(1, len(ts), squeeze=False)[0]
    for ax, t in zip(axes, ts):
        xt = q_sample(x0[None], t, eps[None], s)[0]
        show_image(ax, xt, rf"$t={t}$" + "\n" + rf"$\bar\alpha_t={float(s.alpha_bar[t]):.2g}$")
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
    fig = fresh_figure(fig, (2.3 * len(ts), 2.6))
    axes = fig.subplots(1, len(ts), squeeze=False, sharey=False)[0]
    for i, (label, x) in enumerate(samples.items()):
        if x.shape[0] != len(ts):
            raise ValueError(f"{label!r} has {x.shape[0]} states but there are {len(ts)} time steps")
        for k, ax in enumerate(axes):
            ax.hist(as_numpy(x[k].flatten()), bins=bins, range=(-3.5, 3.5), density=True, histtype="step", lw=1.5, color=f"C{i}", label=label)
    for ax, t in zip(axes, ts):
        ax.set_title(f"t = {t}", fontsize=10)
        ax.set_yticks([])
        ax.set_xlabel("pixel value", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


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
    fig = fresh_figure(fig, (1.7 * len(ts), 2.0 * len(batches) + 0.3))
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
