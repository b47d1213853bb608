"""SMPL-family motions in AMASS-style ``.npz`` files: SMPL, SMPL+H and SMPL-X body joints.

Keys read: ``poses`` (F, 3J) axis-angle with J = 24 (SMPL), 52 (SMPL+H) or 55 (SMPL-X), or the
SMPL-X split ``root_orient`` (F, 3) + ``pose_body`` (F, 63); ``trans`` (F, 3) (zero if absent);
``mocap_framerate`` / ``mocap_frame_rate`` (default 30). The 22 body joints are kept (same names and
order in all three models); SMPL's two hand joints come from ``poses`` only for SMPL files, otherwise
(SMPL+H / SMPL-X finger, jaw and eye joints dropped) they stay at rest. AMASS is z up: the world
transforms are turned to y up (unless the mapping file says ``"up": "y"``).

The source rest pose is SMPL's T-pose, whose bone frames are axis-aligned (``rest_kind="identity"``):
on a rig from :mod:`invskin.body.smpl` (CAPE, ClothSeq) the transforms equal SMPL's own
``A_j(pose) A_j(canonical)^-1`` for the same body, the root joint moving by ``trans``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from invskin.body.smpl import SMPL_JOINT_NAMES
from invskin.errors import DataError
from invskin.geometry import axis_angle_to_matrix
from invskin.motion.retarget import Z_UP_TO_Y_UP, Motion

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
BODY_JOINTS = 22
POSE_WIDTHS = {72: "SMPL", 156: "SMPL+H", 165: "SMPL-X"}


def read_amass(path: Path | str, root_rest: np.ndarray, up: str = "z") -> Motion:
    """Read an AMASS-style npz; ``root_rest`` is the target's canonical root (pelvis) position."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"motion file {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from None
    with data:
        keys = set(data.files)
        if "poses" in keys:
            poses = np.asarray(data["poses"], dtype=np.float64)
            if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS:
                raise DataError(
                    f"{path}: 'poses' has shape {poses.shape}; expected (F, 72) SMPL, (F, 156) "
                    "SMPL+H or (F, 165) SMPL-X axis-angle"
                )
            joints = 24 if poses.shape[1] == 72 else BODY_JOINTS
            pose = poses[:, : 3 * joints].reshape(len(poses), joints, 3)
        elif {"root_orient", "pose_body"} <= keys:
            pose = np.concatenate([data["root_orient"], data["pose_body"]], axis=1)
            if pose.ndim != 2 or pose.shape[1] != 3 * BODY_JOINTS:
                raise DataError(f"{path}: root_orient + pose_body must be (F, 3) + (F, 63)")
            pose = pose.reshape(len(pose), BODY_JOINTS, 3).astype(np.float64)
        else:
            raise DataError(
                f"{path}: no 'poses' (or 'root_orient' + 'pose_body') array; it has "
                f"{sorted(keys)}: is this an AMASS / SMPL motion file?"
            )
        trans = (
            np.asarray(data["trans"], np.float64) if "trans" in keys else np.zeros((len(pose), 3))
        )
        fps_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in keys), None)
        fps = float(data[fps_key]) if fps_key else 30.0
    if len(pose) == 0:
        raise DataError(f"{path}: the motion has no frames")
    if trans.shape != (len(pose), 3):
        raise DataError(f"{path}: 'trans' has shape {trans.shape}, expected ({len(pose)}, 3)")
    if not (np.isfinite(pose).all() and np.isfinite(trans).all()):
        raise DataError(f"{path}: poses or trans hold NaN or infinite values")
    full = np.zeros((len(pose), 24, 3))
    full[:, : pose.shape[1]] = pose
    local = axis_angle_to_matrix(torch.from_numpy(full)).numpy()
    world_rot = np.zeros_like(local)
    for j, p in enumerate(SMPL_PARENTS):
        world_rot[:, j] = local[:, j] if p < 0 else world_rot[:, p] @ local[:, j]
    world = np.zeros((len(pose), 24, 4, 4))
    world[..., :3, :3] = world_rot
    world[..., 3, 3] = 1.0
    root = np.asarray(root_rest, dtype=np.float64)
    # The root joint sits at root + trans in the file's world; the rest pose is upright, y up.
    world[:, 0, :3, 3] = root + trans
    if up == "z":
        world = Z_UP_TO_Y_UP @ world
    rest = np.broadcast_to(np.eye(4), (24, 4, 4)).copy()
    rest[0, :3, 3] = root
    return Motion(
        SMPL_JOINT_NAMES[:24],
        SMPL_PARENTS,
        rest,
        world,
        fps,
        str(path),
        rest_kind="identity",
        scale=1.0,
    )
