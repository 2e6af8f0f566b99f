"""DDP helpers: the same training entry point runs as one process or under ``torchrun``.

Launch (2 processes on one machine; add ``--nnodes``/``--rdzv-endpoint`` to span machines):

    torchrun --nproc_per_node 2 -m sslviz train --dataset NAME --task rotation ...

which is ``sslviz train`` with the same flags. Rank 0 creates the run, writes the store and the
checkpoints and broadcasts the run id; every rank reads its shard of each global batch from the
shared cache. The backend is gloo on CPU and nccl on CUDA.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from sslviz.core.settings import ddp_timeout


def collective_timeout() -> float:
    """Seconds a rank waits in a collective before failing: ``$SSLVIZ_DDP_TIMEOUT``, else 4 h.

    The first barrier waits for rank 0 to decode the whole dataset into its cache, which on a
    large set takes longer than torch's default (10-30 min). A dead peer is found sooner by the
    job runner: the stuck rank shows no progress, so its heartbeat stops (``sslviz.runner.heartbeat``).
    """
    return ddp_timeout()


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    """True inside a process started by torchrun with more than one process in the job."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device_spec: str = "auto") -> DistContext:
    """Join the torchrun job (if any): nccl when training on CUDA, else gloo. Each process gets
    an equal share of the CPU threads, so two ranks on two cores don't oversubscribe them."""
    if not launched_by_torchrun():
        return DistContext()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_spec not in ("cpu", "mps")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=timedelta(seconds=collective_timeout()),
        )
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return context()


def context() -> DistContext:
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    )


def local_device(device: torch.device) -> torch.device:
    """Under DDP each process trains on its own GPU: ``cuda`` -> ``cuda:<local rank>``."""
    ctx = context()
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def _comm_device() -> torch.device:
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (identity without DDP): one collective for several scalars."""
    if not context().enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_int(value: int | None) -> int:
    """Rank 0's ``value`` on every rank."""
    if not context().enabled:
        assert value is not None
        return int(value)
    tensor = torch.tensor(
        [value if value is not None else -1], dtype=torch.int64, device=_comm_device()
    )
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def barrier() -> None:
    if context().enabled:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group together: rank 0 may still be writing the run's results (seconds)
    when the others finish, and a rank tearing its group down alone was seen to abort
    ("terminate called without an active exception") on a busy machine."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(RuntimeError):  # a rank that died: nothing left to wait for
            dist.barrier()
        dist.destroy_process_group()
