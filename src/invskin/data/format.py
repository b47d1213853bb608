"""The invskin dataset format (version 1): posed scans, per-frame bone transforms and a skeleton.

Conventions: metres, right-handed, y up, column vectors; ``transforms[f, j]`` is bone j's 4x4
**canonical-to-posed** transform in frame f (what linear blend skinning uses). Shape legend: ``F``
frames, ``J`` bones, ``V`` vertices, ``T`` triangles. The on-disk layout is specified in
``docs/data-format.md``; this module is its only reader and writer.

- :class:`DatasetWriter` writes a dataset into a hidden sibling folder and moves it into place in
  :meth:`DatasetWriter.finish`, so an existing dataset is only replaced by a complete, validated one.
- :func:`load_dataset` validates the manifest, every listed file, shapes and finiteness up front
  (scans are only checked for existence; they load lazily in :meth:`Dataset.scan`).
- Every problem raises :class:`DataError` with one message that names the file and what to do.

Colour (optional): a dataset whose manifest says ``"scan_colour": true`` has per-vertex RGB
colours on every scan (:attr:`Dataset.scan_colour`; :meth:`Dataset.scan` refuses a scan without
them). Synthetic data also records the colour truth with its correspondences
(:attr:`CorrespondenceTruth.colors`, and the per-frame ``brightness`` the scans were lit with).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from invskin.body.skeleton import Skeleton
from invskin.errors import NPZ_READ_ERRORS, DataError
from invskin.geometry.transforms import transforms_problem
from invskin.mesh.io import TriMesh, check_units_metres, colour_problem, load_mesh, save_mesh

FORMAT_NAME = "invskin-dataset"
FORMAT_VERSION = 1
MANIFEST = "invskin-dataset.json"
SKELETON_FILE = "skeleton.json"
TRANSFORMS_FILE = "bone_transforms.npz"
PRIOR_FILE = "prior.npz"
CORRESPONDENCE_FILE = "correspondence.npz"
BODY_PARAMS_FILE = "body_params.npz"
SCANS_DIR = "scans"
CACHE_DIR = "cache"
STANDARD_SPLITS = ("train", "test-within", "test-out")
SCAN_FORMATS = ("ply", "obj")

_FRAME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PART_NAME = _SPLIT_NAME
#: Key of ``info`` in the manifest that names parts of the correspondence vertices.
PARTS_KEY = "correspondence_parts"
#: Manifest field saying whether every scan carries per-vertex colours (optional, default false).
SCAN_COLOUR_KEY = "scan_colour"

ArrayLike = np.ndarray | Tensor


# ----------------------------------------------------------------------------- in-memory records


@dataclass(frozen=True, eq=False)
class BodyPrior:
    """Skinning-weight prior: a canonical-pose body mesh with per-vertex weights (rows sum to 1)."""

    vertices: Float[Tensor, "v 3"]
    faces: Int[Tensor, "t 3"]
    weights: Float[Tensor, "v j"]

    def __post_init__(self) -> None:
        problem = _mesh_problem(self.vertices, self.faces)
        if problem is None and self.weights.shape[0] != self.vertices.shape[0]:
            problem = f"{self.weights.shape[0]} weight rows for {self.vertices.shape[0]} vertices"
        if problem is None and not torch.isfinite(self.weights).all():
            problem = "weights contain NaN or infinite values"
        if problem is None and (self.weights < -1e-6).any():
            problem = "weights are negative somewhere"
        if problem is None and not torch.allclose(
            self.weights.sum(-1).double(), torch.ones((), dtype=torch.float64), atol=1e-3
        ):
            problem = "weight rows do not sum to 1"
        if problem is not None:
            raise DataError(f"invalid body prior: {problem}")


@dataclass(frozen=True, eq=False)
class CorrespondenceTruth:
    """Ground-truth surface correspondences (synthetic data): one clothed mesh in every frame.

    ``posed_vertices[f]`` is the same surface as ``canonical_vertices`` in frame f (same faces).
    ``parts`` (optional) names subsets of its vertices: part name -> sorted, unique int64 vertex
    indices (parts may overlap, e.g. ``skirt`` inside ``clothing``; a part may be empty).
    ``colors`` (optional) is the colour truth: each vertex's RGB in [0, 1], printed on the surface,
    so the same in every frame; ``brightness`` (optional, needs ``colors``) the factor frame f's
    scan colours were multiplied by (the lighting; 1 where the scans are unlit).
    """

    canonical_vertices: Float[Tensor, "v 3"]
    faces: Int[Tensor, "t 3"]
    posed_vertices: Float[Tensor, "f v 3"]
    parts: dict[str, Int[Tensor, " n"]] = field(default_factory=dict)
    colors: Tensor | None = None  # (V, 3), validated in __post_init__
    brightness: Tensor | None = None  # (F,)

    def __post_init__(self) -> None:
        problem = _mesh_problem(self.canonical_vertices, self.faces)
        if problem is None:
            problem = _parts_problem(self.parts, self.canonical_vertices.shape[0])
        if problem is None and self.posed_vertices.shape[1:] != self.canonical_vertices.shape:
            problem = (
                f"posed vertices have shape {tuple(self.posed_vertices.shape)}, expected "
                f"(F, {self.canonical_vertices.shape[0]}, 3)"
            )
        if problem is None and not torch.isfinite(self.posed_vertices).all():
            problem = "posed vertices contain NaN or infinite values"
        if problem is None:
            problem = _colour_truth_problem(
                self.colors, self.brightness, self.canonical_vertices.shape[0]
            )
        if problem is not None:
            raise DataError(f"invalid correspondence ground truth: {problem}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded invskin dataset: skeleton, per-frame bone transforms, lazily loaded scans, splits.

    ``splits[name]`` holds indices into the frames. :meth:`split` returns a :class:`Dataset` view of
    one split's frames (same folder; its ``splits`` re-indexed to the frames it keeps).
    """

    root: Path
    name: str
    source: str
    skeleton: Skeleton
    frame_ids: tuple[str, ...]
    motions: tuple[str, ...]
    scan_files: tuple[str, ...]
    transforms: Float[Tensor, "f j 4 4"]
    splits: dict[str, tuple[int, ...]]
    prior: BodyPrior | None = None
    correspondence: CorrespondenceTruth | None = None
    info: dict[str, Any] = field(default_factory=dict)
    scan_colour: bool = False
    """Whether every scan carries per-vertex colours (the manifest's ``scan_colour``)."""

    def __len__(self) -> int:
        return len(self.frame_ids)

    @property
    def num_bones(self) -> int:
        return self.skeleton.num_bones

    @property
    def cache_dir(self) -> Path:
        """Folder for derived data (training samples); safe to delete."""
        return self.root / CACHE_DIR

    def index(self, frame_id: str) -> int:
        """Index of the frame called ``frame_id``."""
        try:
            return self.frame_ids.index(frame_id)
        except ValueError:
            raise KeyError(f"no frame {frame_id!r} in dataset {self.root}") from None

    def scan_path(self, i: int) -> Path:
        return self.root / self.scan_files[i]

    def scan(self, i: int) -> TriMesh:
        """Load frame i's raw posed scan (metres; any topology, holes allowed), with its vertex
        colours when it has them (always, where :attr:`scan_colour` is true)."""
        path = self.scan_path(i)
        if not path.exists():
            raise DataError(
                f"{path}: scan of frame {self.frame_ids[i]!r} is missing; the dataset folder "
                "is incomplete: re-create it (invskin synth or a converter)"
            )
        try:
            mesh = load_mesh(path)
            problem = scan_problem(mesh)
            if problem is not None:
                raise DataError(f"{path}: {problem}; re-create this frame's scan")
            check_units_metres(mesh, str(path))
            if self.scan_colour and mesh.colors is None:
                raise DataError(
                    f"{path}: the manifest says the scans carry colour ({SCAN_COLOUR_KEY}: true) "
                    "but this scan has no vertex colours; re-create this frame's scan with its "
                    f"colours, or set {SCAN_COLOUR_KEY} to false in {MANIFEST}"
                )
        except DataError:
            raise
        except ValueError as error:
            raise DataError(str(error)) from error
        return mesh

    def split(self, name: str) -> Dataset:
        """A view of the frames of split ``name`` (in split order)."""
        if name not in self.splits:
            raise DataError(
                f"{self.root / MANIFEST}: no split named {name!r}; splits are {sorted(self.splits)}"
            )
        return self.subset(self.splits[name])

    def subset(self, indices: Sequence[int]) -> Dataset:
        """A view of the given frames, in the given order; splits are re-indexed to them."""
        indices = tuple(int(i) for i in indices)
        position = {old: new for new, old in enumerate(indices)}
        splits = {
            name: tuple(position[i] for i in members if i in position)
            for name, members in self.splits.items()
        }
        index = torch.as_tensor(indices, dtype=torch.long)
        correspondence = self.correspondence
        if correspondence is not None:
            brightness = correspondence.brightness
            correspondence = replace(
                correspondence,
                posed_vertices=correspondence.posed_vertices[index],
                brightness=None if brightness is None else brightness[index],
            )
        return replace(
            self,
            frame_ids=tuple(self.frame_ids[i] for i in indices),
            motions=tuple(self.motions[i] for i in indices),
            scan_files=tuple(self.scan_files[i] for i in indices),
            transforms=self.transforms[index],
            splits=splits,
            correspondence=correspondence,
        )

    def body_params(self) -> dict[str, np.ndarray]:
        """The optional per-frame body-model parameters (free-form; rows follow the full dataset)."""
        path = self.root / BODY_PARAMS_FILE
        if not path.exists():
            raise DataError(f"{path}: this dataset has no body parameters")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except NPZ_READ_ERRORS as error:
            raise DataError(f"{path} is not a readable .npz file ({error})") from error


