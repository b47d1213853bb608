"""Export a reposed sequence as an engine-ready **skinned** glTF 2.0 binary (GLB).

What the file holds (glTF 2.0 skinning, section 3.7.3 of the specification):

- the canonical mesh (bind pose = invskin's canonical pose), with per-vertex normals;
- the skeleton as joint nodes (parents before children, as in :class:`~invskin.body.Skeleton`),
  each node's rest transform its canonical local transform, and a skin whose inverse bind matrices
  are ``G_j(canonical)^-1``;
- per vertex the **4 largest** skinning weights, renormalised to sum to 1 (``JOINTS_0`` /
  ``WEIGHTS_0``); with 4 weights, the skinned vertex is ``sum_j w_j T_j(f) (v + d)``, ``T_j(f)`` the
  canonical-to-posed bone transform of frame f;
- the motion as joint translation + rotation channels, one key per frame (``LINEAR``);
- optionally the look: ``TEXCOORD_0`` and a base-colour texture (the image stored in the GLB), or
  ``COLOR_0`` (per-vertex colours, converted from sRGB to the linear values glTF specifies), or a
  plain base colour (:mod:`invskin.export.look` computes them);
- at most :data:`MAX_TARGETS` pose-corrective **morph targets** with per-frame weights: the
  principal components (uncentred SVD over the sequence) of what plain skinning misses. Morph
  targets act **before** skinning, so each frame's residual is taken back to canonical space through
  that vertex's blended transform: ``d_f = A_v(f)^-1 (p_f - t_v(f)) - v`` with
  ``[A_v | t_v] = sum_j w_vj T_j(f)``, exact up to the truncation to K components.

:func:`read_skinned_glb` reads such a file back and :func:`pose_skinned_glb` evaluates the glTF
skinning formula on what was stored (a reference evaluator used by the tests and by
``invskin export`` to report the vertex error of the export against the model output).
Conventions: metres, y up, column vectors (glTF's own). Shape legend: ``F`` frames, ``V`` vertices,
``J`` joints, ``K`` morph targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib
import torch
from jaxtyping import Float, Int

from invskin.body.skeleton import Skeleton
from invskin.data.loaders.appearance import TextureImage, linear_to_srgb, srgb_to_linear
from invskin.fileio import atomic_path
from invskin.geometry import local_from_world, matrix_to_quaternion
from invskin.motion.gltf_anim import (
    FLOAT,
    UNSIGNED_BYTE,
    UNSIGNED_INT,
    UNSIGNED_SHORT,
    quaternion_xyzw_to_matrix,
    read_accessor,
)

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
INFLUENCES = 4
"""Skinning weights kept per vertex (one ``JOINTS_0``/``WEIGHTS_0`` set)."""
MAX_TARGETS = 8
"""glTF clients need only support 8 morphed attributes; engines blend about 8 targets at once."""
DEFAULT_COLOUR = (0.8, 0.55, 0.45, 1.0)
"""Base colour of a mesh without a look."""


@dataclass(frozen=True)
class SkinnedExport:
    """What :func:`write_skinned_glb` stored (besides the mesh and the skeleton)."""

    joints: Int[np.ndarray, "v 4"]
    weights: Float[np.ndarray, "v 4"]
    targets: Float[np.ndarray, "k v 3"]
    """Corrective displacements in canonical (bind) space."""
    target_weights: Float[np.ndarray, "f k"]
    explained: float
    """Fraction of the squared canonical-space residual the K targets capture (1.0 if K = 0)."""


def top_weights(
    weights: Float[np.ndarray, "v j"], count: int = INFLUENCES
) -> tuple[Int[np.ndarray, "v c"], Float[np.ndarray, "v c"]]:
    """The ``count`` largest weights per vertex and their joints, renormalised to sum to 1.

    Slots beyond a vertex's nonzero weights get weight 0 (and joint 0). Fewer than ``count`` joints
    are padded. Rows sum to 1 in float32 to within 1e-6.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or not np.isfinite(weights).all():
        raise ValueError("skinning weights must be a finite (V, J) array")
    weights = np.clip(weights, 0.0, None)
    if weights.shape[1] < count:
        weights = np.pad(weights, ((0, 0), (0, count - weights.shape[1])))
    joints = np.argsort(-weights, axis=1, kind="stable")[:, :count]
    kept = np.take_along_axis(weights, joints, axis=1)
    total = kept.sum(1, keepdims=True)
    if (total <= 0).any():
        raise ValueError(f"{int((total <= 0).sum())} vertices have no positive skinning weight")
    kept = (kept / total).astype(np.float32)
    joints = np.where(kept > 0, joints, 0)
    # Put float32 rounding into the largest weight so every row sums to 1 in float32.
    kept[:, 0] += np.float32(1.0) - kept.sum(1, dtype=np.float32)
    return joints.astype(np.int64), kept


