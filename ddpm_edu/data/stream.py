"""The training stream: an endless, reproducible, resumable and shardable sequence of batches in [-1, 1].

Chapters 7 and 9. Every data set is small enough to hold in memory (CIFAR-10's training set is 150 MB of
uint8), so there is one loader, :class:`BatchIterator`, and no DataLoader workers:

* images are kept as uint8 (CIFAR-10) or float (digits, points) and turned into floats in
  [-1, 1] one batch at a time; CIFAR-10 gets random horizontal flips;
* on CUDA the whole set may live on the GPU, so a batch is one gather and one flip on the device,
  with no host-to-device copy of images;
* the order (one permutation per epoch) and the flips come from one explicit CPU
  ``torch.Generator``, so the stream is the same on every device, and its state (epoch, position,
  permutation, generator) goes into checkpoints: a resumed run sees exactly the batches the
  uninterrupted run would have seen;
* with several processes (``torchrun``, chapter 9) each process keeps its own ``rows`` of every global
  batch of one shared permutation, so the global order, and the state in a checkpoint, do not
  depend on how many processes share the work;
* a labelled data set (chapter 10) carries its labels along: each batch is then (x, y), the labels
  gathered with the same permutation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddpm_edu.data import DataError

__all__ = ['BatchIterator']


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

    ``labels``: (N,) int64, one per example, or None. With labels each batch is a pair (x, y), y: (B,)
    int64 on ``device``; without, it is x alone. Labels change nothing else: the order and the state
    are those of the same stream without them.
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
        labels: Tensor | None = None,
    ):
        if batch_size > data.shape[0]:
            raise DataError(f"data.batch_size = {batch_size} is larger than the data set ({data.shape[0]} examples)")
        if labels is not None and labels.shape != (data.shape[0],):
            raise DataError(f"labels must be ({data.shape[0]},), one per example, got {tuple(labels.shape)}")
        self.data, self.batch_size, self.hflip = data, batch_size, hflip
        self.labels = None if labels is None else labels.to(data.device)
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

    def __next__(self) -> Tensor | tuple[Tensor, Tensor]:
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
        if self.labels is None:
            return x
        return x, self.labels[self._perm_dev[sl]].to(self.device, non_blocking=True)  # (B, ...), (B,)

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
