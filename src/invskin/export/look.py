"""Carry a look onto an avatar's canonical mesh: the source's texture through UVs, or colours.

What an avatar looks like, in this order (:func:`avatar_look`):

1. **texture**: the dataset's source look (``DATA/appearance/``,
   :mod:`invskin.data.loaders.appearance`) has UVs and a base-colour texture: the avatar's
   canonical mesh gets UVs through the correspondence to the source's canonical (bind-pose)
   surface (:func:`transfer_uv`);
2. **colours**: the canonical mesh carries per-vertex colours (``RUN/canonical.ply`` of a model
   that learned a colour field);
3. **colours**: the source look has vertex colours: each avatar vertex takes the colour of its
   closest source point (barycentric);
4. **factor**: the source look is one plain colour;
5. nothing.

**UV transfer.** Each avatar vertex finds the closest point on the source surface (face ``f``,
barycentric ``b``) and takes ``uv = sum_k b_k uv[faces[f, k]]``. Source faces form **UV islands**
(:func:`uv_islands`): two faces are in one island when they share an edge whose two ends have the
same positions and the same UVs on both faces, so an island is a piece of the surface laid out in
one piece of the image. **Seam rule**: an avatar triangle whose vertices landed in different
islands takes one island, the one at least two of its vertices landed in, else the island of the
source face closest to the triangle's centroid. Every vertex of it that landed elsewhere is
replaced in that triangle by a **copy** (same position, skinning and colour) whose UV is that of
its closest point on the chosen island's faces; one copy per vertex and island, shared by the
triangles that choose it. So no triangle interpolates UVs across two islands (the texture in it
comes from one piece of the image), and the copies move with the vertex they copy, so the surface
stays closed in every pose. ``source_index`` maps the output vertices to the avatar's.

Shape legend: ``V`` avatar vertices, ``W`` output vertices (``V`` plus the seam copies), ``T``
triangles, ``S`` source vertices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from jaxtyping import Float, Int
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from invskin.data.loaders.appearance import (
    WHITE,
    SourceAppearance,
    TextureImage,
    load_appearance,
)
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import closest_points

logger = logging.getLogger("invskin.export")

LookMode = Literal["auto", "texture", "colours", "none"]
WELD_DECIMALS = 6


@dataclass(frozen=True, eq=False)
class AvatarLook:
    """The look of an avatar mesh (module docstring): its triangles over ``W`` vertices, each a
    copy of avatar vertex ``source_index[w]``, with UVs and a texture, or sRGB colours."""

    kind: str
    """``texture``, ``colours`` or ``factor``."""
    origin: str
    """Where the look comes from, in words."""
    source_index: Int[np.ndarray, " w"]
    faces: Int[np.ndarray, "t 3"]
    uv: Float[np.ndarray, "w 2"] | None = None
    colors: Float[np.ndarray, "w 3"] | None = None
    texture: TextureImage | None = None
    base_color_factor: tuple[float, float, float, float] = WHITE
    distance_mean_m: float | None = None
    """Mean distance from the avatar's vertices to the source surface (transferred looks)."""

    @property
    def seam_copies(self) -> int:
        """Vertices added at UV seams (``W - V``)."""
        return int(len(self.source_index) - (self.source_index.max(initial=-1) + 1))

    def expand(self, array: np.ndarray, axis: int = 0) -> np.ndarray:
        """A per-avatar-vertex array (``V`` along ``axis``) for the ``W`` output vertices."""
        return np.take(np.asarray(array), self.source_index, axis=axis)

    def summary(self) -> str:
        text = f"look: {self.kind} ({self.origin})"
        if self.kind == "texture":
            text += f", {self.seam_copies} vertices copied at UV seams"
        if self.distance_mean_m is not None:
            text += f"; avatar to source surface: mean {self.distance_mean_m * 1000:.1f} mm"
        return text


