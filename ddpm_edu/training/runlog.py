"""What a run records: the device-side sums of a log window, metrics.jsonl, the loss curve and optional W&B.

Chapters 7 and 9. :class:`LogWindow` adds up the loss and the gradient norm on the device, so a
training step never waits to read them; :class:`RunLog` writes one line of ``metrics.jsonl`` per
window, redraws ``loss.png`` and forwards both to Weights & Biases when that is switched on.
"""

from __future__ import annotations

import json
import math
import os
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import Tensor

from ddpm_edu.data.files import atomic_write
from ddpm_edu.training.config import Config, config_to_dict

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["LogWindow", "RunLog", "QuietLog", "WandbLogger", "read_metrics", "draw_loss_curve"]


class LogWindow:
    """Sums over one log window, kept on the device: (loss, finite gradient norms, their count, steps).

    float64 (float32 on MPS, which has none), and part of the checkpoint, so that the means logged
    by a resumed run are those of the run that was never interrupted.
    """

    def __init__(self, device: torch.device):
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.sums = torch.zeros(4, dtype=dtype, device=device)
        self._one = torch.ones(1, dtype=dtype, device=device)
        self.last_loss = torch.full((), math.nan, device=device)

    def add(self, loss: Tensor, grad_norm: Tensor) -> None:
        """Add one step; a non-finite loss or norm adds 0 (the guard reports it)."""
        vals = torch.stack([loss.detach().float(), grad_norm.detach().float()]).to(self.sums.dtype)
        finite = torch.isfinite(vals)
        self.sums += torch.cat([torch.where(finite, vals, 0.0), finite[1:].to(vals.dtype), self._one])
        self.last_loss = vals[0]

    def means(self) -> dict:
        """The window's mean loss and mean finite gradient norm (None if there was none); starts a new window."""
        total, g_sum, g_count, n = self.sums.tolist()
        self.sums.zero_()
        return {"loss": total / n if n else math.nan, "grad_norm": g_sum / g_count if g_count else None}

    def state_dict(self) -> list[float]:
        return self.sums.tolist()

    def load_state_dict(self, sums: list[float]) -> None:
        self.sums.copy_(torch.tensor([float(v) for v in sums], dtype=self.sums.dtype))


class RunLog:
    """``metrics.jsonl``, ``loss.png`` and W&B for the run in ``run_dir``, continuing after step ``upto``.

    A run killed after its last checkpoint logged steps that the resumed run will redo, so lines of
    ``metrics.jsonl`` after ``upto`` are dropped first.
    """

    def __init__(self, run_dir: Path, cfg: Config, upto: int):
        self.path, self.plot_path = run_dir / "metrics.jsonl", run_dir / "loss.png"
        self.records = _read_metrics(self.path, upto)
        self.wandb = WandbLogger(cfg, run_dir)

    def record(self, rec: dict) -> None:
        """Append one record (``step``, ``loss``, ...) to metrics.jsonl and W&B."""
        self.records.append(rec)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        numbers = {k: v for k, v in rec.items() if k not in ("step", "time_s") and v is not None}
        self.wandb.log(numbers, rec["step"])

    def media(self, png: Path, gif: Path, step: int) -> None:
        """Send a sample grid and its trajectory GIF to W&B (the files are already in the run folder)."""
        self.wandb.log_media(png, gif, step)

    def plot_loss(self) -> None:
        """Redraw loss.png from the records (nothing before the first record)."""
        if self.records:
            save_loss_curve(self.records, self.plot_path)

    def close(self) -> None:
        self.wandb.finish()


class QuietLog:
    """The log of a process other than rank 0 in a multi-process run: it records nothing (rank 0 writes the files)."""

    def record(self, rec: dict) -> None:
        pass

    def media(self, png: Path, gif: Path, step: int) -> None:
        pass

    def plot_loss(self) -> None:
        pass

    def close(self) -> None:
        pass


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of the run's ``metrics.jsonl`` in the order they were logged ([] if it has none).

    Each record has ``step``, ``loss`` (the mean over the log window), ``lr``, ``grad_norm``,
    ``steps_per_s`` and ``time_s`` (seconds since the start of the session that logged it).
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_metrics(path: Path, upto: int) -> list[dict]:
    """The records of ``path`` with step <= upto; the file is rewritten without later ones."""
    recs = read_metrics(path.parent)
    keep = [r for r in recs if r["step"] <= upto]
    if len(keep) != len(recs):
        atomic_write(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in keep).encode()))
    return keep


class WandbLogger:
    """Weights & Biases logging that never breaks training.

    On when ``wandb.enabled`` is true, wandb is installed and WANDB_MODE is not ``disabled``.
    project/entity come from the config, else $WANDB_PROJECT/$WANDB_ENTITY. The run id is kept in
    ``wandb_id.txt``, so a resumed run logs to the same W&B run. Any wandb error turns into one
    warning and logging is switched off.
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

    def _call(self, fn) -> None:
        """Run ``fn()`` unless logging is off; a failure switches it off."""
        if self.run is None:
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def log(self, data: dict, step: int) -> None:
        self._call(lambda: self.run.log(data, step=step))

    def log_media(self, png: Path, gif: Path, step: int) -> None:
        self._call(lambda: self.run.log({"samples": self.wandb.Image(str(png)),
                                         "trajectory": self.wandb.Video(str(gif), format="gif")}, step=step))

    def finish(self) -> None:
        self._call(lambda: self.run.finish())


def draw_loss_curve(ax: Axes, metrics: Sequence[Mapping[str, float]]) -> None:
    """Loss against step from metrics.jsonl records (keys ``step`` and ``loss``) on ``ax``; log scale when all > 0."""
    ax.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], lw=1)
    ax.set(xlabel="step", ylabel="L_simple (mean over log window)", title="training loss")
    if metrics and min(m["loss"] for m in metrics) > 0:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def save_loss_curve(metrics: Sequence[Mapping[str, float]], path: str | os.PathLike) -> Path:
    """Draw :func:`draw_loss_curve` into a PNG at ``path``, atomically (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    draw_loss_curve(fig.add_subplot(), metrics)
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
