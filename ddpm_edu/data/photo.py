"""The photograph that chapters 2-5 noise: not training data, one real image to watch the forward process on.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

__all__ = ['photo']


# The photograph that chapters 2-5 noise: not training data, one real image to watch the forward process on.
@functools.lru_cache(maxsize=4)
def _sample_image(name: str) -> np.ndarray:
    """One of scikit-learn's two sample images, (H, W, 3) uint8, read once and kept read-only."""
    from sklearn.datasets import (
        load_sample_image,  # ships inside scikit-learn: no download
    )

    img = load_sample_image(name)
    img.setflags(write=False)
    return img


def photo(size: int = 96, name: str = "china.jpg") -> Tensor:
    """A real photograph as a (3, size, size) float32 tensor in [-1, 1]; chapters 2-5 noise it.

    The image is one of the two that scikit-learn ships (``"china.jpg"`` or ``"flower.jpg"``), so it
    works offline and in Colab alike. It is centre-cropped to a square and downscaled with
    antialiasing, so that a chapter runs in seconds. (The default 96 x 96 x 3 = 27,648 values
    also stays under PyTorch's per-op parallel grain, so the many small element-wise steps of an
    iterated forward process do not pay for thread hand-offs on a busy 2-core machine.)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels per side), got {size!r}")
    img = torch.from_numpy(np.array(_sample_image(name))).permute(2, 0, 1).float() / 255.0  # (3, H, W) in [0, 1]
    _, H, W = img.shape
    m = min(H, W)
    top, left = (H - m) // 2, (W - m) // 2
    img = img[:, top : top + m, left : left + m]
    img = torch.nn.functional.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return (img * 2.0 - 1.0).clamp(-1.0, 1.0)
