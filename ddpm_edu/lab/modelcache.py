"""Trained models: the EMA network from a checkpoint or ``ema.safetensors``, and the book's cache of them.

Chapters 6-9 call :func:`load_or_train` for the models they show (the ``toy2d`` and ``digits``
presets): it trains a model once, in a cache folder keyed by the config, and loads it afterwards.
``ddpm-edu sample`` loads its model with :func:`load_ema_model`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

from torch import nn

from ddpm_edu.data.files import cache_root
from ddpm_edu.lab.fastmode import fast
from ddpm_edu.training import checkpoint as ckpt
from ddpm_edu.training.build import load_ema_model
from ddpm_edu.training.config import Config, config_to_dict
from ddpm_edu.training.runlog import read_metrics
from ddpm_edu.training.train import train

__all__ = ["load_ema_model", "load_or_train", "cached_run", "cached_metrics", "fast_config", "shown_path"]



def fast_config(cfg: Config) -> Config:
    """The test-sized version of ``cfg`` used in fast mode (``DDPM_EDU_FAST=1``): a few dozen steps."""
    t = cfg.train
    return cfg.replace(train=dataclasses.replace(t, steps=min(t.steps, 30), warmup=min(t.warmup, 5),
                                                 sample_every=0, ckpt_every=0, log_every=min(t.log_every, 10)))


def cached_run(cfg: Config, cache_dir: str | os.PathLike | None = None) -> Path:
    """The run folder in which :func:`load_or_train` keeps the model of ``cfg`` (shrunk first in fast
    mode): ``<cache_dir or $DDPM_EDU_CACHE or ~/.cache/ddpm_edu>/<config_hash>/``, with the usual
    ``metrics.jsonl``, ``loss.png``, ``checkpoints/`` and ``ema.safetensors``."""
    return (Path(cache_dir).expanduser() if cache_dir else cache_root()) / config_hash(_book_config(cfg))


def cached_metrics(cfg: Config, cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """The training log of the cached model of ``cfg``: the records of its ``metrics.jsonl`` (see
    :func:`ddpm_edu.training.runlog.read_metrics`), [] if it was never trained. Chapter 7 draws its loss curves."""
    return read_metrics(cached_run(cfg, cache_dir))


def load_or_train(cfg: Config, *, cache_dir: str | os.PathLike | None = None, progress: bool | None = None) -> nn.Module:
    """The trained EMA model of ``cfg``, for the book's chapters: loaded from the cache if it was
    trained before, else trained now (and cached). Returns the model in eval mode on the CPU, and
    prints one line that says which of the two happened and how long the training took.

    The cache folder is :func:`cached_run`, an ordinary run folder, so an interrupted training
    resumes. In fast mode (``DDPM_EDU_FAST=1``) the config is first shrunk by :func:`fast_config`.
    """
    cfg, run = _book_config(cfg), cached_run(cfg, cache_dir)
    ema_file = run / "ema.safetensors"
    if _trained(ema_file, cfg.train.steps):
        try:
            model = load_ema_model(cfg, ema_file)[0]
            print(f"{cfg.name}: loaded from the cache in {shown_path(run)} ({_training_time(run)})")
            return model
        except ckpt.CheckpointError as e:  # cached by older code whose model no longer fits: retrain
            warnings.warn(f"retraining the cached model in {run}: {ckpt.one_line(e, 200)}", stacklevel=2)
            shutil.rmtree(run)
    result = train(cfg, run, samples=False, progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt(f"training interrupted at step {result.step}; run again to resume")
    print(f"{cfg.name}: {_training_time(run)}, now cached in {shown_path(run)}")
    return load_ema_model(cfg, ema_file)[0]


def shown_path(path: Path) -> str:
    """``path`` as a page may show it: under the home folder as ``~/...``, so that no build machine's
    home (``/root``, ``/home/runner``) appears in the book; elsewhere unchanged."""
    try:
        return str(Path("~") / Path(path).relative_to(Path.home()))
    except ValueError:  # not under the home folder
        return str(path)


def _book_config(cfg: Config) -> Config:
    """``cfg`` as the book trains it: shrunk in fast mode, and always resuming an interrupted run."""
    cfg = fast_config(cfg) if fast() else cfg
    return cfg.replace(train=dataclasses.replace(cfg.train, resume="auto"))


def _training_time(run: Path) -> str:
    """'trained N steps in S s', from the last line of the run's metrics.jsonl (the time of its last session)."""
    records = read_metrics(run)
    if not records:
        return "training time not recorded"
    last = records[-1]
    return f"trained {last['step']} steps in {last['time_s']:.1f} s"


def _trained(ema_file: Path, steps: int) -> bool:
    """Whether ``ema_file`` holds the EMA weights of a run that reached ``steps``."""
    if not ema_file.is_file():
        return False
    try:
        _, meta = ckpt.load_safetensors(ema_file)
    except Exception:  # noqa: BLE001 - a damaged cache entry is simply retrained
        return False
    return int(meta.get("step", -1)) >= steps

# Fields that do not change the trained weights: left out of :func:`config_hash`.
_NOT_HASHED = {
    "name": None,
    "data": ("root", "download", "verify_md5", "device_resident"),
    "train": ("device", "log_every", "sample_every", "ckpt_every", "keep_last", "resume", "run_root", "progress", "compile"),
    "sample": None,
    "wandb": None,
}

# Fields added after models were cached, left out while they are off, so those models keep their keys.
_ADDED_OFF = {("data", "labels"): False, ("train", "p_uncond"): None,  # chapter 10's labels
              ("data", "image_size"): None, ("data", "channels"): None, ("data", "skip_bad"): False,  # folders
              ("train", "accumulate"): 1}


def config_hash(cfg: Config, length: int = 16) -> str:
    """A short hex digest of everything in ``cfg`` that changes the trained model (the book's cache key)."""
    d = config_to_dict(cfg)
    for key, sub in _NOT_HASHED.items():
        if sub is None:
            d.pop(key, None)
        else:
            for k in sub:
                d[key].pop(k, None)
    for (key, k), off in _ADDED_OFF.items():
        if d[key].get(k) == off:
            d[key].pop(k)
    text = json.dumps(d, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
