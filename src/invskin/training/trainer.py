"""A small trainer: sample frames and points, ask the model for named losses, weight, step, checkpoint.

The model interface is narrow: ``model.losses(points, occupancy, transforms, step) -> dict[str,
Tensor]`` with ``points`` (B, N, 3) posed-space samples, ``occupancy`` (B, N) in {0, 1} and
``transforms`` (B, J, 4, 4) canonical-to-posed bone transforms; with ``TrainConfig.correspondences``
it also receives ``correspondence=``, a :class:`~invskin.models.signals.CorrespondenceBatch` of the
same frames, and with ``TrainConfig.colour_points`` ``colour=``, a
:class:`~invskin.models.signals.ColourBatch`. Loss weights and warm-ups come from :class:`~invskin.training.schedule.LossWeights`.

Exact resume: every checkpoint holds the optimiser state and the states of both random sources a
step draws from (the sample generator of :meth:`TrainingData.batch`, and torch's global generator,
CPU and the training device's, which the model's losses use), so ``resume`` continues exactly: on
the CPU, N steps in one go give bit for bit the weights of an interrupted and resumed run (tested);
on a GPU, as far as its kernels are deterministic.

Data-parallel: started by ``torchrun`` with several processes (see
:mod:`invskin.training.distributed`), ``model.losses`` runs inside DistributedDataParallel, so the
backward pass averages the gradients over the ranks; each rank draws its own frames and points
(rank 0 as a one-process run would), every checkpoint holds every rank's random states, and only
rank 0 writes checkpoints and the log. In one process none of this is active.

Interruptions: during :func:`train` (in the main thread) SIGINT and SIGTERM finish the current
step, write a checkpoint at that step and raise :class:`TrainingInterrupted`; a second signal stops
at once (the last checkpoint on disk stays good, see :mod:`invskin.training.checkpoint`). SIGUSR1
makes the training use every core from the next step on (``invskin demo`` sends it to the training
still running when the other has finished).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from invskin.fileio import write_text_atomic
from invskin.models.signals import ColourBatch, CorrespondenceBatch
from invskin.training.checkpoint import load_checkpoint, save_checkpoint
from invskin.training.distributed import (
    any_rank,
    data_parallel,
    gather_rng,
    rank_rng,
    rank_seed,
    world,
)
from invskin.training.schedule import LossWeights, Ramp

logger = logging.getLogger("invskin")


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
    lr_scale_ramps: dict[str, Ramp] = field(default_factory=dict)
    """Learning-rate multipliers that change with the step, per parameter group; a group named here
    follows its ramp instead of its ``lr_scales`` entry."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and at the end)."""
    log_every: int = 25
    """Append losses to ``log.jsonl`` every this many steps."""
    seed: int = 0
    """Seed of the frame and point sampling (and of the model initialisation)."""
    correspondences: int = 0
    """Known correspondences per frame per step (the ``correspondence`` signal: each canonical
    truth point's image through the model is pulled onto where it is in the frame); 0 trains on
    occupancy alone. Needs data with correspondences (``TrainingData.canonical``)."""
    colour_points: int = 0
    """Coloured scan-surface points per frame per step (the ``colour`` signal: the photometric
    loss through the model's colour field); 0: none. Needs coloured scans
    (``TrainingData.surface``)."""
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["loss_weights"] = self.loss_weights.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["loss_weights"] = LossWeights.from_json(data.get("loss_weights", {}))
        data["lr_scale_ramps"] = {k: Ramp(**v) for k, v in data.get("lr_scale_ramps", {}).items()}
        return cls(**data)


