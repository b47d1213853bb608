"""Atomic checkpoints: model weights (safetensors), optimiser state and a JSON of the run's state.

A checkpoint is a folder ``RUN/checkpoint/`` holding ``model.safetensors``, ``optimizer.pt`` and
``state.json``. It is written into a temporary sibling folder and swapped in with renames, so a crash
or a full disk never leaves a half-written checkpoint where a good one was: at any moment either
``checkpoint/`` or ``checkpoint.old/`` holds a complete one, and :func:`load_checkpoint` finds it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CHECKPOINT = "checkpoint"
OLD = "checkpoint.old"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: model tensors, optimiser state (or None) and the JSON state."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    state: dict[str, Any]


def save_checkpoint(
    run_dir: Path,
    model_state: dict[str, torch.Tensor],
    state: dict[str, Any],
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint atomically and return its folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        if optimizer_state is not None:
            torch.save(optimizer_state, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        final, old = run_dir / CHECKPOINT, run_dir / OLD
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """The folder of the newest complete checkpoint of a run, or None."""
    for name in (CHECKPOINT, OLD):
        folder = Path(run_dir) / name
        if (folder / "state.json").exists() and (folder / "model.safetensors").exists():
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
        model = load_file(str(folder / "model.safetensors"))
    except (json.JSONDecodeError, SafetensorError, OSError) as error:
        raise ValueError(
            f"checkpoint {folder} is corrupt ({error}); delete it and train again"
        ) from error
    optimizer = None
    if with_optimizer and (folder / "optimizer.pt").exists():
        optimizer = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    return Checkpoint(model=model, optimizer=optimizer, state=state)
