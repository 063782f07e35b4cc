"""Which CIFAR-10 run fits this machine: preset, batch, precision and data (chapter 9).

:func:`plan_run` looks at the device and the data and returns a :class:`RunPlan`:

* on a CUDA GPU with bf16 and at least ``FULL_MEMORY_GB`` of memory (A100, H100, H200): the
  paper's ``cifar10`` preset in bf16;
* on a smaller or older CUDA GPU (a free Colab T4): ``cifar10-small``, in fp16 with a grad scaler
  where bf16 is missing;
* anywhere else (a CPU, as in the book's build and CI): a *short CPU run*. It trains
  ``cifar10-small``'s architecture at a quarter of its width, with one residual block per level, for
  a few dozen steps with T = 100 (and the paper's betas scaled by 1000 / T), on
  CIFAR-10 when its files are already on disk and otherwise on stand-in images written in
  CIFAR-10's format (:func:`ddpm_edu.data.standin.write_standin_cifar10`). The plan says so, and lists
  every override, so nothing it produces is mistaken for a CIFAR-10 result.

A checkpoint of a real run can be named in ``$DDPM_EDU_CIFAR10_CKPT``; the chapter then samples from
it instead of from the short run.
"""

from __future__ import annotations

import html
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ddpm_edu.data.cifar10 import CIFAR10_FILES, CIFAR10_FOLDER
from ddpm_edu.data.files import cache_root, shown_path
from ddpm_edu.data.standin import write_standin_cifar10
from ddpm_edu.lab.fastmode import pick
from ddpm_edu.training.config import Config, load_config

__all__ = ["RunPlan", "plan_run", "default_run_root", "in_colab", "CKPT_ENV", "FULL_MEMORY_GB", "DRIVE_RUN_ROOT"]

CKPT_ENV = "DDPM_EDU_CIFAR10_CKPT"  # a trained CIFAR-10 checkpoint (.pt or ema.safetensors) to sample from
FULL_MEMORY_GB = 40.0  # the paper's model at batch 128 in bf16 gets this much GPU memory or more
DRIVE_RUN_ROOT = "/content/drive/MyDrive/ddpm-runs"  # where runs go in Colab once Drive is mounted


@dataclass(frozen=True)
class RunPlan:
    device: str  # "cuda", "mps" or "cpu"
    device_name: str  # e.g. "Tesla T4", or "CPU"
    memory_gb: float | None  # GPU memory, None off CUDA
    preset: str  # cifar10 or cifar10-small
    precision: str  # bf16, fp16 or fp32
    data: str  # "CIFAR-10", "CIFAR-10 (downloaded on first use)" or "stand-in images"
    short_run: bool  # True: a few CPU steps to exercise the code, not a CIFAR-10 result
    overrides: tuple[str, ...]  # --set overrides applied to the preset
    checkpoint: Path | None  # a trained checkpoint named by $DDPM_EDU_CIFAR10_CKPT, if any

    def config(self) -> Config:
        """The preset with this plan's overrides."""
        return load_config(self.preset, self.overrides)

    def command(self, shown: bool = False) -> str:
        """The same run from the command line; ``shown``: its folders under the home folder written ``~``."""
        sets = " ".join(f"--set {_shown_override(o) if shown else o}" for o in self.overrides)
        return f"ddpm-edu train --config {self.preset} {sets}".strip()

    def _repr_html_(self) -> str:
        kind = "warning" if self.short_run else "note"
        title = "This is a short CPU run, not a CIFAR-10 result" if self.short_run else "The real run"
        items = [f"device: {self.device_name}" + (f" ({self.memory_gb:.0f} GB)" if self.memory_gb else ""),
                 f"preset: <code>{self.preset}</code>, precision {self.precision}, data: {self.data}",
                 f"command: <code>{html.escape(self.command(shown=True))}</code>"]
        if self.checkpoint:
            items.append(f"samples come from the checkpoint <code>{html.escape(shown_path(self.checkpoint))}</code>")
        body = "".join(f"<li>{i}</li>" for i in items)
        note = ("<p>No CUDA GPU was found, so the cells below exercise the real training, resuming, "
                "sampling and GIF code for a few dozen steps with the overrides listed. To train the real "
                "model, open this chapter in Colab with a GPU runtime, or run the command without its "
                "<code>--set</code> overrides on a GPU machine.</p>") if self.short_run else ""
        return (f'<div class="admonition {kind}"><p class="admonition-title">{title}</p>{note}'
                f"<ul>{body}</ul></div>")


