"""scikit-learn's 8x8 handwritten digits, shipped offline: the book's image data set (chapters 7-8), and
their labels 0-9 (chapter 10).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ['load_digits', 'load_digit_labels']


def load_digits() -> Tensor:
    """scikit-learn's 1797 handwritten digits (shipped offline) as floats in [-1, 1], shape (1797, 1, 8, 8).

    The raw pixel values are 0..16, so x = v / 8 - 1.
    """
    from sklearn.datasets import load_digits as _sk_digits

    images = _sk_digits().images  # (1797, 8, 8) float64, values 0..16
    return torch.from_numpy(images).float().div(8.0).sub(1.0).unsqueeze(1)


def load_digit_labels() -> Tensor:
    """The digit that each image of :func:`load_digits` shows, 0..9, in the same order: (1797,) int64."""
    from sklearn.datasets import load_digits as _sk_digits

    return torch.from_numpy(_sk_digits().target).long()
