"""``invskin train``: from a dataset folder to a trained run folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from invskin.data.format import load_dataset
from invskin.data.samples import (
    SampleConfig,
    load_or_make_colour_samples,
    load_or_make_samples,
)
from invskin.folder_lock import hold_folder
from invskin.models.build import build_model
from invskin.models.config import ModelConfig
from invskin.training.checkpoint import find_checkpoint, load_checkpoint
from invskin.training.distributed import (
    barrier,
    init_from_env,
    is_main,
    local_device,
    on_main_rank,
    shutdown,
)
from invskin.training.presets import Preset, make_preset
from invskin.training.trainer import TrainConfig, TrainingData, TrainResult, train


def pick_device(device: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    return torch.device(device)


def require_correspondence(dataset) -> None:
    """Refuse, saying what to do, a dataset without known correspondences."""
    if dataset.correspondence is None:
        raise ValueError(
            f"dataset {dataset.root} has no known correspondences (no 'correspondence' in its "
            "manifest), so it cannot train with --signal correspondence; train with --signal "
            "occupancy (raw scans have occupancy only), or import registered meshes (CAPE) or a "
            "rigged glTF without --scans, which write them"
        )


def require_colour(dataset) -> None:
    """Refuse, saying what to do, a dataset whose scans carry no colour."""
    if not dataset.scan_colour:
        raise ValueError(
            f"the scans of dataset {dataset.root} carry no colour (no 'scan_colour: true' in its "
            "manifest), so it cannot train with --signal colour; train with --signal occupancy, "
            "or write the scans with per-vertex colours (PLY or OBJ colours; invskin synth "
            "colours its scans unless --no-colour)"
        )


COLOUR_SURFACE_POINTS = 8192
"""Coloured scan-surface points kept per training frame (a step draws from them)."""


def training_data(
    dataset,
    sample_config: SampleConfig,
    progress: bool = True,
    correspondence: bool = False,
    colour: bool = False,
) -> TrainingData:
    """Posed-space samples (cached per frame) of every frame of ``dataset`` (a split view) and, with
    ``correspondence``, the dataset's known correspondences of those frames; with ``colour``,
    :data:`COLOUR_SURFACE_POINTS` coloured points of each frame's scan surface (cached too)."""
    canonical = posed = None
    if correspondence:
        require_correspondence(dataset)
        truth = dataset.correspondence
        canonical, posed = truth.canonical_vertices.float(), truth.posed_vertices.float()
    if colour:
        require_colour(dataset)
    points, occupancy, surface, colours = [], [], [], []
    for i in tqdm(range(len(dataset)), desc="samples", disable=not progress, dynamic_ncols=True):
        samples = load_or_make_samples(dataset, i, sample_config)
        points.append(torch.as_tensor(samples.points, dtype=torch.float32))
        occupancy.append(torch.as_tensor(samples.occupancy, dtype=torch.float32))
        if colour:
            coloured = load_or_make_colour_samples(dataset, i, COLOUR_SURFACE_POINTS)
            surface.append(coloured.points)
            colours.append(coloured.colours)
    return TrainingData(
        torch.stack(points),
        torch.stack(occupancy),
        dataset.transforms.float(),
        canonical,
        posed,
        torch.stack(surface) if colour else None,
        torch.stack(colours) if colour else None,
    )


RUN_IN_USE = (
    "Wait for it to finish (a stopped training continues with --resume), or train into another "
    "--out."
)
DATA_IN_USE = "Wait for it to finish writing the dataset, then train."


def dataset_of(out: Path, data: Path, resume: bool) -> Path:
    """The dataset a training reads: with ``resume``, the one its checkpoint names (``data`` when
    the checkpoint cannot be read: the training then stops with the checkpoint's own error)."""
    if not resume:
        return Path(data)
    try:
        return Path(load_checkpoint(out, with_optimizer=False).state["dataset"])
    except (OSError, ValueError, KeyError):
        return Path(data)


def hold_on_main(locks: ExitStack, folder: Path, shared: bool, hint: str) -> None:
    """Rank 0 takes the lock of ``folder`` (:mod:`invskin.folder_lock`) until ``locks`` closes;
    its refusal stops every rank (:func:`~invskin.training.distributed.on_main_rank`)."""
    on_main_rank(lambda: locks.enter_context(hold_folder(folder, shared=shared, hint=hint)))


def signal_of(config: TrainConfig) -> str:
    """The training signal a configuration trains with (recorded in a run's ``state.json``)."""
    if config.correspondences > 0:
        return "correspondence"
    return "colour" if config.colour_points > 0 else "occupancy"


@dataclass(frozen=True)
class TrainSummary:
    run_dir: Path
    method: str
    result: TrainResult


def export_scale(info: dict) -> float:
    """Length of the source file per length of the dataset: 1 unless the import resized the
    character to train at a human size (``info["resized"]``); exports are written at the file's
    size (:func:`invskin.runs.export.export_run`)."""
    resized = info.get("resized")
    return 1.0 / float(resized["factor"]) if isinstance(resized, dict) else 1.0