@dataclass(frozen=True)
class TrainingData:
    """Posed-space samples of every training frame, held in memory.

    ``points`` (F, S, 3), ``occupancy`` (F, S) and ``transforms`` (F, J, 4, 4). Where the data has
    known correspondences (registered or synthetic meshes), ``canonical`` (V, 3) holds the canonical
    surface's vertices and ``posed`` (F, V, 3) where each of them is in every frame. Where the
    scans carry colour, ``surface`` (F, C, 3) holds points of each frame's scan surface and
    ``surface_colours`` (F, C, 3) their RGB.
    """

    points: torch.Tensor
    occupancy: torch.Tensor
    transforms: torch.Tensor
    canonical: torch.Tensor | None = None
    posed: torch.Tensor | None = None
    surface: torch.Tensor | None = None
    surface_colours: torch.Tensor | None = None

    def batch(
        self, generator: torch.Generator, frames: int, points: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.batch_with_correspondence(generator, frames, points, 0, device)[:3]

    def batch_with_correspondence(
        self,
        generator: torch.Generator,
        frames: int,
        points: int,
        correspondences: int,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, CorrespondenceBatch | None]:
        """A batch of ``frames`` frames with ``points`` occupancy samples each and, when
        ``correspondences`` > 0, that many known correspondences per frame (drawn after the samples,
        so a batch without them draws exactly what :meth:`batch` draws)."""
        batch = self.batch_with_signals(generator, frames, points, correspondences, 0, device)
        return batch[:4]  # type: ignore[return-value]

    def batch_with_signals(
        self,
        generator: torch.Generator,
        frames: int,
        points: int,
        correspondences: int,
        colour_points: int,
        device: torch.device,
    ) -> tuple[
        torch.Tensor,
        torch.Tensor,
        torch.Tensor,
        CorrespondenceBatch | None,
        ColourBatch | None,
    ]:
        """:meth:`batch_with_correspondence`, and, when ``colour_points`` > 0, that many coloured
        scan-surface points per frame of the same frames (drawn last)."""
        num_frames, num_samples = self.occupancy.shape
        frame_idx = torch.randint(num_frames, (frames,), generator=generator)
        point_idx = torch.randint(num_samples, (frames, points), generator=generator)
        pts = self.points[frame_idx[:, None], point_idx]
        occ = self.occupancy[frame_idx[:, None], point_idx]
        corr = None
        if correspondences > 0:
            if self.canonical is None or self.posed is None:
                raise ValueError(
                    "correspondence training needs known correspondences, and this data has none"
                )
            vertex_idx = torch.randint(
                self.canonical.shape[0], (frames, correspondences), generator=generator
            )
            corr = CorrespondenceBatch(
                self.canonical[vertex_idx].to(device),
                self.posed[frame_idx[:, None], vertex_idx].to(device),
            )
        colour = None
        if colour_points > 0:
            if self.surface is None or self.surface_colours is None:
                raise ValueError("colour training needs coloured scans, and this data has none")
            surface_idx = torch.randint(
                self.surface.shape[1], (frames, colour_points), generator=generator
            )
            colour = ColourBatch(
                self.surface[frame_idx[:, None], surface_idx].to(device),
                self.surface_colours[frame_idx[:, None], surface_idx].to(device),
            )
        transforms = self.transforms[frame_idx].to(device)
        return pts.to(device), occ.to(device), transforms, corr, colour


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after a checkpoint was written at ``step``."""

    def __init__(self, signum: int, step: int, run_dir: Path) -> None:
        self.signum, self.step, self.run_dir = signum, step, run_dir
        super().__init__(
            f"training stopped by {signal.Signals(signum).name} at step {step}; a checkpoint was "
            f"written: continue with 'invskin train --out {run_dir} --resume'"
        )


class _StopRequests:
    """Turns SIGINT and SIGTERM into a request checked between steps, and SIGUSR1 into a request to
    use every core this process may run on from the next step (main thread only)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.all_cores = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            if hasattr(signal, "SIGUSR1"):
                self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._cores)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt(f"stopped by a second {signal.Signals(signum).name}")
        self.signum = signum

    def _cores(self, signum: int, frame: Any) -> None:
        self.all_cores = True

    def take_all_cores(self) -> None:
        """After SIGUSR1: torch's intra-op threads (and the C root finder's workers, which follow
        them) become the number of cores this process may run on."""
        if self.all_cores:
            self.all_cores = False
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            torch.set_num_threads(cores or os.cpu_count() or 1)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The states of the sample generator and of torch's global generators (CPU, ``device``)."""
    state = {"sampler": generator.get_state(), "torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(
    state: dict[str, torch.Tensor], generator: torch.Generator, device: torch.device
) -> None:
    generator.set_state(state["sampler"])
    torch.set_rng_state(state["torch_cpu"])
    if device.type == "cuda":
        if "torch_cuda" in state:
            torch.cuda.set_rng_state(state["torch_cuda"], device)
        else:
            logger.warning(
                "the checkpoint was written without CUDA: the GPU's random state starts fresh, "
                "so this resumed run is not an exact continuation"
            )


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    final_losses: dict[str, float]


