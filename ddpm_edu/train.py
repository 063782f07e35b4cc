"""The trainer: Algorithm 1 of Ho et al. 2020 with the engineering a long run needs.

Chapters 7 and 9. One optimiser step is Algorithm 1 (``losses.l_simple``) plus: Adam/AdamW with a
linear learning-rate warmup, clipping of the global gradient norm (the pre-clip norm is
logged), an exponential moving average (EMA) of the weights, automatic mixed precision (bf16
where the GPU supports it, fp16 with a GradScaler on older GPUs such as the T4, fp32 on the
CPU), optional ``torch.compile`` and ``channels_last``, and cuDNN autotuning while training on CUDA.

Run folder (``<train.run_root>/<name>/`` or ``--run-dir``)::

    config.yml             the full, validated config of the run
    metrics.jsonl          one JSON line every train.log_every steps: step, loss, lr, grad_norm, steps_per_s, time_s
    loss.png               the loss curve, redrawn whenever samples are drawn and at the end
    checkpoints/           step_00005000.pt ...: the last train.keep_last checkpoints (see checkpoint.py)
    samples/               step_00010000.png (sample grid) and step_00010000.gif (trajectory), from the EMA weights
    ema.safetensors        the EMA weights of the latest checkpoint, for sharing and sampling
    wandb_id.txt           the Weights & Biases run id, so a resumed run logs to the same W&B run (if enabled)

Resume (``train.resume``): ``auto`` (the default) continues from the newest checkpoint in the run
folder and starts fresh when there is none; ``never`` refuses a folder that has checkpoints; a path
resumes from that checkpoint. A resumed run restores the model, EMA, optimiser, grad scaler, every
RNG and the data order, so on the CPU it is bit-for-bit the run that was never interrupted.

SIGTERM and Ctrl-C set a flag; at the next step boundary the trainer writes a checkpoint and
returns (the command line then exits with 128 + the signal number).

A non-finite loss or gradient norm is never applied and never reaches a checkpoint: training stops
with :class:`NonFiniteError` naming the step. The step loop does not wait for the accelerator. The
loss, the gradient norm and the non-finite flags stay on the device, and the flag tells the fused
Adam kernel to skip a bad step there (the mechanism ``GradScaler`` uses). They are read back only
every ``train.log_every`` steps and before every checkpoint or sample grid, so a bad step stops the
run at the next of those points, and no checkpoint is written after it. Optimisers without a fused
kernel (MPS) are checked after every step instead.

The trainer seeds the global torch/numpy/Python RNGs from the config (dropout draws from the
global torch RNG) but restores the caller's RNG states when it returns.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from . import checkpoint as ckpt
from .config import Config, ConfigError, cache_root, config_from_dict, config_hash, config_to_dict, dump_config
from .data import BatchIterator, data_shape, make_batches
from .fastmode import fast
from .losses import eps_from_v, l_simple
from .sampling import ddim_sample, ddim_timesteps, sample
from .schedules import Schedule

__all__ = [
    "NonFiniteError",
    "TrainResult",
    "EMA",
    "Trainer",
    "train",
    "build_model",
    "build_schedule",
    "resolve_device",
    "resolve_precision",
    "lr_at",
    "make_optimizer",
    "generate",
    "write_samples",
    "load_ema_model",
    "load_or_train",
    "fast_config",
    "run_dir_for",
]


class NonFiniteError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; that step was not applied and training stopped."""


@dataclass
class TrainResult:
    run_dir: Path  # the run folder
    step: int  # optimiser steps taken in total
    checkpoint: Path | None  # the newest checkpoint
    interrupted: int = 0  # the signal number that stopped training early, or 0
    last_loss: float = math.nan  # the loss of the last step taken in this call


# --------------------------------------------------------------------------- building blocks
def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is missing is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda, but no CUDA GPU is available. Use train.device=auto or cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device=mps, but MPS is not available. Use train.device=auto or cpu.")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether to use a GradScaler).

    auto: bf16 on CUDA GPUs with native bf16 (compute capability >= 8.0: A100, H100, ...), fp16 with
    a GradScaler on older CUDA GPUs (T4, V100), fp32 elsewhere.
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
    return torch.float16, device.type == "cuda"


