"""Several processes, one run: what data-parallel training and sharded sampling need from torch.distributed.

Chapter 9. ``torchrun --nproc_per_node=N -m ddpm_edu train ...`` starts N copies of the command and
gives each one ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its
environment. :func:`initialized` reads them and joins the process group (NCCL for CUDA tensors,
gloo for CPU tensors); without them it returns :data:`SINGLE`, one process and no process group, and
every method below is then a no-op that returns its input, so the single-process path stays as it was.

A :class:`World` says which process this is (``rank`` of ``size``) and offers the few collective
operations the trainer and the sampler use: a barrier, the largest of an integer over the processes
(the stop flag), the mean of a tensor (the log window) and the gathering of a tensor (the guard's
record), plus :meth:`World.rows`, this process's share of a global batch, and, for gradient
accumulation, :meth:`World.micro_rows` and :meth:`World.no_sync`. Every process must call
each of them at the same point, in the same order: that is what keeps the processes in step.

Process management (starting, watching and stopping processes; ending the whole job when one
process dies) is torchrun's. A failing process exits; torchrun then stops the others.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn

__all__ = ["World", "SINGLE", "initialized", "backend_for", "DistributedError"]


class DistributedError(ValueError):
    """A run that cannot be split over the processes as asked; the message says what to change."""


@dataclass(frozen=True)
class World:
    rank: int = 0  # this process, 0..size-1 (torchrun's RANK)
    size: int = 1  # processes in the job (WORLD_SIZE = nnodes x nproc_per_node)
    local_rank: int = 0  # this process on its machine (LOCAL_RANK): which GPU it drives

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files."""
        return self.rank == 0

    def rows(self, batch: int) -> slice:
        """This process's rows of a global batch of ``batch``: [r B/W, (r + 1) B/W); an error unless W divides B."""
        if batch % self.size:
            raise DistributedError(
                f"data.batch_size = {batch} is the global batch and must split evenly over the {self.size} "
                f"processes (torchrun's --nnodes x --nproc_per_node); use a multiple of {self.size}, e.g. "
                f"{batch - batch % self.size or self.size}."
            )
        b = batch // self.size
        return slice(self.rank * b, (self.rank + 1) * b)

    def micro_rows(self, batch: int, k: int) -> int:
        """The rows of each of this process's ``k`` micro-batches: B / (W k); an error unless W k divides B."""
        rows = self.rows(batch)
        b = rows.stop - rows.start
        if b % k:
            raise DistributedError(
                f"train.accumulate = {k} must split each process's rows evenly: data.batch_size = {batch} over "
                f"{self.size} processes is {b} rows each; use an accumulate that divides {b}, or a batch_size "
                f"that is a multiple of {self.size * k}."
            )
        return b // k

    def device(self, device: torch.device) -> torch.device:
        """The device this process uses: ``cuda:LOCAL_RANK`` for CUDA when distributed, else ``device`` itself."""
        if self.size == 1 or device.type != "cuda":
            return device
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def data_parallel(self, model: nn.Module) -> nn.Module:
        """``model`` wrapped in DistributedDataParallel (gradients averaged over the processes), or itself."""
        if self.size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        dev = next(model.parameters()).device
        # gradients as views into the all-reduce buckets: no copy, and no stride warning for 1x1 convolutions
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                       gradient_as_bucket_view=True)

    def no_sync(self, model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
        """A block whose backward pass keeps its gradients on this process, unless ``sync`` (or one process).

        Gradient accumulation: every micro-batch but the last adds to the local gradients, and the
        last backward pass averages the sum over the processes once (DistributedDataParallel's ``no_sync``).
        """
        if self.size == 1 or sync:
            return contextlib.nullcontext()
        return model.no_sync()

    def barrier(self) -> None:
        """Wait until every process has reached this line (a CPU collective, whichever device each process uses)."""
        if self.size > 1:
            torch.distributed.all_reduce(torch.zeros(1))

    def max_int(self, value: int) -> int:
        """The largest ``value`` over the processes (a CPU collective: it does not wait for a GPU)."""
        if self.size == 1:
            return value
        x = torch.tensor([int(value)], dtype=torch.int64)
        torch.distributed.all_reduce(x, op=torch.distributed.ReduceOp.MAX)
        return int(x.item())

    def main_says(self, value: bool) -> bool:
        """Rank 0's ``value`` on every process, so that a decision read from files is the same everywhere."""
        if self.size == 1:
            return value
        x = torch.tensor([int(bool(value)) if self.is_main else 0], dtype=torch.int64)
        torch.distributed.broadcast(x, src=0)
        return bool(x.item())

    def mean_(self, x: Tensor) -> Tensor:
        """Replace ``x`` by its mean over the processes, in place; returns it."""
        if self.size > 1:
            torch.distributed.all_reduce(x)
            x.div_(self.size)
        return x

    def check_same(self, value: int, what: str) -> None:
        """Raise :class:`DistributedError` on every process unless ``value`` is the same on all of them."""
        if self.size == 1:
            return
        seen = self.gather(torch.tensor([int(value)], dtype=torch.int64)).flatten().tolist()
        if len(set(seen)) > 1:
            raise DistributedError(f"The processes disagree on {what}: {seen} (by rank).")

    def gather(self, x: Tensor) -> Tensor:
        """Every process's ``x``, stacked in rank order: ``(W, *x.shape)``."""
        if self.size == 1:
            return x.unsqueeze(0)
        parts = [torch.empty_like(x) for _ in range(self.size)]
        torch.distributed.all_gather(parts, x.contiguous())
        return torch.stack(parts)


SINGLE = World()


def backend_for(cuda: bool) -> str:
    """gloo for CPU tensors and, on a machine with CUDA, NCCL for CUDA tensors (one process group for both)."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


@contextlib.contextmanager
def initialized(env: dict[str, str] | None = None) -> Iterator[World]:
    """Join torchrun's process group for the block and leave it afterwards; :data:`SINGLE` outside torchrun.

    ``env`` defaults to ``os.environ``. ``WORLD_SIZE`` missing or 1 means one process: nothing is initialised.
    """
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1"))
    if size == 1:
        yield SINGLE
        return
    dist: Any = torch.distributed
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend_for(torch.cuda.is_available()), rank=int(env["RANK"]), world_size=size)
    try:
        yield World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(env.get("LOCAL_RANK", "0")))
    finally:
        if owned:
            dist.destroy_process_group()
