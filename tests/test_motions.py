"""Procedural motions: joint limits, hinge directions, neutral pose, ground contact, determinism.

These tests use a stick-figure skeleton with the reduced anny rig's bone names and its canonical
(star-pose) joints, so they need neither anny nor its cache.
"""

import math

import numpy as np
import pytest
import torch

from invskin.body import Skeleton
from invskin.body.anny_model import KEPT_BONES
from invskin.body.motions import (
    ARM_NEUTRAL_DEG,
    JOINTS,
    MOTIONS,
    TEST_OUT_MOTIONS,
    TRAIN_MOTIONS,
    Variation,
    angles_to_rotations,
    clamp_to_limits,
    joint_frames,
    make_clip,
    neutral_rotations,
)
from invskin.geometry import make_transform

# Canonical joints of the derived anny body (y up, metres, star pose), left side; right mirrored.
_LEFT = {
    "upperleg01": (0.102, 0.039, 0.008),
    "lowerleg01": (0.276, -0.311, 0.040),
    "foot": (0.461, -0.666, 0.004),
    "clavicle": (0.022, 0.493, 0.026),
    "upperarm01": (0.162, 0.467, 0.017),
    "lowerarm01": (0.340, 0.289, 0.017),
    "wrist": (0.501, 0.128, 0.017),
}
_CENTRE = {
    "root": (0.0, 0.05, 0.011),
    "spine04": (0.0, 0.118, -0.022),
    "spine02": (0.0, 0.261, -0.008),
    "spine01": (0.0, 0.394, -0.032),
    "neck01": (0.0, 0.56, 0.008),
    "head": (0.0, 0.657, 0.042),
}
_PARENT = {
    "root": None,
    "upperleg01": "root",
    "lowerleg01": "upperleg01",
    "foot": "lowerleg01",
    "spine04": "root",
    "spine02": "spine04",
    "spine01": "spine02",
    "clavicle": "spine01",
    "upperarm01": "clavicle",
    "lowerarm01": "upperarm01",
    "wrist": "lowerarm01",
    "neck01": "spine01",
    "head": "neck01",
}


def stick_skeleton() -> Skeleton:
    positions, parents = [], []
    for name in KEPT_BONES:
        base, _, side = name.partition(".")
        if side:
            x, y, z = _LEFT[base]
            positions.append((x if side == "L" else -x, y, z))
        else:
            positions.append(_CENTRE[base])
        parent = _PARENT[base]
        parents.append(
            -1
            if parent is None
            else KEPT_BONES.index(parent + (f".{side}" if side and parent not in _CENTRE else ""))
        )
    canonical = make_transform(torch.eye(3), torch.tensor(positions, dtype=torch.float32))
    return Skeleton(names=KEPT_BONES, parents=tuple(parents), canonical=canonical)


@pytest.fixture(scope="module")
def skeleton() -> Skeleton:
    return stick_skeleton()


@pytest.fixture(scope="module")
def clips(skeleton: Skeleton) -> dict:
    return {
        motion: make_clip(skeleton, motion, 12, seed=[3, k]) for k, motion in enumerate(MOTIONS)
    }


def _joint(world: torch.Tensor, skeleton: Skeleton, name: str) -> torch.Tensor:
    return world[..., skeleton.index(name), :3, 3]


def _signed_hinge(skeleton, clip, parent, joint, child, frames) -> np.ndarray:
    """Signed angle (degrees) of a hinge about its posed axis, minus the canonical angle."""
    values = []
    for local, translation in (
        (clip.local_rotations, clip.root_translation),
        (torch.eye(3, dtype=torch.float64).expand(1, skeleton.num_bones, 3, 3), None),
    ):
        world = skeleton.posed_world(local, translation)
        a, b, c = (_joint(world, skeleton, n) for n in (parent, joint, child))
        axis_canonical = torch.as_tensor(frames[joint].flex_axis)
        axis = world[:, skeleton.index(parent), :3, :3] @ axis_canonical
        upper, lower = b - a, c - b
        sin = (torch.linalg.cross(upper, lower) * axis).sum(-1)
        cos = (upper * lower).sum(-1)
        values.append(torch.rad2deg(torch.atan2(sin, cos)).numpy())
    return values[0] - values[1]


def test_motion_catalogue():
    required = {"walk", "run", "squat", "arm_raise", "torso_twist", "kick"}
    assert required <= set(MOTIONS)
    assert len(MOTIONS) >= 10
    assert not set(TRAIN_MOTIONS) & set(TEST_OUT_MOTIONS)
    assert set(TRAIN_MOTIONS) | set(TEST_OUT_MOTIONS) <= set(MOTIONS)


def test_angles_within_limits(clips):
    for clip in clips.values():
        for name, value in clip.angles.items():
            limits = JOINTS[name].limits()
            assert value.shape == (12, 3)
            assert np.all(value >= limits[:, 0] - 1e-9) and np.all(value <= limits[:, 1] + 1e-9), (
                name
            )


