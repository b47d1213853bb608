"""Generate the synthetic clothed-human benchmark: anny body, outfit, motions, scans, splits.

Conventions: metres, y up; bone transforms canonical-to-posed (the invskin dataset format,
``docs/data-format.md``). The canonical pose is the body's star pose (identity transforms).

Splits: ``train`` has ``train_clips`` clips of every training motion; ``test-within`` one more,
held-out clip of every training motion (other amplitude, speed and phase); ``test-out`` one clip of
every motion type never seen in training. Every clip's variation comes from
``SeedSequence([seed, crc32(motion), clip])``, so a dataset is identical for identical arguments.
Frame ids are ``<motion>_<clip>_<frame>``, e.g. ``walk_0_003``.

Per frame: the clothed surface is posed (:func:`invskin.data.synth.outfits.dress`), its visible
faces make the raw scan, and the same fixed-topology surface (its faces visible in the canonical
pose) is recorded in every frame as the correspondence ground truth.

Colour (on by default): every clothed vertex gets the colour of its canonical position
(:mod:`invskin.data.synth.pattern`: a print on garment and skirt, skin on the body); a scan is a
subset of the clothed vertices, so it carries their colours exactly, times the frame's brightness
factor when ``lighting`` is given. The correspondence ground truth records the colours and the
factors (the colour truth).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm import tqdm

from invskin.body.anny_model import AnnyBody, load_anny_body
from invskin.body.motions import MOTIONS, TEST_OUT_MOTIONS, TRAIN_MOTIONS, make_clip
from invskin.data.format import BodyPrior, Dataset, DatasetWriter
from invskin.data.synth.outfits import (
    OUTFITS,
    Outfit,
    build_outfit,
    compact,
    dress,
    visible_faces,
)
from invskin.data.synth.pattern import (
    DEFAULT_LIGHTING,
    PatternConfig,
    brightness_factors,
    lit,
    outfit_colours,
)
from invskin.mesh import TriMesh

GENERATOR_VERSION = 2  # 2: scans carry the printed colours
CHUNK_FRAMES = 8  # frames posed and draped together


@dataclass(frozen=True)
class SynthPreset:
    """How many clips and frames of which motions go into each split."""

    name: str
    train_clips: int
    """Clips of every training motion in ``train``."""
    frames_per_clip: int
    """Frames of every training clip, evenly spread over one motion cycle."""
    within_frames: int
    """Frames of the held-out clip of every training motion (``test-within``)."""
    out_frames: int
    """Frames of the clip of every held-out motion type (``test-out``)."""
    train_motions: tuple[str, ...] = TRAIN_MOTIONS
    test_out_motions: tuple[str, ...] = TEST_OUT_MOTIONS

    def __post_init__(self) -> None:
        unknown = set(self.train_motions + self.test_out_motions) - set(MOTIONS)
        if unknown:
            raise ValueError(f"unknown motions {sorted(unknown)}; motions are {sorted(MOTIONS)}")
        if set(self.train_motions) & set(self.test_out_motions):
            raise ValueError("test-out motions must not be training motions")
        if (
            min(self.train_clips, self.frames_per_clip) < 1
            or min(self.within_frames, self.out_frames) < 0
        ):
            raise ValueError(f"preset {self.name!r} needs at least one training clip and frame")

    @property
    def num_frames(self) -> int:
        train = len(self.train_motions) * (
            self.train_clips * self.frames_per_clip + self.within_frames
        )
        return train + len(self.test_out_motions) * self.out_frames


def preset(name: str) -> SynthPreset:
    """A fresh named preset: ``small`` (40 frames, for tests and smoke runs) or ``default``
    (200 train, 48 test-within, 52 test-out frames)."""
    presets = {
        "small": SynthPreset(
            "small", train_clips=1, frames_per_clip=3, within_frames=1, out_frames=2
        ),
        "default": SynthPreset(
            "default", train_clips=5, frames_per_clip=5, within_frames=6, out_frames=13
        ),
    }
    if name not in presets:
        raise KeyError(f"unknown preset {name!r}; presets are {sorted(presets)}")
    return presets[name]


@dataclass(frozen=True)
class PlannedClip:
    motion: str
    clip: int
    split: str
    num_frames: int

    def seed(self, seed: int) -> list[int]:
        return [seed, zlib.crc32(self.motion.encode()), self.clip]


def plan_clips(settings: SynthPreset) -> list[PlannedClip]:
    """Every clip of the dataset, in the order its frames are written."""
    plan = []
    for motion in settings.train_motions:
        plan += [
            PlannedClip(motion, c, "train", settings.frames_per_clip)
            for c in range(settings.train_clips)
        ]
        if settings.within_frames:
            plan.append(
                PlannedClip(motion, settings.train_clips, "test-within", settings.within_frames)
            )
    if settings.out_frames:
        plan += [
            PlannedClip(motion, 0, "test-out", settings.out_frames)
            for motion in settings.test_out_motions
        ]
    return plan


def canonical_clothed(clothes: Outfit) -> Float[np.ndarray, "n 3"]:
    """The clothed surface's vertices in the canonical pose (identity transforms)."""
    identity = torch.eye(4, dtype=torch.float64).expand(1, clothes.body.skeleton.num_bones, 4, 4)
    return dress(clothes, identity)[0].numpy()


