"""The trainer loop: Algorithm 1 of Ho et al. 2020, with the engineering a long run needs.

Chapters 7 and 9. One optimiser step (:meth:`Trainer.train_step`) is Algorithm 1
(``losses.l_simple``) plus a linear learning-rate warmup, automatic mixed precision, clipping of the
global gradient norm, the non-finite guard and an EMA of the weights, each one line. With
``data.labels`` it is Algorithm 1 of Ho & Salimans 2022 (chapter 10): the network also sees the label,
which is dropped with probability ``train.p_uncond`` (:meth:`Trainer.dropped_labels`). The parts are
built by :mod:`ddpm_edu.training.build`; the guard is :mod:`ddpm_edu.training.guard`, the EMA :mod:`ddpm_edu.training.ema`,
the records :mod:`ddpm_edu.training.runlog` and the sample files :mod:`ddpm_edu.training.generate`.

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

Gradient accumulation (``train.accumulate`` = k, :meth:`Trainer.accumulate_grad`) splits each
process's rows of the batch into k micro-batches, each with the rows of t and eps that the whole batch
would use, and adds up their gradients, each scaled by 1/k, before the one optimiser step; only the
last backward pass averages over the processes. A step with k is then the step on the whole batch,
with the activation memory of a micro-batch. Warmup, EMA, the guard, the log and the checkpoints
count optimiser steps, as before. Dropout draws a mask per micro-batch, so with dropout > 0 the two
agree in distribution, not bit for bit.

The step loop does not wait for the accelerator: a non-finite step is skipped on the device, and
the guard is read back only every ``train.log_every`` steps and before every checkpoint or sample
grid, where it raises :class:`~ddpm_edu.training.guard.NonFiniteError` naming the bad step. So no
checkpoint is ever written after a bad step.

The trainer seeds the global torch/numpy/Python RNGs from the config (dropout draws from the
global torch RNG) but restores the caller's RNG states when it returns.

Several processes (``torchrun --nproc_per_node=N -m ddpm_edu train``; :mod:`ddpm_edu.training.distributed`)
train one model data-parallel. ``data.batch_size`` is the global batch B; each of the W processes
takes its B/W rows of every global batch of the one seeded order, and the t and eps of Algorithm 1
are drawn for the whole global batch by every process from the same generator, each keeping its
rows. DistributedDataParallel averages the gradients, so a step of W processes is the step of one
process on the global batch (to float rounding), and every piece of a checkpoint (model, EMA,
optimiser, data order, t and eps generator, step) is the same on every process and independent of
W: a run resumes on another number of processes. Only rank 0 writes files (checkpoint, metrics,
samples, EMA export), and every process waits at a barrier until a checkpoint is complete. The stop
flag is reduced over the processes at every step and the guard's record at every check, so a signal
to any process, or a non-finite step on any process, stops all of them at the same step. Dropout
draws from each process's global torch RNG, which is the same on every process: with dropout > 0 the
processes share their masks, and W processes are no longer one process on the global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.data.files import shown_path
from ddpm_edu.data.stream import BatchIterator
from ddpm_edu.guidance import drop_labels
from ddpm_edu.losses import l_simple, sample_t
from ddpm_edu.progress import progress_bar
from ddpm_edu.training import checkpoint as ckpt
from ddpm_edu.training.build import (
    autocast,
    build_model,
    build_schedule,
    cudnn_autotune,
    label_dropout,
    make_batches,
    make_optimizer,
    resolve_device,
    resolve_precision,
)
from ddpm_edu.training.config import Config, config_to_dict, dump_config
from ddpm_edu.training.distributed import SINGLE, World
from ddpm_edu.training.ema import EMA
from ddpm_edu.training.generate import generate, write_samples
from ddpm_edu.training.guard import NonFiniteGuard
from ddpm_edu.training.runlog import LogWindow, QuietLog, RunLog

__all__ = ["TrainResult", "Trainer", "train", "lr_at", "run_dir_for"]


@dataclass
class TrainResult:
    run_dir: Path  # the run folder
    step: int  # optimiser steps taken in total
    checkpoint: Path | None  # the newest checkpoint
    interrupted: int = 0  # the signal number that stopped training early, or 0
    last_loss: float = math.nan  # the loss of the last step taken in this call


def train(cfg: Config, run_dir: str | os.PathLike | None = None, *, samples: bool = True,
          progress: bool | None = None, world: World = SINGLE) -> TrainResult:
    """Train ``cfg`` (resuming per ``train.resume``) and return where it ended; ``world``: this process of several."""
    return Trainer(cfg, run_dir, samples=samples, progress=progress, world=world).fit()


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Learning rate for optimiser step ``step`` (1-based): lr * min(1, step / warmup)."""
    return lr if warmup <= 0 else lr * min(1.0, step / warmup)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> float:
    """Set the learning rate of every parameter group of ``opt``; returns ``lr``."""
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


