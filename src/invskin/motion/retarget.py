"""Retarget a motion of any rig onto a skeleton: world-space rotation deltas.

Bones are matched by a mapping file, identical names, skeleton family or structure
(:func:`match_skeletons`, :mod:`invskin.motion.families`).

A :class:`Motion` is a source rig (bone names, parents) with its **rest** world transforms and its
world transforms in every frame, all y up (loaders convert). Retargeting onto a target
:class:`~invskin.body.Skeleton`, bone by bone, parents first:

- a target bone mapped to source bone b takes b's world-space rotation from its rest pose,
  ``D_b(f) = R_b(f) R_b(rest)^T``, applied to the target's own rest orientation:
  ``R_t(f) = D_b(f) R_t(rest)``. Bone-axis conventions of the two rigs do not matter; the two rest
  poses are assumed to be the same posture (``rest="canonical"``: the target's canonical pose), or,
  for rigs whose bone frames are axis-aligned in their T-pose (SMPL, and every skeleton built by
  :mod:`invskin.body.smpl`), ``rest="identity"``: ``R_t(rest) = I``;
- an automatic match (family or structure) turns the source motion to face the target's way
  and takes the target's canonical pose as the rest posture, each bone first turned onto its
  source bone's rest direction (:func:`rest_alignment`): ``R_t(f) = D_b(f) A_t R_t(rest)``;
- a target bone with one matched child whose source joint is not a child of its own source
  joint (the source has joints between them that the target lacks: a five-joint spine onto
  three) is then turned so that it points along the posed source's chord between the two joints
  (:func:`chord_correction`): the bends of the skipped joints are carried;
- an unmapped target bone keeps its canonical rotation relative to its parent;
- positions follow the target's own bone offsets (its proportions), except the root's:
  ``p_root(f) = p_root(canonical) + scale (p_src(f) - p_src(rest))``, ``p_src`` the source bone
  mapped to the root (or the source's first root), ``scale`` given or the ratio of the two rigs'
  rest heights (spread of joint heights).

The result is the canonical-to-posed transforms ``T_j(f) = G_j(f) G_j(canonical)^-1`` that
``invskin repose`` and ``invskin export`` take. Conventions: metres, y up, column vectors.
Shape legend: ``F`` frames, ``J`` target bones, ``S`` source bones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from invskin.body.skeleton import Skeleton
from invskin.errors import DataError

RestKind = Literal["canonical", "identity"]

Z_UP_TO_Y_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""(x, y, z) z-up to (x, z, -y) y-up: a -90 degree turn about x."""


@dataclass(frozen=True)
class Motion:
    """A source motion: rig, rest pose and per-frame world transforms (y up, any units)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest: np.ndarray
    """(S, 4, 4) world transforms of the source bones in its rest pose."""
    world: np.ndarray
    """(F, S, 4, 4) world transforms of the source bones in every frame."""
    fps: float
    source: str
    rest_kind: RestKind = "canonical"
    """Which target pose matches the source's rest posture without a mapping file (a mapping
    file's ``rest`` decides otherwise; module docstring)."""
    scale: float | None = None
    """Source-to-target scale of the root translation; ``None``: the ratio of rest heights."""
    align_trunk: bool = True
    """Whether an automatic match aligns the trunk bones' rest directions too
    (:func:`rest_alignment`), not only the limbs'. ``False`` for SMPL bodies, whose regressed
    spine joints zigzag through the body (up to 25 degrees off vertical in a T-pose)."""

    def __post_init__(self) -> None:
        s = len(self.names)
        if (
            self.rest.shape != (s, 4, 4)
            or self.world.ndim != 4
            or self.world.shape[1:] != (s, 4, 4)
        ):
            raise DataError(
                f"{self.source}: motion arrays have shapes {self.rest.shape} and "
                f"{self.world.shape}, expected ({s}, 4, 4) and (F, {s}, 4, 4)"
            )
        if len(self.world) == 0:
            raise DataError(f"{self.source}: the motion has no frames")
        if not (np.isfinite(self.rest).all() and np.isfinite(self.world).all()):
            raise DataError(f"{self.source}: the motion holds NaN or infinite values")

    @property
    def num_frames(self) -> int:
        return len(self.world)


