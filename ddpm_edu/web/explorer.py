"""The live beta-schedule explorer: schedules computed in the reader's browser, with or without a kernel.

Chapter 3 (a constant step, too fast or too slow), chapter 4 (the schedule kinds) and chapter 5 (the
closed form x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with the t slider).

Everything the reader sees is computed in the page by the modules of :data:`MODULES` in
``ddpm_edu/web/js/``: the schedule formulas (``schedule.js``, the same as :mod:`ddpm_edu.schedules`;
the tests run it under node and compare to 1e-9), the curves of beta_t, alpha_bar_t and SNR_t on
fixed axes and the photograph noised from one fixed eps (``plots.js``), and the readouts of
:func:`ddpm_edu.schedules.summarize` (``explorer.js``). x0 and eps travel once, as small PNG data URIs.

:func:`schedule_explorer` returns a :class:`ScheduleExplorer`. Displaying it offers two views
(:mod:`ddpm_edu.web.views`):

- ``application/vnd.jupyter.widget-view+json``: an ipywidget (through ``anywidget``) whose settings
  are synced with Python, so ``explorer.schedule()`` is the schedule chosen in the browser.
  JupyterLab, VS Code and Colab show this view.
- ``text/html``: the same modules inline, with the settings and images embedded. It needs no kernel
  and no network. The published book shows it: ``_config.yml`` sets myst-nb's
  ``nb_mime_priority_overrides`` so that the HTML builders drop the widget view.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import torch
import traitlets
from PIL import Image
from torch import Tensor

from ddpm_edu.data.images import to_uint8
from ddpm_edu.data.photo import photo
from ddpm_edu.schedules import (
    FINISHED,
    KINDS,
    NOISED,
    Schedule,
    ScheduleSummary,
    schedule_problems,
    summarize,
)
from ddpm_edu.web.views import TwoViews, esm, inline_view, script_json

__all__ = ["ScheduleExplorer", "schedule_explorer", "CONTROLS", "EPS_SCALE", "MODULES"]

CONTROLS = ("kind", "beta_1", "beta_T", "s", "T", "t")  # every control a reader can be given
EPS_SCALE = 32  # eps is stored as round(32 eps) + 128 in 8 bits: steps of 1/32, clipped to [-4, 3.97]
MODULES = ("text.js", "dom.js", "schedule.js", "plots.js", "explorer.js")  # the explorer's JS, each after what it needs


def _png_uri(pixels: np.ndarray) -> str:
    """An (H, W, 3) uint8 array as a PNG data URI."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png_pixels(uri: str) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of a PNG data URI."""
    return np.array(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


class ScheduleExplorer(TwoViews):
    """A schedule explorer (chapters 3-5): an ipywidget in a kernel, a self-contained HTML page without one.

    The six settings are traitlets synced with the browser; :meth:`schedule` builds the chosen
    :class:`ddpm_edu.schedules.Schedule`. Make one with :func:`schedule_explorer`.
    """

    _esm = esm(MODULES, "DDPMExplorer.render")

    kind = traitlets.Unicode("linear").tag(sync=True)  # one of schedules.KINDS
    beta_1 = traitlets.Float(1e-4).tag(sync=True)  # the first step's beta (linear, quadratic, sigmoid)
    beta_T = traitlets.Float(0.02).tag(sync=True)  # the last step's beta
    s = traitlets.Float(0.008).tag(sync=True)  # the cosine schedule's offset
    T = traitlets.Int(1000).tag(sync=True)  # the number of steps
    t = traitlets.Int(250).tag(sync=True)  # the step shown, 0..T (0 is the clean image)
    config = traitlets.Dict().tag(sync=True)  # set once: images, the controls shown, thresholds

    def schedule(self) -> Schedule:
        """The schedule of the current settings; ValueError (the library's message) when they are invalid."""
        if self.kind == "cosine":
            return Schedule.cosine(self.T, self.s)
        return Schedule.make(self.kind, self.T, self.beta_1, self.beta_T)

    @property
    def error(self) -> str | None:
        """Why the current settings give no schedule, or None when they do."""
        try:
            self.schedule()
        except ValueError as e:
            return str(e)
        return None

    def summary(self) -> ScheduleSummary:
        """:func:`ddpm_edu.schedules.summarize` of :meth:`schedule`: the explorer's readouts."""
        return summarize(self.schedule())

    def embedded(self) -> tuple[Tensor, Tensor]:
        """The x0 and eps the browser uses, decoded from the embedded PNGs: (3, H, W) float64 each.

        The explorer shows ``q_sample(x0[None], t, eps[None], schedule())`` (as uint8 pixels).
        """
        x0 = torch.from_numpy(_png_pixels(self.config["x0"])).permute(2, 0, 1).double() / 127.5 - 1.0
        eps = (torch.from_numpy(_png_pixels(self.config["eps"])).permute(2, 0, 1).double() - 128.0) / EPS_SCALE
        return x0, eps

    def settings(self) -> dict:
        """The six settings as a dict."""
        return {k: getattr(self, k) for k in CONTROLS}

    def to_html(self) -> str:
        """The kernel-free view: the JS modules inline, settings and images embedded, under a fresh element id."""
        state = script_json({**self.settings(), "config": self.config})
        fallback = "The schedule explorer needs JavaScript; in Jupyter, trust the notebook or run the cell."
        args = f"DDPMExplorer.staticModel({state})"
        return inline_view(MODULES, "ddpm-explorer", fallback, "DDPMExplorer.mount", args)

    def __repr__(self) -> str:
        return "ScheduleExplorer(" + ", ".join(f"{k}={v!r}" for k, v in self.settings().items()) + ")"


def schedule_explorer(
    img: Tensor | None = None,
    *,
    kind: str = "linear",
    beta_1: float = 1e-4,
    beta_T: float = 0.02,
    s: float = 0.008,
    T: int = 1000,
    t: int | None = None,
    controls: Sequence[str] | None = None,
    constant: bool = False,
    seed: int = 0,
) -> ScheduleExplorer:
    """Chapters 3-5: an explorer of a beta schedule and of the image it noises, computed in the browser.

    img: (3, H, W) or (1, H, W) in [-1, 1], default :func:`ddpm_edu.data.photo` (96 x 96); eps is
    drawn once from ``seed``. The settings start at kind, beta_1, beta_T (cosine: s), T and t
    (default T // 4). ``controls`` names the settings the reader may change (default all of
    :data:`CONTROLS`); the others stay fixed and are printed above the plots. ``constant=True``
    ties beta_1 = beta_T = beta_T to one slider (chapter 3's fixed step, beta = nu^2).
    Settings the library rejects (beta_1 > beta_T, ...) are shown as a message, not raised; a
    wrong ``kind`` or control name is the caller's mistake and raises ValueError.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; choose one of {', '.join(KINDS)}")
    controls = tuple(CONTROLS if controls is None else controls)
    if unknown := [c for c in controls if c not in CONTROLS]:
        raise ValueError(f"unknown controls {unknown}; choose from {', '.join(CONTROLS)}")
    if constant and kind != "linear":
        raise ValueError(f"constant=True is a linear schedule with beta_1 = beta_T; got kind={kind!r}")
    if schedule_problems(T=T):  # T sizes the t slider, so it must be valid from the start
        raise ValueError(schedule_problems(T=T)["T"])
    beta_1 = beta_T if constant else beta_1
    t = T // 4 if t is None else t
    if not 0 <= t <= T:
        raise ValueError(f"t must lie in 0..T = 0..{T}, got {t!r}")
    x0 = photo() if img is None else img.detach().cpu()
    if x0.dim() != 3 or x0.shape[0] not in (1, 3):
        raise ValueError(f"img must be (3, H, W) or (1, H, W), got shape {tuple(x0.shape)}")
    x0 = x0.expand(3, -1, -1)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    eps_u8 = (eps * EPS_SCALE).round().add(128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    config = {
        "x0": _png_uri(to_uint8(x0)),
        "eps": _png_uri(np.ascontiguousarray(eps_u8)),
        "eps_scale": EPS_SCALE,
        "size": [int(x0.shape[1]), int(x0.shape[2])],
        "controls": list(controls),
        "constant": constant,
        "noised": NOISED,
        "finished": FINISHED,
    }
    return ScheduleExplorer(kind=kind, beta_1=beta_1, beta_T=beta_T, s=s, T=T, t=t, config=config)
