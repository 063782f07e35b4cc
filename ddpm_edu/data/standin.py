"""Stand-in images in CIFAR-10's on-disk format, for machines without CIFAR-10 (the book's build, CI).

Chapter 9 runs its real loading and training code on them; they are labelled as what they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ddpm_edu.data.cifar10 import CIFAR10_FILES, write_cifar10_files
from ddpm_edu.data.photo import _sample_image

__all__ = ['write_standin_cifar10']


def write_standin_cifar10(root: str | os.PathLike, per_batch: int = 200, seed: int = 0) -> Path:
    """Write stand-in images in CIFAR-10's format: random 32x32 crops of scikit-learn's two sample photos.

    For machines without CIFAR-10 (the book's build, CI): chapter 9 runs its real training and loading
    code on them. They are *not* CIFAR-10, and nothing trained on them says anything about CIFAR-10.
    Each of the six files gets ``per_batch`` crops from the photographs scaled to a third of their
    size (about 142 x 213 pixels), half from each; a crop is labelled by its photograph.
    Returns ``root/cifar-10-batches-py``.
    """
    rng = np.random.default_rng(seed)
    photos = []
    for name in ("china.jpg", "flower.jpg"):
        img = torch.from_numpy(np.array(_sample_image(name))).permute(2, 0, 1).float()[None]  # (1, 3, H, W)
        small = torch.nn.functional.interpolate(img, scale_factor=1 / 3, mode="area")[0]
        photos.append(small.round().clamp(0, 255).to(torch.uint8).numpy())  # (3, h, w)

    def crops(n: int) -> np.ndarray:
        out = np.empty((n, 3, 32, 32), np.uint8)
        for k in range(n):
            p = photos[k % 2]
            top, left = rng.integers(0, p.shape[1] - 31), rng.integers(0, p.shape[2] - 31)
            out[k] = p[:, top : top + 32, left : left + 32]
        return out

    images = {name: crops(per_batch) for name in CIFAR10_FILES[:-1]}
    return write_cifar10_files(root, images, label_names=["china.jpg crop", "flower.jpg crop"])
