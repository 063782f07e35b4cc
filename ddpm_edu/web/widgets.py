"""The live beta-schedule explorer: schedules computed in the reader's browser, with or without a kernel.

Chapter 3 (a constant step, too fast or too slow), chapter 4 (the schedule kinds) and chapter 5 (the
closed form x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, with the t slider).

Everything the reader sees is computed by one JavaScript module shipped with the package,
``ddpm_edu/web/js/explorer.js``: the schedule formulas (the same as :mod:`ddpm_edu.schedules`; the
tests run the file under node and compare to 1e-9), the curves of beta_t, alpha_bar_t and SNR_t on
fixed axes, the photograph noised from one fixed eps, and the readouts of
:func:`ddpm_edu.schedules.summarize`. x0 and eps travel once, as small PNG data URIs.

:func:`schedule_explorer` returns a :class:`ScheduleExplorer`. Displaying it offers two views:

- ``application/vnd.jupyter.widget-view+json``: an ipywidget (through ``anywidget``) whose settings
  are synced with Python, so ``explorer.schedule()`` is the schedule chosen in the browser.
  JupyterLab, VS Code and Colab show this view.
- ``text/html``: the same module inline, with the settings and images embedded. It needs no kernel
  and no network. The published book shows it: ``_config.yml`` sets myst-nb's
  ``nb_mime_priority_overrides`` so that the HTML builders drop the widget view.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import uuid
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Sequence

import anywidget
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

__all__ = ["ScheduleExplorer", "schedule_explorer", "CONTROLS", "EPS_SCALE", "LiveSampler", "live_toy", "live_digits",
           "ort_dist", "ORT_FILES", "ORT_VERSION"]

CONTROLS = ("kind", "beta_1", "beta_T", "s", "T", "t")  # every control a reader can be given
EPS_SCALE = 32  # eps is stored as round(32 eps) + 128 in 8 bits: steps of 1/32, clipped to [-4, 3.97]


ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")  # onnxruntime-web's ES module and its WASM
ORT_VERSION = "1.30.0"  # the onnxruntime-web that package.json pins (a test keeps the two equal)
CHECKOUT_ORT = Path(__file__).resolve().parents[2] / "node_modules/onnxruntime-web/dist"  # after `npm ci` in a checkout


def ort_dist() -> Path:
    """The folder of onnxruntime-web's files (:data:`ORT_FILES`), found or installed.

    In order: ``$DDPM_EDU_ORT``; the checkout's ``node_modules`` (``npm ci`` installs the version
    package-lock.json pins); a copy in the model cache (``<cache>/onnxruntime-web-<version>``). When none
    has the files and ``npm`` is on PATH, npm installs :data:`ORT_VERSION` into that cache copy: this is
    how an installed package (Colab, which has npm) gets the runtime for the digits sampler's widget view.
    FileNotFoundError says what to do when none of this works.
    """
    if os.environ.get("DDPM_EDU_ORT"):
        return _with_ort_files(Path(os.environ["DDPM_EDU_ORT"]), "$DDPM_EDU_ORT must name onnxruntime-web's dist/ folder.")
    cached = _ort_cache()
    for folder in (CHECKOUT_ORT, cached / "node_modules/onnxruntime-web/dist"):
        if all((folder / f).is_file() for f in ORT_FILES):
            return folder
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            f"onnxruntime-web is not installed ({', '.join(ORT_FILES)} are missing from {CHECKOUT_ORT}) and npm is not "
            "on PATH to install it. Run `npm ci` in the repository root, install node and npm, or point $DDPM_EDU_ORT "
            "at the dist/ folder of onnxruntime-web " + ORT_VERSION + "."
        )
    cmd = [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(cached), f"onnxruntime-web@{ORT_VERSION}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    hint = f"`{' '.join(cmd)}` exited with {run.returncode}: {run.stderr.strip()[-300:]}"
    return _with_ort_files(cached / "node_modules/onnxruntime-web/dist", hint)


def _ort_cache() -> Path:
    from ddpm_edu.data.files import cache_root

    return cache_root() / f"onnxruntime-web-{ORT_VERSION}"


def _with_ort_files(folder: Path, hint: str) -> Path:
    missing = [f for f in ORT_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"onnxruntime-web is incomplete: {', '.join(missing)} missing from {folder}. {hint}")
    return folder


@lru_cache(maxsize=1)
def explorer_js() -> str:
    """The source of ``ddpm_edu/web/js/explorer.js``."""
    return files("ddpm_edu.web").joinpath("js/explorer.js").read_text(encoding="utf-8")


def _png_uri(pixels: np.ndarray) -> str:
    """An (H, W, 3) uint8 array as a PNG data URI."""
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _png_pixels(uri: str) -> np.ndarray:
    """The (H, W, 3) uint8 pixels of a PNG data URI."""
    return np.array(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


class _TwoViews(anywidget.AnyWidget):
    """An anywidget that also carries a kernel-free ``text/html`` view (:meth:`to_html`): Jupyter and Colab
    show the widget, a static page (the book) the HTML, which runs the same JS module inline."""

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = repr(self)
        data["text/html"] = self.to_html()
        return data, metadata


class ScheduleExplorer(_TwoViews):
    """A schedule explorer (chapters 3-5): an ipywidget in a kernel, a self-contained HTML page without one.

    The six settings are traitlets synced with the browser; :meth:`schedule` builds the chosen
    :class:`ddpm_edu.schedules.Schedule`. Make one with :func:`schedule_explorer`.
    """

    _esm = explorer_js() + "\nexport default { render: DDPMExplorer.render };\n"

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
        """The kernel-free view: the JS module inline, settings and images embedded, under a fresh element id."""
        root = f"ddpm-explorer-{uuid.uuid4().hex}"
        state = json.dumps({**self.settings(), "config": self.config}).replace("</", "<\\/")
        return (
            f'<div id="{root}" class="ddpm-explorer">The schedule explorer needs JavaScript; '
            f"in Jupyter, trust the notebook or run the cell.</div>\n"
            f"<script>(function () {{\n{explorer_js()}\n"
            f'DDPMExplorer.mount(document.getElementById("{root}"), DDPMExplorer.staticModel({state}));\n}})();</script>'
        )

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
    ties beta_1 = beta_T = beta_T to one slider (chapter 3's fixed step, beta = sigma^2).
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


# --------------------------------------------------------------------------- live sampling (chapters 6 and 8)
@lru_cache(maxsize=1)
def live_js() -> str:
    """The source of ``ddpm_edu/web/js/live.js`` (it needs explorer.js loaded before it)."""
    return files("ddpm_edu.web").joinpath("js/live.js").read_text(encoding="utf-8")


class LiveSampler(_TwoViews):
    """A sampler that runs in the reader's browser (chapter 8; chapter 6 with the exact eps*).

    ``config`` holds everything the page needs: the schedule, the network (the toy MLP's weights or the
    digits U-Net as ONNX, base64) and the starting settings. Displayed, it offers an ipywidget view
    (JupyterLab, Colab) and a kernel-free ``text/html`` view (the book), like :class:`ScheduleExplorer`.
    The digits need onnxruntime-web: the book serves it from ``_static/ddpm_live/`` (copied there by
    :mod:`ddpm_edu.web.sphinxext`); the widget view asks the kernel for it (:func:`ort_dist`) when first used.
    Make one with :func:`live_toy` or :func:`live_digits`.
    """

    _esm = explorer_js() + "\n" + live_js() + "\nexport default { render: DDPMLive.render };\n"
    config = traitlets.Dict().tag(sync=True)  # set once: kind ("toy" or "digits"), schedule, network, settings

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.on_msg(self._send_runtime)

    def _send_runtime(self, _widget, content, _buffers) -> None:
        """Answer the browser's request for onnxruntime-web: its ES module as text, its WASM as a binary buffer."""
        if content.get("want") != "ort":
            return
        try:
            folder = ort_dist()
        except FileNotFoundError as e:
            self.send({"error": str(e)})
            return
        self.send({"ort_js": (folder / ORT_FILES[0]).read_text(encoding="utf-8")}, buffers=[(folder / ORT_FILES[1]).read_bytes()])

    def to_html(self) -> str:
        """The kernel-free view: explorer.js and live.js inline, the config embedded, under a fresh element id."""
        root = f"ddpm-live-{uuid.uuid4().hex}"
        cfg = json.dumps(self.config, separators=(",", ":")).replace("</", "<\\/")
        mount = "mountToy" if self.config["kind"] == "toy" else "mountDigits"
        return (
            f'<div id="{root}" class="ddpm-live">The live sampler needs JavaScript; in Jupyter, trust the notebook '
            f"or run the cell.</div>\n<script>(function () {{\n{explorer_js()}\n{live_js()}\n"
            f'DDPMLive.{mount}(document.getElementById("{root}"), {cfg}, null);\n}})();</script>'
        )

    def __repr__(self) -> str:
        c = self.config
        return f"LiveSampler(kind={c['kind']!r}, schedule={c['schedule']}, settings={c['settings']})"


def _schedule_spec(cfg) -> dict:
    d = cfg.diffusion
    return dict(kind=d.schedule, T=d.T, beta_1=d.beta_1, beta_T=d.beta_T)


def live_toy(
    cfg=None,
    *,
    model: torch.nn.Module | None = None,
    exact: bool = False,
    n: int = 1000,
    sampler: str = "ddpm",
    variance: str = "beta_tilde",
    steps: int = 50,
    eta: float = 0.0,
    seed: int = 0,
) -> LiveSampler:
    """Chapter 8: n points of the 2-D toy sampled in the browser, step by step, with the sampler's controls.

    cfg: a :class:`ddpm_edu.training.config.Config` of a 2-D toy (default the ``toy2d`` preset); its schedule is used,
    and its model comes from ``model`` or :func:`ddpm_edu.lab.modelcache.load_or_train`. ``exact=True`` (chapter 6)
    drives the samplers with the exact eps* of :data:`ddpm_edu.data.toy.MIXTURE` instead of a network, and lets
    the reader change T. The grey points are 1,000 draws of the data; the energy distance to them is shown
    when a run ends.
    """
    from ddpm_edu.data.toy import MIXTURE, sample_toy
    from ddpm_edu.lab.modelcache import load_or_train
    from ddpm_edu.training.config import load_config
    from ddpm_edu.web.export import mlp_weights

    cfg = load_config("toy2d") if cfg is None else cfg
    _check_settings(sampler, steps, eta, variance)
    data_name = "mixture" if exact else cfg.data.toy
    data = sample_toy(data_name, 1000, generator=torch.Generator().manual_seed(1))
    config = {
        "kind": "toy",
        "schedule": _schedule_spec(cfg),
        "mlp": None if exact else mlp_weights(model if model is not None else load_or_train(cfg)),
        "mix": MIXTURE if exact else None,
        "data": [round(float(v), 4) for v in data.flatten()],
        "n": n,
        "settings": dict(sampler=sampler, variance=variance, steps=steps, eta=eta, seed=seed, T=cfg.diffusion.T),
    }
    return LiveSampler(config=config)