def blended_transforms(
    joints: Int[np.ndarray, "v c"], weights: Float[np.ndarray, "v c"], transforms: np.ndarray
) -> Float[np.ndarray, "f v 4 4"]:
    """Per-vertex blended transform ``sum_c w_vc T_{joint_vc}`` for every frame (float64)."""
    transforms = np.asarray(transforms, dtype=np.float64)
    return np.einsum("vc,fvcab->fvab", weights.astype(np.float64), transforms[:, joints])


def corrective_targets(
    vertices: Float[np.ndarray, "v 3"],
    joints: Int[np.ndarray, "v c"],
    weights: Float[np.ndarray, "v c"],
    transforms: Float[np.ndarray, "f j 4 4"],
    posed: Float[np.ndarray, "f v 3"],
    max_targets: int = MAX_TARGETS,
) -> tuple[Float[np.ndarray, "k v 3"], Float[np.ndarray, "f k"], float]:
    """Morph targets (canonical space) and per-frame weights that best restore ``posed``.

    Returns ``(targets, frame_weights, explained)``: the top-K right singular vectors of the
    (F, 3V) matrix of canonical-space residuals, scaled so their weights are the left singular
    vectors times the singular values (K = min(max_targets, F, numerical rank), singular values
    under 1e-4 of the largest counting as zero).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    residual = np.zeros((len(posed), vertices.size))
    for f in range(len(posed)):  # one frame at a time: (V, 4, 4) float64 blends
        blend = blended_transforms(joints, weights, transforms[f : f + 1])[0]
        rhs = np.asarray(posed[f], dtype=np.float64) - blend[:, :3, 3]
        try:
            unposed = np.linalg.solve(blend[:, :3, :3], rhs[..., None])[..., 0]
        except np.linalg.LinAlgError as error:
            raise ValueError(
                f"a vertex's blended bone transform is singular in frame {f}; corrective "
                "targets need invertible blends (check the bone transforms)"
            ) from error
        residual[f] = (unposed - vertices).reshape(-1)
    total = float((residual**2).sum())
    if max_targets <= 0 or total == 0.0:
        return (
            np.zeros((0, len(vertices), 3), np.float32),
            np.zeros((len(posed), 0), np.float32),
            1.0,
        )
    u, s, vt = np.linalg.svd(residual, full_matrices=False)
    # Numerical rank: components under 1e-4 of the largest are float32 rounding of the weights.
    k = int(min(max_targets, int((s > s[0] * 1e-4).sum())))
    targets = vt[:k].reshape(k, len(vertices), 3)
    frame_weights = u[:, :k] * s[:k]
    explained = float((s[:k] ** 2).sum() / total)
    return targets.astype(np.float32), frame_weights.astype(np.float32), explained


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals; (0, 1, 0) where a vertex has no area around it."""
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for c in range(3):
        np.add.at(normals, faces[:, c], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), normals.shape)
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-30), up).astype(np.float32)


def joint_trs(
    skeleton: Skeleton, transforms: Float[np.ndarray, "f j 4 4"]
) -> tuple[Float[np.ndarray, "f j 3"], Float[np.ndarray, "f j 4"]]:
    """Local translation and rotation (glTF quaternion ``x, y, z, w``) of every joint per frame.

    Joint world matrices are ``T_j(f) G_j(canonical)``; rotations must be rigid (an error says so
    otherwise). Quaternion signs are made continuous over frames so LINEAR (slerp) keys interpolate
    the short way.
    """
    canonical = skeleton.canonical.double().numpy()
    world = np.asarray(transforms, dtype=np.float64) @ canonical
    local = local_from_world(torch.from_numpy(world), skeleton.parents).numpy()
    rotation = local[..., :3, :3]
    gram = rotation.swapaxes(-1, -2) @ rotation
    worst = float(np.abs(gram - np.eye(3)).max())
    if worst > 1e-3 or (np.linalg.det(rotation) <= 0).any():
        raise ValueError(
            f"bone transforms are not rigid (rotation off orthonormal by {worst:.2g}); glTF joints "
            "take translation and rotation only: pass rigid canonical-to-posed transforms"
        )
    quat = matrix_to_quaternion(torch.from_numpy(rotation)).numpy()  # (w, x, y, z)
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    for f in range(1, len(quat)):
        flip = (quat[f] * quat[f - 1]).sum(-1) < 0
        quat[f, flip] *= -1.0
    xyzw = np.concatenate([quat[..., 1:], quat[..., :1]], axis=-1)
    return local[..., :3, 3], xyzw


class _Buffer:
    """Accumulates binary data, buffer views and accessors of one GLB."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.views: list[pygltflib.BufferView] = []
        self.accessors: list[pygltflib.Accessor] = []
        self.offset = 0

    def add(
        self,
        data: np.ndarray,
        type_: str,
        component: int,
        target: int | None = None,
        bounds: bool = False,
        normalized: bool | None = None,
    ) -> int:
        data = np.ascontiguousarray(data)
        width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[type_]
        count = data.size // width
        self.views.append(
            pygltflib.BufferView(
                buffer=0, byteOffset=self.offset, byteLength=data.nbytes, target=target
            )
        )
        flat = data.reshape(count, width)
        self.accessors.append(
            pygltflib.Accessor(
                bufferView=len(self.views) - 1,
                componentType=component,
                count=count,
                type=type_,
                normalized=normalized,
                min=flat.min(0).tolist() if bounds else None,
                max=flat.max(0).tolist() if bounds else None,
            )
        )
        raw = data.tobytes()
        raw += b"\x00" * (-len(raw) % 4)
        self.blobs.append(raw)
        self.offset += len(raw)
        return len(self.accessors) - 1

    def add_bytes(self, data: bytes) -> int:
        """A buffer view of raw bytes (an image); returns its index."""
        self.views.append(
            pygltflib.BufferView(buffer=0, byteOffset=self.offset, byteLength=len(data))
        )
        self.blobs.append(data + b"\x00" * (-len(data) % 4))
        self.offset += len(self.blobs[-1])
        return len(self.views) - 1


def _check_look(uv, colors, texture, num_vertices: int) -> None:
    if texture is not None and uv is None:
        raise ValueError("a texture needs uv (TEXCOORD_0)")
    for name, array, width in (("uv", uv, 2), ("colors", colors, 3)):
        if array is None:
            continue
        array = np.asarray(array)
        if array.shape != (num_vertices, width) or not np.isfinite(array).all():
            raise ValueError(f"{name} must be a finite ({num_vertices}, {width}) array")
    if colors is not None and (np.min(colors) < 0.0 or np.max(colors) > 1.0):
        raise ValueError("colors must be sRGB values in [0, 1]")


def write_skinned_glb(
    path: Path,
    vertices: Float[np.ndarray, "v 3"],
    faces: Int[np.ndarray, "t 3"],
    skeleton: Skeleton,
    weights: Float[np.ndarray, "v j"],
    transforms: Float[np.ndarray, "f j 4 4"],
    posed: Float[np.ndarray, "f v 3"] | None = None,
    max_targets: int = MAX_TARGETS,
    fps: float = 30.0,
    *,
    uv: Float[np.ndarray, "v 2"] | None = None,
    colors: Float[np.ndarray, "v 3"] | None = None,
    texture: TextureImage | None = None,
    base_color_factor: tuple[float, float, float, float] | None = None,
) -> SkinnedExport:
    """Write a skinned, animated GLB atomically (module docstring); return what it stored.

    ``weights`` are the full per-vertex skinning weights (4 largest kept); ``posed`` the model's
    output per frame, from which up to ``max_targets`` (at most 8) corrective targets are made
    (none without ``posed``). The look: ``uv`` (glTF convention, origin at the image's top
    left) with ``texture``, and/or ``colors`` (sRGB in [0, 1]); ``base_color_factor`` (linear
    RGBA) defaults to white with a texture or colours, else :data:`DEFAULT_COLOUR`.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    transforms = np.asarray(transforms, dtype=np.float64)
    num_frames = len(transforms)
    if not 0 <= max_targets <= MAX_TARGETS:
        raise ValueError(f"max_targets must be between 0 and {MAX_TARGETS}, got {max_targets}")
    if transforms.ndim != 4 or transforms.shape[1:] != (skeleton.num_bones, 4, 4):
        raise ValueError(
            f"transforms have shape {transforms.shape}, expected (F, {skeleton.num_bones}, 4, 4)"
        )
    if num_frames < 1 or not np.isfinite(transforms).all():
        raise ValueError("transforms must hold at least one frame of finite values")
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise ValueError("vertices must be a finite (V, 3) array")
    if weights.shape != (len(vertices), skeleton.num_bones):
        raise ValueError(
            f"weights have shape {weights.shape}, expected ({len(vertices)}, {skeleton.num_bones})"
        )
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _check_look(uv, colors, texture, len(vertices))
    joints, kept = top_weights(weights)
    if posed is not None and max_targets > 0:
        posed = np.asarray(posed, dtype=np.float64)
        if posed.shape != (num_frames, len(vertices), 3) or not np.isfinite(posed).all():
            raise ValueError(f"posed must be a finite ({num_frames}, {len(vertices)}, 3) array")
        targets, target_weights, explained = corrective_targets(
            vertices, joints, kept, transforms, posed, max_targets
        )
    else:
        targets = np.zeros((0, len(vertices), 3), np.float32)
        target_weights = np.zeros((num_frames, 0), np.float32)
        explained = 1.0
    translation, rotation = joint_trs(skeleton, transforms)
    rest_translation, rest_rotation = joint_trs(
        skeleton, np.eye(4)[None, None].repeat(skeleton.num_bones, 1)
    )

    buf = _Buffer()
    position = buf.add(vertices.astype(np.float32), "VEC3", FLOAT, ARRAY_BUFFER, bounds=True)
    normal = buf.add(_vertex_normals(vertices, faces), "VEC3", FLOAT, ARRAY_BUFFER)
    joint_type = np.uint8 if skeleton.num_bones <= 256 else np.uint16
    joint_component = UNSIGNED_BYTE if joint_type is np.uint8 else UNSIGNED_SHORT
    joint_acc = buf.add(joints.astype(joint_type), "VEC4", joint_component, ARRAY_BUFFER)
    weight_acc = buf.add(kept, "VEC4", FLOAT, ARRAY_BUFFER)
    indices = buf.add(
        faces.reshape(-1).astype(np.uint32), "SCALAR", UNSIGNED_INT, ELEMENT_ARRAY_BUFFER
    )
    texcoord = color = None
    if uv is not None:
        texcoord = buf.add(np.asarray(uv, np.float32), "VEC2", FLOAT, ARRAY_BUFFER)
    if colors is not None:
        linear = srgb_to_linear(np.asarray(colors)).astype(np.float32)
        color = buf.add(linear, "VEC3", FLOAT, ARRAY_BUFFER)
    images, textures, samplers_tex, base_texture = [], [], [], None
    if texture is not None:
        view = buf.add_bytes(texture.data)
        images = [pygltflib.Image(bufferView=view, mimeType=texture.mime)]
        samplers_tex = [pygltflib.Sampler(**texture.sampler)]
        textures = [pygltflib.Texture(sampler=0, source=0)]
        base_texture = pygltflib.TextureInfo(index=0)
    if base_color_factor is None:
        plain = texture is None and colors is None
        base_color_factor = DEFAULT_COLOUR if plain else (1.0, 1.0, 1.0, 1.0)
    morphs = [{"POSITION": buf.add(t, "VEC3", FLOAT, ARRAY_BUFFER, bounds=True)} for t in targets]
    inverse_bind = np.linalg.inv(skeleton.canonical.double().numpy())
    # glTF matrices are column-major: store each transposed row-major matrix.
    ibm = buf.add(inverse_bind.swapaxes(-1, -2).astype(np.float32), "MAT4", FLOAT)

    num_joints = skeleton.num_bones
    mesh_node = 0
    joint_nodes = list(range(1, num_joints + 1))
    nodes = [pygltflib.Node(name="invskin-mesh", mesh=0, skin=0)]
    for j, name in enumerate(skeleton.names):
        children = [joint_nodes[c] for c in skeleton.children(j)]
        nodes.append(
            pygltflib.Node(
                name=name,
                translation=rest_translation[0, j].tolist(),
                rotation=rest_rotation[0, j].tolist(),
                children=children or None,
            )
        )
    roots = [joint_nodes[j] for j, p in enumerate(skeleton.parents) if p < 0]

    times = (np.arange(num_frames) / fps).astype(np.float32)
    time_acc = buf.add(times, "SCALAR", FLOAT, bounds=True)
    samplers, channels = [], []
    for j in range(num_joints):
        for path_name, values, type_ in (
            ("translation", translation[:, j], "VEC3"),
            ("rotation", rotation[:, j], "VEC4"),
        ):
            out = buf.add(values.astype(np.float32), type_, FLOAT)
            samplers.append(
                pygltflib.AnimationSampler(input=time_acc, output=out, interpolation="LINEAR")
            )
            channels.append(
                pygltflib.AnimationChannel(
                    sampler=len(samplers) - 1,
                    target=pygltflib.AnimationChannelTarget(node=joint_nodes[j], path=path_name),
                )
            )
    if len(targets):
        out = buf.add(target_weights.reshape(-1).astype(np.float32), "SCALAR", FLOAT)
        samplers.append(
            pygltflib.AnimationSampler(input=time_acc, output=out, interpolation="LINEAR")
        )
        channels.append(
            pygltflib.AnimationChannel(
                sampler=len(samplers) - 1,
                target=pygltflib.AnimationChannelTarget(node=mesh_node, path="weights"),
            )
        )

    primitive = pygltflib.Primitive(
        attributes=pygltflib.Attributes(
            POSITION=position,
            NORMAL=normal,
            TEXCOORD_0=texcoord,
            COLOR_0=color,
            JOINTS_0=joint_acc,
            WEIGHTS_0=weight_acc,
        ),
        indices=indices,
        material=0,
        targets=morphs or None,
    )
    mesh = pygltflib.Mesh(
        name="invskin",
        primitives=[primitive],
        weights=target_weights[0].tolist() if len(targets) else None,
        extras={"targetNames": [f"corrective_{k}" for k in range(len(targets))]}
        if len(targets)
        else None,
    )
    material = pygltflib.Material(
        name="invskin",
        pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorFactor=[float(c) for c in base_color_factor],
            baseColorTexture=base_texture,
            metallicFactor=0.0,
            roughnessFactor=0.8,
        ),
        doubleSided=True,
    )
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(generator="invskin (skinned export)", version="2.0"),
        scene=0,
        scenes=[pygltflib.Scene(nodes=[mesh_node, *roots])],
        nodes=nodes,
        meshes=[mesh],
        materials=[material],
        images=images,
        textures=textures,
        samplers=samplers_tex,
        skins=[pygltflib.Skin(name="invskin", joints=joint_nodes, inverseBindMatrices=ibm)],
        animations=[pygltflib.Animation(name="motion", samplers=samplers, channels=channels)],
        accessors=buf.accessors,
        bufferViews=buf.views,
        buffers=[pygltflib.Buffer(byteLength=buf.offset)],
    )
    gltf.set_binary_blob(b"".join(buf.blobs))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        gltf.save_binary(str(tmp))
    return SkinnedExport(joints, kept, targets, target_weights, explained)


