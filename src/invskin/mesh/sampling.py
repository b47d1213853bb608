"""Surface sampling, normals and closest points on triangle meshes.

Conventions: barycentric coordinates ``(b0, b1, b2)`` weight the face's vertices in the order of
``mesh.faces[f]``, sum to 1 and are non-negative; the point is ``sum_k b_k v[faces[f, k]]``. Face
normals follow the right-hand rule of the face's vertex order (outwards for an outward mesh). Seeds
are anything ``numpy.random.default_rng`` accepts (an int, or a ``SeedSequence``); the same seed
gives the same samples on every platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import point_cloud_utils as pcu
from jaxtyping import Float, Int

from invskin.mesh.io import TriMesh

Seed = int | np.random.SeedSequence


def seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """``seed`` as a ``SeedSequence`` (to ``spawn`` independent streams from one seed)."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


@dataclass(frozen=True)
class SurfaceSamples:
    """Points on a mesh surface: ``points`` and unit face ``normals`` (n, 3), ``face_index`` (n,),
    ``barycentric`` (n, 3) (so ``points == sum_k barycentric[:, k] vertices[faces[face_index, k]]``).
    """

    points: Float[np.ndarray, "n 3"]
    normals: Float[np.ndarray, "n 3"]
    face_index: Int[np.ndarray, " n"]
    barycentric: Float[np.ndarray, "n 3"]


def face_normals(mesh: TriMesh) -> Float[np.ndarray, "t 3"]:
    """Unit face normals (T, 3); zero for degenerate (zero-area) faces."""
    tri = mesh.vertices[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(cross, axis=1, keepdims=True)
    return np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)


def vertex_normals(mesh: TriMesh) -> Float[np.ndarray, "v 3"]:
    """Unit vertex normals (V, 3): area-weighted mean of the adjacent face normals.

    Vertices that no face uses (or whose faces cancel out) get a zero normal.
    """
    tri = mesh.vertices[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
    summed = np.zeros_like(mesh.vertices)
    for k in range(3):
        np.add.at(summed, mesh.faces[:, k], cross)
    norm = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.divide(summed, norm, out=np.zeros_like(summed), where=norm > 0)


def interpolate_barycentric(
    mesh: TriMesh, face_index: Int[np.ndarray, " n"], barycentric: Float[np.ndarray, "n 3"]
) -> Float[np.ndarray, "n 3"]:
    """Points (n, 3) at barycentric coordinates on the given faces of ``mesh``."""
    return np.einsum("nk,nkd->nd", barycentric, mesh.vertices[mesh.faces[face_index]])


def sample_surface(mesh: TriMesh, n: int, seed: Seed = 0) -> SurfaceSamples:
    """``n`` points uniformly distributed over the surface area of ``mesh`` (deterministic per seed).

    Faces are drawn with probability proportional to their area, then a point uniformly inside the
    face (the square-root-free "fold" of a unit square onto the triangle).
    """
    if n < 0:
        raise ValueError(f"sample_surface: n must be >= 0, got {n}")
    tri = mesh.vertices[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    areas = np.linalg.norm(cross, axis=1)
    total = float(areas.sum())
    if not total > 0:
        raise ValueError(
            f"sample_surface: mesh has zero surface area ({mesh.num_faces} faces); "
            "it has no faces or only degenerate ones"
        )
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(areas)
    face_index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    face_index = np.minimum(face_index, len(areas) - 1).astype(np.int64)
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    barycentric = np.column_stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]])
    points = np.einsum("nk,nkd->nd", barycentric, tri[face_index])
    normals = cross[face_index] / areas[face_index, None]
    return SurfaceSamples(points, normals, face_index, barycentric)


def closest_points(
    mesh: TriMesh, points: Float[np.ndarray, "n 3"]
) -> tuple[Float[np.ndarray, "n 3"], Int[np.ndarray, " n"], Float[np.ndarray, "n 3"]]:
    """Closest surface point of ``mesh`` for each query point (point-cloud-utils AABB tree).

    Returns ``closest`` (n, 3), ``face_index`` (n,) int64 and ``barycentric`` (n, 3) on that face
    (clipped to be non-negative and renormalised). About 0.5 s for 50k points vs 50k faces.
    """
    if mesh.num_faces == 0:
        raise ValueError("closest_points: mesh has no faces")
    queries = np.ascontiguousarray(points, dtype=np.float64)
    if len(queries) == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    if not np.all(np.isfinite(queries)):
        raise ValueError("closest_points: query points contain NaN/inf; filter them first")
    _, face_index, barycentric = pcu.closest_points_on_mesh(queries, mesh.vertices, mesh.faces)
    face_index = np.asarray(face_index, dtype=np.int64)
    barycentric = np.clip(np.asarray(barycentric, dtype=np.float64), 0.0, None)
    barycentric /= barycentric.sum(axis=1, keepdims=True)
    return interpolate_barycentric(mesh, face_index, barycentric), face_index, barycentric