@dataclass(frozen=True)
class BoneMapping:
    """A mapping file: ``{"bones": {target: source or null}, "up": "y"|"z", "scale": x|"auto"}``.

    ``bones``: target bones listed with ``null``, or not listed, stay in the canonical pose; without
    a mapping file, bones are matched by name. ``up``: the source's up axis (overrides the format's
    default). ``scale``: root-translation scale (``auto``: ratio of rest heights). ``rest``: which
    target pose matches the source's rest posture, ``canonical`` (the default with a mapping file)
    or ``identity`` (bone frames axis-aligned in the rest posture, as SMPL's).
    """

    bones: dict[str, str | None] = field(default_factory=dict)
    up: Literal["y", "z"] | None = None
    scale: float | None = None
    translation: bool = True
    path: str = ""
    rest: RestKind = "canonical"

    @classmethod
    def load(cls, path: Path | str) -> BoneMapping:
        path = Path(path)
        example = '{"bones": {"target_bone": "source_bone", "tail_1": null}, "up": "y"}'
        if not path.is_file():
            raise DataError(f"mapping file {path} does not exist; write JSON like {example}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{path} is not valid JSON ({error}); write e.g. {example}") from None
        if not isinstance(data, dict) or not isinstance(data.get("bones"), dict):
            raise DataError(f"{path}: needs a 'bones' object {{target: source}}, e.g. {example}")
        unknown = sorted(set(data) - {"bones", "up", "scale", "translation", "rest"})
        if unknown:
            raise DataError(
                f"{path}: unknown keys {unknown}; allowed: bones, up, scale, translation, rest"
            )
        rest = data.get("rest", "canonical")
        if rest not in ("canonical", "identity"):
            raise DataError(f"{path}: 'rest' must be 'canonical' or 'identity', got {rest!r}")
        bones = data["bones"]
        if not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in bones.items()
        ):
            raise DataError(f"{path}: 'bones' must map target bone names to source names or null")
        up = data.get("up")
        if up not in (None, "y", "z"):
            raise DataError(f"{path}: 'up' must be 'y' or 'z', got {up!r}")
        scale = data.get("scale", "auto")
        if scale == "auto":
            scale = None
        elif not isinstance(scale, (int, float)) or not scale > 0:
            raise DataError(f"{path}: 'scale' must be a positive number or 'auto', got {scale!r}")
        translation = data.get("translation", True)
        if not isinstance(translation, bool):
            raise DataError(f"{path}: 'translation' must be true or false")
        scale = None if scale is None else float(scale)
        return cls(dict(bones), up, scale, translation, str(path), rest)


def normalise_name(name: str) -> str:
    """Name used for matching without a mapping file: lower case, namespace (``a:``, ``a|``) and
    separators removed (``mixamorig:LeftArm`` -> ``leftarm``)."""
    return re.sub(r"[\s_.\-]", "", re.split(r"[:|]", name)[-1].lower())


@dataclass(frozen=True)
class BoneMatch:
    """For each target bone its source bone (``None``: keeps its canonical pose), how the match
    was made, and the target bones' roles where a family named them (:mod:`.families`)."""

    source: list[int | None]
    how: str
    roles: dict[int, str] = field(default_factory=dict)
    turn: np.ndarray = field(default_factory=lambda: np.eye(3))
    """(3, 3) turn about the vertical applied to the motion so that the source rig faces the
    way the target does (automatic matches; :func:`.families.facing_turn`)."""

    @property
    def automatic(self) -> bool:
        """Matched by family or structure (not by a mapping file or identical names)."""
        return self.how.startswith(("families", "structure"))


