"""What a training run costs: FLOPs counted from the model, and time estimated from them (chapter 9).

A training step of a U-Net is its forward and backward pass over one batch. Its floating-point
operations are counted, not guessed, by ``torch.utils.flop_counter`` for one image (a multiply-add
counts 2) and scaled to the batch. Time is then

    hours = steps * FLOP per step / (sustained FLOP/s) / 3600,

and the only assumption is the sustained rate: the accelerator's dense peak times a utilisation u.
Two sources measure u for the paper's CIFAR-10 model: the paper's own run on a TPU v3-8
(:data:`PAPER_STEPS_PER_S` against :data:`PAPER_TPU_PEAK`, :func:`paper_utilisation`), and this
project's Trainer on a GPU (:data:`MEASURED`, :func:`measured_utilisation`). :func:`estimate_hours`
is given the paper's u as the optimistic end and the lower of half of it and the lowest u measured
on a GPU as the pessimistic end, since how busy the small 32x32 convolutions of this U-Net keep an
accelerator depends on more than a formula captures. A row for a run that was measured gives the
measurement instead. :data:`MEASURED` is the one place in the code that holds a measured speed;
``bench/RESULTS.md`` records how each was taken.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ddpm_edu.nets.unet import UNet, unet_kwargs
from ddpm_edu.training.config import Config, load_config

__all__ = ["Accelerator", "ACCELERATORS", "PAPER_STEPS_PER_S", "PAPER_TPU_PEAK", "Measurement", "MEASURED",
           "train_flops", "preset_flops", "paper_utilisation", "measured_utilisation", "utilisation_range", "estimate_hours",
           "CostRow", "cost_table", "cost_markdown"]

PAPER_STEPS_PER_S = 21.0  #: Ho et al. 2020, appendix B: CIFAR-10 at batch 128 on a TPU v3-8
PAPER_TPU_PEAK = 420e12  #: TPU v3-8 (4 chips, 8 cores): 420 TFLOP/s bf16 peak (Google's figure)


@dataclass(frozen=True)
class Accelerator:
    name: str  #: as a reader would look for it
    precision: str  #: what train.precision=auto picks there
    peak: float  #: dense tensor-core peak in FLOP/s at that precision (vendor data sheet, no sparsity)


ACCELERATORS = (
    Accelerator("T4 (free Colab)", "fp16", 65e12),
    Accelerator("A100", "bf16", 312e12),
    Accelerator("H100 / H200 (SXM)", "bf16", 989e12),
)
_PEAK = {a.name: a.peak for a in ACCELERATORS}


@dataclass(frozen=True)
class Measurement:
    """A training speed measured on a GPU, for one preset at its own batch size."""

    preset: str  #: the config's name; a measurement stands only for the unmodified preset
    accelerator: str  #: a name from ACCELERATORS
    device: str  #: the exact chip it ran on
    steps_per_s: float  #: optimiser steps per second, the whole Trainer step
    source: str  #: how, when and where it was measured


#: Training speeds measured on a GPU, one per (preset, accelerator); bench/RESULTS.md has the runs.
MEASURED = (
    Measurement("cifar10", "H100 / H200 (SXM)", "H200", 14.84,
                "bench/gpu_check.sh, 2026-11-30: bf16, channels_last"),
)


def train_flops(cfg_or_kwargs: Config | dict, batch: int | None = None) -> float:
    """FLOP of one training step (forward + backward) of a U-Net config at ``batch`` (default: the config's).

    Counted by ``torch.utils.flop_counter`` for one image on the ``meta`` device (which tracks shapes
    and computes nothing, so even the 35.7M-parameter model is counted in seconds) and multiplied by
    the batch size.
    ``cfg_or_kwargs`` is a :class:`~ddpm_edu.training.config.Config` (``model.kind = unet``) or keyword arguments of
    :class:`~ddpm_edu.nets.unet.UNet`.
    """
    if isinstance(cfg_or_kwargs, Config):
        kw = unet_kwargs(cfg_or_kwargs.model.preset, **cfg_or_kwargs.model.unet_overrides())
        batch = cfg_or_kwargs.data.batch_size if batch is None else batch
    else:
        kw = cfg_or_kwargs
    if batch is None:
        raise ValueError("batch is required when the model is given as keyword arguments")
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))
    return _image_flops(frozen) * batch


@functools.lru_cache(maxsize=32)
def _image_flops(frozen_kwargs: tuple) -> int:
    """FLOP of forward + backward for one image of ``UNet(**dict(frozen_kwargs))`` (counted once per process)."""
    from torch.utils.flop_counter import FlopCounterMode

    kw = dict(frozen_kwargs)
    with torch.device("meta"):  # shapes only: the counter needs no arithmetic, so nothing is computed
        model = UNet(**kw)
        x = torch.zeros(1, kw["in_ch"], kw["image_size"], kw["image_size"])  # (1, C, H, W)
        t = torch.ones(1, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        model(x, t).sum().backward()
    return counter.get_total_flops()


def paper_utilisation(flops_per_step: float) -> float:
    """The share of the TPU v3-8's peak that the paper's 21 steps/s implies for this many FLOP per step."""
    return PAPER_STEPS_PER_S * flops_per_step / PAPER_TPU_PEAK


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> Config:
    """The preset ``name`` as its file defines it (read once per process; configs are frozen)."""
    return load_config(name)


def preset_flops(name: str) -> float:
    """FLOP of one training step of the preset ``name`` as its file defines it (model and batch)."""
    return train_flops(_preset(name))


def measured_utilisation(m: Measurement) -> float:
    """The share of its accelerator's peak that measurement ``m`` sustained."""
    return m.steps_per_s * preset_flops(m.preset) / _PEAK[m.accelerator]


def utilisation_range(paper_cfg: Config) -> tuple[float, float]:
    """(optimistic, pessimistic) utilisation: the paper's, and the lower of half of it and the lowest measured on a GPU.

    ``paper_cfg`` is the paper's model and batch (the ``cifar10`` preset).
    """
    u = paper_utilisation(train_flops(paper_cfg))
    return u, min([u / 2, *(measured_utilisation(m) for m in MEASURED)])


def estimate_hours(flops_per_step: float, steps: int, peak: float, utilisation: float) -> float:
    """Hours for ``steps`` steps at ``utilisation * peak`` FLOP/s sustained."""
    return steps * flops_per_step / (utilisation * peak) / 3600.0


@dataclass(frozen=True)
class CostRow:
    preset: str  #: the config's name
    accelerator: str  #: where it runs
    steps: int  #: optimiser steps of the preset
    tflop_per_step: float  #: counted, at the preset's batch size
    hours_low: float  #: at the optimistic utilisation (or the measured time)
    hours_high: float  #: at the pessimistic one (or the measured time)
    basis: str  #: "measured" or "estimated: ..."


def cost_table(configs: list[Config], paper_cfg: Config) -> list[CostRow]:
    """One row per (config, accelerator): measured where :data:`MEASURED` has the run, else estimated.

    ``paper_cfg`` is the paper's model and batch (the ``cifar10`` preset): its measured speeds set the
    range of utilisation behind every estimate (:func:`utilisation_range`). The paper's own run comes
    first, as a measured row. A measurement counts only for a config that is its preset unmodified
    (same name, same FLOP per step and the same number of steps as the preset file).
    """
    paper_flops = train_flops(paper_cfg)
    u_hi, u_lo = utilisation_range(paper_cfg)
    rows = [CostRow(paper_cfg.name, "TPU v3-8 (the paper)", paper_cfg.train.steps, paper_flops / 1e12,
                    paper_cfg.train.steps / PAPER_STEPS_PER_S / 3600, paper_cfg.train.steps / PAPER_STEPS_PER_S / 3600,
                    "measured by Ho et al. (2020): 21 steps/s")]
    for cfg in configs:
        f = train_flops(cfg)
        for acc in ACCELERATORS:
            m = next((m for m in MEASURED if m.preset == cfg.name and m.accelerator == acc.name), None)
            if m is not None and (f != preset_flops(m.preset) or cfg.train.steps != _preset(m.preset).train.steps):
                m = None  # a modified preset: the measurement does not stand for it
            if m is not None:
                h = cfg.train.steps / m.steps_per_s / 3600
                rows.append(CostRow(cfg.name, f"{m.device} (this project)", cfg.train.steps, f / 1e12, h, h,
                                    f"measured: {m.steps_per_s:.1f} steps/s, "
                                    f"{100 * measured_utilisation(m):.0f} % of {acc.peak / 1e12:.0f} TFLOP/s "
                                    f"({m.source})"))
                continue
            rows.append(CostRow(cfg.name, acc.name, cfg.train.steps, f / 1e12,
                                estimate_hours(f, cfg.train.steps, acc.peak, u_hi),
                                estimate_hours(f, cfg.train.steps, acc.peak, u_lo),
                                f"estimated: {100 * u_lo:.0f}-{100 * u_hi:.0f} % of {acc.peak / 1e12:.0f} TFLOP/s "
                                f"{acc.precision}"))
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
