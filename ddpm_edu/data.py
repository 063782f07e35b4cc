"""Data: CIFAR-10, scikit-learn's 8x8 digits and the 2-D toys as reproducible batch streams; the photograph.

Chapters 7 and 9 (training) and the command line. Every data set is small enough to hold in memory
(CIFAR-10's training set is 150 MB of uint8), so there is one loader, :class:`BatchIterator`,
and no DataLoader workers:

* images are kept as uint8 (CIFAR-10) or float (digits, points) and turned into floats in
  [-1, 1] one batch at a time; CIFAR-10 gets random horizontal flips;
* on CUDA the whole set lives on the GPU by default (``data.device_resident: auto``), so a
  batch is one gather and one flip on the device, with no host-to-device copy of images;
* the order (one permutation per epoch) and the flips come from one explicit CPU
  ``torch.Generator`` seeded by the config, so the stream is the same on every device, and
  its state (epoch, position, permutation, generator) goes into checkpoints: a resumed run
  sees exactly the batches the uninterrupted run would have seen;
* with several processes (``torchrun``, chapter 9) ``data.batch_size`` is the global batch: every
  process draws the same permutation and keeps its own rows of each global batch
  (:meth:`ddpm_edu.distributed.World.rows`), so the global order, and the state in a checkpoint, do
  not depend on how many processes share the work.

Offline, a request for CIFAR-10 fails within seconds with a message that says where to put
the files (``<root>/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta``) or which
preset to use instead. It never fakes data.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .distributed import SINGLE, World

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config

__all__ = [
    "DataError",
    "BatchIterator",
    "load_cifar10",
    "load_digits",
    "load_toy",
    "photo",
    "load_dataset",
    "make_batches",
    "data_shape",
    "CIFAR10_URL",
    "CIFAR10_FILES",
    "write_cifar10_files",
    "write_standin_cifar10",
    "reachable",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
PROBE_TIMEOUT_S = 5.0  # how long to wait for the CIFAR-10 server to answer before giving up
DOWNLOAD_TIMEOUT_S = 30.0  # socket timeout while downloading: a stalled transfer fails instead of hanging


class DataError(RuntimeError):
    """A data set that cannot be loaded; the message says what to do."""


# --------------------------------------------------------------------------- CIFAR-10
def load_cifar10(
    root: str | os.PathLike,
    *,
    train: bool = True,
    download: bool = True,
    verify_md5: bool = True,
) -> Tensor:
    """CIFAR-10 through ``torchvision.datasets.CIFAR10``, as uint8 images (N, 3, 32, 32).

    ``root`` holds (or receives) ``cifar-10-batches-py/``. With ``verify_md5=False`` the files
    must exist but their md5 sums are not compared to the published ones (for re-packed
    copies and the test fixture; torchvision's loading code runs unchanged).
    Raises :class:`DataError` with instructions when the files are missing and cannot be downloaded.
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
    return torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # (N, H, W, C) -> (N, C, H, W)


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
    """Download with a bounded wait: probe the server first, then download under a socket timeout."""
    from urllib.parse import urlparse

    host = urlparse(CIFAR10_URL).hostname
    if not reachable(host, 443, PROBE_TIMEOUT_S):
        raise DataError(_missing_message(root, f"{host} cannot be reached: no internet?"))
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        root.mkdir(parents=True, exist_ok=True)
        cls(str(root), train=True, download=True)
    except Exception as e:  # URLError, timeouts, a bad archive...
        raise DataError(_missing_message(root, f"the download failed: {type(e).__name__}: {e}")) from None
    finally:
        socket.setdefaulttimeout(old)


def reachable(host: str | None, port: int, timeout: float) -> bool:
    """True if a TCP connection to host:port opens within ``timeout`` s (DNS included, in a thread)."""
    if not host:
        return False
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout + 0.5)
    return bool(ok)


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


# --------------------------------------------------------------------------- digits and toys
def load_digits() -> Tensor:
    """scikit-learn's 1797 handwritten digits (shipped offline) as floats in [-1, 1], shape (1797, 1, 8, 8).

    The raw pixel values are 0..16, so x = v / 8 - 1.
    """
    from sklearn.datasets import load_digits as _sk_digits

    images = _sk_digits().images  # (1797, 8, 8) float64, values 0..16
    return torch.from_numpy(images).float().div(8.0).sub(1.0).unsqueeze(1)


def load_toy(name: str, n: int, seed: int = 0) -> Tensor:
    """A fixed set of ``n`` 2-D points from :func:`ddpm_edu.toy.sample_toy`, shape (n, 2)."""
    from .toy import sample_toy

    return sample_toy(name, n, generator=torch.Generator().manual_seed(seed)).float()


# The photograph that chapters 2-5 noise: not training data, one real image to watch the forward process on.
@functools.lru_cache(maxsize=4)
def _sample_image(name: str) -> np.ndarray:
    """One of scikit-learn's two sample images, (H, W, 3) uint8, read once and kept read-only."""
    from sklearn.datasets import load_sample_image  # ships inside scikit-learn: no download

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


