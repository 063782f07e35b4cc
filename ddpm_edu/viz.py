"""Figures, image grids and GIFs. Plot functions never re-implement math: they call the library.

Images live in [-1, 1] inside the library; this module is the display and file boundary where
they become [0, 1] floats or uint8. Plot functions take ``ax=None``, return the figure and leave
global rcParams alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_uint8", "image_grid", "save_image_grid", "save_gif", "TrajectoryRecorder"]


def to_uint8(x: Tensor) -> np.ndarray:
    """Map images in [-1, 1] to uint8 HWC arrays (or HW for one channel).

    x: (C, H, W) or (B, C, H, W). Returns (H, W[, C]) or (B, H, W[, C]); values outside [-1, 1] are clipped.
    """
    x = x.detach().float().cpu().clamp(-1, 1)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    x = x.movedim(-3, -1)  # (..., H, W, C)
    if x.shape[-1] == 1:
        x = x[..., 0]
    return x.numpy()


def image_grid(x: Tensor, nrow: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile a batch of images in [-1, 1], (B, C, H, W), into one uint8 array (H', W'[, C])."""
    from torchvision.utils import make_grid

    if x.dim() != 4:
        raise ValueError(f"image_grid expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    nrow = nrow or max(1, int(np.ceil(np.sqrt(x.shape[0]))))
    grid = make_grid(x.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=padding, pad_value=1.0)
    if x.shape[1] == 1:
        grid = grid[:1]
    return to_uint8(grid)


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_image_grid(x: Tensor, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Write a batch of images in [-1, 1], (B, C, H, W), as one PNG grid."""
    import imageio.v3 as iio

    grid = image_grid(x, nrow)
    return _atomic_write(Path(path), lambda p: iio.imwrite(p, grid))


def save_gif(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, fps: float = 10.0, loop: int = 0) -> Path:
    """Write uint8 frames (N, H, W[, C]) as a GIF with a real frame delay of 1000 / fps ms that loops.

    (The seed passed ``duration=0.1`` to imageio, which reads milliseconds: no delay was stored.)
    """
    import imageio.v3 as iio

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    frames = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    if frames.shape[0] < 1:
        raise ValueError("save_gif needs at least one frame")
    delay_ms = max(20, int(round(1000.0 / fps)))  # GIF delays are stored in 10 ms units; browsers clamp < 20 ms
    return _atomic_write(Path(path), lambda p: iio.imwrite(p, frames, extension=".gif", duration=delay_ms, loop=loop))


class TrajectoryRecorder:
    """A sampler ``callback`` that keeps about ``frames`` evenly spaced states for a trajectory GIF.

    Pass ``T``, the number of model calls (s.T for DDPM, the step count for DDIM). After sampling,
    ``.frames`` is a list of (t, x_t) and ``.x0_frames`` a list of (t, x0_hat), both on the CPU.
    """

    def __init__(self, T: int, frames: int = 30):
        if frames < 2:
            raise ValueError(f"frames must be >= 2, got {frames!r}")
        self.T, self.n = T, min(frames, T + 1)
        # The callback is called T + 1 times (t = T, ..., 1 and the final t = 0); keep n of those calls.
        self._keep = set(np.round(np.linspace(0, T, self.n)).astype(int).tolist())
        self.frames: list[tuple[int, Tensor]] = []
        self.x0_frames: list[tuple[int, Tensor]] = []
        self._calls = 0

    def __call__(self, t: int, xt: Tensor, x0_hat: Tensor) -> None:
        i, self._calls = self._calls, self._calls + 1
        if i in self._keep:
            self.frames.append((t, xt.detach().cpu()))
            self.x0_frames.append((t, x0_hat.detach().cpu()))

    def gif_frames(self, nrow: int | None = None, x0: bool = False) -> list[np.ndarray]:
        """The recorded states as uint8 grid images, one per frame."""
        src = self.x0_frames if x0 else self.frames
        return [image_grid(x, nrow) for _, x in src]