# ----------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class SkinnedGlb:
    """The arrays of a skinned GLB as written by :func:`write_skinned_glb`."""

    vertices: Float[np.ndarray, "v 3"]
    faces: Int[np.ndarray, "t 3"]
    joints: Int[np.ndarray, "v 4"]
    weights: Float[np.ndarray, "v 4"]
    parents: tuple[int, ...]
    names: tuple[str, ...]
    inverse_bind: Float[np.ndarray, "j 4 4"]
    translation: Float[np.ndarray, "f j 3"]
    rotation: Float[np.ndarray, "f j 4"]
    """glTF quaternions ``x, y, z, w``."""
    targets: Float[np.ndarray, "k v 3"]
    target_weights: Float[np.ndarray, "f k"]
    uv: Float[np.ndarray, "v 2"] | None = None
    colors: Float[np.ndarray, "v 3"] | None = None
    """``COLOR_0`` as sRGB in [0, 1] (the file stores linear values)."""
    image: bytes | None = None
    """The base-colour texture's encoded image."""


def read_skinned_glb(path: Path) -> SkinnedGlb:
    """Read back a GLB written by :func:`write_skinned_glb`."""
    gltf = pygltflib.GLTF2().load_binary(str(path))
    blob = gltf.binary_blob()
    node = next(n for n in gltf.nodes if n.mesh is not None and n.skin is not None)
    skin = gltf.skins[node.skin]
    prim = gltf.meshes[node.mesh].primitives[0]
    attrs = prim.attributes
    joint_index = {node_id: j for j, node_id in enumerate(skin.joints)}
    parents = [-1] * len(skin.joints)
    for node_id, j in joint_index.items():
        for child in gltf.nodes[node_id].children or []:
            parents[joint_index[child]] = j
    anim = gltf.animations[0]
    num_frames = gltf.accessors[anim.samplers[0].input].count
    translation = np.zeros((num_frames, len(skin.joints), 3), np.float32)
    rotation = np.zeros((num_frames, len(skin.joints), 4), np.float32)
    translation[:] = [gltf.nodes[n].translation or [0, 0, 0] for n in skin.joints]
    rotation[:] = [gltf.nodes[n].rotation or [0, 0, 0, 1] for n in skin.joints]
    vertices = read_accessor(gltf, blob, attrs.POSITION)
    targets = np.zeros((0, len(vertices), 3), np.float32)
    if prim.targets:
        targets = np.stack([read_accessor(gltf, blob, t["POSITION"]) for t in prim.targets])
    target_weights = np.zeros((num_frames, len(targets)), np.float32)
    uv = colors = image = None
    if attrs.TEXCOORD_0 is not None:
        uv = read_accessor(gltf, blob, attrs.TEXCOORD_0)
    if attrs.COLOR_0 is not None:
        colors = linear_to_srgb(read_accessor(gltf, blob, attrs.COLOR_0)[:, :3]).astype(np.float32)
    if gltf.images and gltf.images[0].bufferView is not None:
        view = gltf.bufferViews[gltf.images[0].bufferView]
        start = view.byteOffset or 0
        image = bytes(blob[start : start + view.byteLength])
    for channel in anim.channels:
        values = read_accessor(gltf, blob, anim.samplers[channel.sampler].output)
        if channel.target.path == "weights":
            target_weights = values.reshape(num_frames, len(targets))
        elif channel.target.path == "translation":
            translation[:, joint_index[channel.target.node]] = values
        elif channel.target.path == "rotation":
            rotation[:, joint_index[channel.target.node]] = values
    return SkinnedGlb(
        vertices=vertices,
        faces=read_accessor(gltf, blob, prim.indices).reshape(-1, 3).astype(np.int64),
        joints=read_accessor(gltf, blob, attrs.JOINTS_0).astype(np.int64),
        weights=read_accessor(gltf, blob, attrs.WEIGHTS_0),
        parents=tuple(parents),
        names=tuple(gltf.nodes[n].name for n in skin.joints),
        inverse_bind=read_accessor(gltf, blob, skin.inverseBindMatrices)
        .reshape(-1, 4, 4)
        .swapaxes(-1, -2),
        translation=translation,
        rotation=rotation,
        targets=targets,
        target_weights=target_weights,
        uv=uv,
        colors=colors,
        image=image,
    )


