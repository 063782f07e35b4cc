"""Figure plumbing for every chapter: figures without pyplot, their bytes and files, image grids, GIFs in a page.

Figures are made without pyplot: each one owns an Agg canvas (:func:`new_figure`), so no global state
(rcParams, the pyplot figure list, the backend) changes, and a notebook shows a figure exactly once,
when a cell returns it (:class:`BookFigure`). Plot functions never re-implement math: they call the
library. They take ``ax=None`` (single-panel ones, through :func:`figure_and_axes`) or build a new
figure (multi-panel ones, which accept ``fig=`` to redraw in place, through :func:`fresh_figure`), and
return the :class:`matplotlib.figure.Figure`. Images in [-1, 1] are shown through
:func:`ddpm_edu.data.images.to_uint8`.

Besides the plumbing, two displays that several chapters share: :func:`plot_images` (chapters 1, 2, 7)
and :func:`gif_html` (chapters 8 and 9). The chapters' own figures are in
:mod:`ddpm_edu.lab.plots.forward` (Part I) and :mod:`ddpm_edu.lab.plots.reverse` (Part II).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from ddpm_edu.data.files import atomic_write
from ddpm_edu.data.images import image_grid, to_uint8

if TYPE_CHECKING:
    from IPython.display import HTML

__all__ = [
    "BookFigure", "new_figure", "figure_and_axes", "fresh_figure", "show_image", "as_numpy",
    "figure_png", "figure_bytes", "save_figure", "plot_images", "gif_html",
]


# -------------------------------------------------------------------------------- figures without pyplot


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


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` with one axes: how single-panel plots start."""
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def fresh_figure(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    """A fresh figure, or ``fig`` cleared for redrawing (widgets and animations reuse one figure)."""
    if fig is None:
        return new_figure(figsize)
    fig.clear()
    return fig


def show_image(ax: Axes, x: Tensor, title: str | None = None) -> None:
    """Draw one image x: (C, H, W) in [-1, 1] on ``ax``, without ticks, with an optional small title."""
    ax.imshow(to_uint8(x), interpolation="nearest")  # values outside [-1, 1] saturate (to_uint8 clips)
    ax.set_axis_off()  # also skips tick layout, which dominates redraw time
    if title:
        ax.set_title(title, fontsize=9)


def as_numpy(x: Tensor) -> np.ndarray:
    """A tensor as a float64 numpy array on the CPU, detached: what matplotlib is given."""
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


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float = 100) -> Path:
    """Write a figure as a PNG, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


# ----------------------------------------------------------------------- displays several chapters share


def plot_images(x: Tensor, nrow: int | None = None, *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Chapters 1 and 7: a batch of images in [-1, 1], (B, C, H, W), tiled by :func:`~ddpm_edu.data.images.image_grid` on one axes."""
    fig, ax = figure_and_axes(ax, (4.0, 4.0))
    grid = image_grid(x, nrow)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def gif_html(gif: bytes | str | os.PathLike, width: int | None = None, *, alt: str) -> HTML:
    """Chapters 8-9: a GIF (bytes or a file) as an ``IPython.display.HTML`` image with an embedded base64 data URI.

    The page then shows the animation with no kernel and no network: the bytes live in the HTML. ``alt`` says
    what the animation shows, for readers who cannot see it (myst-nb's image metadata does not reach HTML).
    """
    import base64
    from html import escape

    from IPython.display import HTML

    if not alt.strip():
        raise ValueError("alt must say what the animation shows (it is read to those who cannot see it)")
    data = gif if isinstance(gif, bytes) else Path(gif).read_bytes()
    if not data.startswith(b"GIF8"):
        raise ValueError("not a GIF file")
    size = f' width="{int(width)}"' if width else ""
    return HTML(f'<img src="data:image/gif;base64,{base64.b64encode(data).decode("ascii")}"{size} '
                f'style="image-rendering: pixelated" alt="{escape(alt.strip(), quote=True)}"/>')
