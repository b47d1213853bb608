"""Export a reposed sequence (one mesh, many frames of vertex positions) as a glTF 2.0 binary (GLB).

The animation uses **morph targets**: the base mesh is the first frame, target k holds frame k's
displacement from it, and one animation channel steps the morph weights so frame k has weight 1 at
time k / fps. Faces are shared by all frames, which is what exact correspondences give: a texture or
edit made on the mesh carries over to every pose. glTF is y up and in metres, like invskin. Optional
per-vertex colours (a texture painted on the canonical mesh) go in ``COLOR_0``, shared by all frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib
from jaxtyping import Float, Int, UInt8

from invskin.fileio import atomic_path

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT = 5126
UNSIGNED_INT = 5125
UNSIGNED_BYTE = 5121


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def write_glb(
    path: Path,
    frames: Float[np.ndarray, "f v 3"],
    faces: Int[np.ndarray, "t 3"],
    fps: float = 30.0,
    colors: UInt8[np.ndarray, "v 3"] | None = None,
) -> None:
    """Write ``frames`` (all with the same ``faces``) as an animated GLB, atomically.

    ``colors``: optional per-vertex RGB (V, 3) uint8, written as ``COLOR_0`` (normalised RGBA
    bytes), the same for every frame since vertex i is the same point in every frame.
    """
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.shape[2] != 3:
        raise ValueError(f"frames must have shape (F, V, 3), got {frames.shape}")
    if not np.isfinite(frames).all():
        raise ValueError("frames contain NaN or infinite vertex positions")
    num_frames = frames.shape[0]
    base = frames[0]
    blobs: list[bytes] = []
    views: list[pygltflib.BufferView] = []
    accessors: list[pygltflib.Accessor] = []
    offset = 0

    def add(data: np.ndarray, accessor: pygltflib.Accessor, target: int | None) -> int:
        nonlocal offset
        raw = _pad4(data.tobytes())
        views.append(
            pygltflib.BufferView(buffer=0, byteOffset=offset, byteLength=data.nbytes, target=target)
        )
        accessor.bufferView = len(views) - 1
        accessors.append(accessor)
        blobs.append(raw)
        offset += len(raw)
        return len(accessors) - 1

    def vec3(data: np.ndarray) -> pygltflib.Accessor:
        return pygltflib.Accessor(
            componentType=FLOAT,
            count=len(data),
            type="VEC3",
            min=data.min(0).tolist(),
            max=data.max(0).tolist(),
        )

    position = add(base, vec3(base), ARRAY_BUFFER)
    indices = add(
        faces.reshape(-1),
        pygltflib.Accessor(componentType=UNSIGNED_INT, count=faces.size, type="SCALAR"),
        ELEMENT_ARRAY_BUFFER,
    )
    color = None
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (frames.shape[1], 3) or colors.dtype != np.uint8:
            raise ValueError(
                f"colors must be (V, 3) uint8 with V={frames.shape[1]}, got {colors.shape} "
                f"{colors.dtype}"
            )
        rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
        color = add(
            np.ascontiguousarray(rgba),
            pygltflib.Accessor(
                componentType=UNSIGNED_BYTE, normalized=True, count=len(rgba), type="VEC4"
            ),
            ARRAY_BUFFER,
        )
    targets = []
    for k in range(1, num_frames):
        delta = frames[k] - base
        targets.append({"POSITION": add(delta, vec3(delta), ARRAY_BUFFER)})
    primitive = pygltflib.Primitive(
        attributes=pygltflib.Attributes(POSITION=position, COLOR_0=color),
        indices=indices,
        targets=targets or None,
    )
    mesh = pygltflib.Mesh(primitives=[primitive], weights=[0.0] * len(targets) or None)
    animations = []
    if targets:
        times = (np.arange(num_frames, dtype=np.float32) / fps).astype(np.float32)
        weights = np.zeros((num_frames, len(targets)), dtype=np.float32)
        for k in range(1, num_frames):
            weights[k, k - 1] = 1.0
        time_acc = add(
            times,
            pygltflib.Accessor(
                componentType=FLOAT,
                count=num_frames,
                type="SCALAR",
                min=[float(times[0])],
                max=[float(times[-1])],
            ),
            None,
        )
        weight_acc = add(
            weights.reshape(-1),
            pygltflib.Accessor(componentType=FLOAT, count=weights.size, type="SCALAR"),
            None,
        )
        animations.append(
            pygltflib.Animation(
                name="repose",
                samplers=[
                    pygltflib.AnimationSampler(
                        input=time_acc, output=weight_acc, interpolation="STEP"
                    )
                ],
                channels=[
                    pygltflib.AnimationChannel(
                        sampler=0, target=pygltflib.AnimationChannelTarget(node=0, path="weights")
                    )
                ],
            )
        )
    gltf = pygltflib.GLTF2(
        asset=pygltflib.Asset(generator="invskin", version="2.0"),
        scene=0,
        scenes=[pygltflib.Scene(nodes=[0])],
        nodes=[pygltflib.Node(mesh=0, name="invskin")],
        meshes=[mesh],
        accessors=accessors,
        bufferViews=views,
        buffers=[pygltflib.Buffer(byteLength=offset)],
        animations=animations,
    )
    gltf.set_binary_blob(b"".join(blobs))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        gltf.save_binary(str(tmp))


def read_glb_frames(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read back a GLB written by :func:`write_glb`: ``(frames (F, V, 3), faces (T, 3))``."""
    gltf = pygltflib.GLTF2().load_binary(str(path))
    blob = gltf.binary_blob()

    def read(index: int, width: int, dtype: type) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        data = np.frombuffer(blob, dtype=dtype, count=acc.count * width, offset=view.byteOffset)
        return data.reshape(acc.count, width) if width > 1 else data

    prim = gltf.meshes[0].primitives[0]
    base = read(prim.attributes.POSITION, 3, np.float32)
    faces = read(prim.indices, 1, np.uint32).reshape(-1, 3).astype(np.int64)
    frames = [base] + [base + read(t["POSITION"], 3, np.float32) for t in prim.targets or []]
    return np.stack(frames), faces


def read_glb_colors(path: Path) -> np.ndarray | None:
    """The ``COLOR_0`` RGB (V, 3) uint8 of a GLB written by :func:`write_glb`, or None."""
    gltf = pygltflib.GLTF2().load_binary(str(path))
    index = gltf.meshes[0].primitives[0].attributes.COLOR_0
    if index is None:
        return None
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    data = np.frombuffer(
        gltf.binary_blob(), dtype=np.uint8, count=acc.count * 4, offset=view.byteOffset
    )
    return data.reshape(acc.count, 4)[:, :3].copy()
