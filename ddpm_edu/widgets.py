"""Interactive explorers for every reader (live sliders in a kernel, an HTML player without one) and their HTML.

Chapter 4 (:func:`beta_explorer`, the beta widget) and chapter 5 (:func:`forward_explorer`).

One call returns an :class:`Explorer`. Displaying it offers the front end two views of the same
plot at once (its ``_repr_mimebundle_``):

- ``application/vnd.jupyter.widget-view+json``: live ipywidgets sliders. Jupyter, JupyterLab,
  VS Code and Colab render this one, since a widget view outranks HTML wherever widgets work.
- ``text/html``: a kernel-free player, matplotlib's ``FuncAnimation.to_jshtml()``, whose frames
  sweep one parameter. The published book shows this one: ``_config.yml`` sets myst-nb's
  ``nb_mime_priority_overrides`` so that the HTML builders drop the widget view, which would
  otherwise be a dead control on a page with no kernel.

Both views draw with the same plot function from :mod:`ddpm_edu.viz` (``plot_beta_explorer``,
``plot_forward_explorer``); this module only wires controls to it. Bad schedule parameters are
never a traceback: the library's ``ValueError`` text is shown in a message box instead. The two
pieces of HTML, the player (:func:`animation_html`) and the message box (:func:`message_html`),
are made here too.
"""

from __future__ import annotations

import functools
import tempfile
from html import escape as html_escape
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from . import fastmode
from .data import photo
from .schedules import KINDS, Schedule
from .viz import figure_bytes, new_figure, plot_beta_explorer, plot_forward_explorer

__all__ = ["Explorer", "beta_explorer", "forward_explorer", "explorer_times", "animation_html", "message_html"]

DPI_LIVE = 80  # the live widget's image: JPEG, because pictures of noise do not compress as PNG.
# (nbclient stores the widget state, current image included, in the executed notebook, and
# myst-nb embeds that state in the page, so its size counts even where the widget is not shown.)
DPI_STATIC = 75  # each frame of the static player (540 px wide): the page stays light
SIZE_STATIC = 7.2  # inches; smaller than the live figure, so the text stays legible at that width


class Explorer:
    """What an explorer function returns: a live widget and a static HTML player, built lazily.

    ``.widget`` is the ipywidgets box (``.controls`` holds its sliders, ``.message`` the message box,
    ``.image`` the plot); ``.to_html()`` the kernel-free player; ``.error`` the library's message
    when the starting parameters are invalid, else None.
    """

    def __init__(self, build_widget: Callable[["Explorer"], object], build_html: Callable[[], str], description: str):
        self._build_widget, self._build_html, self.description = build_widget, build_html, description
        self.controls: dict[str, object] = {}
        self.message = self.image = None
        self.error: str | None = None

    @functools.cached_property
    def widget(self):
        return self._build_widget(self)

    @functools.lru_cache(maxsize=1)
    def to_html(self) -> str:
        """The static view: a self-contained HTML animation with a slider (or the error message)."""
        return self._build_html()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        data = dict(self.widget._repr_mimebundle_())  # text/plain + the widget view
        data["text/plain"] = self.description
        data["text/html"] = self.to_html()
        return data

    def __repr__(self) -> str:
        return self.description


# --------------------------------------------------------------------------- the HTML the explorers show