# ----------------------------------------------------------------------------- validation helpers


def _mesh_problem(vertices: Tensor, faces: Tensor) -> str | None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        return f"vertices have shape {tuple(vertices.shape)}, expected (V, 3)"
    if faces.ndim != 2 or faces.shape[1] != 3:
        return f"faces have shape {tuple(faces.shape)}, expected (T, 3)"
    if not torch.isfinite(vertices).all():
        return "vertices contain NaN or infinite values"
    if faces.numel() and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        return f"face indices out of range for {vertices.shape[0]} vertices"
    return None


def _parts_problem(parts: Mapping[str, Tensor], num_vertices: int) -> str | None:
    for name, indices in parts.items():
        if not isinstance(name, str) or not _PART_NAME.match(name):
            return f"part name {name!r} is not allowed (1-64 letters, digits, '_', '-')"
        if indices.ndim != 1 or indices.dtype != torch.int64:
            return f"part {name!r} must be a 1-D int64 tensor of vertex indices"
        if indices.numel() and (indices.min() < 0 or indices.max() >= num_vertices):
            return (
                f"part {name!r} has vertex indices in [{int(indices.min())}, "
                f"{int(indices.max())}] but the surface has {num_vertices} vertices"
            )
        if indices.numel() > 1 and not bool((indices[1:] > indices[:-1]).all()):
            return f"part {name!r}: vertex indices must be sorted and unique"
    return None