def run_dir_for(cfg: Config, run_dir: str | os.PathLike | None = None) -> Path:
    """``run_dir`` if given, else ``<train.run_root>/<name>``."""
    return Path(run_dir).expanduser() if run_dir else Path(cfg.train.run_root).expanduser() / cfg.name


class Trainer:
    """Trains ``cfg`` in ``run_dir``; :meth:`fit` runs it. :meth:`setup` writes nothing until the data and
    any checkpoint are loaded, so a bad config or a missing data set leaves no run folder.

    ``data`` replaces the data set of ``cfg.data`` with another stream of batches shaped like it
    (the benchmark trains on random images this way). ``world`` is this process among several
    (see the module docstring); the default is one process.
    """

    def __init__(self, cfg: Config, run_dir: str | os.PathLike | None = None, *, samples: bool = True,
                 progress: bool | None = None, data: BatchIterator | None = None, world: World = SINGLE):
        self.cfg, self.run_dir, self.samples, self.data = cfg, run_dir_for(cfg, run_dir), samples, data
        self.ckpt_dir, self.sample_dir = self.run_dir / "checkpoints", self.run_dir / "samples"
        self.ema_file = self.run_dir / "ema.safetensors"
        self.world = world
        self.progress = (cfg.train.progress if progress is None else progress) and world.is_main
        self.device = world.device(resolve_device(cfg.train.device))
        self.amp_dtype, self.fp16 = resolve_precision(cfg.train.precision, self.device)
        self.step, self.stop, self.stopped = 0, StopSignal(), 0  # stopped: the signal all processes agreed on

    def fit(self) -> TrainResult:
        """Train from scratch or resume, up to exactly ``train.steps`` steps (or until a signal)."""
        with forked_rng(), cudnn_autotune(self.device), self.stop.installed():
            self.setup()
            try:
                return self._loop()
            finally:
                self.log.close()

    def setup(self) -> None:
        """Build every part and restore the checkpoint to resume from; then create the run folder."""
        cfg, path = self.cfg, resume_path(self.cfg.train.resume, self.ckpt_dir)
        state = ckpt.load_checkpoint(path) if path else None
        if state is not None:
            check_compatible(cfg, state["config"], path)
        self.data = self.data if self.data is not None else make_batches(cfg, self.device, self.world)
        self.world.micro_rows(self.data.batch_size, cfg.train.accumulate)  # train.accumulate splits each process's rows
        seed_everything(cfg.seed)  # model init and dropout
        fmt = torch.channels_last if cfg.train.channels_last else torch.preserve_format
        self.model = build_model(cfg).to(self.device, memory_format=fmt).train()
        self.ddp = self.world.data_parallel(self.model)  # DDP with several processes: gradients averaged
        self.fwd = torch.compile(self.ddp) if cfg.train.compile else self.ddp
        self.ema = EMA(self.model, cfg.train.ema_decay)
        self.schedule = build_schedule(cfg, self.device)
        self.opt = make_optimizer(cfg, self.model.parameters(), self.device)
        self.guard, self.window = NonFiniteGuard(self.device, self.fp16), LogWindow(self.device)
        self.gen = torch.Generator(self.device).manual_seed(cfg.seed + 2)  # t and eps draws
        if state is not None:
            self._restore(state, path)
        self.world.check_same(self.step, "the step to resume from (is the run folder on a file system every machine sees?)")
        if self.world.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)  # every check on the input has passed
            ckpt.atomic_write(self.run_dir / "config.yml", lambda f: f.write(dump_config(cfg).encode()))
        self.log = RunLog(self.run_dir, cfg, upto=self.step) if self.world.is_main else QuietLog()

    def train_step(self, step: int) -> float:
        """Algorithm 1, one step, with warmup, AMP, clipping, the guard and EMA. Returns the learning rate.

        Nothing here waits for the device: with a fused optimiser a bad step is skipped on the device.
        """
        tc = self.cfg.train
        lr = set_lr(self.opt, lr_at(step, tc.lr, tc.warmup))  # warmup
        x0, y = _split(next(self.data))  # Alg. 1, line 2: x0 ~ q(x0), (B / W, C, H, W) in [-1, 1], on the device
        y = self.dropped_labels(y)  # labels (B / W,) or None; Ho & Salimans, Alg. 1, line 3
        t, eps = self.shared_t_eps(x0)  # lines 3-4 for the whole batch; None: l_simple draws them
        self.opt.zero_grad(set_to_none=True)
        loss = self.accumulate_grad(x0, y, t, eps)  # lines 3-5: the loss and its gradient
        grad_norm = self.guard.clip(self.opt, self.model.parameters(), tc.grad_clip)  # clipping
        self.guard.step(self.opt, step, loss, grad_norm)  # the Adam step, skipped if not finite
        self.ema.update(self.model)  # EMA of the weights
        self.window.add(loss, grad_norm)
        return lr

    def dropped_labels(self, y: Tensor | None) -> Tensor | None:
        """Ho & Salimans 2022, Alg. 1, line 3: each label becomes "no label" (index K) with probability p_uncond.

        The coins come from the trainer's generator, one per row of the global batch, drawn before t and
        eps; each process keeps its rows, so W processes drop what one process would, and a resumed run
        drops what the uninterrupted run would have dropped. Without labels: None, and nothing is drawn.
        """
        if y is None:
            return None
        u = torch.rand(self.data.batch_size, generator=self.gen, device=y.device)[self.data.rows]  # (B / W,)
        return drop_labels(y, label_dropout(self.cfg), self.model.num_classes, u=u)

    def accumulate_grad(self, x0: Tensor, y: Tensor | None, t: Tensor | None, eps: Tensor | None) -> Tensor:
        """Gradients of L_simple on the batch, summed over ``train.accumulate`` = k micro-batches; returns the loss.

        The batch's loss is the mean of k equal micro-batch means, L = (1/k) sum_i L_i, so the backward
        passes of L_i / k add up to the gradient of L: one step with k equals one step on the whole batch.
        x0: (B/W, ...); y: (B/W,) labels or None; t: (B/W,) and eps like x0, or None (one micro-batch:
        l_simple draws them).
        With several processes, only the last backward pass averages the gradients over them.
        """
        k = self.cfg.train.accumulate
        parts = zip(*(a.chunk(k) if a is not None else [None] * k for a in (x0, y, t, eps)))
        losses = []
        for i, (x0_i, y_i, t_i, eps_i) in enumerate(parts):  # (B / (W k), ...) each
            net = self.fwd if y_i is None else (lambda xt, t_, y_i=y_i: self.fwd(xt, t_, y_i))  # eps_theta(x_t, t[, y])
            with self.world.no_sync(self.ddp, sync=i == k - 1):
                with autocast(self.device, self.amp_dtype):  # mixed precision
                    loss_i = l_simple(net, x0_i, self.schedule, target=self.cfg.diffusion.target,
                                      t=t_i, eps=eps_i, generator=self.gen)  # Alg. 1, lines 3-5
                self.guard.backward(loss_i / k)  # line 5: its share of the gradient
            losses.append(loss_i.detach())
        return torch.stack(losses).mean()  # L = (1/k) sum_i L_i

    def shared_t_eps(self, x0: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Alg. 1, lines 3-4 for the global batch, and this process's rows of them: (t (B/W,), eps like x0).

        Every process draws t ~ U{1..T} (B,) and then eps ~ N(0, I) (B, ...) from the same generator,
        exactly as one process's l_simple draws them for the batch of B, and keeps its rows; so W
        processes together use one process's t and eps, and micro-batches (``train.accumulate``) the
        rows that the whole batch would. One process, one micro-batch: (None, None), and l_simple
        draws the same t and eps itself.
        """
        if self.world.size == 1 and self.cfg.train.accumulate == 1:
            return None, None
        B, rows = self.data.batch_size, self.data.rows
        t = sample_t(B, self.schedule.T, generator=self.gen, device=x0.device)  # (B,)
        eps = torch.randn((B, *x0.shape[1:]), generator=self.gen, dtype=x0.dtype, device=x0.device)  # (B, ...)
        return t[rows], eps[rows]

    def _stopping(self) -> int:
        """The signal caught by any process (0: none), so that all processes stop at the same step.

        The agreed value goes to ``self.stopped``, never back into ``self.stop.signum``: the handler may
        set that while the processes compare, and overwriting it would lose the signal.
        """
        self.stopped = self.world.max_int(self.stop.signum)
        return self.stopped

    def _loop(self) -> TrainResult:
        t, first = self.cfg.train, self.step
        t0 = t_log = time.perf_counter()
        s_log = self.step
        with _bar(self.step, t.steps, self.progress, self.cfg.name) as bar:
            while self.step < t.steps and not self._stopping():
                lr = self.train_step(self.step + 1)
                self.step += 1
                bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    now = time.perf_counter()
                    rec = self._log(lr, (self.step - s_log) / max(now - t_log, 1e-9), now - t0)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
                    t_log, s_log = now, self.step
                if t.ckpt_every and self.step % t.ckpt_every == 0:
                    self._save()
                if self.samples and t.sample_every and self.step % t.sample_every == 0:
                    self._sample()
        self._stopping()  # a signal caught after the last step's check: every process decides alike below
        if self.world.main_says(not (ckpt.checkpoint_path(self.ckpt_dir, self.step).is_file() and self.ema_file.is_file())):
            self._save()
        if self.samples and not self.stopped and self.world.main_says(not self._sample_files()[0].is_file()):
            self._sample()
        self.log.plot_loss()
        last_loss = self.window.last_loss.item() if self.step > first else math.nan
        return TrainResult(self.run_dir, self.step, ckpt.latest_checkpoint(self.ckpt_dir), self.stopped, last_loss)

    def check_finite(self) -> None:
        """Raise NonFiniteError if a step so far was not finite, on any process (this waits for the device)."""
        self.guard.merge(self.world.gather(self.guard.bad_step), self.world.gather(self.guard.bad_value))
        self.guard.check(self.step, ckpt.latest_checkpoint(self.ckpt_dir))

    def _log(self, lr: float, steps_per_s: float, elapsed: float) -> dict:
        self.check_finite()
        self.world.mean_(self.window.sums)  # the global batch's window: the mean of the processes' windows
        means = self.window.means()
        rec = {"step": self.step, "loss": means["loss"], "lr": lr, "grad_norm": means["grad_norm"],
               "steps_per_s": round(steps_per_s, 4), "time_s": round(elapsed, 3)}
        self.log.record(rec)
        return rec

    def _save(self) -> None:
        self.check_finite()  # never a checkpoint of a run that went non-finite
        self.world.mean_(self.window.sums)  # the same, global window on every process
        if self.world.is_main:
            ckpt.save_checkpoint(self._state(), ckpt.checkpoint_path(self.ckpt_dir, self.step))
            ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.train.keep_last)
            meta = {"step": str(self.step), "config": json.dumps(config_to_dict(self.cfg))}
            if self._num_classes() is not None:
                meta["num_classes"] = str(self._num_classes())
            ckpt.save_safetensors(self.ema.model.state_dict(), self.ema_file, metadata=meta)
        self.world.barrier()  # the checkpoint is complete before any process moves on

    def _sample_files(self) -> tuple[Path, Path]:
        stem = self.sample_dir / f"step_{self.step:08d}"
        return stem.with_suffix(".png"), stem.with_suffix(".gif")

    def _sample(self) -> None:
        self.check_finite()
        if self.world.is_main:  # the EMA is the same on every process
            x, rec = generate(self.ema.model, self.cfg, device=self.device)
            png, gif = write_samples(x, rec, *self._sample_files(), fps=self.cfg.sample.fps)
            self.log.media(png, gif, self.step)
            self.log.plot_loss()
        self.world.barrier()

    def _state(self) -> dict:
        return {
            "format_version": ckpt.FORMAT_VERSION, "step": self.step, "config": config_to_dict(self.cfg),
            "num_classes": self._num_classes(),
            "model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scaler": self.guard.state_dict(), "rng": {**ckpt.get_rng_state(), "generator": self.gen.get_state()},
            "data": self.data.state_dict(), "trainer": {"acc": self.window.state_dict()},
        }

    def _num_classes(self) -> int | None:
        """The classes the model is conditioned on (None: unconditional), recorded in checkpoints for ``sample``."""
        return getattr(self.model, "num_classes", None)

    def _restore(self, s: dict, path: Path) -> None:
        try:
            self.model.load_state_dict(s["model"])
            self.ema.model.load_state_dict(s["ema"])
            self.opt.load_state_dict(s["optimizer"])
            self.guard.load_state_dict(s["scaler"])
            ckpt.set_rng_state(s["rng"])
            self.gen.set_state(s["rng"]["generator"])
            self.data.load_state_dict(s["data"])
            self.window.load_state_dict(s["trainer"]["acc"])
            self.step = int(s["step"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            raise ckpt.CheckpointError(
                f"Checkpoint {path} cannot be resumed exactly: a piece is missing or damaged "
                f"({type(e).__name__}: {ckpt.one_line(e)}). Point train.resume at another checkpoint, "
                f"or start a new run (another name or --run-dir)."
            ) from None
        if self.progress:
            print(f"resuming {shown_path(self.run_dir)} from {path.name} (step {self.step})", file=sys.stderr)


# --------------------------------------------------------------------------- the trainer's helpers
class StopSignal:
    """SIGINT and SIGTERM set ``signum``, which the loop checks at each step boundary; a second signal stops at once."""

    def __init__(self):
        self.signum = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Catch the signals inside the block (only in the main thread, where Python delivers them)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.signum:
                raise KeyboardInterrupt
            self.signum = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


@contextlib.contextmanager
def forked_rng() -> Iterator[None]:
    """Run a block with its own global RNG states; the caller's are restored afterwards."""
    saved = ckpt.get_rng_state()
    try:
        yield
    finally:
        ckpt.set_rng_state(saved)


def seed_everything(seed: int) -> None:
    """Seed the global torch, numpy and Python RNGs."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def resume_path(resume: str, ckpt_dir: Path) -> Path | None:
    """The checkpoint that ``train.resume`` asks for: the newest in ``ckpt_dir`` (auto), none (never), or a file."""
    if resume == "never":
        if ckpt.latest_checkpoint(ckpt_dir):
            raise ckpt.CheckpointError(
                f"train.resume=never, but {ckpt_dir} already holds checkpoints. Use train.resume=auto to "
                f"continue that run, or choose another name or --run-dir for a new one."
            )
        return None
    if resume == "auto":
        return ckpt.latest_checkpoint(ckpt_dir)
    p = Path(resume).expanduser()
    if not p.is_file():
        raise ckpt.CheckpointError(f"train.resume={resume}: no such checkpoint file.")
    return p


def check_compatible(cfg: Config, saved: dict, path: Path) -> None:
    """A checkpoint can only resume a run with the same model, diffusion and data set."""
    now = config_to_dict(cfg)
    diffs = [f"{sec}.{k}: checkpoint {saved[sec].get(k)!r}, config {v!r}"
             for sec in ("model", "diffusion") for k, v in now[sec].items() if saved.get(sec, {}).get(k) != v]
    for k in ("dataset", "labels", "image_size", "channels"):  # labels: a checkpoint from before them had none
        was = saved.get("data", {}).get(k, False if k == "labels" else None)
        if was != now["data"][k]:
            diffs.append(f"data.{k}: checkpoint {was!r}, config {now['data'][k]!r}")
    if diffs:
        raise ckpt.CheckpointError(
            f"Checkpoint {path} was trained with another model or data set than this config, so it cannot "
            f"be resumed: " + "; ".join(diffs) + ". Use the config it was trained with, or another run folder."
        )


def _split(batch: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
    """A stream's batch as (x0, labels or None): a labelled stream yields pairs, another images alone."""
    return batch if isinstance(batch, tuple) else (batch, None)


def _bar(initial: int, total: int, enabled: bool, desc: str):
    """The run's progress bar; on a built page, its final line (:func:`ddpm_edu.progress.progress_bar`)."""
    return progress_bar(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)
