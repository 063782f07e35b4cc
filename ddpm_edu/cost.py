"""What a training run costs: FLOPs counted from the model, and time estimated from them (chapter 9).

A training step of a U-Net is its forward and backward pass over one batch. Its floating-point
operations are counted, not guessed, by ``torch.utils.flop_counter`` on one image on the CPU (a
multiply-add counts 2) and scaled to the batch. Time is then

    hours = steps * FLOP per step / (sustained FLOP/s) / 3600,

and the only assumption is the sustained rate: the accelerator's dense peak times a utilisation.
The one utilisation measured for this model is the paper's: Ho et al. (2020) trained the
35.7M-parameter CIFAR-10 U-Net at 21 steps/s of batch 128 on a TPU v3-8, which is
``PAPER_STEPS_PER_S * train_flops(cifar10, 128)`` = about 100 TFLOP/s, 24 % of that pod's
420 TFLOP/s peak. :func:`estimate_hours` takes that as the optimistic end and half of it as the
pessimistic end, since the small 32x32 convolutions of this U-Net keep a GPU busier or less busy
than a TPU for reasons no formula here captures. Every number it returns is an *estimate*; a
measured GPU row belongs in ``bench/RESULTS.md`` (``bench/train_throughput.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Config
from .unet import UNet, unet_kwargs

__all__ = ["Accelerator", "ACCELERATORS", "PAPER_STEPS_PER_S", "PAPER_TPU_PEAK", "train_flops",
           "paper_utilisation", "estimate_hours", "CostRow", "cost_table", "cost_markdown"]

PAPER_STEPS_PER_S = 21.0  # Ho et al. 2020, appendix B: CIFAR-10 at batch 128 on a TPU v3-8
PAPER_TPU_PEAK = 420e12  # TPU v3-8 (4 chips, 8 cores): 420 TFLOP/s bf16 peak (Google's figure)


@dataclass(frozen=True)
class Accelerator:
    name: str  # as a reader would look for it
    precision: str  # what train.precision=auto picks there
    peak: float  # dense tensor-core peak in FLOP/s at that precision (vendor data sheet, no sparsity)


ACCELERATORS = (
    Accelerator("T4 (free Colab)", "fp16", 65e12),
    Accelerator("A100", "bf16", 312e12),
    Accelerator("H100 / H200 (SXM)", "bf16", 989e12),
)


def train_flops(cfg_or_kwargs: Config | dict, batch: int | None = None) -> float:
    """FLOP of one training step (forward + backward) of a U-Net config at ``batch`` (default: the config's).

    Counted by ``torch.utils.flop_counter`` on one image on the CPU and multiplied by the batch size.
    ``cfg_or_kwargs`` is a :class:`Config` (``model.kind = unet``) or keyword arguments of :class:`UNet`.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(cfg_or_kwargs, Config):
        kw = unet_kwargs(cfg_or_kwargs.model.preset, **cfg_or_kwargs.model.unet_overrides())
        batch = cfg_or_kwargs.data.batch_size if batch is None else batch
    else:
        kw = cfg_or_kwargs
    if batch is None:
        raise ValueError("batch is required when the model is given as keyword arguments")
    model = UNet(**kw)
    x = torch.zeros(1, kw["in_ch"], kw["image_size"], kw["image_size"])  # (1, C, H, W)
    with FlopCounterMode(display=False) as counter:
        model(x, torch.ones(1, dtype=torch.long)).sum().backward()
    return counter.get_total_flops() * batch


def paper_utilisation(flops_per_step: float) -> float:
    """The share of the TPU v3-8's peak that the paper's 21 steps/s implies for this many FLOP per step."""
    return PAPER_STEPS_PER_S * flops_per_step / PAPER_TPU_PEAK


def estimate_hours(flops_per_step: float, steps: int, peak: float, utilisation: float) -> float:
    """Hours for ``steps`` steps at ``utilisation * peak`` FLOP/s sustained."""
    return steps * flops_per_step / (utilisation * peak) / 3600.0


@dataclass(frozen=True)
class CostRow:
    preset: str  # the config's name
    accelerator: str  # where it runs
    steps: int  # optimiser steps of the preset
    tflop_per_step: float  # counted, at the preset's batch size
    hours_low: float  # at the paper's utilisation
    hours_high: float  # at half of it
    basis: str  # "measured" or "estimated: ..."


def cost_table(configs: list[Config], paper_cfg: Config) -> list[CostRow]:
    """One row per (config, accelerator), estimated from counted FLOP and the paper's utilisation.

    ``paper_cfg`` is the paper's model and batch (the ``cifar10`` preset): the utilisation of its
    measured 21 steps/s anchors every estimate. The paper's own run is added as the one measured row.
    """
    paper_flops = train_flops(paper_cfg)
    u = paper_utilisation(paper_flops)
    rows = [CostRow(paper_cfg.name, "TPU v3-8 (the paper)", paper_cfg.train.steps, paper_flops / 1e12,
                    paper_cfg.train.steps / PAPER_STEPS_PER_S / 3600, paper_cfg.train.steps / PAPER_STEPS_PER_S / 3600,
                    "measured by Ho et al. (2020): 21 steps/s")]
    for cfg in configs:
        f = train_flops(cfg)
        for acc in ACCELERATORS:
            rows.append(CostRow(cfg.name, acc.name, cfg.train.steps, f / 1e12,
                                estimate_hours(f, cfg.train.steps, acc.peak, u),
                                estimate_hours(f, cfg.train.steps, acc.peak, u / 2),
                                f"estimated: {100 * u / 2:.0f}-{100 * u:.0f} % of {acc.peak / 1e12:.0f} TFLOP/s {acc.precision}"))
    return rows


def cost_markdown(rows: list[CostRow]) -> str:
    """:func:`cost_table`'s rows as a Markdown table."""
    def fmt(h: float) -> str:
        return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 20 else f"{h:.0f} h"

    def hours(r: CostRow) -> str:
        lo, hi = fmt(r.hours_low), fmt(r.hours_high)
        return lo if lo == hi else f"{lo} to {hi}"

    lines = ["| preset | on | steps | TFLOP per step (counted) | time | basis |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| `{r.preset}` | {r.accelerator} | {r.steps:,} | {r.tflop_per_step:.2f} | {hours(r)} | {r.basis} |"
              for r in rows]
    return "\n".join(lines)