def build_schedule(cfg: Config) -> Schedule:
    """The beta schedule of ``cfg.diffusion``."""
    d = cfg.diffusion
    return Schedule.make(d.schedule, d.T, d.beta_1, d.beta_T)


def build_model(cfg: Config) -> nn.Module:
    """The network of ``cfg.model`` for ``cfg.data``: a U-Net for images, an MLP for 2-D points."""
    m = cfg.model
    if m.kind == "mlp":
        from .toy import MLPDenoiser

        return MLPDenoiser(dim=data_shape(cfg)[0], hidden=m.hidden, layers=m.layers, t_dim=m.t_dim)
    from .unet import UNet, unet_kwargs

    c, h, _ = data_shape(cfg)
    return UNet(**unet_kwargs(m.preset, **m.unet_overrides(), in_ch=c, image_size=h))


def make_optimizer(cfg: Config, params, device: torch.device) -> torch.optim.Optimizer:
    """Adam or AdamW per ``cfg.train``, with the fused kernel on CUDA and the CPU.

    The fused kernel updates every tensor in one pass (on the CPU: 55 ms instead of 96 ms per step
    for the 35.7M-parameter ``cifar10`` model, see bench/RESULTS.md) and can skip a step on the
    device when told to (``found_inf``), which the trainer uses for non-finite steps. Elsewhere,
    or where this torch has no fused kernel for the device, the multi-tensor (foreach) version is used.
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


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Learning rate for optimiser step ``step`` (1-based): lr * min(1, step / warmup)."""
    return lr if warmup <= 0 else lr * min(1.0, step / warmup)