def _shown_override(override: str) -> str:
    """A ``key=value`` override with a folder under the home folder written ``~`` (the config expands it)."""
    key, _, value = override.partition("=")
    return f"{key}={shown_path(value)}" if key in ("train.run_root", "data.root") else override


SHORT_RUN_FOLDER = "short-cpu-run"  # under the model cache: the one short CPU run, emptied for each new plan


def default_run_root(device: torch.device) -> str:
    """Where runs go: a Google Drive folder in Colab (mount Drive first), ``runs`` on another GPU
    machine, and for a short CPU run (which is not worth keeping) ``<model cache>/short-cpu-run``,
    emptied first, so that each build trains afresh and none leaves a folder behind."""
    if in_colab():
        return DRIVE_RUN_ROOT
    if device.type == "cuda":
        return "runs"
    root = cache_root() / SHORT_RUN_FOLDER
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return str(root)


def plan_run(run_root: str | None = None, data_root: str | os.PathLike | None = None,
             device: torch.device | str | None = None) -> RunPlan:
    """The run that fits ``device`` (default: the best available) and the data under ``data_root``.

    ``run_root`` defaults to :func:`default_run_root` and ``data_root`` to the presets' ``data.root``.
    For a short run without CIFAR-10 on disk, stand-in images are written to ``<run_root>/standin-data``.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    run_root = run_root or default_run_root(device)
    root = Path(data_root or load_config("cifar10").data.root).expanduser()
    on_disk = all((root / CIFAR10_FOLDER / f).is_file() for f in CIFAR10_FILES)
    ckpt = Path(os.environ[CKPT_ENV]).expanduser() if os.environ.get(CKPT_ENV) else None
    common = (f"train.run_root={run_root}", f"data.root={root}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        mem, bf16 = props.total_memory / 2**30, torch.cuda.get_device_capability(device) >= (8, 0)
        preset = "cifar10" if bf16 and mem >= FULL_MEMORY_GB else "cifar10-small"
        return RunPlan("cuda", props.name, mem, preset, "bf16" if bf16 else "fp16",
                       "CIFAR-10" if on_disk else "CIFAR-10 (downloaded on first use)", False, common, ckpt)
    if not on_disk:
        root = Path(run_root).expanduser() / "standin-data"
        write_standin_cifar10(root, per_batch=pick(200, 16))
    steps, T = pick(20, 4), pick(100, 25)
    overrides = (
        f"train.run_root={run_root}", f"data.root={root}", f"data.verify_md5={str(on_disk).lower()}",
        "data.download=false", "data.batch_size=8", "model.ch=16", "model.num_res_blocks=1",
        f"diffusion.T={T}", f"diffusion.beta_1={1e-4 * 1000 / T:g}", f"diffusion.beta_T={0.02 * 1000 / T:g}",  # the paper's betas x 1000/T
        f"train.steps={steps}", f"train.warmup={steps // 3}", "train.lr=1e-3", "train.ema_decay=0.9",
        f"train.sample_every={steps // 2}", f"train.ckpt_every={steps // 2}", "train.log_every=2",
        "train.device=cpu", "train.precision=fp32", "train.channels_last=false",
        "sample.sampler=ddim", "sample.steps=10", f"sample.num_samples={pick(8, 4)}", "sample.frames=10",
    )
    return RunPlan(device.type, "CPU" if device.type == "cpu" else device.type.upper(), None, "cifar10-small",
                   "fp32", "CIFAR-10" if on_disk else "stand-in images (crops of two photographs)", True,
                   overrides, ckpt)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules
