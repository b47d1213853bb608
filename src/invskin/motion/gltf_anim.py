"""Read glTF 2.0 scenes and sample their animations (``.gltf`` with its buffers, or ``.glb``).

Node transforms are TRS or a matrix (glTF column-major); a node's world transform is its ancestors'
local transforms chained from the scene root, whatever order the file lists nodes in. Animations are
sampled at a uniform rate from time 0 to their last key: ``LINEAR`` (rotations by slerp), ``STEP``,
and ``CUBICSPLINE`` read at its key values (tangents ignored, then linear). Morph-weight channels are
ignored. Conventions: glTF's own, y up, metres (as invskin).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib
from jaxtyping import Float

from invskin.errors import DataError
from invskin.motion.retarget import Motion

FLOAT = 5126
UNSIGNED_BYTE = 5121
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125


def read_accessor(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """An accessor's data as a numpy array (tightly packed views; no sparse accessors)."""
    acc = gltf.accessors[index]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    dtype = {
        FLOAT: np.float32,
        UNSIGNED_BYTE: np.uint8,
        UNSIGNED_SHORT: np.uint16,
        UNSIGNED_INT: np.uint32,
    }[acc.componentType]
    if acc.bufferView is None:
        raise ValueError(f"accessor {index} has no buffer view (sparse accessors are not read)")
    view = gltf.bufferViews[acc.bufferView]
    item = np.dtype(dtype).itemsize * width
    stride = view.byteStride or item
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    if stride == item:
        data = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=start)
    else:
        rows = [
            np.frombuffer(blob, dtype=dtype, count=width, offset=start + i * stride)
            for i in range(acc.count)
        ]
        data = np.concatenate(rows) if rows else np.zeros(0, dtype)
    data = data.reshape(acc.count, width) if width > 1 else data
    if acc.normalized and dtype is not np.float32:
        data = data.astype(np.float32) / np.iinfo(dtype).max
    return data


def quaternion_xyzw_to_matrix(q: Float[np.ndarray, "*b 4"]) -> Float[np.ndarray, "*b 3 3"]:
    """glTF unit quaternion ``x, y, z, w`` to a rotation matrix (float64)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


@dataclass(frozen=True)
class GltfScene:
    """A loaded glTF: the document, its single binary blob and the node tree."""

    gltf: pygltflib.GLTF2
    blob: bytes
    parent: tuple[int, ...]
    """Parent node of every node (``-1`` for roots)."""
    rest_local: np.ndarray
    """(N, 4, 4) local transform of every node as stored (no animation)."""
    path: str

    def accessor(self, index: int) -> np.ndarray:
        return read_accessor(self.gltf, self.blob, index)


def _trs(translation, rotation, scale) -> np.ndarray:
    out = np.zeros(np.broadcast_shapes(translation.shape[:-1], rotation.shape[:-1]) + (4, 4))
    out[..., :3, :3] = quaternion_xyzw_to_matrix(rotation) * scale[..., None, :]
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def _node_trs(node: pygltflib.Node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array(node.translation or [0.0, 0.0, 0.0], dtype=np.float64),
        np.array(node.rotation or [0.0, 0.0, 0.0, 1.0], dtype=np.float64),
        np.array(node.scale or [1.0, 1.0, 1.0], dtype=np.float64),
    )


def load_gltf(path: Path | str) -> GltfScene:
    """Load a ``.gltf`` or ``.glb`` with all its buffers (external files or data URIs)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"glTF file {path} does not exist")
    try:
        gltf = pygltflib.GLTF2().load(str(path))
        if gltf is None:
            raise ValueError("not a glTF file")
        gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
        blob = gltf.binary_blob() or b""
    except Exception as error:  # pygltflib raises many kinds of errors on bad files
        raise DataError(f"{path} is not a readable glTF/GLB file ({error})") from None
    nodes = gltf.nodes or []
    parent = [-1] * len(nodes)
    for i, node in enumerate(nodes):
        for child in node.children or []:
            if not 0 <= child < len(nodes) or parent[child] >= 0:
                raise DataError(
                    f"{path}: node {child} is not a node or has two parents; glTF nodes form trees"
                )
            parent[child] = i
    cycle = _cycle_node(parent)
    if cycle is not None:
        raise DataError(f"{path}: node {cycle} is its own ancestor; glTF nodes form trees")
    rest = np.zeros((len(nodes), 4, 4))
    for i, node in enumerate(nodes):
        if node.matrix is not None:
            rest[i] = np.array(node.matrix, dtype=np.float64).reshape(4, 4).T
        else:
            rest[i] = _trs(*_node_trs(node))
    return GltfScene(gltf, blob, tuple(parent), rest, str(path))


def _cycle_node(parent: list[int]) -> int | None:
    """A node on a cycle of the parent links, or ``None`` when they form a forest."""
    state = [0] * len(parent)  # 0 unseen, 1 on the current path, 2 done
    for start in range(len(parent)):
        path, i = [], start
        while i >= 0 and state[i] == 0:
            state[i] = 1
            path.append(i)
            i = parent[i]
        if i >= 0 and state[i] == 1:
            return i
        for j in path:
            state[j] = 2
    return None


def world_transforms(local: np.ndarray, parent: tuple[int, ...]) -> np.ndarray:
    """(..., N, 4, 4) world transforms from local ones over any node order."""
    world = np.zeros_like(local)
    done = [False] * len(parent)

    def visit(i: int) -> None:
        if done[i]:
            return
        p = parent[i]
        if p >= 0:
            visit(p)
            world[..., i, :, :] = world[..., p, :, :] @ local[..., i, :, :]
        else:
            world[..., i, :, :] = local[..., i, :, :]
        done[i] = True

    for i in range(len(parent)):
        visit(i)
    return world


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    dot = (a * b).sum(-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    small = theta < 1e-6
    sin = np.where(small, 1.0, np.sin(theta))
    wa = np.where(small, 1 - t, np.sin((1 - t) * theta) / sin)
    wb = np.where(small, t, np.sin(t * theta) / sin)
    out = wa * a + wb * b
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _sample(times: np.ndarray, values: np.ndarray, at: np.ndarray, mode: str, rotation: bool):
    if mode == "CUBICSPLINE":
        values = values.reshape(len(times), 3, -1)[:, 1]
    k = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 1)
    if mode == "STEP" or len(times) == 1:
        return values[k]
    k1 = np.minimum(k + 1, len(times) - 1)
    span = np.maximum(times[k1] - times[k], 1e-12)
    t = np.clip((at - times[k]) / span, 0.0, 1.0)[:, None]
    t = np.where((k1 == k)[:, None], 0.0, t)
    if rotation:
        return _slerp(values[k], values[k1], t)
    return values[k] * (1 - t) + values[k1] * t


def animation_names(scene: GltfScene) -> list[str]:
    return [a.name or f"animation_{i}" for i, a in enumerate(scene.gltf.animations or [])]


def sample_animation(scene: GltfScene, index: int, fps: float) -> np.ndarray:
    """(T, N, 4, 4) local transforms of every node, animation ``index`` sampled at ``fps``."""
    anim = scene.gltf.animations[index]
    channels = []
    end = 0.0
    for channel in anim.channels:
        if channel.target.node is None or channel.target.path not in (
            "translation",
            "rotation",
            "scale",
        ):
            continue
        sampler = anim.samplers[channel.sampler]
        times = scene.accessor(sampler.input).astype(np.float64).reshape(-1)
        values = scene.accessor(sampler.output).astype(np.float64)
        values = values.reshape(len(values), -1)
        channels.append((channel.target.node, channel.target.path, times, values, sampler))
        end = max(end, float(times[-1]) if len(times) else 0.0)
    if not channels:
        raise DataError(f"{scene.path}: animation {index} moves no node (no TRS channels)")
    count = int(np.floor(end * fps + 1e-6)) + 1
    at = np.arange(count) / fps
    nodes = scene.gltf.nodes
    trs = [list(_node_trs(n)) for n in nodes]
    translation = np.stack([np.broadcast_to(t[0], (count, 3)) for t in trs], 1).copy()
    rotation = np.stack([np.broadcast_to(t[1], (count, 4)) for t in trs], 1).copy()
    scale = np.stack([np.broadcast_to(t[2], (count, 3)) for t in trs], 1).copy()
    for node, path, times, values, sampler in channels:
        if nodes[node].matrix is not None:
            raise DataError(
                f"{scene.path}: node {node} is animated but has a 'matrix' (the glTF spec forbids "
                "it); re-export with TRS transforms"
            )
        mode = sampler.interpolation or "LINEAR"
        sampled = _sample(times, values, at, mode, path == "rotation")
        {"translation": translation, "rotation": rotation, "scale": scale}[path][:, node] = sampled
    local = _trs(translation, rotation, scale)
    fixed = [i for i, n in enumerate(nodes) if n.matrix is not None]
    local[:, fixed] = scene.rest_local[fixed]
    return local