def pose_skinned_glb(glb: SkinnedGlb, correctives: bool = True) -> Float[np.ndarray, "f v 3"]:
    """Vertices of every key frame by the glTF formula: morph, then ``sum w_j M_j IBM_j``."""
    num_frames, num_joints = glb.translation.shape[:2]
    local = np.zeros((num_frames, num_joints, 4, 4))
    local[..., :3, :3] = quaternion_xyzw_to_matrix(glb.rotation)
    local[..., :3, 3] = glb.translation
    local[..., 3, 3] = 1.0
    world = [None] * num_joints
    for j, p in enumerate(glb.parents):  # parents listed before children
        world[j] = local[:, j] if p < 0 else world[p] @ local[:, j]
    skinning = np.stack(world, axis=1) @ glb.inverse_bind.astype(np.float64)
    base = glb.vertices.astype(np.float64)[None].repeat(num_frames, 0)
    if correctives and len(glb.targets):
        base = base + np.einsum("fk,kvc->fvc", glb.target_weights, glb.targets)
    out = np.zeros_like(base)
    for f in range(num_frames):  # one frame at a time: (V, 4, 4) float64 blends
        blend = blended_transforms(glb.joints, glb.weights, skinning[f : f + 1])[0]
        out[f] = np.einsum("vab,vb->va", blend[:, :3, :3], base[f]) + blend[:, :3, 3]
    return out
