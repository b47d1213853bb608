"""Triangle meshes in memory and on disk.

Conventions: a mesh is a :class:`TriMesh` of ``vertices`` (V, 3) float64 in metres and ``faces``
(T, 3) int64 vertex indices, counter-clockwise seen from outside (so face normals, by the right-hand
rule, point outwards). Vertex order is part of the data: correspondences across poses are vertex
indices, so loading never merges, sorts or drops vertices (trimesh with ``process=False``; for OBJ
also ``maintain_order=True``, which stops UV seams from splitting vertices). Saving is atomic: a
temporary file in the target folder is written, flushed and then renamed over the target, so a crash
never leaves a half-written mesh in place of a good one.

Colour (optional): ``colors`` (V, 3) float32 RGB in [0, 1], one per vertex (a scan's texture as
a scanner records it). Both formats carry it: PLY as ``red``/``green``/``blue`` vertex properties
(written as 8-bit ``uchar``; read from ``uchar`` 0-255 or float 0-1), OBJ as ``v x y z r g b``
(floats 0-1). Files store 8 bits per channel, so a round trip rounds colours to multiples of 1/255.
Face colours and UV textures are not read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from jaxtyping import Float, Int, UInt8

from invskin.errors import DataError
from invskin.fileio import write_bytes_atomic

SUPPORTED_SUFFIXES = (".ply", ".obj")
PLY_COLOUR_PROPERTIES = ("red", "green", "blue")


def colour_problem(colors: np.ndarray, num_vertices: int) -> str | None:
    """Why ``colors`` is not a valid per-vertex colour array for ``num_vertices`` vertices, or
    ``None``: (V, 3) or (V, 4) (alpha, ignored), uint8 0-255 or real numbers in [0, 1], finite."""
    fix = "give RGB per vertex as floats in [0, 1] or uint8 0-255"
    if colors.ndim != 2 or colors.shape[1] not in (3, 4):
        return f"vertex colours have shape {colors.shape}, expected (V, 3) RGB; {fix}"
    if colors.shape[0] != num_vertices:
        return (
            f"{colors.shape[0]} vertex colours for {num_vertices} vertices; give exactly one "
            "colour per vertex (or none)"
        )
    if colors.dtype == np.uint8:
        return None
    if colors.dtype.kind not in "fiu":
        return f"vertex colours have dtype {colors.dtype}; {fix}"
    if not np.isfinite(colors).all():
        bad = int(np.count_nonzero(~np.isfinite(colors).all(axis=1)))
        return f"{bad} vertex colours are NaN or infinite; {fix}"
    if colors.size and (colors.min() < 0.0 or colors.max() > 1.0):
        hint = " (they look like 0-255: divide by 255)" if colors.max() <= 255.0 else ""
        return (
            f"vertex colours range over [{colors.min():.4g}, {colors.max():.4g}], outside "
            f"[0, 1]{hint}; {fix}"
        )
    return None


def as_colors(colors: np.ndarray) -> Float[np.ndarray, "v 3"]:
    """Valid colours (see :func:`colour_problem`) as (V, 3) float32 RGB in [0, 1]."""
    rgb = np.asarray(colors)[:, :3]
    scale = 1.0 / 255.0 if rgb.dtype == np.uint8 else 1.0
    return np.ascontiguousarray(rgb.astype(np.float32) * np.float32(scale))


@dataclass(frozen=True)
class TriMesh:
    """A triangle mesh: ``vertices`` (V, 3) float64 metres, ``faces`` (T, 3) int64, optional
    ``colors`` (V, 3) float32 RGB in [0, 1] (``None``: the mesh has no colour).

    Inputs are converted to float64 / int64 / float32 and validated: vertices finite, faces in
    ``[0, V)``, colours one per vertex, finite, in [0, 1] (uint8 0-255 is converted; an alpha
    column is dropped); bad colours raise :class:`~invskin.errors.DataError`. Treat the arrays as
    read-only; build a new ``TriMesh`` (or ``dataclasses.replace``) instead of editing them.
    """

    vertices: Float[np.ndarray, "v 3"]
    faces: Int[np.ndarray, "t 3"]
    colors: np.ndarray | None = None  # (V, 3); any dtype and shape on input, validated below

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
        if self.colors is not None:
            colors = np.asarray(self.colors)
            problem = colour_problem(colors, len(vertices))
            if problem is not None:
                raise DataError(f"TriMesh: {problem}")
            object.__setattr__(self, "colors", as_colors(colors))

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def has_colors(self) -> bool:
        return self.colors is not None

    def to_trimesh(self) -> trimesh.Trimesh:
        """A ``trimesh.Trimesh`` view of this mesh (``process=False``: order kept, nothing merged),
        with its vertex colours (8-bit RGBA) when it has them."""
        colors = None if self.colors is None else colors_to_rgba8(self.colors)
        return trimesh.Trimesh(
            vertices=self.vertices, faces=self.faces, vertex_colors=colors, process=False
        )

    @staticmethod
    def from_trimesh(mesh: trimesh.Trimesh) -> TriMesh:
        """Vertices, faces and per-vertex colours (if any) of a ``trimesh.Trimesh`` (other
        attributes, e.g. face colours or UV textures, are dropped)."""
        return TriMesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), trimesh_colors(mesh))


def colors_to_rgba8(colors: Float[np.ndarray, "v 3"]) -> UInt8[np.ndarray, "v 4"]:
    """(V, 3) RGB in [0, 1] as (V, 4) uint8 RGBA (opaque), rounded to the nearest 1/255."""
    rgb = np.rint(np.clip(colors, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, dtype=np.uint8)], axis=1)


def trimesh_colors(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The per-vertex colours (V, 4) uint8 of a loaded ``trimesh.Trimesh``, or ``None`` when it
    has none (no colour, face colours or a UV texture)."""
    visual = getattr(mesh, "visual", None)
    if visual is None or getattr(visual, "kind", None) != "vertex":
        return None
    return np.asarray(visual.vertex_colors)