def test_clamp_to_limits_clips_and_rejects_unknown_joints():
    out = clamp_to_limits({"lowerleg01.L": np.array([[-30.0, 5.0, 50.0], [200.0, 0.0, 0.0]])})
    np.testing.assert_allclose(out["lowerleg01.L"], [[0.0, 0.0, 10.0], [145.0, 0.0, 0.0]])
    with pytest.raises(KeyError, match="no joint spec"):
        clamp_to_limits({"tail": np.zeros((1, 3))})


def test_rotations_are_proper(clips):
    for clip in clips.values():
        r = clip.local_rotations
        eye = torch.eye(3, dtype=r.dtype).expand_as(r)
        torch.testing.assert_close(r @ r.transpose(-1, -2), eye, atol=1e-10, rtol=0)
        torch.testing.assert_close(torch.linalg.det(r), torch.ones(r.shape[:-2], dtype=r.dtype))


def test_knees_flex_backwards_only_and_elbows_within_range(skeleton, clips):
    frames = joint_frames(skeleton)
    for motion, clip in clips.items():
        for side in ("L", "R"):
            knee = _signed_hinge(
                skeleton, clip, f"upperleg01.{side}", f"lowerleg01.{side}", f"foot.{side}", frames
            )
            assert knee.min() >= -0.5 and knee.max() <= 145.5, (motion, side, knee)
            elbow = _signed_hinge(
                skeleton, clip, f"upperarm01.{side}", f"lowerarm01.{side}", f"wrist.{side}", frames
            )
            assert elbow.min() >= -0.5 and elbow.max() <= 150.5, (motion, side, elbow)
    squat = _signed_hinge(
        skeleton, clips["squat"], "upperleg01.L", "lowerleg01.L", "foot.L", frames
    )
    assert squat.max() > 60  # a real squat bends the knees a lot


def test_positive_knee_angle_moves_the_ankle_back(skeleton):
    angles = {"lowerleg01.L": np.array([[60.0, 0.0, 0.0]])}
    world = skeleton.posed_world(angles_to_rotations(skeleton, angles, 1))
    rest = skeleton.posed_world(neutral_rotations(skeleton)[None])
    ankle = _joint(world, skeleton, "foot.L")[0]
    ankle_rest = _joint(rest, skeleton, "foot.L")[0]
    assert ankle[2] < ankle_rest[2] - 0.1  # behind (z is forward)
    assert ankle[1] > ankle_rest[1] + 0.05  # and up


def test_neutral_pose_has_vertical_legs_and_lowered_arms(skeleton):
    world = skeleton.posed_world(neutral_rotations(skeleton)[None])[0]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        leg = _joint(world, skeleton, f"foot.{side}") - _joint(
            world, skeleton, f"upperleg01.{side}"
        )
        assert abs(math.degrees(math.atan2(float(leg[0]), float(-leg[1])))) < 0.5
        arm = _joint(world, skeleton, f"wrist.{side}") - _joint(
            world, skeleton, f"upperarm01.{side}"
        )
        angle = math.degrees(math.atan2(sign * float(arm[0]), float(-arm[1])))
        assert angle == pytest.approx(ARM_NEUTRAL_DEG, abs=0.5)


def test_feet_stay_on_the_ground_without_hops(skeleton, clips):
    rest = skeleton.posed_world(neutral_rotations(skeleton)[None])[0]
    floor = min(float(_joint(rest, skeleton, f"foot.{s}")[1]) for s in "LR")
    for motion in ("walk", "squat", "lunge", "bow", "kick"):
        clip = clips[motion]
        world = skeleton.posed_world(clip.local_rotations, clip.root_translation)
        lowest = torch.minimum(
            _joint(world, skeleton, "foot.L")[:, 1], _joint(world, skeleton, "foot.R")[:, 1]
        )
        torch.testing.assert_close(lowest, torch.full_like(lowest, floor), atol=1e-9, rtol=0)


def test_seed_controls_the_variation(skeleton):
    a = make_clip(skeleton, "walk", 6, seed=[0, 1])
    b = make_clip(skeleton, "walk", 6, seed=[0, 1])
    c = make_clip(skeleton, "walk", 6, seed=[1, 1])
    torch.testing.assert_close(a.local_rotations, b.local_rotations, rtol=0, atol=0)
    assert a.variation == b.variation and a.variation != c.variation
    assert not torch.allclose(a.local_rotations, c.local_rotations)
    v = Variation.sample(np.random.default_rng(0))
    assert 0.8 <= v.amplitude <= 1.15 and 0.85 <= v.speed <= 1.2


def test_unknown_motion_and_missing_bone_are_clear_errors(skeleton):
    with pytest.raises(KeyError, match="unknown motion"):
        make_clip(skeleton, "moonwalk", 3)
    broken = Skeleton(
        names=tuple(n.replace("lowerleg01.L", "knee.L") for n in skeleton.names),
        parents=skeleton.parents,
        canonical=skeleton.canonical,
    )
    with pytest.raises(KeyError, match="lowerleg01.L"):
        make_clip(broken, "walk", 3)
