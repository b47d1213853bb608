"""Edit a glTF in memory with pygltflib to build the skinning corner cases the tests import:
a scaled armature above the joints, transforms on the skinned node, a non-joint node inside the
joint hierarchy, a second skin or mesh node, missing inverse bind matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib

from invskin.motion.gltf_anim import read_accessor

ASSETS = Path(__file__).parent / "assets" / "gltf"
FLOAT = 5126


def load(path: Path | str) -> pygltflib.GLTF2:
    gltf = pygltflib.GLTF2().load(str(path))
    gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
    return gltf


def save(gltf: pygltflib.GLTF2, path: Path) -> Path:
    gltf.save_binary(str(path))
    return path


def accessor(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    return read_accessor(gltf, gltf.binary_blob(), index)


def add_accessor(gltf: pygltflib.GLTF2, data: np.ndarray, type_: str) -> int:
    """Append float32 ``data`` to the binary blob as a new accessor; its index."""
    blob = gltf.binary_blob() or b""
    blob += b"\x00" * (-len(blob) % 4)
    raw = np.ascontiguousarray(data, dtype=np.float32)
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
    gltf.bufferViews.append(
        pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=raw.nbytes)
    )
    flat = raw.reshape(-1, width)
    gltf.accessors.append(
        pygltflib.Accessor(
            bufferView=len(gltf.bufferViews) - 1,
            componentType=FLOAT,
            count=len(flat),
            type=type_,
            min=flat.min(0).tolist() if type_ != "MAT4" else None,
            max=flat.max(0).tolist() if type_ != "MAT4" else None,
        )
    )
    blob += raw.tobytes()
    gltf.set_binary_blob(blob)
    gltf.buffers[0].byteLength = len(blob)
    return len(gltf.accessors) - 1


def parent_of(gltf: pygltflib.GLTF2, node: int) -> int | None:
    return next((i for i, n in enumerate(gltf.nodes) if node in (n.children or [])), None)


def insert_parent(gltf: pygltflib.GLTF2, node: int, new: pygltflib.Node) -> int:
    """Insert ``new`` between ``node`` and its parent (or the scene); the new node's index."""
    parent = parent_of(gltf, node)
    gltf.nodes.append(new)
    index = len(gltf.nodes) - 1
    new.children = [node]
    if parent is None:
        for scene in gltf.scenes:
            scene.nodes = [index if n == node else n for n in scene.nodes]
    else:
        children = gltf.nodes[parent].children
        children[children.index(node)] = index
    return index


def root_joint(gltf: pygltflib.GLTF2, skin: int = 0) -> int:
    joints = set(gltf.skins[skin].joints)
    return next(j for j in gltf.skins[skin].joints if not _has_joint_ancestor(gltf, j, joints))


def _has_joint_ancestor(gltf: pygltflib.GLTF2, node: int, joints: set[int]) -> bool:
    parent = parent_of(gltf, node)
    while parent is not None:
        if parent in joints:
            return True
        parent = parent_of(gltf, parent)
    return False


def scale_armature(gltf: pygltflib.GLTF2, scale: float) -> None:
    """Express the rig in units ``1/scale`` times smaller under a node scaled by ``scale`` (as
    Mixamo and Blender exports in centimetres do): joint translations (rest and keys) divided by
    ``scale``, inverse bind matrices scaled by ``1/scale``. The skinned result is unchanged."""
    joints = set(gltf.skins[0].joints)
    for j in joints:
        node = gltf.nodes[j]
        if node.matrix is not None:
            m = np.array(node.matrix, dtype=np.float64).reshape(4, 4)
            m[3, :3] /= scale  # column-major: the translation is the last row here
            node.matrix = m.reshape(-1).tolist()
        elif node.translation is not None:
            node.translation = (np.array(node.translation) / scale).tolist()
    for anim in gltf.animations or []:
        for channel in anim.channels:
            if channel.target.node in joints and channel.target.path == "translation":
                sampler = anim.samplers[channel.sampler]
                sampler.output = add_accessor(gltf, accessor(gltf, sampler.output) / scale, "VEC3")
    skin = gltf.skins[0]
    ibm = accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).swapaxes(-1, -2)
    scaled = np.diag([1 / scale, 1 / scale, 1 / scale, 1.0]) @ ibm
    skin.inverseBindMatrices = add_accessor(gltf, scaled.swapaxes(-1, -2), "MAT4")
    insert_parent(
        gltf, root_joint(gltf), pygltflib.Node(name="Armature", scale=[scale, scale, scale])
    )


def set_inverse_bind(gltf: pygltflib.GLTF2, ibm: np.ndarray, skin: int = 0) -> None:
    """Replace a skin's (J, 4, 4) inverse bind matrices (row-major numpy)."""
    gltf.skins[skin].inverseBindMatrices = add_accessor(gltf, ibm.swapaxes(-1, -2), "MAT4")


def inverse_bind(gltf: pygltflib.GLTF2, skin: int = 0) -> np.ndarray:
    index = gltf.skins[skin].inverseBindMatrices
    return accessor(gltf, index).reshape(-1, 4, 4).swapaxes(-1, -2).astype(np.float64)


def mesh_node(gltf: pygltflib.GLTF2, skin: int = 0) -> int:
    return next(i for i, n in enumerate(gltf.nodes) if n.mesh is not None and n.skin == skin)
