"""benchmarks/characters.py: its angle measure, its AMASS-format stand-in, and the one-camera
silhouettes of the browser renderer, against constructed ground truth."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invskin.export.browser import OrthoCamera, find_chromium, find_three, screenshot_glb
from invskin.export.glb import write_glb
from invskin.motion.bvh import write_bvh

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("characters", ROOT / "benchmarks/characters.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["characters"] = module
    spec.loader.exec_module(module)
    return module


def test_t_pose_angles(bench) -> None:
    joints = bench.SMPL_NEUTRAL_JOINTS[None]
    index = {role: bench.SMPL_JOINT_NAMES.index(role) for role in bench.CESIUMMAN_ROLES}
    angles = bench.limb_angles(joints, index)
    for side in ("left", "right"):
        assert angles[f"{side}_knee"][0] == pytest.approx(180.0, abs=15.0)  # SMPL's legs splay
        assert angles[f"{side}_elbow"][0] == pytest.approx(180.0, abs=10.0)
        assert angles[f"{side}_hip"][0] < 10.0
        assert angles[f"{side}_shoulder"][0] == pytest.approx(90.0, abs=5.0)


BVH_NAMES = ("Hips", "LeftHip", "LeftKnee", "LeftAnkle", "LeftToe", "RightHip", "RightKnee",
             "RightAnkle", "RightToe", "Chest", "Neck", "Head", "LeftCollar", "LeftShoulder",
             "LeftElbow", "LeftWrist", "RightCollar", "RightShoulder", "RightElbow",
             "RightWrist")  # fmt: skip
BVH_SMPL = ("pelvis", "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip",
            "right_knee", "right_ankle", "right_foot", "spine2", "neck", "head", "left_collar",
            "left_shoulder", "left_elbow", "left_wrist", "right_collar", "right_shoulder",
            "right_elbow", "right_wrist")  # fmt: skip
BVH_PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 9, 12, 13, 14, 9, 16, 17, 18)
"""A CMU-style BVH (Biovision names, toes so that it faces +z) of the SMPL template."""


def test_amass_stand_in_keeps_the_bvh_angles(bench, tmp_path) -> None:
    """The AMASS-format npz made from a BVH, read back by SMPL forward kinematics, bends knees,
    elbows, hips and shoulders as the BVH does."""
    template = bench.SMPL_NEUTRAL_JOINTS
    pos = np.array([template[bench.SMPL_JOINT_NAMES.index(n)] for n in BVH_SMPL])
    offsets = np.stack([pos[j] - (pos[p] if p >= 0 else 0) for j, p in enumerate(BVH_PARENTS)])
    frames = 4
    angles = np.zeros((frames, len(BVH_NAMES), 3))  # ZXY degrees
    angles[:, BVH_NAMES.index("LeftKnee"), 1] = np.linspace(0.0, 70.0, frames)
    angles[:, BVH_NAMES.index("RightElbow"), 0] = np.linspace(0.0, 60.0, frames)
    angles[:, BVH_NAMES.index("LeftHip"), 1] = np.linspace(0.0, -40.0, frames)
    angles[:, BVH_NAMES.index("RightShoulder"), 0] = np.linspace(0.0, -50.0, frames)
    bvh = tmp_path / "clip.bvh"
    write_bvh(bvh, list(BVH_NAMES), list(BVH_PARENTS), offsets * 100, angles,
              np.repeat(offsets[:1] * 100, frames, 0))  # fmt: skip
    npz = bench.amass_from_bvh(bvh, tmp_path / "clip.npz")
    with np.load(npz) as data:
        assert data["poses"].shape == (frames, 72) and data["trans"].shape == (frames, 3)
    smpl = {n: j for j, n in enumerate(bench.SMPL_JOINT_NAMES[:24])}
    got = bench.limb_angles(bench.amass_joints(npz), {r: smpl[r] for r in bench.CESIUMMAN_ROLES})
    motion = bench.read_motion(bvh, bench.smpl_skeleton())
    want = bench.limb_angles(motion.world[..., :3, 3], bench.roles_by_family(motion.names))
    assert want["left_knee"][0] - want["left_knee"][-1] > 60.0  # the BVH bends as built
    for key in want:
        assert np.allclose(got[key], want[key], atol=1.0), key


@pytest.mark.skipif(find_chromium() is None or find_three() is None,
                    reason="chromium or three.js not installed (scripts/install_browser.sh)")  # fmt: skip
def test_one_orthographic_camera_draws_one_silhouette(bench, tmp_path) -> None:
    """A box drawn through the orthographic camera covers the pixels its size says, flat black;
    moved by half its width, the IoU of the two silhouettes is 1/3."""
    box = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32) - 0.5
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])  # fmt: skip
    write_glb(tmp_path / "a.glb", box[None].repeat(2, 0), faces)
    write_glb(tmp_path / "b.glb", (box + [0.5, 0.0, 0.0])[None].repeat(2, 0), faces)
    camera = OrthoCamera((0.25, 0.0, 0.0), 1.0, (0.0, 0.0, 1.0))
    masks = []
    for name in ("a", "b"):  # b through the DevTools path, waiting in real time
        shot = screenshot_glb(tmp_path / f"{name}.glb", tmp_path / f"{name}.png", size=128,
                              ortho=camera, silhouette=True, realtime=name == "b")  # fmt: skip
        assert shot.loaded, shot.title
        masks.append(bench.foreground(shot.screenshot))
        image = np.asarray(Image.open(shot.screenshot).convert("RGB"))
        assert image[masks[-1]].max() < 100  # flat black inside, grey only at antialiased edges
    a, b = masks
    assert a.mean() == pytest.approx(0.25, abs=0.02)  # a unit square in a 2 x 2 view
    assert (a & b).sum() / (a | b).sum() == pytest.approx(1 / 3, abs=0.03)