def train_run(
    data: Path,
    out: Path,
    method: str = "ins",
    preset: str | Preset = "cpu-quick",
    steps: int | None = None,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    signal: str = "occupancy",
    no_loss: tuple[str, ...] = (),
) -> TrainSummary:
    """Train ``method`` on the ``train`` split of the dataset at ``data``; write the run to ``out``.

    ``preset`` is a preset's name, or a :class:`~invskin.training.presets.Preset` (its own method,
    steps, seed and signal; ``method``, ``steps``, ``seed`` and ``signal`` are then ignored).
    ``signal`` is what the run learns from (:data:`invskin.models.signals.SIGNALS`): ``occupancy``
    alone, or also the dataset's known correspondences (``correspondence``), or the scans'
    colours (``colour``); ``no_loss`` switches losses off by name
    (:func:`~invskin.training.presets.without_losses`).

    SIGINT / SIGTERM write a checkpoint and raise
    :class:`~invskin.training.trainer.TrainingInterrupted`; ``resume`` continues exactly.
    Started by ``torchrun`` with several processes, it trains data-parallel (DDP,
    :mod:`invskin.training.distributed`): every rank draws its own frames and points, only rank 0
    writes; one process needs nothing of it.

    Rank 0 holds an exclusive lock on ``out`` and a shared one on the dataset for the whole
    training (:mod:`invskin.folder_lock`): a second training into ``out``, or a command that would
    replace the dataset, is refused at once with :class:`~invskin.errors.FolderInUse`.
    """
    out = Path(out)
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be a positive number of training steps, got {steps}")
    dev = pick_device(device)
    distributed = init_from_env(dev)  # under torchrun with several processes
    locks = ExitStack()
    try:
        hold_on_main(locks, out, shared=False, hint=RUN_IN_USE)
        hold_on_main(locks, dataset_of(out, data, resume), shared=True, hint=DATA_IN_USE)
        summary = _train_run(
            data,
            out,
            method,
            preset,
            steps,
            local_device(dev),
            seed,
            resume,
            progress,
            on_log,
            signal,
            tuple(no_loss),
        )
        # Every rank leaves together: a rank that tore the group down while rank 0 was still
        # writing its last checkpoint was seen to abort in gloo's teardown (SIGABRT, once in CI).
        barrier()
        return summary
    finally:
        locks.close()
        if distributed:
            shutdown()


def _train_run(
    data: Path,
    out: Path,
    method: str,
    preset: str | Preset,
    steps: int | None,
    dev: torch.device,
    seed: int,
    resume: bool,
    progress: bool,
    on_log: Callable[[int, dict[str, float]], None] | None,
    signal: str,
    no_loss: tuple[str, ...],
) -> TrainSummary:
    if resume:
        state = load_checkpoint(out, with_optimizer=False).state
        model_config = ModelConfig.from_json(state["model_config"])
        train_config = TrainConfig.from_json(state["train_config"])
        if steps is not None:
            train_config = replace(train_config, steps=steps)
        data = Path(state["dataset"])
        prior_fit = 0
        preset_name = state["preset"]
        resolution = state["extract_resolution"]
        signal = state.get("signal", signal_of(train_config))
        no_loss = tuple(state.get("no_loss", ()))
    else:
        if find_checkpoint(out) is not None:
            raise FileExistsError(
                f"{out} already holds a trained run; pass --resume to continue it, or choose "
                "another --out"
            )
        chosen = (
            preset
            if isinstance(preset, Preset)
            else make_preset(preset, method, steps=steps, seed=seed, signal=signal, no_loss=no_loss)
        )
        model_config, train_config = chosen.model, chosen.train
        if isinstance(preset, Preset):
            signal, no_loss = signal_of(train_config), ()
        prior_fit, preset_name, resolution = (
            chosen.prior_fit_steps,
            chosen.name,
            chosen.extract_resolution,
        )
    dataset = load_dataset(data)
    if train_config.correspondences > 0:  # before the ranks split up to make samples
        require_correspondence(dataset)
    if train_config.colour_points > 0:
        require_colour(dataset)
    train_split = dataset.split("train")
    if len(train_split) == 0:
        raise ValueError(f"dataset {data} has an empty 'train' split")
    torch.manual_seed(train_config.seed)
    # Rank 0 makes (and caches) the samples first; the other ranks then read them.
    if not is_main():
        barrier()
    samples = training_data(
        train_split,
        SampleConfig(),
        progress=progress and is_main(),
        correspondence=train_config.correspondences > 0,
        colour=train_config.colour_points > 0,
    )
    if is_main():
        barrier()
    model = build_model(model_config, dataset.skeleton, dataset.prior)
    model.fit_skinning_to_prior(prior_fit)
    run_state = {
        "method": model_config.method,
        "preset": preset_name,
        "signal": signal,
        "no_loss": list(no_loss),
        "model_config": model_config.to_json(),
        "train_config": train_config.to_json(),
        "skeleton": dataset.skeleton.to_json(),
        "dataset": str(Path(data).resolve()),
        "export_scale": export_scale(dataset.info),
        "extract_resolution": resolution,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    result = train(
        model,
        samples,
        train_config,
        out,
        run_state,
        dev,
        resume=resume,
        on_log=on_log,
        progress=progress,
    )
    return TrainSummary(out, model_config.method, result)
