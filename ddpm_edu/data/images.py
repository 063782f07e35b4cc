"""Image and GIF files: images in [-1, 1] become uint8 arrays, PNG grids and looping GIFs.

Images live in [-1, 1] inside the library; this module is the file boundary where they become
uint8 (the plots in :mod:`ddpm_edu.lab.plots` use :func:`to_uint8` and :func:`image_grid` too). Files are
written atomically by :func:`ddpm_edu.data.files.atomic_write`. The trainer and ``ddpm-edu sample``
write their sample grids and trajectory GIFs (chapter 8) with these functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.data.files import atomic_write

__all__ = ["to_uint8", "image_grid", "save_png", "save_image_grid", "save_gif", "trajectory_frames"]


def to_uint8(x: Tensor) -> np.ndarray:
    """Map images in [-1, 1] to uint8 HWC arrays (or HW for one channel): round((x + 1) * 127.5).

    x: (C, H, W) or (B, C, H, W). Returns (H, W[, C]) or (B, H, W[, C]); values outside [-1, 1] are clipped.
    """
    x = x.detach().float().cpu().clamp(-1, 1)
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    x = x.movedim(-3, -1)  # (..., H, W, C)
    if x.shape[-1] == 1:
        x = x[..., 0]
    return x.numpy()


def image_grid(x: Tensor, nrow: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile a batch of images in [-1, 1] into one uint8 array, ``nrow`` images per row, white padding.

    x: (B, C, H, W). Returns (H', W'[, C]); nrow defaults to ceil(sqrt(B)).
    """
    from torchvision.utils import make_grid

    if x.dim() != 4:
        raise ValueError(f"image_grid expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    nrow = nrow or max(1, int(np.ceil(np.sqrt(x.shape[0]))))
    grid = make_grid(x.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=padding, pad_value=1.0)
    if x.shape[1] == 1:
        grid = grid[:1]  # make_grid repeats one channel to three
    return to_uint8(grid)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 image (H, W[, C]) as a PNG, atomically."""
    import imageio.v3 as iio

    return atomic_write(path, lambda f: iio.imwrite(f, np.asarray(image, dtype=np.uint8), extension=".png"))


def save_image_grid(x: Tensor, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Write a batch of images in [-1, 1], (B, C, H, W), as one PNG grid (see :func:`image_grid`)."""
    return save_png(image_grid(x, nrow), path)


def save_gif(
    frames: Sequence[np.ndarray] | np.ndarray,
    path: str | os.PathLike,
    fps: float = 10.0,
    loop: int = 0,
    progress_bar: bool = True,
) -> Path:
    """Write uint8 frames (N, H, W[, C]) as a GIF with a real frame delay of 1000 / fps ms that loops.

    (The seed passed ``duration=0.1`` to imageio, which reads milliseconds: no delay was stored.)
    With ``progress_bar`` a 3-pixel strip under each frame fills up as the animation advances. Besides
    showing where the loop is, it keeps consecutive frames distinct: GIF writers merge identical
    neighbours (e.g. the last steps of a converged trajectory), which would lose frames. That holds
    whenever the frames are at least N pixels wide.
    """
    import imageio.v3 as iio

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    frames = [np.asarray(f, dtype=np.uint8) for f in frames]
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    if progress_bar:
        frames = [_with_progress(f, k, len(frames)) for k, f in enumerate(frames)]
    delay_ms = max(20, int(round(1000.0 / fps)))  # GIF delays are stored in 10 ms units; browsers clamp < 20 ms
    stack = np.stack(frames)
    return atomic_write(path, lambda f: iio.imwrite(f, stack, extension=".gif", duration=delay_ms, loop=loop))


def _with_progress(frame: np.ndarray, k: int, n: int) -> np.ndarray:
    """frame (H, W[, C]) with a 3-px strip below it, filled for the first (k + 1) / n of its width."""
    strip = np.full((3,) + frame.shape[1:], 255, dtype=np.uint8)
    strip[:, : max(1, round((k + 1) * frame.shape[1] / n))] = 80
    return np.concatenate([frame, strip], axis=0)


def trajectory_frames(states: Sequence[tuple[int, Tensor]], nrow: int | None = None) -> list[np.ndarray]:
    """A recorded trajectory as GIF frames: one uint8 :func:`image_grid` per recorded state.

    states: (t, x) pairs with x: (B, C, H, W) in [-1, 1], e.g. ``TrajectoryRecorder.frames``
    (the x_t) or ``.x0_frames`` (the x0_hat) of :class:`ddpm_edu.sampling.TrajectoryRecorder`.
    """
    return [image_grid(x, nrow) for _, x in states]


def scatter_rgb(points: Tensor, title: str, lim: float = 3.0) -> np.ndarray:
    """A 2-D point cloud (N, 2) as a (H, W, 3) uint8 image, e.g. one frame of a toy trajectory GIF."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0, 3.0), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    p = points.detach().float().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title, xticks=[], yticks=[])
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