def skin_joints(scene: GltfScene, skin: int = 0) -> tuple[list[int], np.ndarray]:
    """The skin's joint nodes and their bind-pose world transforms (inverse of the IBMs)."""
    skins = scene.gltf.skins or []
    if skin >= len(skins):
        raise DataError(f"{scene.path} has no skin: it must be a rigged (skinned) character")
    joints = list(skins[skin].joints)
    if skins[skin].inverseBindMatrices is None:
        bind = world_transforms(scene.rest_local, scene.parent)[joints]
    else:
        ibm = scene.accessor(skins[skin].inverseBindMatrices).reshape(-1, 4, 4).swapaxes(-1, -2)
        bind = np.linalg.inv(ibm.astype(np.float64))
    return joints, bind


def upright_rotation(rest_skinning: np.ndarray) -> np.ndarray:
    """(4, 4) rotation turning the bind space upright: the bind-space axis (+-x, +-y, +-z)
    closest to what the file's node rest pose shows as up (``rest_skinning``: a root joint's
    ``JointWorld(rest) IBM``) is turned to +y by a quarter or half turn (identity when it already
    is +y). Files exported z up (Blender, Collada) bind their mesh lying down otherwise."""
    linear = rest_skinning[:3, :3]
    up = linear.T @ np.array([0.0, 1.0, 0.0]) / np.cbrt(np.linalg.det(linear))
    axis = int(np.argmax(np.abs(up)))
    sign = float(np.sign(up[axis]))
    turn = np.eye(4)
    if axis == 0:  # +-x to +y: a quarter turn about z
        turn[:2, :2] = [[0.0, -sign], [sign, 0.0]]
    elif axis == 2:  # +-z to +y: a quarter turn about x
        turn[1:3, 1:3] = [[0.0, sign], [-sign, 0.0]]
    elif sign < 0:  # -y to +y: a half turn about x
        turn[1:3, 1:3] = [[-1.0, 0.0], [0.0, -1.0]]
    return turn


def read_gltf_motion(path: Path | str, animation: str | int | None = None, fps: float = 30.0):
    """A glTF animation as a :class:`Motion` of its skin's joints (rest: the bind pose, turned
    upright as :func:`upright_rotation` says, so that it stands in the animation's world).

    ``animation``: name or index (default: the first). Without a skin, every node is a bone and
    the rest pose is the nodes' stored transforms.
    """
    scene = load_gltf(path)
    names = animation_names(scene)
    if not names:
        raise DataError(f"{path} holds no animation")
    if animation is None:
        index = 0
    elif isinstance(animation, int) or str(animation).isdigit():
        index = int(animation)
    elif animation in names:
        index = names.index(animation)
    else:
        raise DataError(f"{path}: no animation {animation!r}; it has {names}")
    if not 0 <= index < len(names):
        raise DataError(f"{path}: animation index {index} out of range; it has {names}")
    world = world_transforms(sample_animation(scene, index, fps), scene.parent)
    if scene.gltf.skins:
        joints, rest = skin_joints(scene)
        root = joint_parents(scene, joints).index(-1)
        rest_world = world_transforms(scene.rest_local, scene.parent)[joints[root]]
        rest = upright_rotation(rest_world @ np.linalg.inv(rest[root])) @ rest
    else:
        joints = list(range(len(scene.parent)))
        rest = world_transforms(scene.rest_local, scene.parent)
    node_names = [scene.gltf.nodes[n].name or f"node_{n}" for n in joints]
    parents = joint_parents(scene, joints)
    order = parents_first(parents)
    position = {old: new for new, old in enumerate(order)}
    return Motion(
        tuple(node_names[i] for i in order),
        tuple(-1 if parents[i] < 0 else position[parents[i]] for i in order),
        rest[order],
        world[:, joints][:, order],
        fps,
        str(path),
    )


def joint_parents(scene: GltfScene, joints: list[int]) -> list[int]:
    """For each joint, the index (in ``joints``) of its nearest ancestor that is a joint, or -1."""
    index = {node: j for j, node in enumerate(joints)}
    parents = []
    for node in joints:
        p = scene.parent[node]
        while p >= 0 and p not in index:
            p = scene.parent[p]
        parents.append(index[p] if p >= 0 else -1)
    return parents


def parents_first(parents: list[int]) -> list[int]:
    """An order of the bones with every parent before its children (stable, depth-first)."""
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(p, []).append(j)
    order: list[int] = []
    stack = list(reversed(children.get(-1, [])))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    if len(order) != len(parents):
        raise DataError("the joint hierarchy has a cycle")
    return order
