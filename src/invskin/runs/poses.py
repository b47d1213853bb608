"""The poses a command is given: bone transforms (F, J, 4, 4) and frame names from a dataset folder
(one split of it), an array file (``.npz`` with ``transforms``, ``.npy``), or a motion file (AMASS
``.npz``, ``.bvh``, glTF animation) retargeted onto a run's skeleton; and many such sequences at
once for bulk reposing (``invskin repose --poses A B FOLDER``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from invskin.body import Skeleton
from invskin.data.format import load_dataset
from invskin.errors import NPZ_READ_ERRORS, DataError
from invskin.motion import MOTION_SUFFIXES, check_motion_file, is_motion_file, load_motion
from invskin.runs.bulk_repose import Sequence
from invskin.runs.folder import run_skeleton


def read_poses(
    poses: Path,
    split: str | None,
    skeleton: Skeleton | None = None,
    mapping: Path | None = None,
    smpl: Path | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Bone transforms (F, J, 4, 4) and frame names from a dataset folder or a .npz/.npy file.

    Given the run's ``skeleton``, a file may also be a motion (AMASS npz, BVH, glTF animation),
    retargeted onto it by :func:`invskin.motion.load_motion` (through the JSON ``mapping``; an
    AMASS subject's rest joints from the SMPL model ``smpl``).
    """
    poses = Path(poses)
    if poses.is_dir():
        dataset = load_dataset(poses)
        if split is not None:
            dataset = dataset.split(split)
        return dataset.transforms.float(), list(dataset.frame_ids)
    if not poses.exists():
        raise FileNotFoundError(f"poses file {poses} does not exist")
    if skeleton is not None:
        transforms = load_motion(poses, skeleton, mapping, smpl=smpl)
        return transforms, [f"frame_{i:04d}" for i in range(len(transforms))]
    try:
        if poses.suffix == ".npz":
            with np.load(poses, allow_pickle=False) as data:
                if "transforms" not in data.files:
                    raise DataError(f"{poses} has no 'transforms' array (F, J, 4, 4)")
                array = data["transforms"]
        else:
            array = np.load(poses, allow_pickle=False)
    except DataError:
        raise
    except NPZ_READ_ERRORS as error:
        raise DataError(
            f"{poses} is not a readable .npz/.npy file of bone transforms ({error})"
        ) from error
    if not isinstance(array, np.ndarray) or array.ndim != 4 or array.shape[-2:] != (4, 4):
        shape = getattr(array, "shape", None)
        raise DataError(f"{poses}: expected bone transforms (F, J, 4, 4), got {shape}")
    if array.dtype.kind not in "fiu":
        raise DataError(f"{poses}: bone transforms must be numbers, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        bad = sorted({int(f) for f in np.argwhere(~np.isfinite(array))[:, 0]})
        raise DataError(f"{poses}: frames {bad[:10]} hold NaN or infinite transforms; fix them")
    return torch.from_numpy(array.astype(np.float32)), [f"frame_{i:04d}" for i in range(len(array))]


def collect_sequences(
    paths: list[Path],
    split: str | None,
    run: Path | None = None,
    mapping: Path | None = None,
    smpl: Path | None = None,
):
    """Motion sequences from files, folders of motion files and dataset folders (one sequence each).

    A sequence is named after its file's stem (or the dataset folder's name). Motion files of
    another format (AMASS, BVH, glTF) are retargeted onto the ``run``'s skeleton (through
    ``mapping``), as :func:`poses_for_run` does for one file."""
    sequences = []
    for path in map(Path, paths):
        if path.is_dir() and not (path / "invskin-dataset.json").exists():
            files = sorted(f for f in path.iterdir() if f.suffix in MOTION_SUFFIXES)
            if not files:
                raise FileNotFoundError(
                    f"{path} holds no motion files ({', '.join(MOTION_SUFFIXES)}) and is not a "
                    "dataset folder"
                )
        else:
            files = [path]
        for file in files:
            if run is None:
                transforms, names = read_poses(file, split)
            else:
                transforms, names = poses_for_run(run, file, split, mapping, smpl)
            sequences.append(
                Sequence(file.stem if file.is_file() else file.name, transforms, names)
            )
    return sequences


def poses_for_run(
    run: Path, poses: Path, split: str | None, mapping: Path | None, smpl: Path | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Bone transforms (F, J, 4, 4) and frame names for a run: a dataset folder, or a motion file
    (4x4 arrays, AMASS npz, BVH, glTF) retargeted onto the run's skeleton."""
    poses = Path(poses)
    if poses.is_dir() or not poses.is_file() or not is_motion_file(poses):
        return read_poses(poses, split)  # a dataset or 4x4 arrays: checked without the run
    check_motion_file(poses)  # a bad motion file is named before the run is needed
    return read_poses(poses, split, run_skeleton(run), mapping, smpl)