def correspondence_surface(clothes: Outfit) -> tuple[TriMesh, Int[np.ndarray, " m"]]:
    """The ground-truth surface: the clothed surface's faces visible in the canonical pose
    (identity transforms), without unused vertices, and the clothed-vertex index of each vertex
    (increasing, so the vertices stay ordered body, garment, skirt)."""
    canonical = canonical_clothed(clothes)
    faces = clothes.faces.numpy()
    return compact(canonical, faces[visible_faces(canonical, faces)])


def _pose_frames(
    body: AnnyBody, settings: SynthPreset, seed: int
) -> tuple[list[tuple[str, str, str]], Float[Tensor, "f j 3 3"], Float[Tensor, "f 3"]]:
    """Every frame's (id, motion, split), local rotations and root translation, in order."""
    frames, rotations, translations = [], [], []
    for planned in plan_clips(settings):
        clip = make_clip(body.skeleton, planned.motion, planned.num_frames, planned.seed(seed))
        frames += [
            (f"{planned.motion}_{planned.clip}_{k:03d}", planned.motion, planned.split)
            for k in range(planned.num_frames)
        ]
        rotations.append(clip.local_rotations)
        translations.append(clip.root_translation)
    return frames, torch.cat(rotations), torch.cat(translations)


@dataclass
class SynthResult:
    """What :func:`generate` made: the dataset and a few numbers about it."""

    dataset: Dataset
    seconds: float
    scan_faces: list[int] = field(default_factory=list)


