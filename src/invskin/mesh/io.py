"""Triangle meshes in memory and on disk.

Conventions: a mesh is a :class:`TriMesh` of ``vertices`` (V, 3) float64 in metres and ``faces``
(T, 3) int64 vertex indices, counter-clockwise seen from outside (so face normals, by the right-hand
rule, point outwards). Vertex order is part of the data: correspondences across poses are vertex
indices, so loading never merges, sorts or drops vertices (trimesh with ``process=False``; for OBJ
also ``maintain_order=True``, which stops UV seams from splitting vertices). Saving is atomic: a
temporary file in the target folder is written, flushed and then renamed over the target, so a crash
never leaves a half-written mesh in place of a good one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from jaxtyping import Float, Int

from invskin.errors import DataError
from invskin.fileio import write_bytes_atomic

SUPPORTED_SUFFIXES = (".ply", ".obj")


@dataclass(frozen=True)
class TriMesh:
    """A triangle mesh: ``vertices`` (V, 3) float64 metres, ``faces`` (T, 3) int64.

    Inputs are converted to float64 / int64 and validated: vertices finite, faces in ``[0, V)``.
    Treat the arrays as read-only; build a new ``TriMesh`` instead of editing them in place.
    """

    vertices: Float[np.ndarray, "v 3"]
    faces: Int[np.ndarray, "t 3"]

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float64)
        faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"TriMesh vertices must have shape (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(
                f"TriMesh faces must have shape (T, 3) (triangles only), got {faces.shape}; "
                "triangulate polygons first (e.g. trimesh loads quads as triangles)"
            )
        if not np.all(np.isfinite(vertices)):
            bad = int(np.count_nonzero(~np.all(np.isfinite(vertices), axis=1)))
            raise ValueError(f"TriMesh has {bad} vertices with NaN/inf coordinates; clean the mesh")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(
                f"TriMesh faces index vertices in [{faces.min()}, {faces.max()}] but there are "
                f"only {len(vertices)} vertices; faces must be 0-based indices in [0, V)"
            )
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def to_trimesh(self) -> trimesh.Trimesh:
        """A ``trimesh.Trimesh`` view of this mesh (``process=False``: order kept, nothing merged)."""
        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, process=False)

    @staticmethod
    def from_trimesh(mesh: trimesh.Trimesh) -> TriMesh:
        """Vertices and faces of a ``trimesh.Trimesh`` (other attributes are dropped)."""
        return TriMesh(np.asarray(mesh.vertices), np.asarray(mesh.faces))


def face_areas(mesh: TriMesh) -> Float[np.ndarray, " t"]:
    """Area of each face, (T,), in square metres."""
    tri = mesh.vertices[mesh.faces]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def surface_area(mesh: TriMesh) -> float:
    """Total surface area in square metres."""
    return float(face_areas(mesh).sum())


def signed_volume(mesh: TriMesh) -> float:
    """Signed enclosed volume (divergence theorem); positive for a closed, outward-facing mesh."""
    tri = mesh.vertices[mesh.faces]
    return float(np.einsum("ti,ti->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0)


def bounding_box_diagonal(mesh: TriMesh) -> float:
    """Length of the axis-aligned bounding-box diagonal (0 for an empty mesh)."""
    if mesh.num_vertices == 0:
        return 0.0
    return float(np.linalg.norm(mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)))


def check_units_metres(mesh: TriMesh, name: str) -> float:
    """Raise if ``mesh`` does not look like a human-sized object in metres; return its diagonal.

    A person's bounding-box diagonal is about 1-3 m. Above 10 the mesh is almost surely in
    millimetres (or centimetres); below 0.1 it is probably in a unit larger than metres or
    normalised to a tiny box.
    """
    diagonal = bounding_box_diagonal(mesh)
    if diagonal > 10.0:
        raise ValueError(
            f"{name}: bounding-box diagonal is {diagonal:.4g}, expected metres (a person is "
            "about 1-3 m). The mesh is probably in millimetres: divide the vertices by 1000 "
            "(or by 100 if it is in centimetres)."
        )
    if diagonal < 0.1:
        raise ValueError(
            f"{name}: bounding-box diagonal is {diagonal:.4g}, expected metres (a person is "
            "about 1-3 m). The mesh looks normalised or in a larger unit; rescale it to metres."
        )
    return diagonal


def load_mesh(path: str | os.PathLike[str]) -> TriMesh:
    """Load a triangle mesh from PLY or OBJ, keeping the file's vertex order.

    Raises ``FileNotFoundError`` for a missing file and :class:`~invskin.errors.DataError` (a
    ``ValueError``) for an unsupported suffix, an unreadable/corrupt file, a file without vertices
    or faces (e.g. a point cloud), NaN/infinite vertices or faces out of range.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"cannot load mesh {path}: suffix {path.suffix!r} is not supported; "
            f"convert it to one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path}; check the path")
    kwargs = {"maintain_order": True} if suffix == ".obj" else {}
    try:
        loaded = trimesh.load(path, file_type=suffix[1:], process=False, force="mesh", **kwargs)
    except Exception as err:  # trimesh raises many types for corrupt input
        raise DataError(
            f"cannot read mesh {path} ({type(err).__name__}: {err}); the file is corrupt, "
            "truncated or not a valid mesh: re-export it from its source"
        ) from err
    try:
        vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
        faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3), dtype=np.int64)))
    except (TypeError, ValueError) as error:
        raise DataError(f"mesh {path}: unreadable vertices or faces ({error})") from error
    if len(vertices) == 0 or len(faces) == 0:
        raise DataError(
            f"mesh {path} has {len(vertices)} vertices and {len(faces)} faces; a triangle mesh "
            "is needed (a point cloud or empty file cannot be used): re-export it with faces"
        )
    try:
        return TriMesh(vertices, faces.reshape(-1, 3))
    except ValueError as error:
        raise DataError(f"mesh {path}: {error}") from error


def save_mesh(path: str | os.PathLike[str], mesh: TriMesh) -> Path:
    """Write ``mesh`` to ``path`` (binary PLY or OBJ by suffix) atomically; return the path.

    The parent folder must exist. The temporary file lives in the same folder so that the final
    ``os.replace`` is an atomic rename on the same file system.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"cannot save mesh {path}: suffix {path.suffix!r} is not supported; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save mesh {path}: folder {path.parent} does not exist")
    if suffix == ".ply":
        data = trimesh.exchange.ply.export_ply(mesh.to_trimesh(), encoding="binary")
    else:
        data = trimesh.exchange.obj.export_obj(
            mesh.to_trimesh(), include_normals=False, include_color=False, include_texture=False
        ).encode("utf-8")
    return write_bytes_atomic(path, data)
