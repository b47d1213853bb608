"""A rigged, animated, non-human glTF written with pygltflib: a quadruped with a tail.

The node list is deliberately **children before parents** (the reverse of a parents-first order),
some bind-pose joint frames are rotated (not axis-aligned), and there are two animations: ``walk``
(legs swing, tail sways, body bobs) and ``wag`` (tail wags hard, head turns). Skin weights are
smooth in the distance to each bone segment, 4 per vertex.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib
import trimesh
from scipy.spatial.transform import Rotation

# name, parent, head position (bind pose, metres), bind-frame rotation (axis-angle)
BONES = [
    ("hips", None, (0.0, 0.55, -0.25), (0.0, 0.0, 0.0)),
    ("chest", "hips", (0.0, 0.58, 0.25), (0.0, 0.0, 0.0)),
    ("head", "chest", (0.0, 0.75, 0.45), (0.3, 0.0, 0.0)),
    ("leg_fl", "chest", (0.15, 0.5, 0.25), (0.0, 0.0, 1.5708)),
    ("paw_fl", "leg_fl", (0.15, 0.25, 0.25), (0.0, 0.0, 0.0)),
    ("leg_fr", "chest", (-0.15, 0.5, 0.25), (0.0, 0.0, -1.5708)),
    ("paw_fr", "leg_fr", (-0.15, 0.25, 0.25), (0.0, 0.0, 0.0)),
    ("leg_bl", "hips", (0.15, 0.5, -0.25), (0.0, 0.0, 0.0)),
    ("paw_bl", "leg_bl", (0.15, 0.25, -0.25), (0.0, 0.0, 0.0)),
    ("leg_br", "hips", (-0.15, 0.5, -0.25), (0.0, 0.0, 0.0)),
    ("paw_br", "leg_br", (-0.15, 0.25, -0.25), (0.0, 0.0, 0.0)),
    ("tail_1", "hips", (0.0, 0.6, -0.45), (0.0, 1.5708, 0.0)),
    ("tail_2", "tail_1", (0.0, 0.65, -0.65), (0.0, 0.0, 0.0)),
    ("tail_3", "tail_2", (0.0, 0.7, -0.85), (0.0, 0.0, 0.0)),
]
TAIL_END = (0.0, 0.75, -1.0)
NAMES = [b[0] for b in BONES]


def _segments() -> list[tuple[np.ndarray, np.ndarray]]:
    """Each bone's segment, from its head to its first child's head (or a short tip)."""
    heads = {name: np.array(head) for name, _, head, _ in BONES}
    out = []
    for name, _, head, _ in BONES:
        child = next((b[0] for b in BONES if b[1] == name), None)
        if name == "tail_3":
            tip = np.array(TAIL_END)
        elif name.startswith("paw"):
            tip = np.array(head) - np.array([0.0, 0.2, 0.0])
        elif name == "head":
            tip = np.array(head) + np.array([0.0, 0.05, 0.2])
        else:
            tip = heads[child]
        out.append((np.array(head), tip))
    return out


def quadruped_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Capsules around the bones (one closed mesh per segment), in the bind pose."""
    parts = []
    for (a, b), (name, *_rest) in zip(_segments(), BONES):
        radius = 0.05 if name.startswith(("leg", "paw", "tail")) else 0.13
        axis = b - a
        length = max(np.linalg.norm(axis), 1e-3)
        capsule = trimesh.creation.capsule(height=length, radius=radius, count=[8, 8])
        parts.append(capsule)
        v = capsule.vertices + np.array([0.0, 0.0, length / 2])  # along +z from a to b
        rot, _ = Rotation.align_vectors([axis / length], [[0.0, 0.0, 1.0]])
        capsule.vertices = rot.apply(v) + a
    merged = trimesh.util.concatenate(parts)
    return np.asarray(merged.vertices), np.asarray(merged.faces)


