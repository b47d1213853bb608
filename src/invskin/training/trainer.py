"""A small trainer: sample frames and points, ask the model for named losses, weight, step, checkpoint.

The model interface is narrow: ``model.losses(points, occupancy, transforms, step) -> dict[str,
Tensor]`` with ``points`` (B, N, 3) posed-space samples, ``occupancy`` (B, N) in {0, 1} and
``transforms`` (B, J, 4, 4) canonical-to-posed bone transforms. Loss weights and warm-ups come from
:class:`~invskin.training.schedule.LossWeights`. Seeds are fixed; ``resume`` continues from the last
checkpoint with the optimiser state and the random generator state.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from invskin.training.checkpoint import load_checkpoint, save_checkpoint
from invskin.training.schedule import LossWeights


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model's own settings live in its config)."""

    steps: int = 2000
    """Number of optimisation steps."""
    batch_frames: int = 4
    """Frames per step."""
    points_per_frame: int = 2048
    """Posed-space samples per frame per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_final_fraction: float = 0.1
    """Cosine decay of the learning rate down to this fraction of ``lr``."""
    grad_clip: float = 1.0
    """Gradient-norm clipping."""
    lr_scales: dict[str, float] = field(default_factory=lambda: {"pin": 0.1})
    """Learning-rate multipliers per parameter group of the model (``model.parameter_groups()``);
    the PINs start as the identity and learn slowly, so the shape and skinning settle first."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and at the end)."""
    log_every: int = 25
    """Append losses to ``log.jsonl`` every this many steps."""
    seed: int = 0
    """Seed of the frame and point sampling (and of the model initialisation)."""
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["loss_weights"] = self.loss_weights.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["loss_weights"] = LossWeights.from_json(data.get("loss_weights", {}))
        return cls(**data)


@dataclass(frozen=True)
class TrainingData:
    """Posed-space samples of every training frame, held in memory.

    ``points`` (F, S, 3), ``occupancy`` (F, S) and ``transforms`` (F, J, 4, 4).
    """

    points: torch.Tensor
    occupancy: torch.Tensor
    transforms: torch.Tensor

    def batch(
        self, generator: torch.Generator, frames: int, points: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        num_frames, num_samples = self.occupancy.shape
        frame_idx = torch.randint(num_frames, (frames,), generator=generator)
        point_idx = torch.randint(num_samples, (frames, points), generator=generator)
        pts = self.points[frame_idx[:, None], point_idx]
        occ = self.occupancy[frame_idx[:, None], point_idx]
        return pts.to(device), occ.to(device), self.transforms[frame_idx].to(device)


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    final_losses: dict[str, float]


def _learning_rate(config: TrainConfig, step: int) -> float:
    progress = min(step / max(config.steps, 1), 1.0)
    floor = config.lr_final_fraction
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model: torch.nn.Module,
    data: TrainingData,
    config: TrainConfig,
    run_dir: Path,
    run_state: dict[str, Any],
    device: torch.device,
    resume: bool = False,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Optimise ``model`` on ``data``; checkpoints go to ``run_dir``.

    ``run_state`` is stored in every checkpoint's ``state.json`` (method, configs, dataset path), so a
    run folder is self-describing.
    """
    run_dir = Path(run_dir)
    model.to(device)
    groups = (
        model.parameter_groups()
        if hasattr(model, "parameter_groups")
        else {"other": list(model.parameters())}
    )
    optimiser = torch.optim.Adam(
        [
            {"params": params, "lr_scale": config.lr_scales.get(name, 1.0)}
            for name, params in groups.items()
            if params
        ],
        lr=config.lr,
    )
    generator = torch.Generator().manual_seed(config.seed)
    start = 0
    elapsed = 0.0
    if resume:
        ckpt = load_checkpoint(run_dir)
        model.load_state_dict(ckpt.model)
        if ckpt.optimizer is not None:
            optimiser.load_state_dict(ckpt.optimizer)
        start = int(ckpt.state["step"])
        elapsed = float(ckpt.state.get("train_seconds", 0.0))
        generator.manual_seed(config.seed + start)
    log_path = run_dir / "log.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint(step: int) -> None:
        state = dict(run_state, step=step, train_seconds=elapsed, finished=step >= config.steps)
        save_checkpoint(run_dir, model.state_dict(), state, optimiser.state_dict())

    losses_now: dict[str, float] = {}
    bar = tqdm(
        range(start, config.steps),
        initial=start,
        total=config.steps,
        desc="train",
        disable=not progress,
        dynamic_ncols=True,
    )
    model.train()
    for step in bar:
        tic = time.perf_counter()
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(config, step) * group["lr_scale"]
        points, occupancy, transforms = data.batch(
            generator, config.batch_frames, config.points_per_frame, device
        )
        losses = model.losses(points, occupancy, transforms, step)
        total = sum(
            config.loss_weights.weight(name, step) * value for name, value in losses.items()
        )
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"loss became {float(total)} at step {step} ({ {k: float(v) for k, v in losses.items()} }); "
                "the last good checkpoint is kept; try a lower --lr"
            )
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        elapsed += time.perf_counter() - tic
        losses_now = {k: float(v.detach()) for k, v in losses.items()}
        losses_now["total"] = float(total.detach())
        bar.set_postfix(
            loss=f"{losses_now['total']:.4f}", occ=f"{losses_now.get('occupancy', 0):.4f}"
        )
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            record = {"step": done, "seconds": round(elapsed, 3), **losses_now}
            with log_path.open("a") as log:
                log.write(json.dumps(record) + "\n")
            if on_log is not None:
                on_log(done, losses_now)
        if done % config.checkpoint_every == 0 or done == config.steps:
            checkpoint(done)
    if start >= config.steps:
        checkpoint(config.steps)
    return TrainResult(steps=config.steps, seconds=elapsed, final_losses=losses_now)