def match_skeletons(
    target: tuple[str, ...],
    target_parents: tuple[int, ...],
    target_joints: np.ndarray,
    motion: Motion,
    mapping: BoneMapping | None,
) -> BoneMatch:
    """Target bones to source bones: the mapping file; else identical (normalised) names for
    every target bone; else both rigs' families (:func:`.families.detect_family`, by role); else
    their structure in the rest pose (:func:`.families.structure_match`)."""
    from invskin.motion.families import (
        detect_family,
        facing_turn,
        has_positions,
        structure_match,
    )

    if mapping is not None:
        return BoneMatch(match_bones(target, motion.names, mapping, motion.source), "mapping file")
    by_name = _match_names(target, motion.names)
    if all(m is not None for m in by_name):
        return BoneMatch(by_name, "names")
    t_family, t_roles = detect_family(target)
    s_family, s_roles = detect_family(motion.names)
    source_joints = motion.rest[:, :3, 3]
    positions = has_positions(target_parents, target_joints) and has_positions(
        motion.parents, source_joints
    )
    turn = (
        facing_turn(target_parents, target_joints, motion.parents, source_joints)
        if positions
        else np.eye(3)
    )
    if t_family is not None and s_family is not None:
        matched: list[int | None] = [None] * len(target)
        for role, j in t_roles.items():
            matched[j] = s_roles.get(role)
        roles = {j: role for role, j in t_roles.items()}
        return BoneMatch(matched, f"families {t_family} <- {s_family}", roles, turn)
    if positions:
        turned = source_joints @ turn.T
        matched = structure_match(target_parents, target_joints, motion.parents, turned)
        return BoneMatch(matched, "structure", {}, turn)
    return BoneMatch(match_bones(target, motion.names, None, motion.source), "names")


def format_match(target: tuple[str, ...], source: tuple[str, ...], match: BoneMatch) -> str:
    """The match as a table: one line per target bone, its source bone or ``-`` (canonical)."""
    width = max((len(t) for t in target), default=0)
    degrees = np.degrees(np.arctan2(match.turn[0, 2], match.turn[0, 0]))
    turned = f"; motion turned {degrees:.0f} degrees about the vertical" if abs(degrees) > 1 else ""
    lines = [f"bones matched by {match.how}{turned} (target <- motion; '-': stays canonical):"]
    for j, name in enumerate(target):
        src = match.source[j]
        role = f"  [{match.roles[j]}]" if j in match.roles else ""
        lines.append(f"  {name:<{width}} <- {'-' if src is None else source[src]}{role}")
    return "\n".join(lines)


def _match_names(target: tuple[str, ...], source: tuple[str, ...]) -> list[int | None]:
    index = {name: i for i, name in enumerate(source)}
    normal: dict[str, int] = {}
    for i, name in enumerate(source):
        normal.setdefault(normalise_name(name), i)
    return [index.get(t, normal.get(normalise_name(t))) for t in target]


def match_bones(
    target: tuple[str, ...], source: tuple[str, ...], mapping: BoneMapping | None, where: str
) -> list[int | None]:
    """For each target bone, the index of its source bone (``None``: keep canonical), by the
    mapping file or by identical (normalised) names; an unmatched bone is an error."""
    index = {name: i for i, name in enumerate(source)}
    if mapping is not None:
        bad_targets = sorted(set(mapping.bones) - set(target))
        bad_sources = sorted({s for s in mapping.bones.values() if s is not None} - set(index))
        if bad_targets or bad_sources:
            raise DataError(
                f"{mapping.path}: bones that do not match: "
                + (
                    f"target bones {bad_targets} are not in the run's skeleton {list(target)}; "
                    if bad_targets
                    else ""
                )
                + (
                    f"source bones {bad_sources} are not in {where} (it has {list(source)})"
                    if bad_sources
                    else ""
                )
            )
        return [None if mapping.bones.get(t) is None else index[mapping.bones[t]] for t in target]
    matched = _match_names(target, source)
    missing = [t for t, m in zip(target, matched) if m is None]
    if missing:
        raise DataError(
            f"{where}: target bones {missing} match no bone of the motion (it has "
            f"{list(source)}); pass --mapping FILE with JSON "
            '{"bones": {"target": "source", ...}} (null or unlisted: stays in the canonical pose)'
        )
    return matched


def _rotation(matrices: np.ndarray) -> np.ndarray:
    """The nearest rotation of each 3x3 block (removes scale from scaled rigs)."""
    u, _, vt = np.linalg.svd(matrices[..., :3, :3])
    fix = np.ones(u.shape[:-1])
    fix[..., -1] = np.sign(np.linalg.det(u @ vt))
    return (u * fix[..., None, :]) @ vt


def rest_height(joints: np.ndarray) -> float:
    return float(np.ptp(joints[:, 1])) if len(joints) > 1 else 0.0


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest (3, 3) rotation turning direction ``a`` onto direction ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(a @ b)
    if sin < 1e-9:
        if cos > 0:
            return np.eye(3)
        other = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = np.cross(a, other) / np.linalg.norm(np.cross(a, other))
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * cross + (1.0 - cos) * cross @ cross


