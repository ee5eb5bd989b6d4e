"""DistributedDataParallel under ``torchrun``, detected from the environment.

``torchrun --nproc_per_node 4 -m ct_train.cli train runs/b3/base/config.yml`` (or
``--nnodes``/``--rdzv-endpoint`` for several machines) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them training runs in one process. Backend: NCCL on CUDA, gloo
on CPU. Only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from attrs import frozen


@frozen
class DistInfo:
    """This process's place in the torchrun group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes checkpoints and logs."""
        return self.rank == 0


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only one): the one that prints summaries."""
    return int(os.environ.get("RANK", "0")) == 0


def init_from_env(device_type: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes (no-op in a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here (a no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` in rank order (just ``[obj]`` without DDP)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup(info: DistInfo) -> None:
    """Leave the process group together: a rank that tears down while another is still in
    a collective makes gloo abort the other ("terminate called without an active exception")."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