class EMA:
    """Exponential moving average of a model's weights: theta_ema <- decay theta_ema + (1 - decay) theta.

    ``self.model`` is a frozen copy in eval mode; buffers are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_p, p = list(self.model.parameters()), [q.detach() for q in model.parameters()]
        torch._foreach_lerp_(ema_p, p, 1.0 - self.decay)  # ema += (1 - decay) (p - ema)
        for eb, b in zip(self.model.buffers(), model.buffers()):
            eb.copy_(b)


def run_dir_for(cfg: Config, run_dir: str | os.PathLike | None = None) -> Path:
    """``run_dir`` if given, else ``<train.run_root>/<name>``."""
    return Path(run_dir).expanduser() if run_dir else Path(cfg.train.run_root).expanduser() / cfg.name


def fast_config(cfg: Config) -> Config:
    """The test-sized version of ``cfg`` used in fast mode (``DDPM_EDU_FAST=1``): a few dozen steps."""
    t = cfg.train
    return cfg.replace(train=dataclasses.replace(t, steps=min(t.steps, 30), warmup=min(t.warmup, 5),
                                                 sample_every=0, ckpt_every=0, log_every=min(t.log_every, 10)))


# --------------------------------------------------------------------------- sampling and outputs
def eps_model(model: Callable[[Tensor, Tensor], Tensor], cfg: Config, s: Schedule) -> Callable[[Tensor, Tensor], Tensor]:
    """The network as an eps predictor: itself for target eps, eps = sqrt(1-ab) x_t + sqrt(ab) v for target v."""
    if cfg.diffusion.target == "eps":
        return model
    return lambda xt, t: eps_from_v(xt, t, model(xt, t).float(), s)


@torch.no_grad()
def generate(
    model: nn.Module,
    cfg: Config,
    *,
    num_samples: int | None = None,
    seed: int | None = None,
    frames: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
):
    """Draw ``num_samples`` with the sampler of ``cfg.sample``. Returns (x0, TrajectoryRecorder)."""
    from .viz import TrajectoryRecorder

    sc, s = cfg.sample, build_schedule(cfg)
    device = torch.device(device)
    n = num_samples or sc.num_samples
    g = torch.Generator(device).manual_seed(cfg.seed + 3 if seed is None else seed)
    f = eps_model(model, cfg, s)
    shape = (n, *data_shape(cfg))
    was_training = model.training
    model.eval()
    try:
        if sc.sampler == "ddim":
            rec = TrajectoryRecorder(len(ddim_timesteps(s.T, sc.steps)), frames or sc.frames)
            x = ddim_sample(f, shape, s, sc.steps, sc.eta, generator=g, clip_x0=sc.clip_x0, callback=rec,
                            device=device, progress=progress)
        else:
            rec = TrajectoryRecorder(s.T, frames or sc.frames)
            x = sample(f, shape, s, generator=g, variance=sc.variance, clip_x0=sc.clip_x0, callback=rec,
                       device=device, progress=progress)
    finally:
        model.train(was_training)
    return x, rec


def write_samples(x: Tensor, rec, png: str | os.PathLike, gif: str | os.PathLike, fps: float) -> tuple[Path, Path]:
    """Write the final samples as a PNG (grid or scatter) and the trajectory as a looping GIF.

    Images smaller than 32 px are enlarged by an integer factor (nearest neighbour) so they can be seen.
    """
    from .viz import save_gif, save_image_grid, scatter_rgb

    if x.dim() == 4:
        k = max(1, 32 // x.shape[-1])  # show 8x8 digits 4x larger (nearest neighbour); CIFAR-10 as it is
        big = x.repeat_interleave(k, -1).repeat_interleave(k, -2)
        frames = [f.repeat(k, 0).repeat(k, 1) for f in rec.gif_frames()]
        return save_image_grid(big, png), save_gif(frames, gif, fps=fps)
    import imageio.v3 as iio

    lim = max(1.0, 1.4 * float(x.detach().float().abs().flatten().quantile(0.99)))  # frame the data, not the noise
    frames = [scatter_rgb(xt, f"t = {t}", lim) for t, xt in rec.frames]
    final = scatter_rgb(x, "samples", lim)
    return ckpt.atomic_write(png, lambda f: iio.imwrite(f, final, extension=".png")), save_gif(frames, gif, fps=fps)


# --------------------------------------------------------------------------- optional W&B
class WandbLogger:
    """Weights & Biases logging that never breaks training.

    On when ``wandb.enabled`` is true, wandb is installed and WANDB_MODE is not ``disabled``.
    project/entity come from the config, else $WANDB_PROJECT/$WANDB_ENTITY. Any wandb error
    turns into one warning and logging is switched off.
    """

    def __init__(self, cfg: Config, run_dir: Path):
        self.run, self.wandb = None, None
        if not cfg.wandb.enabled or os.environ.get("WANDB_MODE", "").lower() == "disabled":
            return
        try:
            import wandb
        except ImportError:
            warnings.warn("wandb.enabled is true but wandb is not installed (pip install wandb); training without it.")
            return
        try:
            id_file = run_dir / "wandb_id.txt"
            run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
            id_file.write_text(run_id)
            self.run = wandb.init(
                project=cfg.wandb.project or os.environ.get("WANDB_PROJECT") or "ddpm-edu",
                entity=cfg.wandb.entity or os.environ.get("WANDB_ENTITY") or None,
                name=cfg.name, id=run_id, resume="allow", config=config_to_dict(cfg), dir=str(run_dir),
            )
            self.wandb = wandb
        except Exception as e:  # noqa: BLE001 - W&B must never stop a run
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        warnings.warn(f"Weights & Biases logging failed and is now off ({type(e).__name__}: {e}); training continues.")
        self.run = None

    def log(self, data: dict, step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(data, step=step)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def log_media(self, png: Path, gif: Path, step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log({"samples": self.wandb.Image(str(png)), "trajectory": self.wandb.Video(str(gif), format="gif")}, step=step)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def finish(self) -> None:
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as e:  # noqa: BLE001
            self._fail(e)


# --------------------------------------------------------------------------- the trainer
@contextlib.contextmanager
def _forked_rng() -> Iterator[None]:
    """Run a block with its own global RNG states; the caller's are restored afterwards."""
    saved = ckpt.get_rng_state()
    try:
        yield
    finally:
        ckpt.set_rng_state(saved)


@contextlib.contextmanager
def _cudnn_autotune(device: torch.device) -> Iterator[None]:
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


