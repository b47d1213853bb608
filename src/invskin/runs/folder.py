"""Run folders: load a trained model back, and read what a run was built for.

A run folder (``invskin train --out RUN``) holds ``checkpoint/`` (weights, optimiser, state.json with
the method, the model and training configs, the skeleton and the dataset path), ``log.jsonl``,
and later ``canonical.ply`` with ``canonical.json``, the checkpoint it was extracted from
(``invskin extract``), and ``repose/`` (``invskin repose``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from invskin.body import Skeleton
from invskin.models.animatable import AnimatableModel
from invskin.models.config import ModelConfig
from invskin.training.checkpoint import load_checkpoint


@dataclass(frozen=True)
class LoadedRun:
    """A trained model, its checkpoint's ``state.json`` and which weights these are (the SHA-256 of
    the checkpoint's ``model.safetensors``, also in ``state["weights_sha256"]``)."""

    model: AnimatableModel
    state: dict[str, Any]
    weights_sha256: str = ""

    @property
    def method(self) -> str:
        return self.model.config.method


def load_run(run_dir: Path, device: torch.device | str = "cpu") -> LoadedRun:
    """Rebuild the model of a trained run from its checkpoint (weights included)."""
    ckpt = load_checkpoint(Path(run_dir), with_optimizer=False)
    config = ModelConfig.from_json(ckpt.state["model_config"])
    skeleton = Skeleton.from_json(ckpt.state["skeleton"])
    model = AnimatableModel(
        config, skeleton, ckpt.model["prior_vertices"], ckpt.model["prior_weights"]
    )
    model.load_state_dict(ckpt.model)
    model.to(device).eval()
    state = dict(ckpt.state, weights_sha256=ckpt.weights_sha256)
    return LoadedRun(model, state, ckpt.weights_sha256)


def run_skeleton(run_dir: Path) -> Skeleton:
    """The skeleton a trained run was built for (from its checkpoint state, weights not loaded)."""
    return Skeleton.from_json(
        load_checkpoint(Path(run_dir), with_optimizer=False).state["skeleton"]
    )