def rotations_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3): the smallest rotation turning each direction ``a[i]`` onto ``b[i]`` (..., 3);
    a zero vector on either side gives the identity."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), (*a.shape[:-1], 3, 3)).copy()
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > 1e-12) & (nb > 1e-12)
    for index in zip(*np.nonzero(ok)):
        out[index] = rotation_between(a[index], b[index])
    return out


def one_matched_child(parents: tuple[int, ...], match: BoneMatch, j: int) -> int | None:
    """The target bone's only child driven by another source bone than its own (``None``: none,
    or several, as at a branching pelvis or chest)."""
    src = match.source[j]
    kids = [
        c
        for c, q in enumerate(parents)
        if q == j and match.source[c] is not None and match.source[c] != src
    ]
    return kids[0] if src is not None and len(kids) == 1 else None


def chord_correction(
    parents: tuple[int, ...], motion: Motion, match: BoneMatch, delta: np.ndarray
) -> dict[int, np.ndarray]:
    """Per target bone with one matched child (:func:`one_matched_child`): (F, 3, 3) world
    rotations turning the direction its source bone's rotation alone gives the chord (source
    joint to the source joint of that child) onto the chord in the posed source.

    The two agree where the child's source joint is a child of the bone's source joint (the
    correction is then the identity). Where the source has joints between them that the target
    lacks (a five-joint spine onto three), their bends move the chord: the correction carries
    them, so the target's trunk points where the source's does. Sources without rest joint
    positions (AMASS) get none."""
    from invskin.motion.families import has_positions

    rest_joints = motion.rest[:, :3, 3]
    if not has_positions(motion.parents, rest_joints):
        return {}
    posed = motion.world[:, :, :3, 3]
    out: dict[int, np.ndarray] = {}
    for j in range(len(parents)):
        c = one_matched_child(parents, match, j)
        if c is None:
            continue
        src, c_src = match.source[j], match.source[c]
        if motion.parents[c_src] == src:
            continue  # rigid: the bone's rotation already carries the chord
        rest_chord = rest_joints[c_src] - rest_joints[src]
        carried = delta[:, src] @ rest_chord
        out[j] = rotations_between(carried, posed[:, c_src] - posed[:, src])
    return out


def rest_alignment(
    parents: tuple[int, ...], joints: np.ndarray, motion: Motion, match: BoneMatch
) -> np.ndarray:
    """(J, 3, 3) world rotations taking each target bone's canonical direction (joint to its one
    matched child) onto its source bone's rest direction: the source's rest joints, or for a
    source without rest joints (AMASS) a T-pose by role. The root, bones without one matched
    child or direction, and (``motion.align_trunk`` false) bones that are not limb bones by role
    take their parent's."""
    from invskin.motion.families import T_POSE_DIRECTIONS, has_positions

    source_joints = motion.rest[:, :3, 3]
    positions = has_positions(motion.parents, source_joints)
    align = np.broadcast_to(np.eye(3), (len(parents), 3, 3)).copy()
    for j, p in enumerate(parents):
        if p < 0:
            continue
        align[j] = align[p]
        src = match.source[j]
        c = one_matched_child(parents, match, j)
        if c is None:
            continue
        roles = (match.roles.get(j, ""), match.roles.get(c, ""))
        if not motion.align_trunk and roles not in T_POSE_DIRECTIONS:
            continue  # a trunk bone of an SMPL body: its rest curve is the body's anatomy
        if positions:
            d_source = source_joints[match.source[c]] - source_joints[src]
        else:
            d_source = np.array(
                T_POSE_DIRECTIONS.get(roles, (0, 0, 0)),
                dtype=np.float64,
            )
        d_target = joints[c] - joints[j]
        if np.linalg.norm(d_source) > 1e-9 and np.linalg.norm(d_target) > 1e-9:
            align[j] = rotation_between(d_target, d_source)
    return align


