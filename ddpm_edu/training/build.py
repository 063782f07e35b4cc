"""A run's parts, built from its config: device, precision, schedule, model and optimiser.

Chapters 7 and 9. Each function reads one section of a :class:`~ddpm_edu.training.config.Config` and returns
one plain torch object; the trainer, the command line and the book's model cache all build their
parts here, so a model trained by one is loaded the same way by the others.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import torch
from torch import Tensor, nn

from ddpm_edu.data import CLASSES, DataError, example_shape
from ddpm_edu.data.cifar10 import load_cifar10
from ddpm_edu.data.digits import load_digit_labels, load_digits
from ddpm_edu.data.folder import load_folder
from ddpm_edu.data.stream import BatchIterator
from ddpm_edu.data.toy import load_toy
from ddpm_edu.schedules import Schedule
from ddpm_edu.training import checkpoint as ckpt
from ddpm_edu.training.config import Config, ConfigError, config_from_dict
from ddpm_edu.training.distributed import SINGLE, World

__all__ = ["resolve_device", "resolve_precision", "autocast", "cudnn_autotune", "build_schedule", "build_model",
           "make_optimizer", "num_classes", "label_dropout", "P_UNCOND"]

P_UNCOND = 0.1  # Ho & Salimans 2022's label dropout, for a labelled run that sets no train.p_uncond


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is missing is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda, but no CUDA GPU is available. Use train.device=auto or cpu.")
    if name == "mps" and not _mps_available():
        raise ConfigError("train.device=mps, but MPS is not available. Use train.device=auto or cpu.")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype, or None for fp32; whether the loss needs dynamic scaling, i.e. fp16).

    auto: bf16 on CUDA GPUs with native bf16 (compute capability >= 8.0: A100, H100, ...), fp16 with
    dynamic loss scaling on older CUDA GPUs (T4, V100), fp32 elsewhere.
    """
    if name == "auto":
        if device.type == "cuda":
            name = "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"
        else:
            name = "fp32"
    if name == "fp32":
        return None, False
    if name == "bf16":
        return torch.bfloat16, False
    if device.type not in ("cuda", "mps"):
        raise ConfigError(f"train.precision=fp16 needs a GPU; this run is on {device.type}. Use auto, fp32 or bf16.")
    return torch.float16, True


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision for the forward pass: ``torch.autocast`` to ``dtype``, or a no-op for fp32 (None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """On CUDA, let cuDNN time its convolution algorithms once per shape and keep the fastest (training
    shapes never change, so this pays for itself within a few steps); the caller's setting comes back."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def build_schedule(cfg: Config, device: torch.device | str = "cpu") -> Schedule:
    """The beta schedule of ``cfg.diffusion``, on ``device`` (on the CPU for MPS, which has no float64)."""
    d = cfg.diffusion
    s = Schedule.make(d.schedule, d.T, d.beta_1, d.beta_T)
    return s if torch.device(device).type == "mps" else s.to(device)


def build_model(cfg: Config) -> nn.Module:
    """The network of ``cfg.model`` for ``cfg.data``: a U-Net for images, an MLP for 2-D points."""
    m = cfg.model
    if m.kind == "mlp":
        from ddpm_edu.nets.mlp import MLPDenoiser

        return MLPDenoiser(dim=data_shape(cfg)[0], hidden=m.hidden, layers=m.layers, t_dim=m.t_dim)
    from ddpm_edu.nets.unet import UNet, unet_kwargs

    c, h, _ = data_shape(cfg)
    return UNet(**unet_kwargs(m.preset, **m.unet_overrides(), in_ch=c, image_size=h, num_classes=num_classes(cfg)))


def num_classes(cfg: Config) -> int | None:
    """The classes a model of ``cfg`` is conditioned on: the data set's K with ``data.labels``, else None."""
    return CLASSES[cfg.data.dataset] if cfg.data.labels else None


def label_dropout(cfg: Config) -> float | None:
    """The probability that a training label is dropped (chapter 10): ``train.p_uncond``, or P_UNCOND when it
    is unset, for a run with ``data.labels``; None for a run without labels."""
    if not cfg.data.labels:
        return None
    return P_UNCOND if cfg.train.p_uncond is None else cfg.train.p_uncond


def make_optimizer(cfg: Config, params: Iterable[nn.Parameter], device: torch.device) -> torch.optim.Optimizer:
    """Adam or AdamW per ``cfg.train``, with the fused kernel on CUDA and the CPU.

    The fused kernel updates every tensor in one pass (bench/RESULTS.md has the CPU timing) and
    skips a step on the device when a grad scaler finds a non-finite gradient, without waiting for
    it. Elsewhere, or where this torch has no fused kernel for the device, the multi-tensor
    (foreach) version is used.
    """
    t = cfg.train
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    params = list(params)
    if device.type in ("cuda", "cpu"):
        try:
            return cls(params, lr=t.lr, weight_decay=t.weight_decay, fused=True)
        except RuntimeError:  # no fused kernel for this device in this torch
            pass
    return cls(params, lr=t.lr, weight_decay=t.weight_decay, foreach=device.type != "cpu")


# --------------------------------------------------------------------------- data
def load_dataset(cfg: Config, progress: bool = False) -> Tensor:
    """The whole training set of ``cfg.data``: uint8 (N, C, H, W), or float (N, 1, 8, 8) / (N, 2).

    ``progress``: a progress bar while a folder of many images is decoded (once; it is cached).
    """
    d = cfg.data
    if d.dataset == "cifar10":
        return load_cifar10(d.root, download=d.download, verify_md5=d.verify_md5)
    if d.dataset == "folder":
        c, size, _ = data_shape(cfg)
        return load_folder(d.root, size, c, skip_bad=d.skip_bad, progress=progress)
    if d.dataset == "digits":
        return load_digits()
    if d.dataset == "toy2d":
        return load_toy(d.toy, d.toy_n, seed=cfg.seed)
    raise DataError(f"unknown data.dataset {d.dataset!r}")


def load_examples(cfg: Config, progress: bool = False) -> tuple[Tensor, Tensor | None]:
    """:func:`load_dataset`'s training set and, with ``data.labels``, its labels (N,) int64 (else None)."""
    d = cfg.data
    if not d.labels:
        return load_dataset(cfg, progress=progress), None
    if d.dataset == "cifar10":  # images and labels in one pass over the files
        return load_cifar10(d.root, download=d.download, verify_md5=d.verify_md5, labels=True)
    if d.dataset == "digits":
        return load_digits(), load_digit_labels()
    raise DataError(f"data.dataset={d.dataset} has no labels; data.labels needs one of {', '.join(CLASSES)}")


def data_shape(cfg: Config) -> tuple[int, ...]:
    """The shape of one example: (3, 32, 32), (1, 8, 8), (2,), or (channels, image_size, image_size) for a folder."""
    return example_shape(cfg.data.dataset, cfg.data.image_size, cfg.data.channels)


def make_batches(cfg: Config, device: torch.device | str = "cpu", world: World = SINGLE) -> BatchIterator:
    """The training stream for ``cfg``: loads the data set and, when resident, moves it to ``device``.
    With ``data.labels`` its batches are (x, y) pairs.

    With several processes, each one gets its rows of every global batch of ``data.batch_size``.
    """
    device = torch.device(device)
    data, labels = load_examples(cfg, progress=cfg.train.progress and world.is_main)
    resident = cfg.data.device_resident
    if resident == "auto":
        resident = device.type == "cuda"
    if resident:
        data = data.to(device)
    return BatchIterator(
        data,
        cfg.data.batch_size,
        seed=cfg.seed + 1,
        device=device,
        hflip=cfg.data.hflip and cfg.data.dataset in ("cifar10", "folder"),
        channels_last=cfg.train.channels_last,
        rows=world.rows(cfg.data.batch_size),
        labels=labels,
    )


# --------------------------------------------------------------------------- a trained model
def load_ema_model(cfg: Config | None, weights: str | os.PathLike) -> tuple[nn.Module, Config]:
    """The EMA network from a checkpoint (``.pt``) or ``ema.safetensors``, in eval mode on the CPU.

    With ``cfg=None`` the config stored in the file is used. A file trained with labels records its
    ``num_classes``; a config that builds a network with other classes (or none) is a CheckpointError
    that says so. Returns (model, config); ``model.num_classes`` is None for an unconditional U-Net.
    """
    weights = Path(weights)
    if weights.suffix == ".safetensors":
        tensors, meta = ckpt.load_safetensors(weights)
        saved = json.loads(meta["config"]) if "config" in meta else None
        classes = int(meta["num_classes"]) if meta.get("num_classes") else None
    else:
        state = ckpt.load_checkpoint(weights)
        tensors, saved, classes = state["ema"], state["config"], state.get("num_classes")
    if cfg is None:
        if saved is None:
            raise ckpt.CheckpointError(f"{weights} carries no config; pass --config.")
        cfg = config_from_dict(saved, source=f"{weights} (stored config)")
    model = build_model(cfg)
    if classes != getattr(model, "num_classes", None):
        raise ckpt.CheckpointError(
            f"{weights} holds a model {_classes(classes)}, but config {cfg.source} builds one "
            f"{_classes(getattr(model, 'num_classes', None))}. Use the config the model was trained with "
            f"(data.labels={'true' if classes else 'false'}).")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise ckpt.CheckpointError(
            f"The weights in {weights} do not fit the model of config {cfg.source}: "
            f"{ckpt.one_line(e)}. Use the config the model was trained with."
        ) from None
    return model.eval().requires_grad_(False), cfg


def _classes(k: int | None) -> str:
    return "without labels" if k is None else f"conditioned on {k} classes"