def live_digits(
    cfg=None,
    *,
    model: torch.nn.Module | None = None,
    n: int = 16,
    sampler: str = "ddim",
    steps: int = 25,
    eta: float = 0.0,
    clip: bool = True,
    view: str = "x0",
    seed: int = 0,
    assets: str | None = None,
) -> LiveSampler:
    """Chapter 8: a 4 x 4 grid of digits sampled in the browser by the trained U-Net (through onnxruntime-web).

    cfg: the ``digits`` preset by default; the model comes from ``model`` or :func:`ddpm_edu.lab.modelcache.load_or_train`
    and is exported to ONNX (:func:`ddpm_edu.web.export.onnx_bytes`). The reader picks DDPM or DDIM (steps, eta),
    x0_hat clipping, and whether the grid shows x_t or x0_hat; the time per step is shown. ``assets``: the URL of
    the folder with onnxruntime-web's two files (:data:`ORT_FILES`) for the HTML view; default the book's
    ``_static/ddpm_live/``.
    """
    from ddpm_edu.lab.modelcache import load_or_train
    from ddpm_edu.training.build import data_shape
    from ddpm_edu.training.config import load_config
    from ddpm_edu.web.export import onnx_bytes

    cfg = load_config("digits") if cfg is None else cfg
    _check_settings(sampler, steps, eta, "beta_tilde")
    if view not in ("x0", "xt"):
        raise ValueError(f"view must be 'x0' or 'xt', got {view!r}")
    shape = tuple(data_shape(cfg))
    net = model if model is not None else load_or_train(cfg)
    config = {
        "kind": "digits",
        "schedule": _schedule_spec(cfg),
        "model": base64.b64encode(onnx_bytes(net, shape)).decode("ascii"),
        "shape": list(shape),
        "n": n,
        "assets": assets,
        "settings": dict(sampler=sampler, steps=steps, eta=eta, clip=clip, view=view, seed=seed),
    }
    return LiveSampler(config=config)


def _check_settings(sampler: str, steps: int, eta: float, variance: str) -> None:
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
    if not 1 <= steps:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    if variance not in ("beta_tilde", "beta"):
        raise ValueError(f"variance must be 'beta_tilde' or 'beta', got {variance!r}")