class Trainer:
    """Trains ``cfg`` in ``run_dir``; :meth:`fit` runs it. Nothing is written until :meth:`fit` has
    loaded the data and any checkpoint, so a bad config or a missing data set leaves no run folder.

    ``data`` replaces the data set of ``cfg.data`` with another stream of batches shaped like it
    (the benchmark trains on random images this way).
    """

    def __init__(self, cfg: Config, run_dir: str | os.PathLike | None = None, *, samples: bool = True,
                 progress: bool | None = None, data: BatchIterator | None = None):
        self.cfg, self.run_dir, self._data = cfg, run_dir_for(cfg, run_dir), data
        self.ckpt_dir, self.sample_dir = self.run_dir / "checkpoints", self.run_dir / "samples"
        self.samples = samples
        self.progress = cfg.train.progress if progress is None else progress
        self.device = resolve_device(cfg.train.device)
        self.amp_dtype, use_scaler = resolve_precision(cfg.train.precision, self.device)
        self.use_scaler = use_scaler
        self.step, self._stop, self.metrics = 0, 0, []

    # ---------------------------------------------------------------- setup
    def _resume_path(self) -> Path | None:
        r = self.cfg.train.resume
        if r == "never":
            if ckpt.latest_checkpoint(self.ckpt_dir):
                raise ckpt.CheckpointError(
                    f"train.resume=never, but {self.ckpt_dir} already holds checkpoints. Use train.resume=auto to "
                    f"continue that run, or choose another name or --run-dir for a new one."
                )
            return None
        if r == "auto":
            return ckpt.latest_checkpoint(self.ckpt_dir)
        p = Path(r).expanduser()
        if not p.is_file():
            raise ckpt.CheckpointError(f"train.resume={r}: no such checkpoint file.")
        return p

    def _setup(self) -> None:
        cfg = self.cfg
        path = self._resume_path()
        state = ckpt.load_checkpoint(path) if path else None
        if state is not None:
            _check_compatible(cfg, state["config"], path)
        self.data: BatchIterator = self._data if self._data is not None else make_batches(cfg, self.device)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        __import__("random").seed(cfg.seed)
        self.model = build_model(cfg).to(self.device)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.ema = EMA(self.model, cfg.train.ema_decay)
        self.schedule = build_schedule(cfg).to(self.device) if self.device.type != "mps" else build_schedule(cfg)
        self.opt = make_optimizer(cfg, self.model.parameters(), self.device)
        # A fused optimiser can skip a bad step on the device (opt.found_inf), so the loop need not
        # wait for the loss every step; any other optimiser is checked on the host after each step.
        self._skip_on_device = bool(getattr(self.opt, "_step_supports_amp_scaling", False))
        self._new_stats()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_scaler)
        self.gen = torch.Generator(self.device).manual_seed(cfg.seed + 2)  # t and eps draws
        self.fwd = torch.compile(self.model) if cfg.train.compile else self.model
        self.resumed_from = path
        if state is not None:
            self._load_state(state)
            if self.progress:
                print(f"resuming {self.run_dir} from {path.name} (step {self.step})", file=sys.stderr)
        # Everything that can fail on the input has been checked: now the run folder may be created.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write(self.run_dir / "config.yml", lambda f: f.write(dump_config(cfg).encode()))
        self.metrics = _read_metrics(self.run_dir / "metrics.jsonl", upto=self.step)

    def _load_state(self, s: dict) -> None:
        try:
            self._restore(s)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise ckpt.CheckpointError(
                f"Checkpoint {self.resumed_from} cannot be resumed exactly: a piece is missing or damaged "
                f"({type(e).__name__}: {_brief(e)}). Point train.resume at "
                f"another checkpoint, or start a new run (another name or --run-dir)."
            ) from None

    def _restore(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.ema.model.load_state_dict(s["ema"])
        self.opt.load_state_dict(s["optimizer"])
        if self.use_scaler and s["scaler"]:
            self.scaler.load_state_dict(s["scaler"])
        ckpt.set_rng_state(s["rng"])
        self.gen.set_state(s["rng"]["generator"])
        self.data.load_state_dict(s["data"])
        self.step = int(s["step"])
        acc = [float(v) for v in s["trainer"]["acc"]]
        if len(acc) == 3:  # format of 2026-11-28: loss sum, grad-norm sum, steps
            acc.insert(2, acc[2])
        self._stats = torch.tensor(acc, dtype=self._stats.dtype, device=self._stats.device)

    def _state(self) -> dict:
        rng = ckpt.get_rng_state()
        rng["generator"] = self.gen.get_state()
        return {
            "format_version": ckpt.FORMAT_VERSION, "step": self.step,
            "model": self.model.state_dict(), "ema": self.ema.model.state_dict(),
            "optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict() if self.use_scaler else {},
            "rng": rng, "data": self.data.state_dict(), "trainer": {"acc": self._stats.tolist()},
            "config": config_to_dict(self.cfg),
        }

    # ---------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        """Train from scratch or resume, up to exactly ``train.steps`` steps (or until a signal)."""
        with _forked_rng(), _cudnn_autotune(self.device), self._signals():
            self._setup()
            self.wandb = WandbLogger(self.cfg, self.run_dir)
            try:
                return self._loop()
            finally:
                self.wandb.finish()

    def _loop(self) -> TrainResult:
        cfg, t = self.cfg, self.cfg.train
        last_ckpt = ckpt.latest_checkpoint(self.ckpt_dir)
        saved_at = self.step if self.resumed_from else -1
        t0, t_log, s_log = time.perf_counter(), time.perf_counter(), self.step
        first = self.step
        bar = _bar(self.step, t.steps, self.progress, cfg.name)
        try:
            while self.step < t.steps and not self._stop:
                lr = self._train_step(self.step + 1)
                self.step += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    now = time.perf_counter()
                    rec = self._log(lr, (self.step - s_log) / max(now - t_log, 1e-9), now - t0)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
                    t_log, s_log = now, self.step
                if t.ckpt_every and self.step % t.ckpt_every == 0:
                    last_ckpt, saved_at = self._save(), self.step
                if self.samples and t.sample_every and self.step % t.sample_every == 0:
                    self._sample()
        finally:
            bar.close()
        if saved_at != self.step:
            last_ckpt = self._save()
        elif not (self.run_dir / "ema.safetensors").is_file():
            self._export_ema()
        sampled = t.sample_every and self.step % t.sample_every == 0 and self.step > first
        if not self._stop and self.samples and not sampled and (self.step > first or not self._has_samples()):
            self._sample()
        if self.metrics:
            self._plot_loss()
        last_loss = float(self._last_loss) if self.step > first else math.nan
        return TrainResult(self.run_dir, self.step, last_ckpt, self._stop, last_loss)

    def _train_step(self, step: int) -> float:
        """Algorithm 1, one step, with warmup, AMP, clipping and EMA. Returns the learning rate.

        Nothing here waits for the device when the optimiser is fused: the loss, the pre-clip
        gradient norm and the non-finite flags are accumulated on the device (see :meth:`_new_stats`).
        """
        t = self.cfg.train
        lr = lr_at(step, t.lr, t.warmup)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x0 = next(self.data)  # (B, C, H, W) in [-1, 1], on the device
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            loss = l_simple(self.fwd, x0, self.schedule, target=self.cfg.diffusion.target, generator=self.gen)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        gnorm = nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip if t.grad_clip else math.inf)
        vals = torch.stack([loss.detach().float(), gnorm.detach().float()]).to(self._stats.dtype)  # (loss, norm)
        finite = torch.isfinite(vals)
        # fp16 gradients overflow now and then: the GradScaler skips those steps and lowers its scale,
        # so with a scaler only a non-finite loss is an error (self._errors masks the norm out).
        hit = ~finite & self._errors & (self._bad_step == 0)  # the first non-finite loss / norm
        self._bad_step = torch.where(hit, step, self._bad_step)
        self._bad_value = torch.where(hit, vals, self._bad_value)
        if not self._skip_on_device:
            self._check_finite()  # waits for the device
        elif not self.use_scaler:
            self.opt.found_inf = (~finite).any().float()  # the fused kernel leaves parameters and moments alone
        self.scaler.step(self.opt)  # with a scaler, it sets found_inf itself (overflow or a NaN loss)
        self.scaler.update()
        self.ema.update(self.model)
        self._stats += torch.cat([torch.where(finite, vals, 0.0)[:2], finite[1:].to(vals.dtype), self._one])
        self._last_loss = vals[0]
        return lr

    # ---------------------------------------------------------------- device-side statistics
    def _new_stats(self) -> None:
        """Zeroed device accumulators: ``_stats`` = (sum of losses, sum of finite grad norms, number of
        finite grad norms, steps) of the current log window, float64 (float32 on MPS) so that the sums are
        the same whether or not the run was resumed; ``_bad_step`` and ``_bad_value`` = the step and the
        value of the first non-finite (loss, gradient norm), step 0 for none."""
        dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self._stats = torch.zeros(4, dtype=dtype, device=self.device)
        self._one = torch.ones(1, dtype=dtype, device=self.device)
        self._errors = torch.tensor([True, not self.use_scaler], device=self.device)
        self._bad_step = torch.zeros(2, dtype=torch.long, device=self.device)
        self._bad_value = torch.zeros(2, dtype=dtype, device=self.device)
        self._last_loss = torch.full((), math.nan, device=self.device)

    def _check_finite(self) -> None:
        """Raise :class:`NonFiniteError` if a step since the start had a non-finite loss or gradient norm."""
        (loss_step, g_step), (loss_v, g_v) = self._bad_step.tolist(), self._bad_value.tolist()
        if not (loss_step or g_step):
            return
        what, step, value = ("loss", loss_step, loss_v) if loss_step and (not g_step or loss_step <= g_step) else (
            "gradient norm", g_step, g_v)
        raise NonFiniteError(
            f"The {what} became {value} at step {int(step)}. That step was not applied; training stopped at "
            f"step {self.step} and wrote no checkpoint after step {int(step) - 1}. The newest good checkpoint is "
            f"{ckpt.latest_checkpoint(self.ckpt_dir) or '(none yet)'}. Try a lower train.lr, a longer "
            f"train.warmup, train.grad_clip=1.0 or train.precision=fp32."
        )

    def _log(self, lr: float, steps_per_s: float, elapsed: float) -> dict:
        self._check_finite()
        total, gsum, gn, n = self._stats.tolist()
        self._stats.zero_()
        rec = {"step": self.step, "loss": total / n, "lr": lr, "grad_norm": gsum / gn if gn else None,
               "steps_per_s": round(steps_per_s, 4), "time_s": round(elapsed, 3)}
        self.metrics.append(rec)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.wandb.log({k: rec[k] for k in ("loss", "lr", "grad_norm", "steps_per_s") if rec[k] is not None}, self.step)
        return rec

    def _save(self) -> Path:
        self._check_finite()  # never a checkpoint of a run that went non-finite
        path = ckpt.save_checkpoint(self._state(), ckpt.checkpoint_path(self.ckpt_dir, self.step))
        ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.train.keep_last)
        self._export_ema()
        return path

    def _export_ema(self) -> None:
        meta = {"step": str(self.step), "config": json.dumps(config_to_dict(self.cfg))}
        ckpt.save_safetensors(self.ema.model.state_dict(), self.run_dir / "ema.safetensors", metadata=meta)

    def _has_samples(self) -> bool:
        return self.sample_dir.is_dir() and any(self.sample_dir.glob("step_*.png"))

    def _sample(self) -> None:
        self._check_finite()
        sc = self.cfg.sample
        x, rec = generate(self.ema.model, self.cfg, device=self.device)
        stem = self.sample_dir / f"step_{self.step:08d}"
        png, gif = write_samples(x, rec, stem.with_suffix(".png"), stem.with_suffix(".gif"), sc.fps)
        self.wandb.log_media(png, gif, self.step)
        if self.metrics:
            self._plot_loss()

    def _plot_loss(self) -> None:
        from .viz import plot_loss_curve, save_figure

        save_figure(plot_loss_curve(self.metrics), self.run_dir / "loss.png")

    # ---------------------------------------------------------------- signals
    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM set a flag that the loop checks at each step boundary; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop:
                raise KeyboardInterrupt
            self._stop = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _bar(initial: int, total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)


