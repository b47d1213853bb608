"""Motions for reposing, in standard formats, retargeted onto a run's skeleton.

:func:`load_motion` is the one entry point ``invskin repose`` and ``invskin export`` use:

- ``.npy`` or ``.npz`` with ``transforms`` (F, J, 4, 4): canonical-to-posed bone transforms of the
  skeleton itself, used as they are;
- ``.npz`` with ``poses`` (and ``trans``): SMPL / SMPL+H / SMPL-X motions as AMASS stores them
  (:mod:`invskin.motion.amass`), for rigs with SMPL joint names (or a mapping file);
- ``.bvh``: :mod:`invskin.motion.bvh`;
- ``.gltf`` / ``.glb``: the first animation of the file (:mod:`invskin.motion.gltf_anim`).

Everything except the plain arrays is retargeted (:mod:`invskin.motion.retarget`): bones matched
by a JSON mapping file, by identical names, by skeleton family or by structure
(:mod:`invskin.motion.families`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from invskin.body.skeleton import Skeleton
from invskin.errors import DataError
from invskin.geometry import transforms_problem
from invskin.motion.amass import read_amass, smpl_rest_joints
from invskin.motion.bvh import read_bvh
from invskin.motion.gltf_anim import read_gltf_motion
from invskin.motion.retarget import (
    Z_UP_TO_Y_UP,
    BoneMapping,
    Motion,
    as_mapping,
    format_match,
    mapping_up,
    match_skeletons,
    retarget,
)

MOTION_SUFFIXES = (".npy", ".npz", ".bvh", ".gltf", ".glb")

__all__ = [
    "BoneMapping",
    "Motion",
    "check_motion_file",
    "is_motion_file",
    "load_motion",
    "read_motion",
    "retarget",
]


def read_motion(
    path: Path | str,
    skeleton: Skeleton,
    mapping: BoneMapping | None = None,
    smpl: Path | str | None = None,
) -> Motion:
    """A BVH, glTF or AMASS-style npz as a y-up :class:`Motion` (not yet retargeted); ``smpl``: an
    SMPL-family model (file or folder) giving an npz's subject its rest joints
    (:func:`invskin.motion.amass.smpl_rest_joints`; ignored for other formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        motion = read_bvh(path)
        if mapping_up(mapping, "y") == "z":
            motion = _turn_z_up(motion)
        return motion
    if suffix in (".gltf", ".glb"):
        motion = read_gltf_motion(path)
        if mapping_up(mapping, "y") == "z":
            motion = _turn_z_up(motion)
        return motion
    if suffix == ".npz":
        root = skeleton.parents.index(-1)
        return read_amass(
            path,
            skeleton.canonical[root, :3, 3].double().numpy(),
            mapping_up(mapping, "z"),
            None if smpl is None else smpl_rest_joints(path, smpl),
        )
    raise DataError(f"{path}: unknown motion format {suffix!r}; use one of {MOTION_SUFFIXES}")


def _turn_z_up(motion: Motion) -> Motion:
    from dataclasses import replace

    return replace(motion, rest=Z_UP_TO_Y_UP @ motion.rest, world=Z_UP_TO_Y_UP @ motion.world)


def _plain_transforms(path: Path, skeleton: Skeleton) -> np.ndarray | None:
    """The (F, J, 4, 4) array of a plain ``.npy`` / ``.npz`` with ``transforms``; ``None`` if the
    npz holds something else (a SMPL-family motion)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                if "transforms" not in data.files:
                    return None
                array = data["transforms"]
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable numpy file ({error})") from None
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 4:
        raise DataError(f"{path}: expected bone transforms (F, J, 4, 4), got {array.shape}")
    problem = transforms_problem(array, skeleton.num_bones)
    if problem is not None:
        raise DataError(f"{path}: {problem}")
    return array


def load_motion(
    path: Path | str,
    skeleton: Skeleton,
    mapping: BoneMapping | Path | str | None = None,
    verbose: bool = True,
    smpl: Path | str | None = None,
) -> torch.Tensor:
    """Canonical-to-posed transforms (F, J, 4, 4) float32 of ``skeleton`` for a motion file.

    ``mapping``: a :class:`BoneMapping` or the path of its JSON file (see
    :mod:`invskin.motion.retarget`); ignored for plain transform arrays. Without one, bones are
    matched by name, family or structure (:func:`invskin.motion.retarget.match_skeletons`); an
    automatic match prints its table to stderr when ``verbose``. ``smpl``: an SMPL-family model
    (file or folder) for AMASS npz motions, giving the subject's rest joints (:func:`read_motion`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"motion file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in MOTION_SUFFIXES:
        raise DataError(f"{path}: unknown motion format {suffix!r}; use one of {MOTION_SUFFIXES}")
    if suffix in (".npy", ".npz"):
        plain = _plain_transforms(path, skeleton)
        if plain is not None:
            return torch.from_numpy(plain).float()
    bones = as_mapping(mapping)
    motion = read_motion(path, skeleton, bones, smpl)
    joints = skeleton.canonical.double().numpy()[:, :3, 3]
    match = match_skeletons(skeleton.names, skeleton.parents, joints, motion, bones)
    if match.automatic and verbose:
        print(format_match(skeleton.names, motion.names, match), file=sys.stderr)
    transforms = retarget(motion, skeleton, bones, match)
    if not np.isfinite(transforms).all():
        raise DataError(f"{path}: retargeting gave NaN or infinite transforms")
    return torch.from_numpy(transforms).float()


def is_motion_file(path: Path | str) -> bool:
    """Whether ``path`` is a motion to retarget (BVH, glTF, SMPL-family npz), not 4x4 arrays."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".bvh", ".gltf", ".glb"):
        return True
    if suffix != ".npz":
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
    except (OSError, ValueError):
        return False  # the plain-array reader reports the unreadable file
    return "transforms" not in keys and bool(keys & {"poses", "root_orient"})


def check_motion_file(path: Path | str) -> None:
    """Read a motion file once (any skeleton) so a bad file fails before a run is loaded."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        read_bvh(path)
    elif suffix in (".gltf", ".glb"):
        read_gltf_motion(path)
    elif suffix == ".npz":
        read_amass(path, np.zeros(3))


def motion_fps(path: Path | str, default: float = 30.0) -> float:
    """The frame rate a motion file states (BVH frame time, AMASS mocap rate), else ``default``."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".bvh":
            return read_bvh(path).fps
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                for key in ("mocap_framerate", "mocap_frame_rate"):
                    if key in data.files:
                        return float(data[key])
    except DataError:
        return default
    return default
