"""ddpm_edu: denoising diffusion (DDPM, Ho et al. 2020), derived step by step. The library behind the book.

The package is layered. Each layer imports only from the layers above it in this list, and
``tests/test_layers.py`` enforces it:

=====================  =====================================================================================
``progress``           the progress bar that the samplers and the trainer share (a widget in Jupyter, one
                       final line on a built page); it imports nothing of the package
the derivation         ``schedules``, ``forward``, ``posterior``, ``losses``, ``likelihood``, ``sampling``,
                       ``guidance``, ``analytic``: what the book teaches, one module per step (chapters 4-8
                       and 10), torch and numpy only
``nets/``              the U-Net and the 2-D MLP
``data/``              CIFAR-10, digits, the photograph, 2-D toys, the batch stream, image files, downloads
``training/``          config and presets, build, the trainer, guard, EMA, checkpoints, run log, torchrun,
                       generation
``eval/``              the book's metrics and FID
``lab/``               the book's side: plots, figures, the model cache, cost, plan, fast mode
``web/``               the browser: explorers, live samplers, ONNX export, the Sphinx hook, ``js/``
``cli``                the ``ddpm-edu`` command
=====================  =====================================================================================

The taught API is importable from here: :class:`~ddpm_edu.schedules.Schedule`,
:func:`~ddpm_edu.forward.q_sample`, :func:`~ddpm_edu.posterior.q_posterior`, :func:`~ddpm_edu.losses.l_simple`,
:func:`~ddpm_edu.sampling.sample` and :func:`~ddpm_edu.sampling.ddim_sample`. They load on first use, so that
``import ddpm_edu`` (and ``ddpm-edu --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the derivation module that defines it
_TAUGHT = {
    "Schedule": "schedules",
    "q_sample": "forward",
    "q_posterior": "posterior",
    "l_simple": "losses",
    "sample": "sampling",
    "ddim_sample": "sampling",
}

__all__ = sorted(_TAUGHT)


def __getattr__(name: str) -> Any:
    if name in _TAUGHT:
        return getattr(importlib.import_module(f"ddpm_edu.{_TAUGHT[name]}"), name)
    raise AttributeError(f"module 'ddpm_edu' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
