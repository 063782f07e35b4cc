"""A Sphinx extension that ships onnxruntime-web with the book, and tells the chapters' kernels that they build pages.

``_config.yml`` lists it in ``extra_extensions``. When the HTML build finishes it copies the two files of
:data:`ddpm_edu.web.ort.ORT_FILES` (from :func:`ddpm_edu.web.ort.ort_dist`, i.e. ``node_modules`` after
``npm ci``) into ``_static/ddpm_live/``, where ``ddpm_edu/web/js/ort.js`` loads them from. Nothing comes
from a CDN; a build without onnxruntime-web fails with the message that says how to install it.

It also sets ``$DDPM_EDU_BOOK_BUILD`` (:func:`ddpm_edu.progress.mark_book_build`) in the build's
process, before any chapter runs. The kernels that execute the chapters inherit it, and their
progress bars print one final line instead of a widget that a page without a kernel would show
frozen at 0%.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ddpm_edu.progress import mark_book_build
from ddpm_edu.web.ort import ORT_FILES, ort_dist

FOLDER = "_static/ddpm_live"  # relative to the HTML output; ort.js's assetsURL() looks here


def copy_runtime(app, exception) -> None:
    """Copy onnxruntime-web's module and WASM into the HTML output (HTML builders only)."""
    if exception is not None or app.builder.format != "html":
        return
    src, dest = ort_dist(), Path(app.outdir) / FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    for name in ORT_FILES:
        shutil.copyfile(src / name, dest / name)


def setup(app):
    ort_dist()  # fail early, with the message that says how to install it
    mark_book_build()  # the chapters' kernels start later, from this process, and inherit it
    app.connect("build-finished", copy_runtime)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
