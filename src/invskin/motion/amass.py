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

The file holds no joint positions. Without them the rest is taken to be an exact T-pose by role
(:data:`invskin.motion.families.T_POSE_DIRECTIONS`) when the motion is matched to another rig
automatically; SMPL's own rest has the elbows bent and the legs splayed by some degrees. Given the
subject's rest joints (``rest_joints``, e.g. :func:`smpl_rest_joints` from your SMPL model and the
file's ``betas`` and ``gender``), the motion carries joint positions: the rest directions of the
limbs are the subject's own, and the posed joints follow by forward kinematics. The trunk's are
not aligned (``Motion.align_trunk``): SMPL's regressed spine joints zigzag through the body, and
aligning another rig's spine bones to them bends that rig's trunk.
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


def smpl_rest_joints(path: Path | str, smpl: Path | str) -> np.ndarray:
    """(24, 3) rest (T-pose) joints, y up, of the subject of the AMASS npz ``path``: the SMPL-family
    model ``smpl`` (a file, or a folder with one per gender: the npz's ``gender`` picks, default
    neutral) shaped by the npz's ``betas``. SMPL+H / SMPL-X models give their 22 body joints; the
    two SMPL hand joints are then put at the wrists."""
    from invskin.body.smpl import SMPLModel, find_smpl_file

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            gender = str(data["gender"]) if "gender" in data.files else "neutral"
            betas = (
                np.asarray(data["betas"], np.float64).reshape(-1)
                if "betas" in data.files
                else np.zeros(0)
            )
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from None
    gender = gender.strip().lower().removeprefix("b'").removesuffix("'")
    if gender not in ("male", "female", "neutral"):
        gender = "neutral"
    if not np.isfinite(betas).all():
        raise DataError(f"{path}: 'betas' hold NaN or infinite values")
    model = SMPLModel.load(find_smpl_file(smpl, gender))
    betas = betas[: model.num_betas]
    _, joints = model.rest_shape(
        torch.from_numpy(betas) if len(betas) else None, dtype=torch.float64
    )
    joints = joints.reshape(-1, 3).numpy()
    if len(joints) < BODY_JOINTS:
        raise DataError(f"{smpl}: the model has {len(joints)} joints, fewer than SMPL's body's 22")
    out = np.empty((24, 3))
    out[:BODY_JOINTS] = joints[:BODY_JOINTS]
    out[22:] = joints[22:24] if len(joints) == 24 else joints[[20, 21]]
    return out


def read_amass(
    path: Path | str,
    root_rest: np.ndarray,
    up: str = "z",
    rest_joints: np.ndarray | None = None,
) -> Motion:
    """Read an AMASS-style npz; ``root_rest`` is the target's canonical root (pelvis) position;
    ``rest_joints`` (24, 3), the subject's rest joints in SMPL's y-up model space, give the motion
    joint positions (module docstring)."""
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
    rest = np.broadcast_to(np.eye(4), (24, 4, 4)).copy()
    rest[0, :3, 3] = root
    if rest_joints is not None:
        joints = np.asarray(rest_joints, dtype=np.float64)
        if joints.shape != (24, 3) or not np.isfinite(joints).all():
            raise DataError(f"{path}: rest joints must be 24 finite (x, y, z), got {joints.shape}")
        for j, p in enumerate(SMPL_PARENTS):
            if p >= 0:
                offset = joints[j] - joints[p]
                world[:, j, :3, 3] = world[:, p, :3, 3] + world_rot[:, p] @ offset
                rest[j, :3, 3] = rest[p, :3, 3] + offset
    if up == "z":
        world = Z_UP_TO_Y_UP @ world
    return Motion(
        SMPL_JOINT_NAMES[:24],
        SMPL_PARENTS,
        rest,
        world,
        fps,
        str(path),
        rest_kind="identity",
        scale=1.0,
        align_trunk=False,
    )
