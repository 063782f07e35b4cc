"""A run's parts: device and precision resolution, autocast, cuDNN autotuning, schedule and optimiser."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import tiny_config

from ddpm_edu.schedules import Schedule
from ddpm_edu.training.build import (
    build_schedule,
    cudnn_autotune,
    make_optimizer,
    resolve_device,
    resolve_precision,
)
from ddpm_edu.training.config import ConfigError

CPU = torch.device("cpu")


def test_precision_on_cpu():
    assert resolve_precision("auto", CPU) == (None, False)
    assert resolve_precision("bf16", CPU) == (torch.bfloat16, False)
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        resolve_precision("fp16", CPU)


def test_devices():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_cudnn_autotuning_is_on_for_cuda_only_and_restored():
    before = torch.backends.cudnn.benchmark
    with cudnn_autotune(torch.device("cuda")):  # only flips a flag, so it needs no GPU
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before
    torch.backends.cudnn.benchmark = False
    try:
        with cudnn_autotune(CPU):
            assert not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = before


def test_schedule_of_the_config():
    cfg = tiny_config()
    s, d = build_schedule(cfg), cfg.diffusion
    ref = Schedule.make(d.schedule, d.T, d.beta_1, d.beta_T)
    assert s.T == d.T and torch.equal(s.alpha_bar, ref.alpha_bar)


def test_optimizer_is_fused_on_cpu():
    cfg = tiny_config()
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        c = cfg.replace(train=dataclasses.replace(cfg.train, optimizer=name))
        opt = make_optimizer(c, torch.nn.Linear(2, 2).parameters(), CPU)
        assert type(opt) is cls and opt.defaults["fused"] and opt.defaults["lr"] == cfg.train.lr
