"""Saving and loading training checkpoints safely.

Chapters 7 and 9. A checkpoint is one ``torch.save`` dict of tensors and plain data only, so it loads
with ``torch.load(..., weights_only=True)``: a file that smuggles a pickled object (one whose
``__reduce__`` would run code) is refused, never executed. It holds everything an exact resume
needs, under :data:`REQUIRED_KEYS`:

    format_version  int, :data:`FORMAT_VERSION`
    step            optimiser steps taken
    model, ema      state dicts of the trained network and its exponential moving average
    optimizer       the optimiser's state dict (Adam moments, step counts, lr)
    scaler          the fp16 GradScaler's state dict ({} when it is off)
    rng             torch CPU, CUDA, numpy and Python RNG states, as tensors and plain types
    data            the data stream's state (epoch, position, permutation, generator)
    trainer         the trainer's own counters (the running loss of the current log window)
    config          the full config as plain data

and, besides those, ``num_classes``: the classes a conditional network was trained on (chapter 10), or
None; a file from before it existed lacks the key, and holds an unconditional network. The EMA export
``ema.safetensors`` carries the same number as the metadata entry ``num_classes``, present only then.

Writes are atomic: the file is written to a temporary name in the same folder, flushed,
fsync'ed and moved into place with ``os.replace``, so a crash mid-write leaves the previous
checkpoint as it was and no partial file under the final name.
"""

from __future__ import annotations

import os
import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from ddpm_edu.data.files import atomic_write

__all__ = [
    "FORMAT_VERSION",
    "REQUIRED_KEYS",
    "CheckpointError",
    "atomic_write",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "get_rng_state",
    "set_rng_state",
    "save_safetensors",
    "load_safetensors",
    "one_line",
]

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "step", "model", "ema", "optimizer", "scaler", "rng", "data", "trainer", "config")
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (missing, unsafe, incomplete or from another format)."""


# --------------------------------------------------------------------------- atomic files


def one_line(e: BaseException, limit: int = 400) -> str:
    """An exception's message on one line, cut to ``limit`` characters (for messages about a file)."""
    text = " ".join(str(e).split()) or repr(e)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` (see the module docstring) atomically; refuses a state that lacks a required key."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"refusing to save a checkpoint without {', '.join(missing)}")
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` and check that it is complete.

    Raises :class:`CheckpointError` when the file is missing, holds anything but tensors and
    plain data, lacks a required piece, or has another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"Refusing to load checkpoint {path}: it contains objects other than tensors and plain "
            f"data, which weights_only=True loading does not allow (they could run code). "
            f"Only load checkpoints you trust, written by ddpm-edu. ({first})"
        ) from None
    except Exception as e:  # truncated or not a torch file at all
        raise CheckpointError(f"Checkpoint {path} cannot be read ({type(e).__name__}: {e}); it may be truncated.") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint {path} holds a {type(state).__name__}, not a ddpm-edu checkpoint dict.")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"Checkpoint {path} lacks {', '.join(missing)}, so training cannot resume exactly from it. "
            f"Point train.resume at a complete checkpoint, or start a new run (another name or --run-dir)."
        )
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {path} has format version {state['format_version']!r}; this ddpm-edu reads version {FORMAT_VERSION}."
        )
    return state


def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    """``folder/step_00001000.pt``."""
    return Path(folder) / f"step_{step:08d}.pt"


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The checkpoints in ``folder``, oldest step first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step in ``folder``, or None."""
    found = list_checkpoints(folder)
    return found[-1] if found else None


def prune_checkpoints(folder: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest checkpoints; returns the deleted paths."""
    old = list_checkpoints(folder)[: -keep_last or None] if keep_last > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


# --------------------------------------------------------------------------- RNG states as tensors
def get_rng_state() -> dict:
    """Torch CPU and CUDA, numpy and Python RNG states, as tensors and plain types (weights_only-safe)."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


# --------------------------------------------------------------------------- safetensors export
def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write a flat dict of tensors as ``.safetensors`` (atomically), e.g. the EMA weights for sharing."""
    from safetensors.torch import save

    blob = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    return atomic_write(path, lambda f: f.write(blob))


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a ``.safetensors`` file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Weights file {path} does not exist.")
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
