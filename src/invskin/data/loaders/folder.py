"""Convert a plain folder of posed meshes + bone transforms + skeleton into invskin format.

Input layout (documented in ``docs/data-format.md``, "Plain folder input")::

    SRC/skeleton.json          invskin Skeleton JSON: names, parents, canonical (J, 4, 4)
    SRC/bone_transforms.npz    "transforms" (F, J, 4, 4) canonical-to-posed, column vectors, metres,
                               optional "frame_ids" (F,) strings naming the mesh of each row
       (or bone_transforms.npy, the (F, J, 4, 4) array alone)
    SRC/meshes/<frame_id>.ply  one posed mesh per frame (.ply or .obj; scans/ is accepted too);
                               without "frame_ids", meshes sorted by name (numbers numerically)
                               are the rows in order; vertex colours (PLY red/green/blue, OBJ
                               "v x y z r g b") are kept (every mesh has them, or none)
    SRC/splits.json            optional {"train": [ids], "test-within": [ids], "test-out": [ids]};
                               default: every frame in train
    SRC/motions.json           optional {frame_id: motion}; default: the frame id without a
                               trailing number ("walk_012" -> "walk")
    SRC/prior.npz              optional skinning-weight prior: vertices, faces, weights

Units follow the rule of :mod:`invskin.data.loaders.common` (``units="auto"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from invskin.body.skeleton import Skeleton
from invskin.data.format import BodyPrior, DataError, Dataset, DatasetWriter
from invskin.data.loaders.common import (
    READ_ERRORS,
    ConversionReport,
    FrameJob,
    check_array,
    check_transforms,
    load_npz,
    report_info,
    run_frames,
    scan_to_metres,
    written_splits,
)
from invskin.mesh.io import TriMesh, load_mesh

MESH_DIRS = ("meshes", "scans")
MESH_SUFFIXES = (".ply", ".obj")


def default_motion(frame_id: str) -> str:
    """``walk_012`` -> ``walk``; an id without a trailing number is its own motion."""
    motion = re.sub(r"[_.\-]*\d+$", "", frame_id)
    return motion or "default"


def _natural_key(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}); expected {what}") from error
    if not isinstance(data, dict):
        raise DataError(f"{path} must hold a JSON object: {what}")
    return data


def _read_transforms(src: Path, num_bones: int) -> tuple[np.ndarray, list[str] | None, Path]:
    npz, npy = src / "bone_transforms.npz", src / "bone_transforms.npy"
    if npz.is_file():
        with load_npz(npz, '"transforms" (F, J, 4, 4) and optional "frame_ids"') as data:
            transforms = check_array(data, "transforms", (None, None, 4, 4), npz, finite=False)
            frame_ids = None
            if "frame_ids" in data.files:
                try:
                    frame_ids = [str(i) for i in np.asarray(data["frame_ids"]).reshape(-1)]
                except READ_ERRORS as error:
                    raise DataError(f"{npz}: 'frame_ids' cannot be read ({error})") from error
        path = npz
    elif npy.is_file():
        try:
            array = np.load(npy, allow_pickle=False)
        except READ_ERRORS as error:
            raise DataError(f"{npy} is not a readable .npy file ({error})") from error
        transforms = check_array(
            {"transforms": array}, "transforms", (None, None, 4, 4), npy, False
        )
        frame_ids, path = None, npy
    else:
        raise DataError(
            f"{src} has no bone_transforms.npz (or .npy): save the (F, J, 4, 4) canonical-to-posed "
            "transforms there (see docs/data-format.md, 'Plain folder input')"
        )
    if transforms.shape[1] != num_bones:
        raise DataError(
            f"{path}: {transforms.shape[1]} bone transforms per frame but {src / 'skeleton.json'} "
            f"has {num_bones} bones; save the transforms of the skeleton's bones, in its order"
        )
    if frame_ids is not None and len(frame_ids) != len(transforms):
        raise DataError(f"{path}: {len(frame_ids)} frame_ids for {len(transforms)} transforms")
    return transforms, frame_ids, path


def convert_folder(
    src: Path | str,
    out: Path | str,
    *,
    units: str = "auto",
    skip_bad_frames: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> Dataset:
    """Convert a plain folder (module docstring) into an invskin dataset at ``out``; return it."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src} is not a folder; pass the folder holding skeleton.json")
    try:
        skeleton = Skeleton.load(src / "skeleton.json")
    except (FileNotFoundError, ValueError) as error:
        raise DataError(
            f"{error}; save the rig with invskin.body.Skeleton.save (see docs/data-format.md)"
        ) from error
    transforms, frame_ids, transforms_path = _read_transforms(src, skeleton.num_bones)

    mesh_dir = next((src / d for d in MESH_DIRS if (src / d).is_dir()), None)
    if mesh_dir is None:
        raise DataError(f"{src} has no meshes/ (or scans/) folder of posed meshes (.ply/.obj)")
    meshes = sorted(
        (p for p in mesh_dir.iterdir() if p.suffix.lower() in MESH_SUFFIXES), key=_natural_key
    )
    if frame_ids is None:
        if len(meshes) != len(transforms):
            raise DataError(
                f"{mesh_dir} holds {len(meshes)} meshes but {transforms_path} has "
                f"{len(transforms)} frames; keep one mesh per frame (or add 'frame_ids')"
            )
        frame_ids = [p.stem for p in meshes]
        files = meshes
    else:
        by_stem = {p.stem: p for p in meshes}
        missing = [i for i in frame_ids if i not in by_stem]
        if missing:
            raise DataError(
                f"{transforms_path} names frames without a mesh in {mesh_dir}: {missing[:5]}; "
                "add the meshes or fix 'frame_ids'"
            )
        files = [by_stem[i] for i in frame_ids]

    motions = {i: default_motion(i) for i in frame_ids}
    if (src / "motions.json").is_file():
        given = _read_json(src / "motions.json", "{frame_id: motion}")
        motions.update({str(k): str(v) for k, v in given.items() if k in motions})
    splits: dict[str, list[str]] = {"train": list(frame_ids)}
    if (src / "splits.json").is_file():
        given = _read_json(src / "splits.json", "{split: [frame ids]}")
        splits = {str(k): [str(i) for i in v] for k, v in given.items()}
        unknown = sorted({i for ids in splits.values() for i in ids} - set(frame_ids))
        if unknown:
            raise DataError(
                f"{src / 'splits.json'} names frames that have no mesh: {unknown[:5]}; "
                "list only existing frame ids"
            )

    prior = None
    if (src / "prior.npz").is_file():
        path = src / "prior.npz"
        with load_npz(path, "vertices, faces, weights") as data:
            vertices = check_array(data, "vertices", (None, 3), path)
            faces = check_array(data, "faces", (None, 3), path).astype(np.int64)
            weights = check_array(data, "weights", (len(vertices), skeleton.num_bones), path)
        try:
            prior = BodyPrior(
                torch.from_numpy(vertices).float(),
                torch.from_numpy(faces),
                torch.from_numpy(weights).float(),
            )
        except DataError as error:
            raise DataError(f"{path}: {error}") from error

    report = ConversionReport()
    jobs = [
        FrameJob(
            frame_id,
            files[k],
            motions[frame_id],
            _frame_loader(files[k], transforms[k], transforms_path, k, skeleton, units, report),
        )
        for k, frame_id in enumerate(frame_ids)
    ]
    with DatasetWriter(
        out, name or src.name, skeleton, prior=prior, source=f"folder {src}", info={}
    ) as writer:
        run_frames(
            writer,
            jobs,
            source=src,
            skip_bad_frames=skip_bad_frames,
            report=report,
            progress=progress,
            total=len(jobs),
        )
        writer.set_splits(written_splits(splits, report))
        writer.info.update(report_info(report))
        return writer.finish()


def _frame_loader(
    mesh_path: Path,
    transforms: np.ndarray,
    transforms_path: Path,
    row: int,
    skeleton: Skeleton,
    units: str,
    report: ConversionReport,
) -> Callable[[], tuple[TriMesh, np.ndarray]]:
    def load() -> tuple[TriMesh, np.ndarray]:
        check_transforms(transforms, skeleton.num_bones, f"{transforms_path} (row {row})")
        scan = scan_to_metres(load_mesh(mesh_path), str(mesh_path), units, report)
        return scan, transforms

    return load
