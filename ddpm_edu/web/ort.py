"""onnxruntime-web for the live digits sampler (chapter 8): where its files are, or how to install them.

The digits U-Net runs in the reader's browser in onnxruntime-web (ONNX Runtime compiled to WebAssembly).
The book copies its two files (:data:`ORT_FILES`) into the HTML build (:mod:`ddpm_edu.web.sphinxext`);
in a kernel the widget receives them from Python (:class:`ddpm_edu.web.live.LiveSampler`). Both find
them with :func:`ort_dist`: a checkout's ``node_modules`` after ``npm ci``, or, for an installed package
(Colab), a copy that npm installs once into the model cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ddpm_edu.data.files import cache_root

__all__ = ["ort_dist", "ORT_FILES", "ORT_VERSION", "CHECKOUT_ORT"]

ORT_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")  # its ES module and WASM; js/ort.js names them too
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
    return cache_root() / f"onnxruntime-web-{ORT_VERSION}"


def _with_ort_files(folder: Path, hint: str) -> Path:
    missing = [f for f in ORT_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"onnxruntime-web is incomplete: {', '.join(missing)} missing from {folder}. {hint}")
    return folder