def set_learning_rates(optimiser: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    """Each group's learning rate at ``step``: the schedule's rate times the group's scale (its
    ``lr_scale_ramps`` entry at ``step`` if it has one, else its ``lr_scales`` entry)."""
    for group in optimiser.param_groups:
        ramp = config.lr_scale_ramps.get(group.get("name", ""))
        group["lr"] = _learning_rate(config, step) * (ramp(step) if ramp else group["lr_scale"])


def build_optimiser(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with one parameter group per ``model.parameter_groups()`` entry and its lr scale."""
    groups = (
        model.parameter_groups()
        if hasattr(model, "parameter_groups")
        else {"other": list(model.parameters())}
    )
    return torch.optim.Adam(
        [
            {"params": params, "name": name, "lr_scale": config.lr_scales.get(name, 1.0)}
            for name, params in groups.items()
            if params
        ],
        lr=config.lr,
        foreach=True,  # one multi-tensor update: several times faster than a loop over tensors
    )


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
    optimiser = build_optimiser(model, config)
    rank, ranks, _ = world()
    main = rank == 0
    # Each rank draws its own frames and points (and the losses' own random points); rank 0 draws
    # as a one-process run does. DDP broadcasts rank 0's weights and averages the gradients.
    generator = torch.Generator().manual_seed(rank_seed(config.seed, rank))
    if rank > 0:
        torch.manual_seed(rank_seed(config.seed, rank))
    losses_of = data_parallel(model, device) if ranks > 1 else model.losses
    start = 0
    elapsed = 0.0
    if resume:
        ckpt = load_checkpoint(run_dir)
        model.load_state_dict(ckpt.model)
        if ckpt.optimizer is not None:
            optimiser.load_state_dict(ckpt.optimizer)
        start = int(ckpt.state["step"])
        elapsed = float(ckpt.state.get("train_seconds", 0.0))
        if start > config.steps:
            raise ValueError(
                f"the run in {run_dir} is already at step {start}; to continue it, pass --steps "
                f"above {start} (or leave --steps out)"
            )
        if ckpt.rng is not None:
            restore_rng_state(rank_rng(ckpt.rng, rank), generator, device)
        elif start < config.steps:
            logger.warning(
                "the checkpoint in %s has no random state (written by an older invskin): the "
                "resumed run continues, but not exactly as an uninterrupted run would",
                run_dir,
            )
            generator.manual_seed(rank_seed(config.seed, rank) + start)
    log_path = run_dir / "log.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume and log_path.exists() and main:
        _truncate_log(log_path, start)

    def checkpoint(step: int) -> None:
        state = dict(run_state, step=step, train_seconds=elapsed, finished=step >= config.steps)
        rng = gather_rng(rng_state(generator, device))  # collective: every rank calls it
        if main:  # only rank 0 writes
            state["world_size"] = ranks
            save_checkpoint(run_dir, model.state_dict(), state, optimiser.state_dict(), rng)

    losses_now: dict[str, float] = {}
    bar = tqdm(
        range(start, config.steps),
        initial=start,
        total=config.steps,
        desc="train",
        disable=not progress or not main,
        dynamic_ncols=True,
    )
    model.train()
    with _StopRequests() as stop:
        for step in bar:
            stop.take_all_cores()
            losses_now, seconds = _step(
                model, losses_of, optimiser, data, generator, config, step, device
            )
            elapsed += seconds
            bar.set_postfix(
                loss=f"{losses_now['total']:.4f}", occ=f"{losses_now.get('occupancy', 0):.4f}"
            )
            done = step + 1
            if main and (done % config.log_every == 0 or done == config.steps):
                record = {"step": done, "seconds": round(elapsed, 3), **losses_now}
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
                if on_log is not None:
                    on_log(done, losses_now)
            stopping = any_rank(stop.signum is not None, device)  # all ranks stop together
            if done % config.checkpoint_every == 0 or done == config.steps or stopping:
                checkpoint(done)
            if stopping and done < config.steps:
                bar.close()
                raise TrainingInterrupted(stop.signum or signal.SIGTERM, done, run_dir)
    if start >= config.steps:
        checkpoint(config.steps)
    return TrainResult(steps=config.steps, seconds=elapsed, final_losses=losses_now)


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop the records of steps after ``step`` (done after the checkpoint a resume starts from)."""
    kept = []
    for line in log_path.read_text().splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):  # a line torn by a crash
            continue
    write_text_atomic(log_path, "".join(kept))


def _step(
    model: torch.nn.Module,
    losses_of: Callable[..., dict[str, torch.Tensor]],
    optimiser: torch.optim.Optimizer,
    data: TrainingData,
    generator: torch.Generator,
    config: TrainConfig,
    step: int,
    device: torch.device,
) -> tuple[dict[str, float], float]:
    """One optimisation step; returns the losses (and their weighted ``total``) and its seconds."""
    tic = time.perf_counter()
    set_learning_rates(optimiser, config, step)
    points, occupancy, transforms, corr, colour = data.batch_with_signals(
        generator,
        config.batch_frames,
        config.points_per_frame,
        config.correspondences,
        config.colour_points,
        device,
    )
    extra: dict[str, Any] = {}
    if corr is not None:
        extra["correspondence"] = corr
    if colour is not None:
        extra["colour"] = colour
    losses = losses_of(points, occupancy, transforms, step, **extra)  # model.losses or DDP's
    total = sum(config.loss_weights.weight(name, step) * value for name, value in losses.items())
    if not torch.isfinite(total):
        raise FloatingPointError(
            f"loss became {float(total)} at step {step} ({ {k: float(v) for k, v in losses.items()} }); "
            "the last good checkpoint is kept; try a lower --lr"
        )
    optimiser.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimiser.step()
    losses_now = {k: float(v.detach()) for k, v in losses.items()}
    losses_now["total"] = float(total.detach())
    return losses_now, time.perf_counter() - tic