def ply_colors(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The raw ``red``/``green``/``blue`` vertex properties of a loaded PLY as (V, 3), or ``None``
    when the file has none; uint8 stays uint8, other types come back as float64 for validation
    (trimesh itself clips and rounds them silently); integers 0-255 of any type become uint8."""
    raw = getattr(mesh, "metadata", {}).get("_ply_raw", {}).get("vertex", {})
    data = raw.get("data", {}) if isinstance(raw, dict) else {}
    # ASCII PLY gives a dict of columns, binary PLY a structured array
    names = (data.dtype.names or ()) if isinstance(data, np.ndarray) else tuple(data)
    if not all(key in names for key in PLY_COLOUR_PROPERTIES):
        return None
    rgb = np.stack([np.asarray(data[key]).reshape(-1) for key in PLY_COLOUR_PROPERTIES], axis=1)
    if rgb.dtype.kind in "iu" and (rgb.size == 0 or (rgb.min() >= 0 and rgb.max() <= 255)):
        return rgb.astype(np.uint8)
    return rgb.astype(np.float64)


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
    """Load a triangle mesh from PLY or OBJ, keeping the file's vertex order, with its per-vertex
    colours when the file has them (module docstring).

    Raises ``FileNotFoundError`` for a missing file and :class:`~invskin.errors.DataError` (a
    ``ValueError``) for an unsupported suffix, an unreadable/corrupt file, a file without vertices
    or faces (e.g. a point cloud), NaN/infinite vertices, faces out of range or bad colours (NaN,
    or float PLY colours outside [0, 1]).
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
        colors = ply_colors(loaded) if suffix == ".ply" else None
        colors = trimesh_colors(loaded) if colors is None else colors
    except (TypeError, ValueError) as error:
        raise DataError(f"mesh {path}: unreadable vertices or faces ({error})") from error
    if len(vertices) == 0 or len(faces) == 0:
        raise DataError(
            f"mesh {path} has {len(vertices)} vertices and {len(faces)} faces; a triangle mesh "
            "is needed (a point cloud or empty file cannot be used): re-export it with faces"
        )
    try:
        return TriMesh(vertices, faces.reshape(-1, 3), colors)
    except ValueError as error:
        raise DataError(f"mesh {path}: {error}") from error


def save_mesh(path: str | os.PathLike[str], mesh: TriMesh) -> Path:
    """Write ``mesh`` to ``path`` (binary PLY or OBJ by suffix) atomically; return the path.

    Vertex colours, when the mesh has them, are written too (module docstring). The parent folder
    must exist. The temporary file lives in the same folder so that the final
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
            mesh.to_trimesh(),
            include_normals=False,
            include_color=mesh.colors is not None,
            include_texture=False,
        ).encode("utf-8")
    return write_bytes_atomic(path, data)