def retarget(
    motion: Motion,
    skeleton: Skeleton,
    mapping: BoneMapping | None = None,
    match: BoneMatch | None = None,
) -> np.ndarray:
    """Canonical-to-posed transforms (F, J, 4, 4) float64 of ``skeleton`` following ``motion``.

    ``match``: the bone match (default: :func:`match_skeletons`). An automatic match (families,
    structure) takes the target's canonical pose as its rest posture and aligns the two rest
    postures bone by bone (:func:`rest_alignment`)."""
    canonical = skeleton.canonical.double().numpy()
    if match is None:
        match = match_skeletons(
            skeleton.names, skeleton.parents, canonical[:, :3, 3], motion, mapping
        )
    matched = match.source
    if match.automatic and not np.allclose(match.turn, np.eye(3)):
        turn = np.eye(4)
        turn[:3, :3] = match.turn
        motion = replace(motion, rest=turn @ motion.rest, world=turn @ motion.world)
    if mapping is not None:
        rest_kind = mapping.rest
    else:
        rest_kind = "canonical" if match.automatic else motion.rest_kind
    align = (
        rest_alignment(skeleton.parents, canonical[:, :3, 3], motion, match)
        if match.automatic
        else np.broadcast_to(np.eye(3), (skeleton.num_bones, 3, 3))
    )
    rest_rot = _rotation(motion.rest)
    frame_rot = _rotation(motion.world)
    delta = frame_rot @ rest_rot.swapaxes(-1, -2)  # (F, S, 3, 3)
    target_rest = (
        np.broadcast_to(np.eye(3), canonical[:, :3, :3].shape)
        if rest_kind == "identity"
        else canonical[:, :3, :3]
    )
    chords = chord_correction(skeleton.parents, motion, match, delta)
    num_frames = motion.num_frames
    world = np.zeros((num_frames, skeleton.num_bones, 4, 4))
    world[..., 3, 3] = 1.0
    root_src = next((m for m, p in zip(matched, skeleton.parents) if p < 0 and m is not None), None)
    if root_src is None:
        root_src = motion.parents.index(-1)
    scale = mapping.scale if mapping is not None and mapping.scale is not None else motion.scale
    if scale is None:
        src_height = rest_height(motion.rest[:, :3, 3])
        scale = rest_height(canonical[:, :3, 3]) / src_height if src_height > 1e-9 else 1.0
    move = motion.world[:, root_src, :3, 3] - motion.rest[root_src, :3, 3]
    if mapping is not None and not mapping.translation:
        move = move * 0.0
    for j, p in enumerate(skeleton.parents):
        src = matched[j]
        if p < 0:
            local_canon = canonical[j]
            parent_world = np.eye(4)[None].repeat(num_frames, 0)
        else:
            local_canon = np.linalg.solve(canonical[p], canonical[j])
            parent_world = world[:, p]
        if src is not None:
            world[:, j, :3, :3] = delta[:, src] @ align[j] @ target_rest[j]
            if j in chords:
                world[:, j, :3, :3] = chords[j] @ world[:, j, :3, :3]
        else:
            world[:, j, :3, :3] = parent_world[:, :3, :3] @ local_canon[:3, :3]
        world[:, j, :3, 3] = (parent_world @ local_canon)[:, :3, 3]
        if p < 0:
            world[:, j, :3, 3] = canonical[j, :3, 3] + scale * move
    return world @ np.linalg.inv(canonical)


def to_y_up(world: np.ndarray, up: str) -> np.ndarray:
    """World transforms re-expressed y up (``up="z"``: rotate -90 degrees about x)."""
    return Z_UP_TO_Y_UP @ world if up == "z" else world


def mapping_up(mapping: BoneMapping | None, default: str) -> str:
    return mapping.up if mapping is not None and mapping.up is not None else default


def as_mapping(mapping: BoneMapping | Path | str | Mapping[str, Any] | None) -> BoneMapping | None:
    """A :class:`BoneMapping` from a file path, an object or ``None``."""
    if mapping is None or isinstance(mapping, BoneMapping):
        return mapping
    if isinstance(mapping, Mapping):
        scale = mapping.get("scale")
        return BoneMapping(
            dict(mapping.get("bones", {})),
            mapping.get("up"),
            None if scale in (None, "auto") else float(scale),
            bool(mapping.get("translation", True)),
            "mapping",
            mapping.get("rest", "canonical"),
        )
    return BoneMapping.load(mapping)