def animation_html(
    fig: Figure,
    draw: Callable[[int], object],
    n_frames: int,
    *,
    fps: float = 2.0,
    embed_limit_mb: float = 4.0,
    frame_format: str = "png",
    jpeg_quality: int = 70,
) -> str:
    """Render ``draw(i)`` for i in 0..n_frames-1 into one self-contained HTML player with a slider.

    This is what matplotlib's ``FuncAnimation(...).to_jshtml()`` does, with the writer's options
    (frame format, JPEG quality, embed limit) passed directly instead of through rcParams: every
    frame is embedded as an image and a few lines of JavaScript drive the slider and buttons, so it
    works on a static page with no kernel. ``draw`` redraws ``fig`` for frame i.
    """
    from matplotlib.animation import FuncAnimation, HTMLWriter

    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames!r}")
    anim = FuncAnimation(fig, lambda i: draw(i), frames=n_frames, init_func=lambda: None, repeat=False, cache_frame_data=False)
    writer = HTMLWriter(fps=fps, embed_frames=True, default_mode="once", embed_limit=embed_limit_mb)
    writer.frame_format = frame_format
    kwargs = {"pil_kwargs": {"quality": jpeg_quality}} if frame_format in ("jpeg", "jpg") else {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "animation.html"
        anim.save(str(path), writer=writer, savefig_kwargs=kwargs)
        return path.read_text()


def message_html(text: str, kind: str = "error") -> str:
    """A short boxed message (a widget's answer to bad parameters), as HTML."""
    colour = {"error": ("#fdecea", "#b3261e"), "note": ("#eef4fb", "#1f5f99")}[kind]
    return (
        f'<div style="background:{colour[0]};border-left:4px solid {colour[1]};padding:6px 10px;'
        f'margin:4px 0;font-family:sans-serif;font-size:13px;color:#222">{html_escape(text)}</div>'
    )


def explorer_times(T: int, fractions: Sequence[float]) -> list[int]:
    """The steps shown by the beta widget: round(f * T) for each fraction f, kept in 0..T."""
    return sorted({min(T, max(0, int(round(f * T)))) for f in fractions})


def _make_schedule(kind: str, T: int, beta_1: float, beta_T: float) -> tuple[Schedule | None, str | None]:
    """The library's schedule, or the text of the ValueError it raised."""
    try:
        return Schedule.make(kind, T, beta_1, beta_T), None
    except ValueError as e:
        return None, str(e)


def _title(kind: str, T: int, beta_1: float, beta_T: float) -> str:
    if kind == "cosine":
        return f"cosine schedule, T = {T} (cosine ignores beta_1 and beta_T)"
    return f"{kind} schedule: beta_1 = {beta_1:.2g}, beta_T = {beta_T:.3g}, T = {T}"


def beta_explorer(
    x0: Tensor | None = None,
    *,
    kind: str = "linear",
    beta_1: float = 1e-4,
    beta_T: float = 0.02,
    T: int = 1000,
    fractions: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0),
    sweep: Sequence[float] | None = None,
    frames: int | None = None,
    seed: int = 0,
) -> Explorer:
    """Chapter 4, the beta widget: pick a schedule and see beta_t, alpha_bar_t, the SNR and x0 noised.

    Live: a kind dropdown and sliders for beta_1, beta_T and T redraw
    :func:`ddpm_edu.viz.plot_beta_explorer`. Static: ``frames`` frames (10; 3 in fast mode)
    sweeping beta_T over ``sweep`` (default: log-spaced from 0.002 to 0.05) with the other settings
    fixed, or sweeping T for the cosine schedule. x0: (C, H, W), default :func:`ddpm_edu.data.photo`.
    The noise eps is drawn once from ``seed``, so only the schedule changes between frames.
    """
    import ipywidgets as W

    x0 = photo() if x0 is None else x0
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=x0.dtype)
    n = frames if frames is not None else fastmode.pick(10, 3)

    def draw(fig, kind, T, beta_1, beta_T):
        s, err = _make_schedule(kind, T, beta_1, beta_T)
        if s is not None:
            plot_beta_explorer(s, x0, eps, explorer_times(T, fractions), title=_title(kind, T, beta_1, beta_T), fig=fig)
        return err

    def build_html() -> str:
        _, err = _make_schedule(kind, T, beta_1, beta_T)
        if err:
            return message_html(err)
        if kind == "cosine":
            params = [(kind, int(t), beta_1, beta_T) for t in np.unique(np.linspace(max(1, T // 10), T, n).round().astype(int))]
        else:
            values = np.geomspace(0.002, 0.05, n) if sweep is None else np.asarray(sweep, dtype=float)
            params = [(kind, T, beta_1, float(b)) for b in values if _make_schedule(kind, T, beta_1, float(b))[1] is None]
        if not params:
            return message_html("no frame of the sweep gives a valid schedule with these settings")
        fig = new_figure((SIZE_STATIC, 4.3), dpi=DPI_STATIC)
        return animation_html(fig, lambda i: draw(fig, *params[i]), len(params), frame_format="jpeg")

    def build_widget(ex: Explorer):
        style = {"description_width": "60px"}
        c = ex.controls = {
            "kind": W.Dropdown(options=list(KINDS) + ([] if kind in KINDS else [kind]), value=kind, description="schedule", style=style),
            "beta_1": W.FloatLogSlider(value=beta_1, base=10, min=-6, max=0, step=0.05, description="β₁", readout_format=".2e", style=style),
            "beta_T": W.FloatLogSlider(value=beta_T, base=10, min=-4, max=0, step=0.05, description="β_T", readout_format=".3g", style=style),
            "T": W.IntSlider(value=T, min=1, max=4000, step=1, description="T", continuous_update=False, style=style),
        }
        for k in ("beta_1", "beta_T"):
            c[k].continuous_update = False
        ex.message, ex.image = W.HTML(), W.Image(format="jpeg")
        fig = new_figure((9.0, 5.0), dpi=DPI_LIVE)

        def redraw(_=None):
            args = (c["kind"].value, c["T"].value, c["beta_1"].value, c["beta_T"].value)
            ex.error = draw(fig, *args)
            c["beta_1"].disabled = c["beta_T"].disabled = args[0] == "cosine"
            if ex.error:
                ex.message.value = message_html(ex.error)
                ex.image.layout.display = "none"
            else:
                ex.message.value = message_html("cosine ignores β₁ and β_T", "note") if args[0] == "cosine" else ""
                ex.image.value = figure_bytes(fig, "jpeg", DPI_LIVE)
                ex.image.layout.display = None

        for w in c.values():
            w.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox([c["kind"], c["T"]]), W.HBox([c["beta_1"], c["beta_T"]]), ex.message, ex.image])

    ex = Explorer(build_widget, build_html, f"beta_explorer({_title(kind, T, beta_1, beta_T)})")
    ex.error = _make_schedule(kind, T, beta_1, beta_T)[1]
    return ex


def forward_explorer(
    x0: Tensor | None = None,
    s: Schedule | None = None,
    *,
    frames: int | None = None,
    seed: int = 0,
) -> Explorer:
    """Chapter 5: slide t and watch q(x_t | x0) take x0 to noise.

    Live: a t slider redraws :func:`ddpm_edu.viz.plot_forward_explorer` (the image x_t, its pixel
    histogram, and alpha_bar_t). Static: ``frames`` frames (11; 3 in fast mode) at evenly
    spaced t from 0 to T. x0: (C, H, W), default :func:`ddpm_edu.data.photo`; s: default DDPM linear.
    """
    import ipywidgets as W

    x0 = photo() if x0 is None else x0
    s = Schedule.linear() if s is None else s
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=x0.dtype)
    n = frames if frames is not None else fastmode.pick(11, 3)  # t = 0, 100, ..., 1000 for T = 1000

    def build_html() -> str:
        ts = np.unique(np.linspace(0, s.T, n).round().astype(int)).tolist()
        fig = new_figure((SIZE_STATIC, 2.5), dpi=DPI_STATIC)
        return animation_html(fig, lambda i: plot_forward_explorer(s, x0, eps, ts[i], fig=fig), len(ts), frame_format="jpeg")

    def build_widget(ex: Explorer):
        t = ex.controls["t"] = W.IntSlider(value=s.T // 4, min=0, max=s.T, step=1, description="t", continuous_update=False)
        ex.message, ex.image = W.HTML(), W.Image(format="jpeg")
        fig = new_figure((9.0, 2.8), dpi=DPI_LIVE)

        def redraw(_=None):
            ex.image.value = figure_bytes(plot_forward_explorer(s, x0, eps, t.value, fig=fig), "jpeg", DPI_LIVE)

        t.observe(redraw, names="value")
        redraw()
        return W.VBox([t, ex.message, ex.image])

    return Explorer(build_widget, build_html, f"forward_explorer(T = {s.T})")