def load_dataset(cfg: "Config") -> Tensor:
    """The whole training set of ``cfg.data``: uint8 (N, 3, 32, 32), or float (N, 1, 8, 8) / (N, 2)."""
    d = cfg.data
    if d.dataset == "cifar10":
        return load_cifar10(d.root, download=d.download, verify_md5=d.verify_md5)
    if d.dataset == "digits":
        return load_digits()
    if d.dataset == "toy2d":
        return load_toy(d.toy, d.toy_n, seed=cfg.seed)
    raise DataError(f"unknown data.dataset {d.dataset!r}")


def data_shape(cfg: "Config") -> tuple[int, ...]:
    """The shape of one example: (3, 32, 32), (1, 8, 8) or (2,)."""
    return {"cifar10": (3, 32, 32), "digits": (1, 8, 8), "toy2d": (2,)}[cfg.data.dataset]


# --------------------------------------------------------------------------- the batch stream
class BatchIterator:
    """An endless, reproducible stream of training batches in [-1, 1] from an in-memory data set.

    data: (N, ...) uint8 (scaled by x / 127.5 - 1) or float (already in [-1, 1]); it may already
    live on ``device``. Each epoch is a fresh permutation from ``generator``; the last partial
    batch of an epoch is dropped. ``hflip`` flips each image left-right with probability 1/2.

    The permutation and the epoch's flip coins are drawn on the CPU (so the order does not depend
    on the device) once per epoch and copied to the data's device then. A batch is a slice of them,
    so a GPU-resident data set costs no host-device transfer, and no wait for the GPU, per batch.

    ``rows``: this process's rows of each global batch of ``batch_size`` (default: all of them), so
    several processes with the same seed read disjoint shards of one global order.
    """

    def __init__(
        self,
        data: Tensor,
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        hflip: bool = False,
        channels_last: bool = False,
        rows: slice | None = None,
    ):
        if batch_size > data.shape[0]:
            raise DataError(f"data.batch_size = {batch_size} is larger than the data set ({data.shape[0]} examples)")
        self.data, self.batch_size, self.hflip = data, batch_size, hflip
        self.rows = rows or slice(0, batch_size)
        self.device = torch.device(device)
        self.channels_last = channels_last and data.dim() == 4
        self.generator = torch.Generator().manual_seed(seed)  # order and flips; CPU, so device-independent
        self.epoch, self.pos = 0, 0
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.perm = torch.randperm(self.data.shape[0], generator=self.generator)
        self.flips = self._draw_flips()
        self._to_device()

    def _draw_flips(self) -> Tensor:
        """One coin per example of the epoch (all False without ``hflip``)."""
        n = self.data.shape[0]
        return torch.rand(n, generator=self.generator) < 0.5 if self.hflip else torch.zeros(n, dtype=torch.bool)

    def _to_device(self) -> None:
        self._perm_dev = self.perm.to(self.data.device)
        self._flips_dev = self.flips.to(self.device)

    def __iter__(self) -> "BatchIterator":
        return self

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.data.shape[0] // self.batch_size

    def __next__(self) -> Tensor:
        if self.pos + self.batch_size > self.data.shape[0]:  # start the next epoch
            self.epoch, self.pos = self.epoch + 1, 0
            self._new_epoch()
        sl = slice(self.pos + self.rows.start, self.pos + self.rows.stop)  # this process's rows of the global batch
        self.pos += self.batch_size
        x = self.data[self._perm_dev[sl]].to(self.device, non_blocking=True)  # (B, ...)
        x = x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x.float()
        if self.hflip:
            x = torch.where(self._flips_dev[sl].view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def state_dict(self) -> dict:
        """Epoch, position, this epoch's permutation and flips, and the generator state (tensors and ints only)."""
        return {"epoch": self.epoch, "pos": self.pos, "perm": self.perm.clone(), "flips": self.flips.clone(),
                "generator": self.generator.get_state(), "n": int(self.data.shape[0]),
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        if int(state["n"]) != self.data.shape[0]:
            raise DataError(f"the checkpoint's data set had {int(state['n'])} examples, this one has {self.data.shape[0]}")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.perm = state["perm"].clone().long()
        self.generator.set_state(state["generator"].clone())
        self.flips = state["flips"].clone().bool()
        self._to_device()


def make_batches(cfg: "Config", device: torch.device | str = "cpu", world: World = SINGLE) -> BatchIterator:
    """The training stream for ``cfg``: loads the data set and, when resident, moves it to ``device``.

    With several processes, each one gets its rows of every global batch of ``data.batch_size``.
    """
    device = torch.device(device)
    data = load_dataset(cfg)
    resident = cfg.data.device_resident
    if resident == "auto":
        resident = device.type == "cuda"
    if resident:
        data = data.to(device)
    return BatchIterator(
        data,
        cfg.data.batch_size,
        seed=cfg.seed + 1,
        device=device,
        hflip=cfg.data.hflip and cfg.data.dataset == "cifar10",
        channels_last=cfg.train.channels_last,
        rows=world.rows(cfg.data.batch_size),
    )
