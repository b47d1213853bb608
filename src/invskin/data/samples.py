"""Occupancy training samples per frame: points near the scan and in its box, labelled inside/outside.

Conventions: metres; points of one frame are in its posed space (the scan's). Per frame, in this
order: ``num_near`` surface samples moved by N(0, ``sigma_near``) per axis (default 1 cm),
``num_coarse`` surface samples moved by N(0, ``sigma_coarse``) (default 6 cm), and ``num_uniform``
points uniform in the scan's bounding box enlarged by ``bbox_padding`` times its largest side on
every side. Labels are generalised winding numbers > 0.5 (:func:`invskin.mesh.winding.occupancy`),
which stay right on raw scans with holes or non-manifold parts, where ray parity does not.

Samples are deterministic per (config, frame id) and cached under
``<dataset>/cache/samples/<config key>/<frame_id>.npz`` (written atomically); a cache entry is used
only if it was made from the same scan file (size and modification time), so the training loop never
recomputes them. The cache is derived data: deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor
from tqdm import tqdm

from invskin.data.format import Dataset
from invskin.fileio import atomic_path, write_text_atomic
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import sample_surface
from invskin.mesh.winding import occupancy

logger = logging.getLogger("invskin.data")

SAMPLES_VERSION = 1  # bump when the sampling procedure changes: old caches are then ignored


@dataclass(frozen=True)
class SampleConfig:
    """How many occupancy samples per frame, and where."""

    num_near: int = 8192
    """Surface samples moved by N(0, sigma_near): the thin band that defines the surface."""
    sigma_near: float = 0.01
    """Standard deviation (metres, per axis) of the near band."""
    num_coarse: int = 4096
    """Surface samples moved by N(0, sigma_coarse): a coarser band around the body."""
    sigma_coarse: float = 0.06
    """Standard deviation (metres, per axis) of the coarse band."""
    num_uniform: int = 4096
    """Points uniform in the enlarged bounding box of the scan."""
    bbox_padding: float = 0.1
    """Enlarge the scan's box by this fraction of its largest side, on every side."""
    seed: int = 0
    """Base seed; each frame's seed also depends on its frame id."""

    def __post_init__(self) -> None:
        counts = (self.num_near, self.num_coarse, self.num_uniform)
        if min(counts) < 0 or sum(counts) == 0:
            raise ValueError(f"sample counts must be >= 0 and not all 0, got {counts}")
        if self.sigma_near <= 0 or self.sigma_coarse <= 0 or self.bbox_padding < 0:
            raise ValueError("sigmas must be > 0 and bbox_padding >= 0")

    @property
    def total(self) -> int:
        return self.num_near + self.num_coarse + self.num_uniform

    def key(self) -> str:
        """A short hash naming this config's cache folder."""
        text = json.dumps({"version": SAMPLES_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class FrameSamples:
    """Occupancy samples of one frame: ``points`` (N, 3), ``occupancy`` (N,) True inside.

    Rows are ``num_near`` near-band, then ``num_coarse`` coarse-band, then ``num_uniform`` box points
    (see :meth:`near`, :meth:`coarse`, :meth:`uniform` for the index ranges).
    """

    frame_id: str
    points: Float[Tensor, "n 3"]
    occupancy: Bool[Tensor, " n"]
    num_near: int
    num_coarse: int
    num_uniform: int

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def near(self) -> slice:
        return slice(0, self.num_near)

    @property
    def coarse(self) -> slice:
        return slice(self.num_near, self.num_near + self.num_coarse)

    @property
    def uniform(self) -> slice:
        return slice(self.num_near + self.num_coarse, len(self))


def frame_seed(config: SampleConfig, frame_id: str) -> np.random.SeedSequence:
    """The seed of one frame: the config's seed and a stable hash of the frame id."""
    return np.random.SeedSequence([config.seed, zlib.crc32(frame_id.encode())])


def make_samples(
    scan: TriMesh, config: SampleConfig, seed: int | np.random.SeedSequence = 0
) -> tuple[Float[np.ndarray, "n 3"], Bool[np.ndarray, " n"]]:
    """Sample points (float32) around ``scan`` and label them with winding-number occupancy."""
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    surface_seed, noise_seed = sequence.spawn(2)
    rng = np.random.default_rng(noise_seed)
    num_band = config.num_near + config.num_coarse
    parts = []
    if num_band:
        base = sample_surface(scan, num_band, surface_seed).points
        sigma = np.repeat(
            [config.sigma_near, config.sigma_coarse], [config.num_near, config.num_coarse]
        )
        parts.append(base + rng.normal(size=base.shape) * sigma[:, None])
    if config.num_uniform:
        low, high = scan.vertices.min(0), scan.vertices.max(0)
        pad = config.bbox_padding * float((high - low).max())
        parts.append(rng.uniform(low - pad, high + pad, size=(config.num_uniform, 3)))
    points = np.concatenate(parts).astype(np.float32)
    return points, occupancy(scan, points.astype(np.float64))


def samples_path(dataset: Dataset, frame_index: int, config: SampleConfig) -> Path:
    return dataset.cache_dir / "samples" / config.key() / f"{dataset.frame_ids[frame_index]}.npz"


def _scan_stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _read_cache(
    path: Path, stamp: str, config: SampleConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["scan_stamp"]) != stamp:
                return None
            points, labels = data["points"], data["occupancy"]
    except (OSError, ValueError, KeyError, EOFError):
        logger.warning("ignoring unreadable sample cache %s; recomputing it", path)
        return None
    if points.shape != (config.total, 3) or labels.shape != (config.total,):
        return None
    return points.astype(np.float32), labels.astype(bool)


def _write_cache(
    path: Path, points: np.ndarray, labels: np.ndarray, stamp: str, config: SampleConfig
) -> None:
    """Atomic write (temporary file in the same folder, then rename); failures only warn."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        config_file = path.parent / "config.json"
        if not config_file.exists():
            write_text_atomic(
                config_file, json.dumps({"version": SAMPLES_VERSION, **asdict(config)}, indent=1)
            )
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, points=points, occupancy=labels, scan_stamp=np.array(stamp))
    except OSError as error:
        logger.warning(
            "cannot cache samples at %s (%s); they will be recomputed next time", path, error
        )


def load_or_make_samples(
    dataset: Dataset, frame_index: int, config: SampleConfig | None = None
) -> FrameSamples:
    """The samples of frame ``frame_index``: from the cache if present, else made and cached."""
    return _load_or_make(dataset, frame_index, config or SampleConfig())[0]


def _load_or_make(
    dataset: Dataset, frame_index: int, config: SampleConfig
) -> tuple[FrameSamples, bool]:
    frame_id = dataset.frame_ids[frame_index]
    path = samples_path(dataset, frame_index, config)
    stamp = _scan_stamp(dataset.scan_path(frame_index))
    cached = _read_cache(path, stamp, config)
    if cached is None:
        points, labels = make_samples(
            dataset.scan(frame_index), config, frame_seed(config, frame_id)
        )
        _write_cache(path, points, labels, stamp, config)
    else:
        points, labels = cached
    samples = FrameSamples(
        frame_id=frame_id,
        points=torch.from_numpy(points),
        occupancy=torch.from_numpy(labels),
        num_near=config.num_near,
        num_coarse=config.num_coarse,
        num_uniform=config.num_uniform,
    )
    return samples, cached is None


def prepare_samples(
    dataset: Dataset,
    config: SampleConfig | None = None,
    split: str | None = "train",
    frames: Sequence[int] | None = None,
    progress: bool = True,
) -> int:
    """Make and cache the samples of every frame of ``split`` (or of ``frames``, or all if both
    are ``None``), with a progress bar; return how many frames had to be computed."""
    config = config or SampleConfig()
    if frames is None and split is None:
        frames = range(len(dataset))
    elif frames is None:
        dataset.split(split)  # a clear error for an unknown split name
        frames = dataset.splits[split]
    computed = 0
    for index in tqdm(frames, desc=f"samples of {dataset.name}", disable=not progress):
        computed += _load_or_make(dataset, index, config)[1]
    return computed


COLOUR_SAMPLES_VERSION = 1  # bump when the colour sampling changes: old caches are then ignored


@dataclass(frozen=True, eq=False)
class ColourSamples:
    """Points of one frame's scan surface (posed space), ``points`` (C, 3), and the scan's colour
    there, ``colours`` (C, 3) RGB in [0, 1] (the vertex colours interpolated barycentrically)."""

    frame_id: str
    points: Float[Tensor, "c 3"]
    colours: Float[Tensor, "c 3"]


def make_colour_samples(
    scan: TriMesh, count: int, seed: int | np.random.SeedSequence = 0
) -> tuple[Float[np.ndarray, "c 3"], Float[np.ndarray, "c 3"]]:
    """``count`` points uniform over ``scan``'s surface (float32) and their interpolated colours."""
    if scan.colors is None:
        raise ValueError("the scan has no vertex colours to sample")
    surface = sample_surface(scan, count, seed)
    colours = np.asarray(scan.colors, dtype=np.float64)[:, :3]
    if np.asarray(scan.colors).dtype == np.uint8:
        colours = colours / 255.0
    corner = colours[scan.faces[surface.face_index]]  # (C, 3 corners, 3 channels)
    rgb = np.einsum("ck,ckd->cd", surface.barycentric, corner)
    return surface.points.astype(np.float32), np.clip(rgb, 0.0, 1.0).astype(np.float32)


def load_or_make_colour_samples(dataset: Dataset, frame_index: int, count: int) -> ColourSamples:
    """Coloured surface points of frame ``frame_index`` (deterministic per frame id), cached under
    ``<dataset>/cache/colour-samples/v<version>-<count>/<frame_id>.npz`` like the occupancy samples."""
    frame_id = dataset.frame_ids[frame_index]
    folder = f"v{COLOUR_SAMPLES_VERSION}-{count}"
    path = dataset.cache_dir / "colour-samples" / folder / f"{frame_id}.npz"
    stamp = _scan_stamp(dataset.scan_path(frame_index))
    cached = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["scan_stamp"]) == stamp and data["points"].shape == (count, 3):
                    cached = data["points"], data["colours"]
        except (OSError, ValueError, KeyError, EOFError):
            logger.warning("ignoring unreadable colour-sample cache %s; recomputing it", path)
    if cached is None:
        seed = np.random.SeedSequence([count, zlib.crc32(frame_id.encode()), 1])
        cached = make_colour_samples(dataset.scan(frame_index), count, seed)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, points=cached[0], colours=cached[1], scan_stamp=np.array(stamp))
        except OSError as error:
            logger.warning("cannot cache colour samples at %s (%s)", path, error)
    return ColourSamples(frame_id, torch.from_numpy(cached[0]), torch.from_numpy(cached[1]))
