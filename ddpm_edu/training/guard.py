"""Checks that never make the host wait for the device: the non-finite guard of a training step, and a device-side assert.

Chapters 7 and 9. The guard uses only ``torch.amp.GradScaler``'s public API (``scale``, ``unscale_``,
``step``, ``update``), which already does what the guard needs: it looks for
non-finite gradients on the device and, with a fused optimiser, tells the optimiser kernel to skip
the step there, so the training loop never waits for the GPU. Under fp16 the scaler also does its
usual dynamic loss scaling. In every other precision its scale stays fixed at 1, so it changes no
number and only skips bad steps.

The first non-finite loss and gradient norm (their step and value) are remembered on the device;
:meth:`NonFiniteGuard.check` reads them back, which waits for the device, so the trainer calls it
only at log, checkpoint and sample boundaries, and raises :class:`NonFiniteError` there.

:func:`~ddpm_edu.schedules.assert_on_device` is the other check of this kind (``schedules.check_t`` uses it for time
steps on a GPU). It is the one place in the library that calls a private torch function; a test
fails the day torch renames it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import torch
from torch import Tensor, nn

__all__ = ["NonFiniteError", "NonFiniteGuard"]



class NonFiniteError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; that step was not applied and training stopped."""


class NonFiniteGuard:
    """Backward pass, gradient clipping and the optimiser step, skipping non-finite steps on the device.

    ``fp16``: dynamic loss scaling. Gradients then overflow now and then; the scaler skips those
    steps and lowers its scale, so only a non-finite *loss* is an error. Otherwise the scale is
    fixed at 1 and both a non-finite loss and a non-finite gradient norm are errors.
    """

    def __init__(self, device: torch.device, fp16: bool = False):
        self.fp16 = fp16
        self.scaler = torch.amp.GradScaler(device.type, init_scale=2.0**16 if fp16 else 1.0)
        self.is_error = torch.tensor([True, not fp16], device=device)  # (loss, gradient norm)
        self.bad_step = torch.zeros(2, dtype=torch.long, device=device)  # first non-finite step; 0: none
        self.bad_value = torch.zeros(2, device=device)  # and its value

    def backward(self, loss: Tensor) -> None:
        """Gradients of ``loss`` (times the loss scale under fp16)."""
        self.scaler.scale(loss).backward()

    def clip(self, opt: torch.optim.Optimizer, params: Iterable[nn.Parameter], max_norm: float | None) -> Tensor:
        """Unscale the gradients and clip their global norm to ``max_norm`` (None: no clipping); returns the pre-clip norm."""
        self.scaler.unscale_(opt)
        return nn.utils.clip_grad_norm_(params, max_norm if max_norm else math.inf)

    def step(self, opt: torch.optim.Optimizer, step: int, loss: Tensor, grad_norm: Tensor) -> None:
        """The optimiser step, skipped on the device if a gradient is not finite; remembers a bad ``step``."""
        vals = torch.stack([loss.detach().float(), grad_norm.detach().float()])  # (loss, norm)
        hit = ~torch.isfinite(vals) & self.is_error & (self.bad_step == 0)
        self.bad_step = torch.where(hit, step, self.bad_step)
        self.bad_value = torch.where(hit, vals, self.bad_value)
        self.scaler.step(opt)
        self.scaler.update(None if self.fp16 else 1.0)

    def merge(self, bad_steps: Tensor, bad_values: Tensor) -> None:
        """Adopt, for the loss and for the gradient norm, the earliest bad step among several records.

        bad_steps: (W, 2) long, bad_values: (W, 2), one row per process (``World.gather`` of
        ``bad_step`` and ``bad_value``). Afterwards every process reports, and stops at, the same error.
        """
        never = torch.iinfo(torch.long).max
        first = torch.where(bad_steps > 0, bad_steps, never).argmin(0)  # (2,): the row of the earliest record
        kind = torch.arange(2, device=bad_steps.device)
        self.bad_step, self.bad_value = bad_steps[first, kind], bad_values[first, kind]

    def check(self, stopped_at: int, newest_checkpoint: Path | None) -> None:
        """Raise :class:`NonFiniteError` if a step so far had a non-finite loss or gradient norm (waits for the device)."""
        (loss_step, g_step), (loss_v, g_v) = self.bad_step.tolist(), self.bad_value.tolist()
        if not (loss_step or g_step):
            return
        loss_first = loss_step and (not g_step or loss_step <= g_step)
        what, step, value = ("loss", loss_step, loss_v) if loss_first else ("gradient norm", g_step, g_v)
        raise NonFiniteError(
            f"The {what} became {value} at step {step}. That step was not applied; training stopped at "
            f"step {stopped_at} and wrote no checkpoint after step {step - 1}. The newest good checkpoint is "
            f"{newest_checkpoint or '(none yet)'}. Try a lower train.lr, a longer train.warmup, "
            f"train.grad_clip=1.0 or train.precision=fp32."
        )

    def state_dict(self) -> dict:
        """The scaler's state (its scale and growth counter), for exact resume."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scaler.load_state_dict(state)
