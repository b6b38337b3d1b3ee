"""Data parallelism under torchrun: process group, device per rank, and the few collectives we need.

Every rank draws the same global batch from the same seeded sampler and trains on its own slice of
it, and gradients are averaged over ranks, so N processes compute the same update as one process at
the same global batch (up to float reduction order). Rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from scalinglab.errors import ConfigError


def pick_device(requested: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; under torchrun each rank takes GPU LOCAL_RANK."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device='cuda' but no CUDA device is visible; use runtime.device=cpu or auto.")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class Distributed:
    """This process's place among the data-parallel ranks (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        """Join the torchrun process group (gloo on CPU, NCCL on CUDA) when WORLD_SIZE > 1."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        owns = not dist.is_initialized()
        if owns:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), owns)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def slice(self, n: int) -> slice:
        """This rank's rows of a global batch of n rows."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Average tensors over ranks in place, as one flat all-reduce."""
        if self.world == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over ranks in place."""
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def agree(self, *flags: bool) -> list[bool]:
        """Rank 0's decisions, on every rank (for choices that depend on rank 0's clock or signals)."""
        if self.world == 1:
            return list(flags)
        t = torch.tensor([int(f) for f in flags], device=self._device)
        dist.broadcast(t, 0)
        return [bool(v) for v in t.tolist()]

    def gather(self, obj: Any) -> list[Any]:
        """One object from every rank, in rank order (on every rank)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()

    @property
    def _device(self) -> torch.device:
        # NCCL collectives need CUDA tensors; gloo takes CPU ones
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