def _read_metrics(path: Path, upto: int) -> list[dict]:
    """The records of metrics.jsonl with step <= upto; the file is rewritten without later ones
    (a run killed after its last checkpoint logged steps that the resumed run will redo)."""
    if not path.is_file():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keep = [r for r in recs if r["step"] <= upto]
    if len(keep) != len(recs):
        ckpt.atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in keep).encode()))
    return keep


def _check_compatible(cfg: Config, saved: dict, path: Path) -> None:
    """A checkpoint can only resume a run with the same model, diffusion and data set."""
    now = config_to_dict(cfg)
    diffs = [f"{sec}.{k}: checkpoint {saved[sec].get(k)!r}, config {v!r}"
             for sec in ("model", "diffusion") for k, v in now[sec].items() if saved.get(sec, {}).get(k) != v]
    if saved.get("data", {}).get("dataset") != cfg.data.dataset:
        diffs.append(f"data.dataset: checkpoint {saved.get('data', {}).get('dataset')!r}, config {cfg.data.dataset!r}")
    if diffs:
        raise ckpt.CheckpointError(
            f"Checkpoint {path} was trained with another model or data set than this config, so it cannot "
            f"be resumed: " + "; ".join(diffs) + ". Use the config it was trained with, or another run folder."
        )


def train(cfg: Config, run_dir: str | os.PathLike | None = None, *, samples: bool = True,
          progress: bool | None = None) -> TrainResult:
    """Train ``cfg`` (resuming per ``train.resume``) and return where it ended."""
    return Trainer(cfg, run_dir, samples=samples, progress=progress).fit()