def uv_islands(
    vertices: Float[np.ndarray, "s 3"], faces: Int[np.ndarray, "t 3"], uv: Float[np.ndarray, "s 2"]
) -> Int[np.ndarray, " t"]:
    """The UV island of every face (module docstring): connected components of the faces joined
    through edges whose ends agree in position and UV (rounded to 1e-6)."""
    key = np.concatenate([np.round(vertices, WELD_DECIMALS), np.round(uv, WELD_DECIMALS)], axis=1)
    _, welded = np.unique(key, axis=0, return_inverse=True)
    corners = welded.reshape(-1)[faces]
    edges = np.sort(corners[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    face_of_edge = np.repeat(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, face_of_edge = edges[order], face_of_edge[order]
    same = (edges[1:] == edges[:-1]).all(axis=1)
    a, b = face_of_edge[:-1][same], face_of_edge[1:][same]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(faces), len(faces)))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def _interpolate(values: np.ndarray, faces: np.ndarray, face_index, barycentric) -> np.ndarray:
    return np.einsum("nk,nkc->nc", barycentric, values[faces[face_index]])


def transfer_uv(
    avatar_vertices: Float[np.ndarray, "v 3"],
    avatar_faces: Int[np.ndarray, "t 3"],
    source: SourceAppearance,
) -> tuple[Int[np.ndarray, " w"], Int[np.ndarray, "t 3"], Float[np.ndarray, "w 2"], float]:
    """UVs for an avatar mesh from the source surface, seams split (module docstring).

    Returns ``(source_index, faces, uv, mean distance)``: ``faces`` index the ``W`` output
    vertices, output vertex ``w`` is a copy of avatar vertex ``source_index[w]`` with UV
    ``uv[w]``.
    """
    if source.uv is None:
        raise ValueError("the source look has no UVs")
    avatar_vertices = np.asarray(avatar_vertices, dtype=np.float64)
    avatar_faces = np.asarray(avatar_faces, dtype=np.int64)
    surface = TriMesh(source.vertices, source.faces)
    suv = source.uv.astype(np.float64)
    closest, face_index, bary = closest_points(surface, avatar_vertices)
    distance = float(np.linalg.norm(closest - avatar_vertices, axis=1).mean())
    uv = _interpolate(suv, source.faces, face_index, bary)
    island_of_face = uv_islands(source.vertices, source.faces, suv)
    island = island_of_face[face_index]

    corner = island[avatar_faces]  # (T, 3)
    chosen = np.where(
        corner[:, 0] == corner[:, 1],
        corner[:, 0],
        np.where(corner[:, 2] == corner[:, 0], corner[:, 0], corner[:, 1]),
    )
    three_ways = (corner[:, 0] != corner[:, 1]) & (corner[:, 1] != corner[:, 2])
    three_ways &= corner[:, 0] != corner[:, 2]
    if three_ways.any():
        centroids = avatar_vertices[avatar_faces[three_ways]].mean(axis=1)
        _, nearest, _ = closest_points(surface, centroids)
        chosen[three_ways] = island_of_face[nearest]

    faces = avatar_faces.copy()
    off = corner != chosen[:, None]
    tri, slot = np.nonzero(off)
    pairs = np.stack([avatar_faces[tri, slot], chosen[tri]], axis=1)
    unique_pairs, copy_of = np.unique(pairs, axis=0, return_inverse=True)
    copy_of = copy_of.reshape(-1)
    copy_uv = np.zeros((len(unique_pairs), 2))
    for isl in np.unique(unique_pairs[:, 1]):
        rows = np.flatnonzero(unique_pairs[:, 1] == isl)
        piece = TriMesh(source.vertices, source.faces[island_of_face == isl])
        _, f, b = closest_points(piece, avatar_vertices[unique_pairs[rows, 0]])
        copy_uv[rows] = _interpolate(suv, piece.faces, f, b)
    faces[tri, slot] = len(avatar_vertices) + copy_of
    source_index = np.concatenate([np.arange(len(avatar_vertices)), unique_pairs[:, 0]])
    uv_out = np.concatenate([uv, copy_uv]).astype(np.float32)
    return source_index.astype(np.int64), faces, uv_out, distance


def transfer_colors(
    avatar_vertices: Float[np.ndarray, "v 3"], source: SourceAppearance
) -> tuple[Float[np.ndarray, "v 3"], float]:
    """Each avatar vertex's colour at its closest source point (barycentric), and the mean
    distance to the source surface."""
    if source.colors is None:
        raise ValueError("the source look has no vertex colours")
    points = np.asarray(avatar_vertices, dtype=np.float64)
    closest, face_index, bary = closest_points(TriMesh(source.vertices, source.faces), points)
    colors = _interpolate(source.colors.astype(np.float64), source.faces, face_index, bary)
    distance = float(np.linalg.norm(closest - points, axis=1).mean())
    return np.clip(colors, 0.0, 1.0).astype(np.float32), distance


def avatar_look(
    mesh: TriMesh, source: SourceAppearance | None, mode: LookMode = "auto"
) -> AvatarLook | None:
    """The look of ``mesh`` (module docstring, in that order); ``mode`` ``texture`` or
    ``colours`` keeps only looks of that kind, ``none`` gives ``None``."""
    if mode not in ("auto", "texture", "colours", "none"):
        raise ValueError(f"look must be auto, texture, colours or none, got {mode!r}")
    identity = np.arange(mesh.num_vertices, dtype=np.int64)
    if mode == "none":
        return None
    if source is not None and source.textured and mode in ("auto", "texture"):
        index, faces, uv, distance = transfer_uv(mesh.vertices, mesh.faces, source)
        return AvatarLook(
            "texture",
            "the source's texture, through the closest points of its canonical surface",
            index,
            faces,
            uv=uv,
            texture=source.texture,
            base_color_factor=source.base_color_factor,
            distance_mean_m=distance,
        )
    if mode == "texture":
        return None
    if mesh.colors is not None:
        return AvatarLook(
            "colours", "the canonical mesh's vertex colours", identity, mesh.faces,
            colors=mesh.colors,
        )  # fmt: skip
    if source is not None and source.colors is not None:
        colors, distance = transfer_colors(mesh.vertices, source)
        return AvatarLook(
            "colours",
            "the source's vertex colours, through the closest points of its canonical surface",
            identity,
            mesh.faces,
            colors=colors,
            distance_mean_m=distance,
        )
    if source is not None and mode == "auto" and source.base_color_factor[:3] != WHITE[:3]:
        return AvatarLook(
            "factor", "the source's base colour", identity, mesh.faces,
            base_color_factor=source.base_color_factor,
        )  # fmt: skip
    return None


def dataset_appearance(dataset: Path | str | None) -> SourceAppearance | None:
    """The source look saved with a dataset, or ``None`` (no dataset, moved, or no look)."""
    if dataset is None:
        return None
    root = Path(dataset)
    if not root.is_dir():
        logger.warning(
            "the run's dataset %s is not there: the avatar comes out without the source's look",
            root,
        )
        return None
    return load_appearance(root)
