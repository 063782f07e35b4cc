"""Classifier-free guidance: one network for eps(x_t, t, y) and eps(x_t, t), and their extrapolation.

Chapter 10. Ho & Salimans 2022 (classifier-free diffusion guidance), Algorithms 1 and 2 and eq. (6).

Training (their Algorithm 1) is Algorithm 1 of Ho et al. with a label, which is replaced by a "no label"
token with probability p_uncond (:func:`drop_labels`), so the same network learns the conditional
eps(x_t, t, y) and the unconditional eps(x_t, t). Sampling (their Algorithm 2) replaces eps_hat in every
step by the guided prediction (:func:`guided_eps`, eq. 6)::

    eps_tilde = (1 + w) eps(x_t, t, y) - w eps(x_t, t),    w >= 0.

Scores add where densities multiply: eps* = -sqrt(1 - alpha_bar_t) grad log q_t (chapter 7), so eps_tilde
is the eps* of the tilted density q_t(x | y)^(1 + w) / q_t(x)^w, proportional to q_t(x | y) q_t(y | x)^w
by Bayes' rule: the conditional density with an implicit classifier's pull raised to the power w.
w = 0 is the conditional model; :func:`ddpm_edu.analytic.tilted_eps` checks the identity exactly on a
Gaussian mixture whose components are the classes.

:func:`guided_model` turns a conditional network into the ``model(x_t, t)`` that
:func:`ddpm_edu.sampling.sample` and :func:`~ddpm_edu.sampling.ddim_sample` take.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch
from torch import Tensor

__all__ = ["guided_eps", "guided_model", "drop_labels", "guidance_problems", "check_guidance"]

# (x_t (B, ...), t (B,), y (B,) labels or None for "no label") -> eps_hat (B, ...)
CondModel = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]
Model = Callable[[Tensor, Tensor], Tensor]  # what the samplers take


def guided_eps(eps_cond: Tensor, eps_uncond: Tensor, w: float) -> Tensor:
    """Ho & Salimans 2022, eq. (6): eps_tilde = (1 + w) eps(x_t, t, y) - w eps(x_t, t).

    eps_cond, eps_uncond: (B, ...), the same shape; w: the guidance weight (0: the conditional model,
    exactly). Returns (B, ...).
    """
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(f"eps_cond and eps_uncond must have one shape, got {tuple(eps_cond.shape)} "
                         f"and {tuple(eps_uncond.shape)}")
    return (1 + w) * eps_cond - w * eps_uncond  # eq. (6)


def guided_model(model: CondModel, y: int | Tensor, w: float = 0.0) -> Model:
    """The guided noise predictor x_t, t -> (1 + w) model(x_t, t, y) - w model(x_t, t, None), for a sampler.

    Ho & Salimans 2022, Algorithm 2, line 3. ``model(x_t, t, y)`` is a conditional network (a
    :class:`~ddpm_edu.nets.unet.UNet` with ``num_classes``) or anything called the same way, with
    ``y=None`` meaning "no label"; ``y`` is one label for the whole batch (an int) or one per row, (B,).
    Each call makes two passes of the network, one with the label and one without; with w = 0 it makes
    only the first and returns the conditional prediction itself. The label's range is the network's to
    check.
    """
    if _bad_w(w):
        raise ValueError(f"the guidance weight w must be a finite number >= 0, got {w!r}")

    def eps_tilde(xt: Tensor, t: Tensor) -> Tensor:
        labels = _labels(y, xt.shape[0], xt.device)  # (B,)
        eps_cond = model(xt, t, labels)  # eps(x_t, t, y)
        if w == 0:
            return eps_cond
        return guided_eps(eps_cond, model(xt, t, None).to(eps_cond.dtype), w)  # eq. (6)

    return eps_tilde


def drop_labels(
    y: Tensor,
    p_uncond: float,
    null: int,
    *,
    generator: torch.Generator | None = None,
    u: Tensor | None = None,
) -> Tensor:
    """Ho & Salimans 2022, Algorithm 1, line 3: each label becomes ``null`` ("no label") with probability p_uncond.

    y: (B,) int64 labels; ``null``: the no-label index (K for K classes). The coins are u < p_uncond for
    u ~ U[0, 1) drawn from ``generator``, or the given ``u`` (B,). Returns a new (B,) tensor; nothing is
    read back from the device.
    """
    if not 0 <= p_uncond < 1:
        raise ValueError(f"p_uncond must lie in [0, 1), got {p_uncond!r}")
    if u is None:
        u = torch.rand(y.shape, generator=generator, device=y.device)  # one coin per label
    elif u.shape != y.shape:
        raise ValueError(f"u must have y's shape {tuple(y.shape)}, got {tuple(u.shape)}")
    return torch.where(u < p_uncond, torch.full_like(y, null), y)  # c <- null with probability p_uncond


def guidance_problems(label: int | None, w: float | None, num_classes: int | None) -> dict[str, str]:
    """What is wrong with a request for samples of class ``label`` at guidance weight ``w``, by name ("label",
    "w"); {} when nothing is. ``num_classes``: the model's K, None for an unconditional model.

    A label must be an integer in 0..K-1, and w a finite number >= 0 that comes with a label (w weighs
    the label's eps against the unlabelled one). An unconditional model takes neither.
    """
    if num_classes is None:
        if label is None and w is None:
            return {}
        return {"label": "this model is unconditional (trained without labels), so it takes no label or "
                         "guidance; train one with data.labels=true, e.g. the digits-guided preset"}
    p = {}
    if label is not None and (isinstance(label, bool) or not isinstance(label, numbers.Integral)
                              or not 0 <= label < num_classes):
        p["label"] = f"label {label!r} is not one of the model's classes 0..{num_classes - 1}"
    if w is not None and _bad_w(w):
        p["w"] = f"the guidance weight w must be a finite number >= 0, got {w!r}"
    elif w is not None and label is None:
        p["w"] = "guidance needs a label: w weighs eps(x_t, t, y) against eps(x_t, t), so name the class y"
    return p


def check_guidance(label: int | None, w: float | None, num_classes: int | None) -> None:
    """Raise one ValueError that names every problem :func:`guidance_problems` finds."""
    p = guidance_problems(label, w, num_classes)
    if p:
        raise ValueError("; ".join(p.values()))


def _bad_w(w: float) -> bool:
    return isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0


def _labels(y: int | Tensor, batch: int, device: torch.device) -> Tensor:
    """``y`` as (B,) int64 labels on ``device``: one int repeated, or a (B,) tensor as it is."""
    if isinstance(y, Tensor):
        if y.shape != (batch,):
            raise ValueError(f"y must be one label or a ({batch},) tensor of labels, got shape {tuple(y.shape)}")
        return y.to(device)
    return torch.full((batch,), int(y), dtype=torch.long, device=device)
