"""Data-parallel training and bulk work on ``torch.distributed``, started by ``torchrun``.

``torchrun`` does the rendezvous and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` in every process; :func:`init_from_env` joins that group (``nccl`` on CUDA,
``gloo`` on CPU). Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing is initialised and every
helper here answers as the only process, so the same command runs unchanged in one process.

Single node, 4 GPUs::

    torchrun --standalone --nproc-per-node 4 -m invskin.cli.main train --data D --out RUN --device cuda

Two nodes (run on each, ``--node-rank`` 0 and 1; ``HOST`` is node 0's address)::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 4 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 --rdzv-id invskin -m invskin.cli.main train ...
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def world() -> tuple[int, int, int]:
    """``(rank, world size, local rank)``: from the process group if one is initialised, else from
    torchrun's environment, else ``(0, 1, 0)``."""
    local = int(os.environ.get("LOCAL_RANK", 0))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), local


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes checkpoints and logs)."""
    return world()[0] == 0


def launched_distributed() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def init_from_env(device: torch.device, timeout_s: float = 1800.0) -> bool:
    """Join torchrun's process group (if started by it, with more than one process).

    Returns whether training is distributed. On CUDA each process takes ``cuda:LOCAL_RANK``
    (the caller should use :func:`local_device`).
    """
    if not launched_distributed():
        return False
    if dist.is_initialized():
        return True
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_device(device))
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def local_device(device: torch.device) -> torch.device:
    """``cuda:LOCAL_RANK`` for a CUDA device under torchrun; the device unchanged otherwise."""
    if device.type == "cuda" and launched_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (no-op in one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