# --------------------------------------------------------------------------- loading trained models
def load_ema_model(cfg: Config | None, weights: str | os.PathLike) -> tuple[nn.Module, Config]:
    """The EMA network from a checkpoint (``.pt``) or ``ema.safetensors``, in eval mode on the CPU.

    With ``cfg=None`` the config stored in the file is used. Returns (model, config).
    """
    weights = Path(weights)
    if weights.suffix == ".safetensors":
        tensors, meta = ckpt.load_safetensors(weights)
        saved = json.loads(meta["config"]) if "config" in meta else None
    else:
        state = ckpt.load_checkpoint(weights)
        tensors, saved = state["ema"], state["config"]
    if cfg is None:
        if saved is None:
            raise ckpt.CheckpointError(f"{weights} carries no config; pass --config.")
        cfg = config_from_dict(saved, source=f"{weights} (stored config)")
    model = build_model(cfg)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise ckpt.CheckpointError(
            f"The weights in {weights} do not fit the model of config {cfg.source}: "
            f"{_brief(e)}. Use the config the model was trained with."
        ) from None
    return model.eval().requires_grad_(False), cfg


def load_or_train(cfg: Config, *, cache_dir: str | os.PathLike | None = None, progress: bool | None = None) -> nn.Module:
    """The trained EMA model of ``cfg``, for the book's chapters: loaded from the cache if it was
    trained before, else trained now (and cached). Returns the model in eval mode on the CPU.

    The cache is ``<cache_dir or $DDPM_EDU_CACHE or ~/.cache/ddpm_edu>/<config_hash(cfg)>/``, an
    ordinary run folder, so an interrupted training resumes. In fast mode (``DDPM_EDU_FAST=1``) the
    config is first shrunk by :func:`fast_config`.
    """
    if fast():
        cfg = fast_config(cfg)
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, resume="auto"))
    run = Path(cache_dir).expanduser() if cache_dir else cache_root()
    run = run / config_hash(cfg)
    ema_file = run / "ema.safetensors"
    if _trained(ema_file, cfg.train.steps):
        try:
            return load_ema_model(cfg, ema_file)[0]
        except ckpt.CheckpointError as e:  # cached by older code whose model no longer fits: retrain
            warnings.warn(f"retraining the cached model in {run}: {_brief(e, 200)}", stacklevel=2)
            shutil.rmtree(run)
    result = train(cfg, run, samples=False, progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt(f"training interrupted at step {result.step}; run again to resume")
    return load_ema_model(cfg, ema_file)[0]


def _brief(e: BaseException, limit: int = 400) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(e).split()) or repr(e)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _trained(ema_file: Path, steps: int) -> bool:
    if not ema_file.is_file():
        return False
    try:
        _, meta = ckpt.load_safetensors(ema_file)
    except Exception:  # noqa: BLE001 - a damaged cache entry is simply retrained
        return False
    return int(meta.get("step", -1)) >= steps
