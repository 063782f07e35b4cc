"""Two views of one browser widget: an ipywidget in a kernel, self-contained HTML without one.

The explorer (:mod:`ddpm_edu.web.explorer`) and the live samplers (:mod:`ddpm_edu.web.live`) run the
JavaScript of ``ddpm_edu/web/js/``. Each file there is one module that defines one global
(``DDPMSchedule``, ``DDPMSampler``, ...) and finds the modules it needs either as globals or, under
node, through ``require``. :func:`js_bundle` joins the modules a widget needs, in an order where each comes
after those it needs, behind the message table ``js/messages.json`` (as ``DDPMMessageTable``). The
bundle runs two ways, without a bundler and without the network:

- inline in a ``text/html`` output, wrapped in a function (:func:`inline_view`): the book's pages;
- as anywidget's ES module, followed by ``export default {render: ...}``: JupyterLab, VS Code, Colab.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from importlib.resources import files

import anywidget

__all__ = ["js_source", "js_bundle", "esm", "inline_view", "script_json", "TwoViews"]


@lru_cache(maxsize=None)
def js_source(name: str) -> str:
    """The text of ``ddpm_edu/web/js/<name>`` (a module, or ``messages.json``)."""
    return files("ddpm_edu.web").joinpath("js", name).read_text(encoding="utf-8")


def js_bundle(modules: tuple[str, ...]) -> str:
    """The message table as ``var DDPMMessageTable = {...};``, then each module of ``modules`` in that order."""
    table = script_json(json.loads(js_source("messages.json")), ensure_ascii=False)
    return "\n".join([f"var DDPMMessageTable = {table};", *(js_source(m) for m in modules)])


def esm(modules: tuple[str, ...], entry: str) -> str:
    """anywidget's ES module: the bundle, with ``entry`` (e.g. ``DDPMLive.render``) as its ``render``."""
    return js_bundle(modules) + f"\nexport default {{ render: {entry} }};\n"


class TwoViews(anywidget.AnyWidget):
    """An anywidget that also carries a kernel-free ``text/html`` view (:meth:`to_html`): Jupyter and Colab
    show the widget, a static page (the book) the HTML, which runs the same JS modules inline."""

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = repr(self)
        data["text/html"] = self.to_html()
        return data, metadata


def script_json(value: object, **kwargs) -> str:
    """``json.dumps(value)`` made safe inside a ``<script>``: ``</`` cannot close it."""
    return json.dumps(value, **kwargs).replace("</", "<\\/")


def inline_view(modules: tuple[str, ...], css_class: str, fallback: str, mount: str, args: str) -> str:
    """A ``<div>`` under a fresh id, and a script that runs the bundle, then ``mount(<the div>, args)``.

    ``mount`` names a JS function (``DDPMLive.mountToy``); ``args`` is JavaScript for its other arguments,
    with any JSON in it made safe by :func:`script_json`. ``fallback`` shows where scripts do not run.
    """
    root = f"{css_class}-{uuid.uuid4().hex}"
    return (f'<div id="{root}" class="{css_class}">{fallback}</div>\n'
            f"<script>(function () {{\n{js_bundle(modules)}\n"
            f'{mount}(document.getElementById("{root}"), {args});\n}})();</script>')
