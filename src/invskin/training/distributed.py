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
import pickle
from collections.abc import Callable
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


def on_main_rank(action: Callable[[], object]) -> None:
    """Run ``action`` on rank 0 alone; an error it raises is raised on every rank (rank 0 its own,
    the others a copy), so that no rank goes on to wait at a collective for a rank 0 that stopped.
    Collective under torchrun; in one process, just ``action()``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        action()
        return
    error: Exception | None = None
    if is_main():
        try:
            action()
        except Exception as caught:  # noqa: BLE001 (every rank raises it below)
            error = caught
    box = [_sendable(error)]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    if box[0] is not None:
        raise box[0]


def _sendable(error: Exception | None) -> Exception | None:
    """``error`` if it can be pickled (sent to the other ranks), else a RuntimeError with its text."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 (any pickling failure)
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random draws; rank 0 keeps ``seed`` (as a one-process run)."""
    return seed + 7919 * rank


class LossModule(torch.nn.Module):
    """``forward`` = ``model.losses``: what :class:`DistributedDataParallel` wraps, so that the
    backward pass of the losses it returns averages the gradients over the ranks."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model.losses(*args, **kwargs)


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model.losses`` wrapped in DDP (rank 0's weights are broadcast to every rank here)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(LossModule(model), device_ids=ids, broadcast_buffers=False)


def gather_rng(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every rank's random states in one dict for rank 0's checkpoint: rank 0's under their own
    keys, rank r's under ``rank{r}/key`` (one process: ``state`` unchanged). Collective."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return state
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, {k: v.cpu() for k, v in state.items()})
    merged = dict(states[0])
    for rank, other in enumerate(states[1:], start=1):
        merged |= {f"rank{rank}/{k}": v for k, v in other.items()}
    return merged


def rank_rng(merged: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """This rank's states from a checkpoint written by :func:`gather_rng`."""
    if rank == 0:
        return {k: v for k, v in merged.items() if "/" not in k}
    prefix = f"rank{rank}/"
    mine = {k[len(prefix) :]: v for k, v in merged.items() if k.startswith(prefix)}
    if not mine:
        raise ValueError(
            f"the checkpoint holds no random state for rank {rank}: resume with the number of "
            "processes that wrote it"
        )
    return mine


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (collective; ``flag`` itself in one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