def skin_weights(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4 joints and weights per vertex from the distance to each bone segment."""
    dist = []
    for a, b in _segments():
        ab = b - a
        t = np.clip(((vertices - a) @ ab) / max(ab @ ab, 1e-9), 0.0, 1.0)
        dist.append(np.linalg.norm(vertices - (a + t[:, None] * ab), axis=1))
    dist = np.stack(dist, 1)
    logits = -dist / 0.04
    dense = np.exp(logits - logits.max(1, keepdims=True))
    joints = np.argsort(-dense, 1)[:, :4]
    weights = np.take_along_axis(dense, joints, 1)
    weights /= weights.sum(1, keepdims=True)
    return joints, weights.astype(np.float32)


def _bind_world() -> np.ndarray:
    world = np.zeros((len(BONES), 4, 4))
    for j, (_, _, head, aa) in enumerate(BONES):
        world[j, :3, :3] = Rotation.from_rotvec(aa).as_matrix()
        world[j, :3, 3] = head
        world[j, 3, 3] = 1.0
    return world


def _local_rest() -> np.ndarray:
    world = _bind_world()
    parent = [NAMES.index(b[1]) if b[1] else -1 for b in BONES]
    return np.stack(
        [world[j] if p < 0 else np.linalg.solve(world[p], world[j]) for j, p in enumerate(parent)]
    )


def _animation(kind: str, frames: int) -> dict[str, np.ndarray]:
    """Per-bone local rotations (F, 3) axis-angle in the bone's rest frame, and hips offsets."""
    t = np.linspace(0.0, 2 * np.pi, frames, endpoint=False)
    rot = {name: np.zeros((frames, 3)) for name in NAMES}
    if kind == "walk":
        for name, sign in (("leg_fl", 1), ("leg_br", 1), ("leg_fr", -1), ("leg_bl", -1)):
            # legs swing about the body's x axis; expressed in the bone's rotated rest frame
            axis = np.linalg.inv(_bind_world()[NAMES.index(name), :3, :3]) @ np.array([1.0, 0, 0])
            rot[name] = (sign * 0.5 * np.sin(t))[:, None] * axis
        rot["tail_1"][:, 1] = 0.3 * np.sin(t)
        shift = np.stack([np.zeros(frames), 0.03 * np.sin(2 * t), 0.1 * t / (2 * np.pi)], 1)
    else:
        for name in ("tail_1", "tail_2", "tail_3"):
            axis = np.linalg.inv(_bind_world()[NAMES.index(name), :3, :3]) @ np.array([0.0, 1, 0])
            rot[name] = (0.6 * np.sin(2 * t + 0.5))[:, None] * axis
        rot["head"][:, 1] = 0.5 * np.sin(t)
        shift = np.zeros((frames, 3))
    return {"rotations": np.stack([rot[n] for n in NAMES], 1), "shift": shift}


def write_quadruped_glb(path: Path, walk_frames: int = 12, wag_frames: int = 8) -> Path:
    vertices, faces = quadruped_mesh()
    joints, weights = skin_weights(vertices)
    bind = _bind_world()
    local = _local_rest()
    num = len(BONES)
    # Node order: children before parents (reverse of BONES), then the mesh node last.
    node_of = {j: num - 1 - j for j in range(num)}
    blobs: list[bytes] = []
    views, accessors = [], []
    offset = 0

    def add(data: np.ndarray, type_: str, component: int, bounds: bool = False) -> int:
        nonlocal offset
        data = np.ascontiguousarray(data)
        width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
        views.append(pygltflib.BufferView(buffer=0, byteOffset=offset, byteLength=data.nbytes))
        flat = data.reshape(-1, width)
        accessors.append(
            pygltflib.Accessor(
                bufferView=len(views) - 1,
                componentType=component,
                count=len(flat),
                type=type_,
                min=flat.min(0).tolist() if bounds else None,
                max=flat.max(0).tolist() if bounds else None,
            )
        )
        raw = data.tobytes() + b"\x00" * (-data.nbytes % 4)
        blobs.append(raw)
        offset += len(raw)
        return len(accessors) - 1

    FLOAT, USHORT, UINT = 5126, 5123, 5125
    pos = add(vertices.astype(np.float32), "VEC3", FLOAT, bounds=True)
    # The skin lists its joints children-first too: skin joint s is bone num - 1 - s.
    jnt = add((num - 1 - joints).astype(np.uint16), "VEC4", USHORT)
    wgt = add(weights, "VEC4", FLOAT)
    idx = add(faces.reshape(-1).astype(np.uint32), "SCALAR", UINT)
    inverse_bind = np.linalg.inv(bind)[::-1]
    ibm = add(inverse_bind.swapaxes(-1, -2).astype(np.float32), "MAT4", FLOAT)

    nodes: list[pygltflib.Node] = [None] * num  # type: ignore[list-item]
    for j, (name, _parent, _, _) in enumerate(BONES):
        quat = Rotation.from_matrix(local[j, :3, :3]).as_quat()  # x, y, z, w
        children = [node_of[c] for c, b in enumerate(BONES) if b[1] == name]
        nodes[node_of[j]] = pygltflib.Node(
            name=name,
            translation=local[j, :3, 3].tolist(),
            rotation=quat.tolist(),
            children=children or None,
        )
    nodes.append(pygltflib.Node(name="body", mesh=0, skin=0))
    animations = []
    for kind, frames in (("walk", walk_frames), ("wag", wag_frames)):
        anim = _animation(kind, frames)
        times = add((np.arange(frames) / 30.0).astype(np.float32), "SCALAR", FLOAT, bounds=True)
        samplers, channels = [], []
        for j in range(num):
            rest = Rotation.from_matrix(local[j, :3, :3])
            quats = (rest * Rotation.from_rotvec(anim["rotations"][:, j])).as_quat()
            quats[np.r_[False, (quats[1:] * quats[:-1]).sum(1) < 0]] *= -1
            samplers.append(
                pygltflib.AnimationSampler(
                    input=times, output=add(quats.astype(np.float32), "VEC4", FLOAT)
                )
            )
            channels.append(
                pygltflib.AnimationChannel(
                    sampler=len(samplers) - 1,
                    target=pygltflib.AnimationChannelTarget(node=node_of[j], path="rotation"),
                )
            )
        hips = (local[0, :3, 3] + anim["shift"]).astype(np.float32)
        samplers.append(pygltflib.AnimationSampler(input=times, output=add(hips, "VEC3", FLOAT)))
        channels.append(
            pygltflib.AnimationChannel(
                sampler=len(samplers) - 1,
                target=pygltflib.AnimationChannelTarget(node=node_of[0], path="translation"),
            )
        )
        animations.append(pygltflib.Animation(name=kind, samplers=samplers, channels=channels))
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(version="2.0", generator="invskin tests"),
        scene=0,
        scenes=[pygltflib.Scene(nodes=[node_of[0], num])],
        nodes=nodes,
        meshes=[
            pygltflib.Mesh(
                primitives=[
                    pygltflib.Primitive(
                        attributes=pygltflib.Attributes(POSITION=pos, JOINTS_0=jnt, WEIGHTS_0=wgt),
                        indices=idx,
                    )
                ]
            )
        ],
        skins=[
            pygltflib.Skin(
                joints=[node_of[j] for j in reversed(range(num))], inverseBindMatrices=ibm
            )
        ],
        animations=animations,
        accessors=accessors,
        bufferViews=views,
        buffers=[pygltflib.Buffer(byteLength=offset)],
    )
    gltf.set_binary_blob(b"".join(blobs))
    path = Path(path)
    gltf.save_binary(str(path))
    return path
