"""Bone correspondences without a mapping file: skeleton families by name, else by structure.

**Roles** are the SMPL body joints (``pelvis``, ``spine1`` ... ``head``, ``left_collar``,
``left_shoulder`` (upper arm), ``left_elbow``, ``left_wrist``, ``left_hand``, ``left_hip``
(thigh), ``left_knee``, ``left_ankle``, ``left_foot`` (toes), and the right side). A **family** is
a naming convention: for each role the bone names it uses, without the side. A bone name is read
as a side and a base (:func:`split_side`: ``mixamorig:LeftUpLeg`` -> left, ``upleg``;
``upperleg01.L`` -> left, ``upperleg01``; ``L_Hip`` -> left, ``hip``); a family claims a bone when
the base is one of its names for a role and the side fits (sided roles need a side, the others
none). :func:`detect_family` picks the family that claims the most roles (at least
:data:`MIN_ROLES`).

Without a family on both sides, :func:`structure_match` aligns the two joint trees in their rest
poses: from the roots down, the children of matched branching joints are paired by the direction
from the joint to each child's subtree (so left and right follow their side in the rest pose: both
rigs are taken to face the same way), and the joints of single-child chains between branches are
paired by their distance along the chain relative to each rig's height, the two chains laid onto
each other at the offset that fits best (:func:`chain_shift`). A source rig facing another way is
first turned by quarter turns about the vertical (:func:`facing_turn`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

CENTRE_ROLES = ("pelvis", "spine1", "spine2", "spine3", "neck", "head")
SIDED_ROLES = ("collar", "shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot")
SIDES = ("left", "right")
ROLES: tuple[str, ...] = CENTRE_ROLES + tuple(f"{s}_{r}" for s in SIDES for r in SIDED_ROLES)
MIN_ROLES = 8
"""A family is detected when it claims at least this many roles."""
MIN_DIRECTION_COSINE = 0.2
"""Children whose directions agree less than this are left unpaired by the structure match."""

FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "smpl": {r: (r,) for r in CENTRE_ROLES + SIDED_ROLES},
    "mixamo": {
        "pelvis": ("hips",), "spine1": ("spine",), "spine2": ("spine1",), "spine3": ("spine2",),
        "neck": ("neck",), "head": ("head",), "collar": ("shoulder",), "shoulder": ("arm",),
        "elbow": ("forearm",), "wrist": ("hand",), "hip": ("upleg",), "knee": ("leg",),
        "ankle": ("foot",), "foot": ("toebase",),
    },
    "bvh": {
        "pelvis": ("hips",), "spine1": ("lowerback",), "spine2": ("spine",),
        "spine3": ("spine1",), "neck": ("neck",), "head": ("head",), "collar": ("shoulder",),
        "shoulder": ("arm",), "elbow": ("forearm",), "wrist": ("hand",), "hip": ("upleg",),
        "knee": ("leg",), "ankle": ("foot",), "foot": ("toebase",),
    },
    "bvh-biovision": {
        "pelvis": ("hips",), "spine2": ("chest",), "neck": ("neck",), "head": ("head",),
        "collar": ("collar",), "shoulder": ("shoulder",), "elbow": ("elbow",),
        "wrist": ("wrist",), "hip": ("hip",), "knee": ("knee",), "ankle": ("ankle",),
        "foot": ("toe",),
    },
    "anny": {
        "pelvis": ("root",), "spine1": ("spine05", "spine04"), "spine2": ("spine03", "spine02"),
        "spine3": ("spine01",), "neck": ("neck01",), "head": ("head",),
        "collar": ("clavicle",), "shoulder": ("upperarm01",), "elbow": ("lowerarm01",),
        "wrist": ("wrist",), "hip": ("upperleg01",), "knee": ("lowerleg01",),
        "ankle": ("foot",), "foot": ("toe11",),
    },
    "rigify": {
        "pelvis": ("spine",), "spine1": ("spine001",), "spine2": ("spine002",),
        "spine3": ("spine003",), "neck": ("spine004", "neck"), "head": ("spine006", "head"),
        "collar": ("shoulder",), "shoulder": ("upperarm",), "elbow": ("forearm",),
        "wrist": ("hand",), "hip": ("thigh",), "knee": ("shin",), "ankle": ("foot",),
        "foot": ("toe",),
    },
    "humanoid": {
        "pelvis": ("hips",), "spine1": ("spine",), "spine2": ("chest",),
        "spine3": ("upperchest",), "neck": ("neck",), "head": ("head",),
        "collar": ("shoulder",), "shoulder": ("upperarm",), "elbow": ("lowerarm",),
        "wrist": ("hand",), "hip": ("upperleg",), "knee": ("lowerleg",), "ankle": ("foot",),
        "foot": ("toes", "toe"),
    },
}  # fmt: skip
"""Role (without the side) -> base names, per family: SMPL / AMASS, Mixamo (``mixamorig:``),
BVH (CMU ``Hips``/``LeftUpLeg``/``LowerBack``; Biovision ``Chest``/``LeftCollar``), the anny rig
(``upperleg01.L``, ``spine04``), Blender's Rigify (``thigh.L``, ``spine.001``) and the humanoid
names of Unity / VRM / Blender rigs (``UpperLeg.L``, ``LeftUpperArm``)."""

T_POSE_DIRECTIONS: dict[tuple[str, str], tuple[float, float, float]] = {
    **{
        (f"{s}_{a}", f"{s}_{b}"): (x, 0.0, 0.0)
        for s, x in (("left", 1.0), ("right", -1.0))
        for a, b in (("collar", "shoulder"), ("shoulder", "elbow"), ("elbow", "wrist"))
    },
    **{
        (f"{s}_{a}", f"{s}_{b}"): (0.0, -1.0, 0.0)
        for s in SIDES
        for a, b in (("hip", "knee"), ("knee", "ankle"))
    },
}
"""Bone directions (parent role, child role) of a T-pose, y up, facing +z, left at +x: used for
sources whose rest pose has no joint positions (AMASS files)."""

_SIDE_PATTERNS = (
    re.compile(r"^(left|right)[\s_.\-]*(.+)$"),
    re.compile(r"^(.+?)[\s_.\-]*(left|right)$"),
    re.compile(r"^([lr])[_.\-](.+)$"),
    re.compile(r"^(.+?)[_.\-]([lr])$"),
)


def _base(text: str) -> str:
    return re.sub(r"[\s_.\-]", "", text)


def split_side(name: str) -> tuple[str | None, str]:
    """(side, base) of a bone name: side ``left`` / ``right`` or ``None``; base lower case without
    namespace (``a:``, ``a|``), side token and separators."""
    text = re.split(r"[:|]", name)[-1].lower().strip()
    for pattern in _SIDE_PATTERNS:
        m = pattern.match(text)
        if m is None:
            continue
        first, second = m.groups()
        side, rest = (first, second) if first in ("left", "right", "l", "r") else (second, first)
        base = _base(rest)
        if base:
            return ("left" if side in ("left", "l") else "right"), base
    return None, _base(text)


def family_roles(names: Sequence[str], family: str) -> dict[str, int]:
    """Role -> bone index for the bones ``family`` claims (the first bone listed, per role)."""
    table = FAMILIES[family]
    lookup: dict[tuple[str | None, str], str] = {}
    for role, bases in table.items():
        for base in bases:
            if role in CENTRE_ROLES:
                lookup.setdefault((None, base), role)
            else:
                for side in SIDES:
                    lookup.setdefault((side, base), f"{side}_{role}")
    out: dict[str, int] = {}
    for i, name in enumerate(names):
        role = lookup.get(split_side(name))
        if role is not None:
            out.setdefault(role, i)
    return out


def detect_family(names: Sequence[str]) -> tuple[str | None, dict[str, int]]:
    """The family claiming the most roles (first listed on a tie) and its roles, or
    ``(None, {})`` when none claims :data:`MIN_ROLES`."""
    best: tuple[str | None, dict[str, int]] = (None, {})
    for family in FAMILIES:
        roles = family_roles(names, family)
        if len(roles) > len(best[1]):
            best = (family, roles)
    return best if len(best[1]) >= MIN_ROLES else (None, {})


def _children(parents: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            out[p].append(j)
    return out


def _subtree(children: list[list[int]], j: int) -> list[int]:
    out, stack = [], [j]
    while stack:
        k = stack.pop()
        out.append(k)
        stack.extend(children[k])
    return out


def _chain(children: list[list[int]], j: int) -> list[int]:
    """``j`` and its descendants down to the first joint without exactly one child."""
    chain = [j]
    while len(children[chain[-1]]) == 1:
        chain.append(children[chain[-1]][0])
    return chain


def _arc(positions: np.ndarray, chain: list[int], height: float) -> np.ndarray:
    steps = np.linalg.norm(np.diff(positions[chain], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    return arc / height if height > 1e-9 else np.arange(len(chain), dtype=np.float64)


def _height(positions: np.ndarray) -> float:
    return float(np.ptp(positions[:, 1])) if len(positions) > 1 else 0.0


def _direction(positions: np.ndarray, children: list[list[int]], joint: int, kid: int):
    offset = positions[_subtree(children, kid)].mean(0) - positions[joint]
    norm = np.linalg.norm(offset)
    return offset / norm if norm > 1e-9 else np.zeros(3)


def chain_shift(target_arc: np.ndarray, source_arc: np.ndarray) -> float:
    """The offset along a chain that best lays the target's joints onto the source's (least sum
    of distances to the nearest source joint; the smallest offset on a tie), so that a chain with
    an extra first bone (a collar) or extra last bones (toes) still pairs limb with limb."""
    candidates = np.unique((source_arc[None, :] - target_arc[:, None]).ravel())
    cost = np.abs(target_arc[None, :, None] + candidates[:, None, None] - source_arc[None, None])
    total = cost.min(-1).sum(-1)
    best = np.flatnonzero(total <= total.min() + 1e-9)
    return float(candidates[best[np.argmin(np.abs(candidates[best]))]])


def structure_match(
    target_parents: Sequence[int],
    target_positions: np.ndarray,
    source_parents: Sequence[int],
    source_positions: np.ndarray,
) -> list[int | None]:
    """For each target joint, a source joint by the shape of the two trees (module docstring);
    ``None`` where the structure leaves it unpaired. Positions: (J, 3) rest joints, y up."""
    t_kids, s_kids = _children(target_parents), _children(source_parents)
    t_height, s_height = _height(target_positions), _height(source_positions)
    matched: list[int | None] = [None] * len(target_parents)

    def largest_root(parents: Sequence[int], kids: list[list[int]]) -> int:
        roots = [j for j, p in enumerate(parents) if p < 0]
        return max(roots, key=lambda r: len(_subtree(kids, r)))

    pending = [(largest_root(target_parents, t_kids), largest_root(source_parents, s_kids))]
    while pending:
        t_start, s_start = pending.pop()
        t_chain, s_chain = _chain(t_kids, t_start), _chain(s_kids, s_start)
        t_arc = _arc(target_positions, t_chain, t_height)
        s_arc = _arc(source_positions, s_chain, s_height)
        shifted = t_arc + chain_shift(t_arc, s_arc)
        for j, a in zip(t_chain, shifted):
            matched[j] = s_chain[int(np.argmin(np.abs(s_arc - a)))]
        t_end, s_end = t_chain[-1], s_chain[-1]
        if not t_kids[t_end] or not s_kids[s_end]:
            continue
        t_dir = [_direction(target_positions, t_kids, t_end, k) for k in t_kids[t_end]]
        s_dir = [_direction(source_positions, s_kids, s_end, k) for k in s_kids[s_end]]
        cosine = np.array(t_dir) @ np.array(s_dir).T
        for a, b in zip(*linear_sum_assignment(-cosine)):
            if cosine[a, b] >= MIN_DIRECTION_COSINE:
                pending.append((t_kids[t_end][a], s_kids[s_end][b]))
    return matched


def forward_direction(parents: Sequence[int], positions: np.ndarray) -> np.ndarray | None:
    """The rig's facing in its rest pose, as a horizontal unit vector (x, 0, z): the summed
    horizontal offsets of the leaf joints in the lowest fifth of the rig's height from their
    parents (toes point forward); ``None`` when the sum is shorter than 2% of the height or than a
    quarter of those leaf bones' summed length (legs that end at the ankle, as the anny rig's,
    point down and sideways: what is left of their sum says nothing of the facing)."""
    height = _height(positions)
    if height <= 1e-9:
        return None
    kids = _children(parents)
    low = positions[:, 1].min() + 0.2 * height
    total, length = np.zeros(3), 0.0
    for j, p in enumerate(parents):
        if p >= 0 and not kids[j] and positions[j, 1] <= low:
            offset = positions[j] - positions[p]
            total += offset * np.array([1.0, 0.0, 1.0])
            length += float(np.linalg.norm(offset))
    norm = np.linalg.norm(total)
    return total / norm if norm > max(0.02 * height, 0.25 * length) else None


def facing_turn(
    target_parents: Sequence[int],
    target_positions: np.ndarray,
    source_parents: Sequence[int],
    source_positions: np.ndarray,
) -> np.ndarray:
    """(3, 3) quarter-turn rotation about y that turns the source rig's facing to the target's
    (:func:`forward_direction`, snapped to quarter turns); identity when either is unknown."""
    target = forward_direction(target_parents, target_positions)
    source = forward_direction(source_parents, source_positions)
    if target is None or source is None:
        return np.eye(3)
    angle = np.arctan2(target[0], target[2]) - np.arctan2(source[0], source[2])
    quarter = np.round(angle / (np.pi / 2)) * (np.pi / 2)
    c, s = np.cos(quarter), np.sin(quarter)
    return np.round(np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]), 12)


def has_positions(parents: Sequence[int], positions: np.ndarray) -> bool:
    """Whether the rest joints are spread out: at least half the bones have a length (an AMASS
    rest pose puts every joint at the root)."""
    lengths = [np.linalg.norm(positions[j] - positions[p]) for j, p in enumerate(parents) if p >= 0]
    return bool(lengths) and bool(sum(length > 1e-6 for length in lengths) >= len(lengths) / 2)
