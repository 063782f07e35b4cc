"""Live sampling in the reader's browser: the 2-D toy (chapters 6 and 8), the digits (chapter 8) and the
guided digits (chapter 10).

:func:`live_toy` and :func:`live_digits` return a :class:`LiveSampler`, which carries the schedule, the
network (the toy MLP's weights, or the digits U-Net as ONNX; :mod:`ddpm_edu.web.export`) and the
starting settings. The page samples with the modules of :data:`MODULES` in ``ddpm_edu/web/js/``:
``sampler.js`` (the samplers of :mod:`ddpm_edu.sampling`, line by line), ``nets.js`` (the networks),
``metrics.js`` (the energy distance), ``ort.js`` (onnxruntime-web) and ``live.js`` (the controls and
canvases). Like the schedule explorer it has two views (:mod:`ddpm_edu.web.views`): an ipywidget and
kernel-free HTML.
"""

from __future__ import annotations

import base64
import math

import torch
import traitlets

from ddpm_edu.sampling import check_sampler
from ddpm_edu.web.ort import ORT_FILES, ort_dist
from ddpm_edu.web.views import TwoViews, esm, inline_view, script_json

__all__ = ["LiveSampler", "live_toy", "live_digits", "MODULES"]

W_MAX, W_STEP = 4.0, 0.5  # the guidance slider: w in [0, W_MAX] by W_STEP (live.js SLIDERS.w)

# the live samplers' JS, each after what it needs
MODULES = ("text.js", "dom.js", "schedule.js", "sampler.js", "nets.js", "metrics.js", "ort.js", "live.js")


class LiveSampler(TwoViews):
    """A sampler that runs in the reader's browser (chapter 8; chapter 6 with the exact eps*; chapter 10 with guidance).

    ``config`` holds everything the page needs: the schedule, the network (the toy MLP's weights or the
    digits U-Net as ONNX, base64) and the starting settings. Displayed, it offers an ipywidget view
    (JupyterLab, Colab) and a kernel-free ``text/html`` view (the book), like :class:`~ddpm_edu.web.explorer.ScheduleExplorer`.
    The digits need onnxruntime-web: the book serves it from ``_static/ddpm_live/`` (copied there by
    :mod:`ddpm_edu.web.sphinxext`); the widget view asks the kernel for it (:func:`~ddpm_edu.web.ort.ort_dist`) when first used.
    Make one with :func:`live_toy` or :func:`live_digits`.
    """

    _esm = esm(MODULES, "DDPMLive.render")
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
        """The kernel-free view: the JS modules inline, the config embedded, under a fresh element id."""
        mount = "DDPMLive.mountToy" if self.config["kind"] == "toy" else "DDPMLive.mountDigits"
        fallback = "The live sampler needs JavaScript; in Jupyter, trust the notebook or run the cell."
        args = script_json(self.config, separators=(",", ":")) + ", null"  # no runtime given: the book's _static folder
        return inline_view(MODULES, "ddpm-live", fallback, mount, args)

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
    check_sampler(sampler, steps, eta, variance, cfg.diffusion.T)
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
    label: int | None = None,
    w: float | None = None,
) -> LiveSampler:
    """Chapter 8: a 4 x 4 grid of digits sampled in the browser by the trained U-Net (through onnxruntime-web).

    cfg: the ``digits`` preset by default; the model comes from ``model`` or :func:`ddpm_edu.lab.modelcache.load_or_train`
    and is exported to ONNX (:func:`ddpm_edu.web.export.onnx_bytes`). The reader picks DDPM or DDIM (steps, eta),
    x0_hat clipping, and whether the grid shows x_t or x0_hat; the time per step is shown. ``assets``: the URL of
    the folder with onnxruntime-web's two files (:data:`~ddpm_edu.web.ort.ORT_FILES`) for the HTML view; default the book's
    ``_static/ddpm_live/``.

    Chapter 10: a conditional U-Net (``num_classes`` K; the ``digits-guided`` preset) adds the digit to draw (0..K-1,
    or "any": the "no label" token K, unguided) and the guidance weight w in [0, 4], in steps of 0.5, of
    :func:`ddpm_edu.guidance.guided_eps`. ``label`` (None: "any") and ``w`` (default 2.0) are where they start;
    each guided step runs the network once on a doubled batch, with the label and without. An unconditional model
    takes neither.
    """
    from ddpm_edu.lab.modelcache import load_or_train
    from ddpm_edu.training.build import data_shape
    from ddpm_edu.training.config import load_config
    from ddpm_edu.web.export import onnx_bytes

    cfg = load_config("digits") if cfg is None else cfg
    check_sampler(sampler, steps, eta, "beta_tilde", cfg.diffusion.T)
    if view not in ("x0", "xt"):
        raise ValueError(f"view must be 'x0' or 'xt', got {view!r}")
    shape = tuple(data_shape(cfg))
    net = model if model is not None else load_or_train(cfg)
    K = getattr(net, "num_classes", None)
    guided = _guidance_settings(K, label, w)
    config = {
        "kind": "digits",
        "schedule": _schedule_spec(cfg),
        "model": base64.b64encode(onnx_bytes(net, shape)).decode("ascii"),
        "shape": list(shape),
        "n": n,
        "assets": assets,
        "settings": dict(sampler=sampler, steps=steps, eta=eta, clip=clip, view=view, seed=seed, **guided),
    }
    if K is not None:
        config["classes"] = K
    return LiveSampler(config=config)


def _guidance_settings(K: int | None, label: int | None, w: float | None) -> dict[str, int | str | float]:
    """The page's starting digit and w for a model with K classes ({} when unconditional); raises ValueError
    naming every problem: a label outside 0..K-1, a w off the slider (outside [0, W_MAX] or between its steps of
    W_STEP), either for an unconditional model."""
    if K is None:
        if label is None and w is None:
            return {}
        raise ValueError("this model is unconditional (num_classes=None), so the page offers no digit or guidance; "
                         "give a conditional one, e.g. of the digits-guided preset")
    w = 2.0 if w is None else w
    p = []
    if label is not None and (isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < K):
        p.append(f"label {label!r} is not one of the model's classes 0..{K - 1} (None: any)")
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and 0 <= w <= W_MAX) or w % W_STEP:
        p.append(f"w must be a number in [0, {W_MAX}] in steps of {W_STEP} (the guidance slider's), got {w!r}")
    if p:
        raise ValueError("; ".join(p))
    return dict(label="any" if label is None else label, w=float(w))