def _colour_truth_problem(
    colors: Tensor | None, brightness: Tensor | None, num_vertices: int
) -> str | None:
    """Why ``colors`` (V, 3) in [0, 1] and ``brightness`` (F,) > 0 are not a valid colour truth
    for ``num_vertices`` vertices, or ``None``."""
    if colors is None:
        return None if brightness is None else "a per-frame brightness without colours"
    problem = colour_problem(colors.detach().cpu().numpy(), num_vertices)
    if problem is None and colors.shape[1] != 3:
        problem = f"colours have shape {tuple(colors.shape)}, expected (V, 3) RGB"
    if problem is None and brightness is not None:
        if brightness.ndim != 1:
            problem = f"brightness has shape {tuple(brightness.shape)}, expected (F,)"
        elif not (torch.isfinite(brightness).all() and (brightness > 0).all()):
            problem = "brightness must be finite and positive (1 for unlit frames)"
    return problem


def part_ranges(indices: ArrayLike) -> list[int] | list[list[int]]:
    """Vertex indices as the manifest writes them: ``[start, stop)`` when they are one run,
    else a list of ``[start, stop)`` runs (an empty part is ``[0, 0]``)."""
    index = np.unique(_as_numpy(indices, np.int64).reshape(-1))
    if len(index) == 0:
        return [0, 0]
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts = index[np.concatenate([[0], breaks])]
    stops = index[np.concatenate([breaks - 1, [len(index) - 1]])] + 1
    runs = [[int(a), int(b)] for a, b in zip(starts, stops)]
    return runs[0] if len(runs) == 1 else runs


def parse_parts(value: Any, num_vertices: int, where: str) -> dict[str, Tensor]:
    """Read ``info.correspondence_parts`` (see ``docs/data-format.md``) into index tensors.

    ``value`` maps a part name to one ``[start, stop)`` range or a list of such ranges; raises
    :class:`DataError` (prefixed with ``where``) for anything else or for indices out of range.
    """
    fix = f"{where}: info.{PARTS_KEY}"
    if not isinstance(value, dict):
        raise DataError(f"{fix} must map part names to [start, stop) vertex ranges")
    parts = {}
    for name, ranges in value.items():
        if not isinstance(name, str) or not _PART_NAME.match(name):
            raise DataError(f"{fix}: part name {name!r} is not allowed (letters, digits, _, -)")
        if isinstance(ranges, list) and len(ranges) == 2 and all(type(x) is int for x in ranges):
            ranges = [ranges]
        if not isinstance(ranges, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r) for r in ranges
        ):
            raise DataError(
                f"{fix}: part {name!r} must be [start, stop] or a list of [start, stop] integer "
                f"ranges, got {ranges!r}"
            )
        for start, stop in ranges:
            if not 0 <= start <= stop <= num_vertices:
                raise DataError(
                    f"{fix}: part {name!r} has the range [{start}, {stop}) but the correspondence "
                    f"surface has {num_vertices} vertices (need 0 <= start <= stop <= "
                    f"{num_vertices}); re-create the dataset"
                )
        index = np.unique(np.concatenate([np.arange(a, b) for a, b in ranges] or [[]]))
        parts[name] = torch.from_numpy(index.astype(np.int64))
    return parts


