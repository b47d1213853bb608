"""A small BVH (Biovision Hierarchy) reader: rig, rest pose and per-frame world transforms.

Format: ``HIERARCHY`` with nested ``ROOT``/``JOINT`` blocks (``OFFSET x y z``, ``CHANNELS n ...``,
``End Site`` blocks, which are skipped), then ``MOTION``, ``Frames: N``, ``Frame Time: dt`` and N
lines of channel values in hierarchy order. A joint's local transform is its translation (position
channels where present, else its ``OFFSET``) and the product of its rotation channels in the
order listed (``Zrotation Xrotation Yrotation`` -> ``Rz Rx Ry``), degrees. The rest pose is every
joint at its offset with no rotation. Units are the file's (often centimetres; retargeting scales
the root translation by the ratio of rest heights). BVH is y up unless the mapping file says ``z``.

Written here rather than taken from a library: the maintained MIT parser ``bvhio`` pins exact
versions of its two dependencies (``pyglm==2.8.2``, ``spatial-transform==1.3.3``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from invskin.errors import DataError
from invskin.motion.retarget import Motion

_AXES = {"x": 0, "y": 1, "z": 2}


def _axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations about one axis."""
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((len(angle), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[:, axis, axis] = 1.0
    out[:, i, i] = c
    out[:, j, j] = c
    out[:, i, j] = -s
    out[:, j, i] = s
    return out


def read_bvh(path: Path | str) -> Motion:
    """Read a BVH file into a :class:`~invskin.motion.retarget.Motion` (in the file's axes)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"BVH file {path} does not exist")
    try:
        tokens = path.read_text().split()
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not a text BVH file ({error})") from None

    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}; is this a BVH file (HIERARCHY ... MOTION ...)?")

    if not tokens or tokens[0] != "HIERARCHY":
        raise fail("it does not start with HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    pos = 1
    pending: int | None = None  # joint whose '{' comes next; -2 for an End Site
    try:
        while tokens[pos] != "MOTION":
            word = tokens[pos]
            if word in ("ROOT", "JOINT"):
                names.append(tokens[pos + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending = len(names) - 1
                pos += 2
            elif word == "End":
                pending = -2
                pos += 2
            elif word == "{":
                stack.append(pending if pending is not None else -3)
                pending = None
                pos += 1
            elif word == "}":
                stack.pop()
                pos += 1
            elif word == "OFFSET":
                values = [float(v) for v in tokens[pos + 1 : pos + 4]]
                if stack and stack[-1] >= 0:
                    offsets[stack[-1]] = values
                pos += 4
            elif word == "CHANNELS":
                count = int(tokens[pos + 1])
                channels[stack[-1]] = [c.lower() for c in tokens[pos + 2 : pos + 2 + count]]
                pos += 2 + count
            else:
                raise fail(f"unexpected word {word!r} in the hierarchy")
            # an End Site's block is skipped: its stack entry is negative
        if tokens[pos + 1] != "Frames:" or tokens[pos + 3 : pos + 5] != ["Frame", "Time:"]:
            raise fail("MOTION must be followed by 'Frames: N' and 'Frame Time: dt'")
        num_frames = int(tokens[pos + 2])
        frame_time = float(tokens[pos + 5])
        values = np.array([float(v) for v in tokens[pos + 6 :]], dtype=np.float64)
    except (IndexError, ValueError) as error:
        raise fail(f"it is truncated or malformed ({error})") from None
    if not names:
        raise fail("it has no ROOT joint")
    width = sum(len(c) for c in channels)
    if num_frames < 1 or values.size != num_frames * width:
        raise fail(
            f"it declares {num_frames} frames of {width} channels but holds {values.size} values"
        )
    if not np.isfinite(values).all() or frame_time <= 0:
        raise fail("it holds NaN/infinite values or a non-positive frame time")
    for name, chans in zip(names, channels):
        bad = [c for c in chans if c[:1] not in _AXES or c[1:] not in ("position", "rotation")]
        if bad:
            raise fail(f"joint {name!r} has unknown channels {bad}")
    data = values.reshape(num_frames, width)

    local = np.zeros((num_frames, len(names), 4, 4))
    local[..., 3, 3] = 1.0
    column = 0
    for j, chans in enumerate(channels):
        rotation = np.broadcast_to(np.eye(3), (num_frames, 3, 3)).copy()
        translation = np.broadcast_to(np.array(offsets[j]), (num_frames, 3)).copy()
        for c in chans:
            axis = _AXES[c[0]]
            if c.endswith("position"):
                translation[:, axis] = data[:, column]
            else:
                rotation = rotation @ _axis_rotation(axis, data[:, column])
            column += 1
        local[:, j, :3, :3] = rotation
        local[:, j, :3, 3] = translation
    rest_local = np.broadcast_to(np.eye(4), (len(names), 4, 4)).copy()
    rest_local[:, :3, 3] = offsets
    world = np.zeros_like(local)
    rest = np.zeros_like(rest_local)
    for j, p in enumerate(parents):
        world[:, j] = local[:, j] if p < 0 else world[:, p] @ local[:, j]
        rest[j] = rest_local[j] if p < 0 else rest[p] @ rest_local[j]
    return Motion(tuple(names), tuple(parents), rest, world, 1.0 / frame_time, str(path))


def write_bvh(
    path: Path | str,
    names: list[str],
    parents: list[int],
    offsets: np.ndarray,
    rotations_zxy_degrees: np.ndarray,
    root_positions: np.ndarray,
    frame_time: float = 1 / 30,
) -> None:
    """Write a BVH with ``Zrotation Xrotation Yrotation`` per joint and root positions (tests, tools).

    ``rotations_zxy_degrees`` (F, J, 3) in channel order, ``root_positions`` (F, 3); parents first.
    """
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(names))}
    lines = ["HIERARCHY"]
    order: list[int] = []  # joints in file (depth-first) order: the order of the channel values

    def block(j: int, depth: int) -> None:
        order.append(j)
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
        chans = "Zrotation Xrotation Yrotation"
        if parents[j] < 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {chans}")
        else:
            lines.append(f"{pad}  CHANNELS 3 {chans}")
        for c in children[j]:
            block(c, depth + 1)
        if not children[j]:
            lines.extend(
                [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET 0 0.05 0", f"{pad}  }}"]
            )
        lines.append(f"{pad}}}")

    for root in (j for j, p in enumerate(parents) if p < 0):
        block(root, 0)
    lines += ["MOTION", f"Frames: {len(root_positions)}", f"Frame Time: {frame_time:.6f}"]
    for f in range(len(root_positions)):
        row: list[float] = []
        for j in order:
            if parents[j] < 0:
                row += list(root_positions[f])
            row += list(rotations_zxy_degrees[f, j])
        lines.append(" ".join(f"{v:.6f}" for v in row))
    Path(path).write_text("\n".join(lines) + "\n")
