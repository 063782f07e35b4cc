"""The exponential moving average (EMA) of a model's weights, which the samples are drawn from.

Chapters 7 and 9. Ho et al. 2020, appendix B: theta_ema <- decay theta_ema + (1 - decay) theta after
every optimiser step, with decay 0.9999 on CIFAR-10.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of a model's weights: theta_ema <- decay theta_ema + (1 - decay) theta.

    ``self.model`` is a frozen copy in eval mode; buffers are copied, not averaged. The update is
    torch's own EMA step (``get_ema_multi_avg_fn``): one multi-tensor lerp over every parameter.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._lerp = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current weights."""
        self._lerp(list(self.model.parameters()), [p.detach() for p in model.parameters()], None)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)