def scan_problem(mesh: TriMesh) -> str | None:
    """Why ``mesh`` cannot serve as a scan (empty, non-finite, bad faces or colours), or ``None``
    if it can."""
    vertices = np.asarray(mesh.vertices)
    faces = np.asarray(mesh.faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        return f"scan vertices have shape {vertices.shape}, expected (V, 3)"
    if faces.ndim != 2 or faces.shape[1] != 3:
        return f"scan faces have shape {faces.shape}, expected (T, 3) triangles"
    if len(vertices) < 3 or len(faces) == 0:
        return "the scan is empty (no triangles)"
    if not np.isfinite(vertices).all():
        return "the scan has NaN or infinite vertex coordinates"
    if faces.min() < 0 or faces.max() >= len(vertices):
        return f"the scan has face indices out of range for its {len(vertices)} vertices"
    if mesh.colors is not None:
        return colour_problem(np.asarray(mesh.colors), len(vertices))
    return None


def check_frame_id(frame_id: str) -> None:
    if not isinstance(frame_id, str) or not _FRAME_ID.match(frame_id):
        raise DataError(
            f"frame id {frame_id!r} is not allowed: use 1-200 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (it becomes a file name)"
        )


def _as_numpy(array: ArrayLike | Sequence[float], dtype: type | None) -> np.ndarray:
    if isinstance(array, Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=dtype)


# ----------------------------------------------------------------------------- writer


class DatasetWriter:
    """Write a dataset frame by frame; nothing appears at ``out_dir`` until :meth:`finish`.

    Frames are written into a hidden sibling folder ``.<out_dir name>.writing-*``; ``finish()``
    writes the arrays and the manifest, validates the result with :func:`load_dataset` and only then
    moves it to ``out_dir``, replacing an existing invskin dataset there (``overwrite=True``). A
    folder that holds anything else is never replaced. Use it as a context manager, or call
    :meth:`abort`, so a failure removes the partial folder.

        with DatasetWriter(out, "my-data", skeleton) as writer:
            for frame_id, scan, transforms, motion in frames:
                writer.add_frame(frame_id, scan, transforms, motion)
            writer.set_splits({"train": [...], "test-within": [...], "test-out": [...]})
            dataset = writer.finish()
    """

    def __init__(
        self,
        out_dir: Path | str,
        name: str,
        skeleton: Skeleton,
        prior: BodyPrior | None = None,
        source: str = "",
        *,
        info: Mapping[str, Any] | None = None,
        scan_format: str = "ply",
        overwrite: bool = True,
    ) -> None:
        self.out_dir = Path(out_dir).absolute()
        if self.out_dir.name in ("", ".", ".."):
            raise DataError(f"output folder {out_dir!r} needs a name, e.g. data/my-dataset")
        if scan_format not in SCAN_FORMATS:
            raise DataError(f"scan_format must be one of {SCAN_FORMATS}, got {scan_format!r}")
        if prior is not None and prior.weights.shape[1] != skeleton.num_bones:
            raise DataError(
                f"the body prior has weights for {prior.weights.shape[1]} bones but the skeleton "
                f"has {skeleton.num_bones}; pass the skeleton of the same body model"
            )
        _check_destination(self.out_dir, overwrite)
        self.name = name
        self.skeleton = skeleton
        self.prior = prior
        self.source = source
        self.info = dict(info or {})
        json.dumps(self.info)  # fail now, not in finish(), if info is not JSON
        self.scan_format = scan_format
        self.overwrite = overwrite
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp: Path | None = Path(
            tempfile.mkdtemp(prefix=f".{self.out_dir.name}.writing-", dir=self.out_dir.parent)
        )
        (self._tmp / SCANS_DIR).mkdir()
        self._frames: list[dict[str, str]] = []
        self._ids: set[str] = set()
        self._transforms: list[np.ndarray] = []
        self._coloured: list[bool] = []
        self._splits: dict[str, list[str]] | None = None
        self._correspondence: CorrespondenceTruth | None = None
        self._body_params: dict[str, np.ndarray] | None = None

    # context manager: abort on error
    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.abort()

    @property
    def frame_ids(self) -> tuple[str, ...]:
        return tuple(frame["id"] for frame in self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def _folder(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("this DatasetWriter is finished or aborted; make a new one")
        return self._tmp

    def add_frame(self, frame_id: str, scan: TriMesh, transforms: ArrayLike, motion: str) -> None:
        """Write one frame: its raw posed scan (metres) and its (J, 4, 4) canonical-to-posed transforms.

        A scan's vertex colours are written with it; either every scan of a dataset has colours
        (the manifest then says ``scan_colour: true``) or none has (checked in :meth:`finish`).
        Raises :class:`DataError` (naming the frame) if the scan is empty, non-finite or not in
        metres, or the transforms do not match the skeleton; nothing of that frame is kept then.
        """
        folder = self._folder()
        check_frame_id(frame_id)
        if frame_id in self._ids:
            raise DataError(f"frame {frame_id!r} was added twice; frame ids must be unique")
        if not isinstance(motion, str) or not motion:
            raise DataError(f"frame {frame_id!r}: motion must be a non-empty string")
        array = _as_numpy(transforms, np.float64)
        problem = transforms_problem(array, self.skeleton.num_bones)
        if problem is None and array.shape != (self.skeleton.num_bones, 4, 4):
            problem = f"bone transforms have shape {array.shape}, expected ({self.skeleton.num_bones}, 4, 4)"
        if problem is None:
            problem = scan_problem(scan)
        if problem is not None:
            raise DataError(f"frame {frame_id!r}: {problem}")
        try:
            check_units_metres(scan, f"scan of frame {frame_id!r}")
        except ValueError as error:
            raise DataError(str(error)) from error
        relative = f"{SCANS_DIR}/{frame_id}.{self.scan_format}"
        save_mesh(folder / relative, scan)
        self._frames.append({"id": frame_id, "scan": relative, "motion": motion})
        self._ids.add(frame_id)
        self._transforms.append(array.astype(np.float32))
        self._coloured.append(scan.colors is not None)

    def set_splits(self, splits: Mapping[str, Sequence[str]]) -> None:
        """Name the frames of each split (by frame id). Standard names: train, test-within, test-out.

        Without a call, every frame is in ``train`` and the test splits are empty.
        """
        self._splits = {name: list(ids) for name, ids in splits.items()}

    def set_correspondence(
        self,
        canonical_vertices: ArrayLike,
        faces: ArrayLike,
        posed_vertices: ArrayLike,
        parts: Mapping[str, ArrayLike | Sequence[int]] | None = None,
        colors: ArrayLike | None = None,
        brightness: ArrayLike | Sequence[float] | None = None,
    ) -> None:
        """Ground-truth correspondences; ``posed_vertices`` (F, V, 3) follows the order of frames added.

        ``parts`` optionally names subsets of the vertices (part name -> vertex indices, any order;
        parts may overlap); they are written to the manifest as ``info.correspondence_parts``.
        ``colors`` (V, 3) in [0, 1] optionally gives each vertex's printed colour and
        ``brightness`` (F,) each frame's lighting factor (see :class:`CorrespondenceTruth`).
        """
        if parts is not None and PARTS_KEY in self.info:
            raise DataError(
                f"info already holds {PARTS_KEY!r}; pass the parts once (to set_correspondence)"
            )
        index = {}
        for name, value in (parts or {}).items():
            value = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
            index[name] = torch.from_numpy(np.unique(np.asarray(value, dtype=np.int64)))
        self._correspondence = CorrespondenceTruth(
            canonical_vertices=torch.from_numpy(_as_numpy(canonical_vertices, np.float32)),
            faces=torch.from_numpy(_as_numpy(faces, np.int64)),
            posed_vertices=torch.from_numpy(_as_numpy(posed_vertices, np.float32)),
            parts=index,
            colors=None if colors is None else torch.from_numpy(_as_numpy(colors, np.float32)),
            brightness=(
                None if brightness is None else torch.from_numpy(_as_numpy(brightness, np.float32))
            ),
        )

    def set_body_params(self, **arrays: ArrayLike) -> None:
        """Optional body-model parameters (e.g. ``pose`` (F, 72), ``transl`` (F, 3)); plain arrays."""
        self._body_params = {key: _as_numpy(value, None) for key, value in arrays.items()}

    def abort(self) -> None:
        """Remove the partial folder (a no-op after :meth:`finish`)."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def finish(self) -> Dataset:
        """Write arrays and manifest, validate, move into place at ``out_dir``; return the dataset."""
        folder = self._folder()
        try:
            self._write_rest(folder)
            load_dataset(folder)  # validate everything before anything is replaced
            _check_destination(self.out_dir, self.overwrite)
            _move_into_place(folder, self.out_dir)
            self._tmp = None
        except BaseException:
            self.abort()
            raise
        return load_dataset(self.out_dir)

    def _write_rest(self, folder: Path) -> None:
        if not self._frames:
            raise DataError(f"no frames were added to dataset {self.name!r}; nothing to write")
        ids = self.frame_ids
        splits = self._splits if self._splits is not None else {"train": list(ids)}
        for name in STANDARD_SPLITS:
            splits.setdefault(name, [])
        _check_splits(splits, set(ids), f"splits of dataset {self.name!r}")
        scan_colour = _scan_colour(ids, self._coloured, self.name)
        self.skeleton.save(folder / SKELETON_FILE)
        np.savez(folder / TRANSFORMS_FILE, transforms=np.stack(self._transforms))
        if self.prior is not None:
            np.savez(
                folder / PRIOR_FILE,
                vertices=self.prior.vertices.detach().cpu().numpy().astype(np.float32),
                faces=self.prior.faces.detach().cpu().numpy().astype(np.int64),
                weights=self.prior.weights.detach().cpu().numpy().astype(np.float32),
            )
        if self._correspondence is not None:
            truth = self._correspondence
            if truth.posed_vertices.shape[0] != len(ids):
                raise DataError(
                    f"correspondence ground truth has {truth.posed_vertices.shape[0]} posed frames "
                    f"but {len(ids)} frames were added; pass one (V, 3) array per frame"
                )
            if truth.brightness is not None and truth.brightness.shape[0] != len(ids):
                raise DataError(
                    f"correspondence ground truth has {truth.brightness.shape[0]} brightness "
                    f"factors but {len(ids)} frames were added; pass one per frame"
                )
            colour_truth = {}
            if truth.colors is not None:
                colour_truth["colors"] = truth.colors.numpy()
            if truth.brightness is not None:
                colour_truth["brightness"] = truth.brightness.numpy()
            np.savez(
                folder / CORRESPONDENCE_FILE,
                canonical_vertices=truth.canonical_vertices.numpy(),
                faces=truth.faces.numpy(),
                posed_vertices=truth.posed_vertices.numpy(),
                **colour_truth,
            )
        if self._body_params is not None:
            np.savez(folder / BODY_PARAMS_FILE, **self._body_params)
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "source": self.source,
            "units": "m",
            "num_bones": self.skeleton.num_bones,
            "frames": self._frames,
            "splits": splits,
            "prior": PRIOR_FILE if self.prior is not None else None,
            "correspondence": CORRESPONDENCE_FILE if self._correspondence is not None else None,
            "body_params": BODY_PARAMS_FILE if self._body_params is not None else None,
            SCAN_COLOUR_KEY: scan_colour,
            "info": self.info,
        }
        if self._correspondence is not None and self._correspondence.parts:
            parts = {k: part_ranges(v) for k, v in self._correspondence.parts.items()}
            manifest["info"] = {**self.info, PARTS_KEY: parts}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _scan_colour(frame_ids: Sequence[str], coloured: Sequence[bool], name: str) -> bool:
    """Whether every scan has vertex colours; raise if only some do."""
    if all(coloured):
        return True
    if any(coloured):
        bare = [i for i, c in zip(frame_ids, coloured) if not c]
        raise DataError(
            f"dataset {name!r}: {len(coloured) - len(bare)} scans have vertex colours but "
            f"{len(bare)} have none (e.g. {bare[:3]}); give every scan colours, or drop them all "
            "(TriMesh(vertices, faces) without colors)"
        )
    return False


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a folder; choose another output path")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / MANIFEST).exists():
        raise DataError(
            f"{out_dir} exists and is not an invskin dataset (no {MANIFEST}); it is never "
            "replaced: choose another output folder or remove it yourself"
        )
    if not overwrite:
        raise DataError(f"{out_dir} already holds a dataset; pass overwrite=True to replace it")


def _move_into_place(folder: Path, out_dir: Path) -> None:
    """Rename ``folder`` to ``out_dir``; an existing ``out_dir`` is moved aside first, then removed."""
    if not out_dir.exists():
        os.replace(folder, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out_dir, old)
    try:
        os.replace(folder, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _check_splits(splits: Mapping[str, Sequence[str]], known: set[str], where: str) -> None:
    for name, ids in splits.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name):
            raise DataError(f"{where}: split name {name!r} is not allowed (letters, digits, _, -)")
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(
                f"{where}: split {name!r} names frames that are not in the dataset: "
                f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}; list only existing frame ids"
            )
        if len(set(ids)) != len(ids):
            raise DataError(f"{where}: split {name!r} lists a frame twice")
    train = set(splits.get("train", ()))
    for name in ("test-within", "test-out"):
        leaked = sorted(train & set(splits.get(name, ())))
        if leaked:
            raise DataError(
                f"{where}: frames {leaked[:5]} are in both 'train' and {name!r}; a test frame "
                "must not be trained on"
            )


# ----------------------------------------------------------------------------- reader


def load_dataset(path: Path | str) -> Dataset:
    """Load and validate an invskin dataset folder (scans load lazily via :meth:`Dataset.scan`)."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise DataError(
            f"{root} is not a folder; pass an invskin dataset folder (made by 'invskin synth' "
            "or a converter in invskin.data.loaders)"
        )
    if not manifest_path.exists():
        raise DataError(
            f"{manifest_path} is missing: {root} is not an invskin dataset, or its writer did not "
            "finish; re-create it ('invskin synth' or a converter in invskin.data.loaders)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataError(
            f"{manifest_path} is not valid JSON ({error}); re-create the dataset"
        ) from error
    manifest = _check_manifest(manifest, manifest_path)

    skeleton_path = root / SKELETON_FILE
    try:
        skeleton = Skeleton.load(skeleton_path)
    except (FileNotFoundError, ValueError) as error:
        raise DataError(f"{skeleton_path}: {error}; re-create the dataset") from error

    frames = manifest["frames"]
    frame_ids = tuple(frame["id"] for frame in frames)
    num_bones = skeleton.num_bones
    if manifest.get("num_bones", num_bones) != num_bones:
        raise DataError(
            f"{manifest_path} says {manifest['num_bones']} bones but {skeleton_path} has "
            f"{num_bones}; the folder mixes two datasets: re-create it"
        )

    transforms_path = root / TRANSFORMS_FILE
    arrays = _load_npz(transforms_path, {"transforms": (len(frames), num_bones, 4, 4)})
    problem = transforms_problem(arrays["transforms"], num_bones)
    if problem is not None:
        raise DataError(f"{transforms_path}: {problem}; re-create the dataset")

    for frame in frames:
        scan_path = root / frame["scan"]
        if not scan_path.is_file():
            raise DataError(
                f"{scan_path}: scan of frame {frame['id']!r} listed in {MANIFEST} is missing; "
                "the folder is incomplete: re-create the dataset"
            )

    prior = None
    if manifest["prior"] is not None:
        prior_path = root / manifest["prior"]
        arrays_p = _load_npz(
            prior_path, {"vertices": (None, 3), "faces": (None, 3), "weights": (None, num_bones)}
        )
        _check_mesh_arrays(prior_path, arrays_p, "vertices", "weights")
        try:
            prior = BodyPrior(
                vertices=torch.from_numpy(arrays_p["vertices"].astype(np.float32)),
                faces=torch.from_numpy(arrays_p["faces"].astype(np.int64)),
                weights=torch.from_numpy(arrays_p["weights"].astype(np.float32)),
            )
        except DataError as error:
            raise DataError(f"{prior_path}: {error}; re-create the dataset") from error

    correspondence = None
    info = manifest["info"] if isinstance(manifest["info"], dict) else {}
    if manifest["correspondence"] is not None:
        corr_path = root / manifest["correspondence"]
        arrays_c = _load_npz(
            corr_path,
            {
                "canonical_vertices": (None, 3),
                "faces": (None, 3),
                "posed_vertices": (len(frames), None, 3),
            },
        )
        _check_mesh_arrays(corr_path, arrays_c, "canonical_vertices", "posed_vertices")
        colour_truth = _load_colour_truth(corr_path, len(frames))
        try:
            correspondence = CorrespondenceTruth(
                canonical_vertices=torch.from_numpy(
                    arrays_c["canonical_vertices"].astype(np.float32)
                ),
                faces=torch.from_numpy(arrays_c["faces"].astype(np.int64)),
                posed_vertices=torch.from_numpy(arrays_c["posed_vertices"].astype(np.float32)),
                **colour_truth,
            )
        except DataError as error:
            raise DataError(f"{corr_path}: {error}; re-create the dataset") from error
        if PARTS_KEY in info:
            parts = parse_parts(
                info[PARTS_KEY], correspondence.canonical_vertices.shape[0], str(manifest_path)
            )
            correspondence = replace(correspondence, parts=parts)
    elif PARTS_KEY in info:
        raise DataError(
            f"{manifest_path}: info.{PARTS_KEY} names parts of the correspondence surface but "
            "the dataset has none ('correspondence' is null); remove the key or add the file"
        )

    if manifest["body_params"] is not None and not (root / manifest["body_params"]).is_file():
        raise DataError(
            f"{root / manifest['body_params']}: listed in {MANIFEST} but missing; re-create the dataset"
        )

    _check_splits(manifest["splits"], set(frame_ids), str(manifest_path))
    position = {frame_id: i for i, frame_id in enumerate(frame_ids)}
    splits = {name: tuple(position[i] for i in ids) for name, ids in manifest["splits"].items()}
    return Dataset(
        root=root,
        name=manifest["name"],
        source=manifest["source"],
        skeleton=skeleton,
        frame_ids=frame_ids,
        motions=tuple(frame["motion"] for frame in frames),
        scan_files=tuple(frame["scan"] for frame in frames),
        transforms=torch.from_numpy(arrays["transforms"].astype(np.float32)),
        splits=splits,
        prior=prior,
        correspondence=correspondence,
        info=manifest["info"],
        scan_colour=manifest[SCAN_COLOUR_KEY],
    )


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    redo = "re-create the dataset with this version of invskin"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DataError(
            f"{path}: not an invskin dataset manifest ('format' is not {FORMAT_NAME!r})"
        )
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise DataError(f"{path}: 'version' must be a positive integer, got {version!r}; {redo}")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{path}: dataset format version {version} is newer than this invskin reads "
            f"({FORMAT_VERSION}); upgrade invskin"
        )
    if manifest.get("units", "m") != "m":
        raise DataError(
            f"{path}: units must be 'm' (metres), got {manifest.get('units')!r}; {redo}"
        )
    frames = manifest.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{path}: 'frames' must be a non-empty list; {redo}")
    seen: set[str] = set()
    for k, frame in enumerate(frames):
        if not isinstance(frame, dict) or not {"id", "scan", "motion"} <= set(frame):
            raise DataError(f"{path}: frame {k} needs 'id', 'scan' and 'motion'; {redo}")
        try:
            check_frame_id(frame["id"])
        except DataError as error:
            raise DataError(f"{path}: {error}") from None
        if frame["id"] in seen:
            raise DataError(f"{path}: frame id {frame['id']!r} appears twice; {redo}")
        seen.add(frame["id"])
        if not _inside_dataset(frame["scan"]):
            raise DataError(
                f"{path}: frame {frame['id']!r} scan path must be relative, inside the dataset "
                f"folder (no '..'); {redo}"
            )
        if not isinstance(frame["motion"], str):
            raise DataError(f"{path}: frame {frame['id']!r} motion must be a string; {redo}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in splits.values()
    ):
        raise DataError(f"{path}: 'splits' must map split names to lists of frame ids; {redo}")
    num_bones = manifest.get("num_bones", 1)
    if not isinstance(num_bones, int) or isinstance(num_bones, bool) or num_bones < 1:
        raise DataError(f"{path}: 'num_bones' must be a positive integer; {redo}")
    for key, kind, what in (
        ("name", str, "a string"),
        ("source", str, "a string"),
        ("info", dict, "an object"),
    ):
        if key in manifest and not isinstance(manifest[key], kind):
            raise DataError(f"{path}: {key!r} must be {what}; {redo}")
    for key in ("prior", "correspondence", "body_params"):
        value = manifest.setdefault(key, None)
        if value is not None and not _inside_dataset(value):
            raise DataError(
                f"{path}: {key!r} must be null or a relative file name inside the dataset folder "
                f"(not absolute, no '..'), got {value!r}; {redo}"
            )
    scan_colour = manifest.setdefault(SCAN_COLOUR_KEY, False)
    if not isinstance(scan_colour, bool):
        raise DataError(
            f"{path}: {SCAN_COLOUR_KEY!r} must be true or false (whether every scan carries "
            f"vertex colours), got {scan_colour!r}; fix the manifest or {redo}"
        )
    manifest.setdefault("name", path.parent.name)
    manifest.setdefault("source", "")
    manifest.setdefault("info", {})
    return manifest


def _inside_dataset(value: Any) -> bool:
    """Whether a manifest path stays inside the dataset folder: a non-empty relative path (POSIX or
    Windows style) without ``..``."""
    if not isinstance(value, str) or not value.strip():
        return False
    for pure in (PurePosixPath(value), PureWindowsPath(value)):
        if pure.is_absolute() or pure.anchor or ".." in pure.parts:
            return False
    return True


def _check_mesh_arrays(
    path: Path, arrays: dict[str, np.ndarray], vertices: str, per_vertex: str
) -> None:
    """Integer ``faces``, and as many rows of ``per_vertex`` (its second-to-last axis) as
    ``vertices`` has vertices."""
    if arrays["faces"].dtype.kind not in "iu":
        raise DataError(f"{path}: 'faces' must be integers, got {arrays['faces'].dtype}")
    count, rows = arrays[vertices].shape[0], arrays[per_vertex].shape[-2]
    if count != rows:
        raise DataError(
            f"{path}: {per_vertex!r} has {rows} vertex rows for {count} {vertices!r}; re-create it"
        )


def _load_colour_truth(path: Path, num_frames: int) -> dict[str, Tensor]:
    """The optional ``colors`` (V, 3) and ``brightness`` (F,) arrays of the correspondence file,
    as float32 tensors keyed as :class:`CorrespondenceTruth` names them (empty when absent)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            present = [key for key in ("colors", "brightness") if key in data.files]
    except NPZ_READ_ERRORS as error:
        raise DataError(f"{path} is not a readable .npz file ({error}); re-create it") from error
    shapes = {"colors": (None, 3), "brightness": (num_frames,)}
    arrays = _load_npz(path, {key: shapes[key] for key in present}) if present else {}
    return {key: torch.from_numpy(value.astype(np.float32)) for key, value in arrays.items()}


def _load_npz(path: Path, expected: Mapping[str, tuple[int | None, ...]]) -> dict[str, np.ndarray]:
    """Load the named arrays from ``path`` and check their shapes (``None`` matches any size)."""
    if not path.is_file():
        raise DataError(f"{path} is missing; the dataset folder is incomplete: re-create it")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in expected if key not in data.files]
            if missing:
                raise DataError(
                    f"{path} lacks the arrays {missing} (it has {data.files}); re-create the dataset"
                )
            arrays = {key: data[key] for key in expected}
    except NPZ_READ_ERRORS as error:
        if isinstance(error, DataError):
            raise
        raise DataError(
            f"{path} is not a readable .npz file ({error}); re-create the dataset"
        ) from error
    for key, shape in expected.items():
        array = arrays[key]
        if array.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(array.shape, shape)
        ):
            pretty = tuple("*" if s is None else s for s in shape)
            raise DataError(
                f"{path}: array {key!r} has shape {array.shape}, expected {pretty}; "
                "re-create the dataset"
            )
        if array.dtype.kind not in "fiu":
            raise DataError(
                f"{path}: array {key!r} has dtype {array.dtype}, expected real numbers; "
                "re-create the dataset"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DataError(f"{path}: array {key!r} contains NaN or infinite values; re-create it")
    return arrays