def generate(
    out: Path | str,
    outfit: str = "dress",
    settings: SynthPreset | str = "default",
    seed: int = 0,
    body: AnnyBody | None = None,
    progress: bool = True,
    overwrite: bool = True,
    log: Callable[[str], None] | None = None,
    colour: bool = True,
    lighting: tuple[float, float] | None = None,
) -> SynthResult:
    """Write a synthetic dataset to ``out`` (atomically, through :class:`DatasetWriter`).

    ``colour``: scans carry the outfit's printed colours (module docstring); ``lighting``: the
    range of the per-frame brightness factor, e.g. ``(0.7, 1.3)`` (needs ``colour``).
    """
    start = time.perf_counter()
    settings = preset(settings) if isinstance(settings, str) else settings
    if outfit not in OUTFITS:
        raise KeyError(f"unknown outfit {outfit!r}; outfits are {sorted(OUTFITS)}")
    if lighting is not None and not colour:
        raise ValueError("lighting changes the scans' colours: it needs colour=True")
    pattern = PatternConfig(lighting=lighting)
    body = load_anny_body() if body is None else body
    clothes = build_outfit(body, outfit)
    faces = clothes.faces.numpy()

    truth, truth_vertices = correspondence_surface(clothes)
    bounds = np.cumsum([0, *clothes.part_sizes])
    counts = np.diff(np.searchsorted(truth_vertices, bounds))

    frames, rotations, translations = _pose_frames(body, settings, seed)
    transforms = body.skeleton.bone_transforms(rotations, translations)
    colours = (
        outfit_colours(canonical_clothed(clothes), clothes.part_sizes, pattern) if colour else None
    )
    brightness = brightness_factors(len(frames), pattern, seed)

    prior = BodyPrior(vertices=body.vertices, faces=body.faces, weights=body.weights)
    source = f"invskin synth --outfit {outfit} --preset {settings.name} --seed {seed}"
    source += _colour_flags(colour, lighting)
    info = {
        "generator": "invskin.data.synth",
        "generator_version": GENERATOR_VERSION,
        "outfit": outfit,
        "preset": asdict(settings),
        "seed": seed,
        "canonical_pose": "star",
        "body": {"model": "anny", **asdict(body.config)},
        "motions": {
            "train": list(settings.train_motions),
            "test-out": list(settings.test_out_motions),
        },
    }
    if colour:
        info["colour"] = {
            "print": {"kind": "value-noise", "cell": pattern.cell, "seed": pattern.seed},
            "lighting": None if lighting is None else list(lighting),
        }
    # The correspondence vertices are ordered body, garment, skirt; "clothing" is garment + skirt.
    starts, stops = np.cumsum([0, *counts[:-1]]), np.cumsum(counts)
    parts = {
        name: np.arange(a, b) for name, a, b in zip(("body", "garment", "skirt"), starts, stops)
    }
    parts["clothing"] = np.arange(starts[1], stops[2])
    posed_truth = np.empty((len(frames), truth.num_vertices, 3), dtype=np.float32)
    scan_faces = []
    with DatasetWriter(
        out, f"synth-{outfit}", body.skeleton, prior, source, info=info, overwrite=overwrite
    ) as writer:
        bar = tqdm(total=len(frames), desc=f"synth {outfit}", unit="frame", disable=not progress)
        for lo in range(0, len(frames), CHUNK_FRAMES):
            chunk = transforms[lo : lo + CHUNK_FRAMES]
            vertices = dress(clothes, chunk).numpy()
            for k, v in enumerate(vertices):
                frame_id, motion, _ = frames[lo + k]
                index = lo + k
                scan, used = compact(v, faces[visible_faces(v, faces)])
                if colours is not None:
                    scan = TriMesh(scan.vertices, scan.faces, lit(colours[used], brightness[index]))
                writer.add_frame(frame_id, scan, chunk[k].float(), motion)
                posed_truth[index] = v[truth_vertices]
                scan_faces.append(scan.num_faces)
                bar.update(1)
        bar.close()
        splits: dict[str, list[str]] = {"train": [], "test-within": [], "test-out": []}
        for frame_id, _, split in frames:
            splits[split].append(frame_id)
        writer.set_splits(splits)
        writer.set_correspondence(
            truth.vertices,
            truth.faces,
            posed_truth,
            parts,
            colors=None if colours is None else colours[truth_vertices],
            brightness=None if colours is None else brightness,
        )
        writer.set_body_params(
            local_rotations=rotations.float().numpy(), root_translation=translations.float().numpy()
        )
        dataset = writer.finish()
    seconds = time.perf_counter() - start
    if log is not None:
        log(
            f"wrote {len(frames)} frames of synth-{outfit} to {out} in {seconds:.1f} s "
            f"(scans {int(np.mean(scan_faces))} faces on average)"
        )
    return SynthResult(dataset, seconds, scan_faces)


def _colour_flags(colour: bool, lighting: tuple[float, float] | None) -> str:
    """The ``invskin synth`` options that select this colour setting ('' for the default)."""
    if not colour:
        return " --no-colour"
    if lighting is None:
        return ""
    if tuple(lighting) == DEFAULT_LIGHTING:
        return " --lighting"
    return f" --lighting --lighting-range {lighting[0]:g} {lighting[1]:g}"


def generate_dataset(
    out: Path | str,
    outfit: str = "dress",
    preset: SynthPreset | str = "default",
    seed: int = 0,
    progress: bool = True,
) -> Dataset:
    """:func:`generate`, returning just the dataset (for callers that cache it, e.g. the demo)."""
    return generate(out, outfit=outfit, settings=preset, seed=seed, progress=progress).dataset


__all__ = [
    "SynthPreset",
    "SynthResult",
    "canonical_clothed",
    "correspondence_surface",
    "generate",
    "generate_dataset",
    "plan_clips",
    "preset",
]
