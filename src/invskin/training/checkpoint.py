"""Crash-safe checkpoints: weights (safetensors), optimiser state, random state and a JSON state.

A checkpoint is a folder ``RUN/checkpoint/`` holding ``model.safetensors``, ``optimizer.pt``,
``rng.safetensors`` (the random generators' states, for an exact resume) and ``state.json``.

How a checkpoint is written, so that a crash (even SIGKILL or a power cut) at any moment leaves a
complete one that :func:`load_checkpoint` finds:

1. temporary folders left by an earlier crash (``RUN/.checkpoint-*``) are removed;
2. every file is written into a new temporary folder ``RUN/.checkpoint-XXXX``, then each file and
   the folder are fsynced;
3. if ``checkpoint/`` is complete it becomes ``checkpoint.old/`` (a stale ``checkpoint.old/`` is
   removed first, which is safe because ``checkpoint/`` is good); if it is not complete (an earlier
   crash between renames left only ``checkpoint.old/``), ``checkpoint.old/`` is kept as it is;
4. the temporary folder is renamed to ``checkpoint/`` and the run folder fsynced;
5. ``checkpoint.old/`` is removed and the run folder fsynced again.

At every moment ``checkpoint/`` or ``checkpoint.old/`` is complete; :func:`find_checkpoint` prefers
``checkpoint/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

CHECKPOINT = "checkpoint"
OLD = "checkpoint.old"
TMP_PREFIX = ".checkpoint-"
REQUIRED = ("state.json", "model.safetensors")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: model tensors, optimiser state and random state (or None), JSON state.

    ``weights_sha256`` is the SHA-256 of ``model.safetensors``: it names these exact weights (a
    canonical mesh records it, see :mod:`invskin.runs.pipeline`).
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]
    rng: dict[str, torch.Tensor] | None
    weights_sha256: str


def _fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Remove temporary checkpoint folders an interrupted :func:`save_checkpoint` left behind."""
    for stale in Path(run_dir).glob(f"{TMP_PREFIX}*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def save_checkpoint(
    run_dir: Path,
    model_state: dict[str, torch.Tensor],
    state: dict[str, Any],
    optimizer_state: dict[str, Any] | None = None,
    rng_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a complete checkpoint crash-safely (see the module docstring); return its folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=run_dir))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        if optimizer_state is not None:
            torch.save(optimizer_state, tmp / "optimizer.pt")
        if rng_state is not None:
            save_file(
                {k: v.cpu().contiguous() for k, v in rng_state.items()},
                str(tmp / "rng.safetensors"),
            )
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        for file in tmp.iterdir():
            _fsync(file)
        _fsync(tmp)
        final, old = run_dir / CHECKPOINT, run_dir / OLD
        if _complete(final):
            if old.exists():
                shutil.rmtree(old)
            final.rename(old)
        elif final.exists():  # never complete: nothing to keep
            shutil.rmtree(final)
        _fsync(run_dir)
        tmp.rename(final)
        _fsync(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old.exists():
        shutil.rmtree(old)
        _fsync(run_dir)
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The folder of the newest complete checkpoint of a run, or None."""
    for name in (CHECKPOINT, OLD):
        folder = Path(run_dir) / name
        if _complete(folder):
            return folder
    return None


def load_checkpoint(run_dir: Path, with_optimizer: bool = True) -> Checkpoint:
    """Load the run's checkpoint; a clear error if there is none or it is corrupt."""
    folder = find_checkpoint(run_dir)
    if folder is None:
        raise FileNotFoundError(
            f"no checkpoint in {run_dir}: train first with 'invskin train --out {run_dir}'"
        )
    try:
        state = json.loads((folder / "state.json").read_text())
        weights = (folder / "model.safetensors").read_bytes()
        model = load_safetensors(weights)
        rng_file = folder / "rng.safetensors"
        rng = load_safetensors(rng_file.read_bytes()) if rng_file.is_file() else None
        optimizer = None
        if with_optimizer and (folder / "optimizer.pt").exists():
            optimizer = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    except (json.JSONDecodeError, SafetensorError, OSError, RuntimeError, EOFError) as error:
        raise ValueError(
            f"checkpoint {folder} is corrupt ({error}); delete it and train again"
        ) from error
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(
            f"checkpoint {folder} has no step in state.json; delete it and train again"
        )
    return Checkpoint(
        model=model,
        optimizer=optimizer,
        state=state,
        rng=rng,
        weights_sha256=hashlib.sha256(weights).hexdigest(),
    )
