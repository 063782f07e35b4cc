"""CIFAR-10 read by torchvision's own loader, downloaded with a bounded wait, and its on-disk format written.

Chapter 9 and the command line. Offline, a request for CIFAR-10 fails within seconds with a message that
says where to put the files (``<root>/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta``) or
which preset to use instead. It never fakes data: :mod:`ddpm_edu.data.standin` writes labelled stand-ins.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ddpm_edu.data import DataError
from ddpm_edu.data.download import bounded_download

__all__ = ['CIFAR10_URL', 'CIFAR10_FOLDER', 'CIFAR10_FILES', 'PROBE_TIMEOUT_S', 'DOWNLOAD_TIMEOUT_S', 'load_cifar10', 'write_cifar10_files']


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


CIFAR10_FOLDER = "cifar-10-batches-py"


CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


PROBE_TIMEOUT_S = 5.0  # how long to wait for the CIFAR-10 server to answer before giving up


DOWNLOAD_TIMEOUT_S = 30.0  # socket timeout while downloading: a stalled transfer fails instead of hanging


def load_cifar10(
    root: str | os.PathLike,
    *,
    train: bool = True,
    download: bool = True,
    verify_md5: bool = True,
    labels: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10``, as uint8 images (N, 3, 32, 32).

    With ``labels=True``, returns (images, labels) with the class labels 0..9 as (N,) int64, read in the
    same pass. ``root`` holds (or receives) ``cifar-10-batches-py/``. With ``verify_md5=False`` the files
    must exist but their md5 sums are not compared to the published ones (for re-packed
    copies and the test fixture; torchvision's loading code runs unchanged).
    Raises :class:`~ddpm_edu.data.DataError` with instructions when the files are missing and cannot be downloaded.
    """
    from torchvision.datasets import CIFAR10

    root = Path(root).expanduser().resolve()
    folder = root / CIFAR10_FOLDER
    cls = CIFAR10 if verify_md5 else _unchecked_cifar10()
    present = all((folder / f).is_file() for f in CIFAR10_FILES)
    if not present:
        if not download:
            raise DataError(_missing_message(root, "data.download is false"))
        _download_cifar10(cls, root)
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError as e:
        raise DataError(
            f"The CIFAR-10 files in {folder} fail torchvision's integrity check ({e}). They are "
            f"incomplete or not the published files. Delete the folder and run again to re-download, "
            f"or, if you know they are a valid copy, set data.verify_md5=false."
        ) from None
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # (N, H, W, C) -> (N, C, H, W)
    return (images, torch.as_tensor(ds.targets, dtype=torch.long)) if labels else images


@functools.lru_cache(maxsize=None)
def _unchecked_cifar10() -> type:
    """torchvision's CIFAR10 with every md5 set to None: ``check_integrity`` then only checks that
    the files exist. Nothing else changes: the real torchvision code unpickles and reshapes them."""
    from torchvision.datasets import CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return UncheckedCIFAR10


def _download_cifar10(cls, root: Path) -> None:
    """Download and unpack CIFAR-10 into ``root`` through torchvision, with a bounded wait; DataError if it fails."""

    def fetch() -> None:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)

    bounded_download(CIFAR10_URL, fetch, probe_timeout=PROBE_TIMEOUT_S, timeout=DOWNLOAD_TIMEOUT_S,
                     error=lambda reason: DataError(_missing_message(root, reason)))


def _missing_message(root: Path, reason: str) -> str:
    folder = root / CIFAR10_FOLDER
    return (
        f"CIFAR-10 was not found in {folder} and could not be downloaded ({reason}). "
        f"To use CIFAR-10, download {CIFAR10_URL} on a machine with internet and unpack it into {root}, "
        f"so that these files exist: {folder}/data_batch_1 ... data_batch_5, {folder}/test_batch and "
        f"{folder}/batches.meta; or point data.root at the folder that holds cifar-10-batches-py "
        f"(e.g. --set data.root=/path/to/data). To train without CIFAR-10, use a preset that needs no "
        f"download: --config digits (8x8 handwritten digits, minutes on a CPU) or --config toy2d "
        f"(2-D points, seconds)."
    )


def write_cifar10_files(
    root: str | os.PathLike,
    images: dict[str, np.ndarray],
    label_names: list[str] | None = None,
) -> Path:
    """Write images in CIFAR-10's on-disk python format, so ``torchvision.datasets.CIFAR10`` reads them.

    ``images`` maps each of ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` to uint8 images
    (n, 3, 32, 32). Each file is a pickled dict (protocol 2, str keys, as the published files unpickle
    under torchvision's ``encoding="latin1"``) with ``data`` (n, 3072) in channel-major order (the R,
    G and B planes of 32x32), ``labels`` (image k gets label k mod the number of label names),
    ``batch_label`` and ``filenames``; ``batches.meta`` holds ``label_names``. Their md5 sums cannot
    match the published ones, so load them with ``verify_md5=False``. Returns
    ``root/cifar-10-batches-py``.
    """
    import pickle

    names = list(CIFAR10_FILES[:-1])
    if sorted(images) != sorted(names):
        raise ValueError(f"images must have exactly the keys {names}, got {sorted(images)}")
    label_names = label_names or ["class 0"]
    folder = Path(root).expanduser() / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        x = np.asarray(images[name])
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{name}: images must be uint8 of shape (n, 3, 32, 32), got {x.dtype} {x.shape}")
        entry = {
            "batch_label": f"{'testing' if name == 'test_batch' else 'training'} batch {i + 1} of 5",
            "labels": [k % len(label_names) for k in range(len(x))],
            "data": x.reshape(len(x), 3072),  # row-major: the R plane, the G plane, the B plane
            "filenames": [f"{name}_{k}.png" for k in range(len(x))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {"label_names": label_names, "num_cases_per_batch": len(images[names[0]]), "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder
