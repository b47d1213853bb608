"""Shared pieces of the converters: per-frame error collection, unit detection, split rules.

Error policy (all converters): every frame is tried; problems are collected per frame as
``(file, problem)``. With ``skip_bad_frames=False`` (default) any problem fails the conversion with
one :class:`ConversionError` that lists them all; with ``skip_bad_frames=True`` bad frames are left
out, a warning lists them and the manifest's ``info["skipped_frames"]`` records them. Either way the
output folder is written through :class:`~invskin.data.format.DatasetWriter`, so an existing dataset
there is only replaced by a complete one.

Units rule (``units="auto"``): a scan whose bounding-box diagonal is at most 10 is taken as metres;
between 400 and 10,000 as millimetres (divided by 1000, with one warning per conversion); anything
else is an error asking for an explicit ``units=`` (a person is about 1-3 m tall and wide).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from invskin import safe_pickle
from invskin.data.format import DataError, DatasetWriter
from invskin.errors import NPZ_READ_ERRORS
from invskin.geometry import transforms_problem
from invskin.mesh.io import TriMesh, bounding_box_diagonal, check_units_metres

logger = logging.getLogger("invskin.data")

READ_ERRORS = NPZ_READ_ERRORS

UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MM_MIN_DIAGONAL = 400.0  # 0.4 m in millimetres: smaller "auto" scans above 10 are ambiguous
MM_MAX_DIAGONAL = 10_000.0


class ConversionError(DataError):
    """One or more frames (or whole input files) could not be converted; lists every problem."""

    def __init__(self, source: Path | str, problems: Sequence[FrameProblem], total: int) -> None:
        self.problems = list(problems)
        lines = [f"  {p.file}: {p.problem}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        super().__init__(
            f"{len(self.problems)} of {total} frames of {source} could not be converted; fix "
            "these files, or pass skip_bad_frames=True to leave them out (nothing was written):\n"
            + "\n".join(lines)
        )


@dataclass(frozen=True)
class FrameProblem:
    file: str
    problem: str


@dataclass(frozen=True)
class FrameJob:
    """One frame to convert: ``load()`` returns its scan (metres) and (J, 4, 4) transforms."""

    frame_id: str
    file: Path
    motion: str
    load: Callable[[], tuple[TriMesh, np.ndarray]]


@dataclass
class ConversionReport:
    """What happened to each frame: written ids, problems of skipped frames, unit conversions."""

    written: list[str] = field(default_factory=list)
    skipped: list[FrameProblem] = field(default_factory=list)
    millimetres: list[str] = field(default_factory=list)


def safe_frame_id(text: str) -> str:
    """A frame id (file-name safe) made from ``text``: other characters become ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("._-")
    if not cleaned:
        raise DataError(f"cannot make a frame id from {text!r}")
    return cleaned[:200]


def scan_to_metres(
    mesh: TriMesh, name: str, units: str = "auto", report: ConversionReport | None = None
) -> TriMesh:
    """``mesh`` in metres: scaled by the given ``units``, or detected (see module docstring)."""
    if units not in ("auto", *UNIT_SCALE):
        raise DataError(f"units must be 'auto', 'm', 'cm' or 'mm', got {units!r}")
    if mesh.num_faces == 0:
        raise DataError(f"{name}: the scan is empty (no triangles); re-export it with faces")
    scale = UNIT_SCALE.get(units, 1.0)
    if units == "auto":
        diagonal = bounding_box_diagonal(mesh)
        if MM_MIN_DIAGONAL <= diagonal <= MM_MAX_DIAGONAL:
            scale = 0.001
            if report is not None:
                report.millimetres.append(name)
        elif diagonal > 10.0:
            raise DataError(
                f"{name}: bounding-box diagonal is {diagonal:.4g}: neither metres nor millimetres "
                "of a person; pass units='cm' (or 'mm'/'m') explicitly"
            )
    if scale != 1.0:
        mesh = replace(mesh, vertices=mesh.vertices * scale)  # keeps the vertex colours
    try:
        check_units_metres(mesh, name)
    except ValueError as error:
        raise DataError(str(error)) from error
    return mesh


def check_array(
    data: Any, key: str, shape: tuple[int | None, ...], file: Path | str, finite: bool = True
) -> np.ndarray:
    """``data[key]`` as float64 with the given shape (``None`` = any) and finite values."""
    if key not in data:
        keys = sorted(data.files if hasattr(data, "files") else data)
        raise DataError(f"{file}: no array {key!r} (it has {keys}); is this the right file?")
    try:
        raw = np.asarray(data[key])
    except READ_ERRORS as error:
        raise DataError(f"{file}: {key!r} cannot be read ({error})") from error
    if raw.dtype.kind not in "fiub":
        raise DataError(f"{file}: {key!r} has dtype {raw.dtype}, expected real numbers")
    array = raw.astype(np.float64)
    if array.ndim != len(shape) or any(
        w is not None and g != w for g, w in zip(array.shape, shape)
    ):
        pretty = tuple("*" if s is None else s for s in shape)
        raise DataError(f"{file}: {key!r} has shape {array.shape}, expected {pretty}")
    if finite and not np.isfinite(array).all():
        raise DataError(f"{file}: {key!r} contains NaN or infinite values")
    return array


def check_transforms(transforms: np.ndarray, num_bones: int, file: Path | str) -> np.ndarray:
    problem = transforms_problem(transforms, num_bones)
    if problem is not None:
        raise DataError(f"{file}: {problem}")
    return transforms


def load_npz(path: Path, what: str) -> Any:
    """Open an ``.npz`` (no pickles) or fail with one message naming it and what it should be."""
    if not path.is_file():
        raise DataError(f"{path} is missing; expected {what}")
    try:
        return np.load(path, allow_pickle=False)
    except READ_ERRORS as error:
        raise DataError(f"{path} is not a readable .npz file ({error}); expected {what}") from error


def load_plain_pickle(path: Path, what: str) -> Any:
    """A pickle of plain Python / numpy data, e.g. CAPE's subject genders, read by
    :func:`invskin.safe_pickle.load` (nothing in the file can run code)."""
    return safe_pickle.load(path, what)


def interval_split(count: int, interval: int) -> tuple[list[int], list[int]]:
    """Positions ``k`` with ``k % interval == 0`` (kept) and ``== interval // 2`` (held out).

    The held-out list is empty for ``interval == 1``.
    """
    if interval < 1:
        raise DataError(f"frame_interval must be >= 1, got {interval}")
    kept = [k for k in range(count) if k % interval == 0]
    held = [k for k in range(count) if interval > 1 and k % interval == interval // 2]
    return kept, held


def num_train_clips(count: int, test_out_fraction: float) -> int:
    """Clips kept for training: ``floor((1 - fraction) count)``, at least 1, at most count - 1."""
    if not 0.0 <= test_out_fraction < 1.0:
        raise DataError(f"test_out_fraction must be in [0, 1), got {test_out_fraction}")
    if count <= 1:
        return count
    keep = int(np.floor((1.0 - test_out_fraction) * count + 1e-9))
    if test_out_fraction == 0.0:
        return count
    return min(max(keep, 1), count - 1)


def run_frames(
    writer: DatasetWriter,
    jobs: Iterable[FrameJob],
    *,
    source: Path | str,
    skip_bad_frames: bool,
    report: ConversionReport,
    progress: bool = True,
    total: int | None = None,
) -> ConversionReport:
    """Convert every job into ``writer``, collecting problems per frame (see module docstring)."""
    problems: list[FrameProblem] = []
    count = 0
    for job in tqdm(
        jobs, total=total, desc=f"converting {Path(source).name}", disable=not progress
    ):
        count += 1
        try:
            scan, transforms = job.load()
            writer.add_frame(job.frame_id, scan, transforms, job.motion)
        except (DataError, ValueError, OSError, KeyError) as error:
            problems.append(FrameProblem(str(job.file), str(error)))
            continue
        report.written.append(job.frame_id)
    if problems and (not skip_bad_frames or not report.written):
        raise ConversionError(source, problems, count)
    if problems:
        logger.warning(
            "skipped %d of %d frames of %s:\n%s",
            len(problems),
            count,
            source,
            "\n".join(f"  {p.file}: {p.problem}" for p in problems),
        )
    report.skipped.extend(problems)
    if report.millimetres:
        logger.warning(
            "%d scans of %s were in millimetres (bounding-box diagonal between %g and %g): "
            "converted to metres, e.g. %s",
            len(report.millimetres),
            source,
            MM_MIN_DIAGONAL,
            MM_MAX_DIAGONAL,
            report.millimetres[0],
        )
    return report


def report_info(report: ConversionReport) -> dict[str, Any]:
    """Manifest ``info`` entries recording skipped frames and unit conversions."""
    return {
        "skipped_frames": [{"file": p.file, "problem": p.problem} for p in report.skipped],
        "converted_from_millimetres": len(report.millimetres),
    }


def written_splits(splits: dict[str, list[str]], report: ConversionReport) -> dict[str, list[str]]:
    """``splits`` restricted to the frames that were written."""
    written = set(report.written)
    return {name: [i for i in ids if i in written] for name, ids in splits.items()}
