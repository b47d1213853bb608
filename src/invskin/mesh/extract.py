"""Mesh extraction from an implicit field by marching cubes on a regular grid.

Conventions: the field is a callable taking points (N, 3) float32 on ``device`` and returning (N,)
values, **positive inside** (occupancy logits; pass ``-sdf`` for a signed distance that is negative
inside). The surface is the ``level`` set. The grid has ``resolution`` points per axis spanning
``bounds_min`` to ``bounds_max`` inclusive (so spacing ``(max - min) / (resolution - 1)``), axis
order x, y, z; the returned vertices are in those world coordinates (metres) and the faces are
oriented outwards (normals point from inside to outside). The field is evaluated in chunks under
``torch.no_grad()``, so peak memory is bounded by ``chunk_size`` points plus the (R_x, R_y, R_z)
float32 value grid on the host. The bounds must enclose the shape: where the inside reaches the
grid's boundary the mesh stays open there (a warning says so).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes
from torch import Tensor

from invskin.mesh.io import TriMesh, face_areas

Field = Callable[[Tensor], Tensor]
Vec3 = Sequence[float | int] | np.ndarray | Tensor  # a 3-vector of bounds


def _resolution3(resolution: int | Sequence[int]) -> tuple[int, int, int]:
    res = (resolution,) * 3 if isinstance(resolution, int) else tuple(int(r) for r in resolution)
    if len(res) != 3 or min(res) < 2:
        raise ValueError(
            f"resolution must be an int or 3 ints, each >= 2 grid points, got {resolution!r}"
        )
    return res[0], res[1], res[2]


def as_vec3(value: Vec3) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _infer_device(field: Field, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if isinstance(field, torch.nn.Module):
        for tensor in field.parameters():
            return tensor.device
        for tensor in field.buffers():
            return tensor.device
    return torch.device("cpu")


def evaluate_grid(
    field: Field,
    bounds_min: Vec3,
    bounds_max: Vec3,
    resolution: int | Sequence[int],
    chunk_size: int = 262_144,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Field values on the grid, a float32 array (R_x, R_y, R_z); index [i, j, k] is the point
    ``(x_i, y_j, z_k)`` with ``x_i = min_x + i (max_x - min_x) / (R_x - 1)``.
    """
    res = _resolution3(resolution)
    lo, hi = as_vec3(bounds_min), as_vec3(bounds_max)
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(hi > lo):
        raise ValueError(
            f"bounds must be two 3-vectors with bounds_min < bounds_max on every axis, "
            f"got {bounds_min!r} and {bounds_max!r}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    device = _infer_device(field, device)
    axes = [
        torch.from_numpy(np.linspace(lo[a], hi[a], res[a]).astype(np.float32)).to(device)
        for a in range(3)
    ]
    total = res[0] * res[1] * res[2]
    values = np.empty(total, dtype=np.float32)
    with torch.no_grad():
        for start in range(0, total, chunk_size):
            stop = min(start + chunk_size, total)
            flat = torch.arange(start, stop, device=device)
            i = torch.div(flat, res[1] * res[2], rounding_mode="floor")
            j = torch.div(flat, res[2], rounding_mode="floor") % res[1]
            k = flat % res[2]
            points = torch.stack([axes[0][i], axes[1][j], axes[2][k]], dim=-1)
            out = field(points)
            if out.shape not in ((stop - start,), (stop - start, 1)):
                raise ValueError(
                    f"field must map points (N, 3) to values (N,), got {tuple(out.shape)} "
                    f"for N={stop - start}"
                )
            values[start:stop] = out.reshape(-1).detach().float().cpu().numpy()
    return values.reshape(res)


def extract_mesh(
    field: Field,
    bounds_min: Vec3,
    bounds_max: Vec3,
    resolution: int | Sequence[int],
    level: float = 0.0,
    chunk_size: int = 262_144,
    keep_largest_component: bool = False,
    device: torch.device | str | None = None,
) -> TriMesh:
    """Marching-cubes mesh of the ``level`` set of a positive-inside ``field`` (see module doc).

    ``device`` defaults to the device of the field's parameters when it is an ``nn.Module``, else
    CPU. With ``keep_largest_component`` only the connected component of largest surface area is
    kept (drops floaters). Raises ``ValueError`` if the field never crosses ``level`` in the bounds.
    """
    values = evaluate_grid(field, bounds_min, bounds_max, resolution, chunk_size, device)
    return mesh_from_grid(values, bounds_min, bounds_max, level, keep_largest_component)


def mesh_from_grid(
    values: np.ndarray,
    bounds_min: Vec3,
    bounds_max: Vec3,
    level: float = 0.0,
    keep_largest_component: bool = False,
) -> TriMesh:
    """Marching cubes on precomputed grid values (R_x, R_y, R_z), laid out as :func:`evaluate_grid`
    returns them (positive inside), with outward faces. See :func:`extract_mesh`.
    """
    if values.ndim != 3 or min(values.shape) < 2:
        raise ValueError(
            f"grid values must be a 3-D array with >= 2 points per axis, got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"field returned {int(np.count_nonzero(~np.isfinite(values)))} NaN/inf values on "
            "the grid; check the network (diverged training?) before extracting"
        )
    inside = values > level
    if inside.all() or not inside.any():
        where = "inside" if inside.all() else "outside"
        raise ValueError(
            f"the field has no level-{level} crossing in the bounds: every grid point is {where} "
            f"(values in [{values.min():.4g}, {values.max():.4g}]). Check the bounds, the level "
            "and that the field is positive inside (an untrained or collapsed network does this)"
        )
    boundary = np.concatenate(
        [
            inside[[0, -1]].ravel(),
            inside[:, [0, -1]].ravel(),
            inside[:, :, [0, -1]].ravel(),
        ]
    )
    touches = bool(boundary.any())
    lo, hi = as_vec3(bounds_min), as_vec3(bounds_max)
    spacing = (hi - lo) / (np.asarray(values.shape) - 1)
    # Negate so that values increase outwards: skimage then orients faces outwards.
    verts, faces, _, _ = marching_cubes(-values, level=-level, spacing=tuple(spacing))
    mesh = TriMesh(verts.astype(np.float64) + lo, faces.astype(np.int64))
    if keep_largest_component:
        mesh = largest_component(mesh)
        if touches:  # only a dropped floater may have reached the border: then the mesh is whole
            near = (mesh.vertices < lo + spacing) | (mesh.vertices > hi - spacing)
            touches = bool(near.any())
    if touches:
        warnings.warn(
            "extract_mesh: the inside reaches the boundary of the grid, so the mesh is cut open "
            "there; enlarge the bounds",
            stacklevel=2,
        )
    return mesh


def largest_component(mesh: TriMesh) -> TriMesh:
    """The connected component (faces joined through shared vertices) of largest surface area.

    Vertices keep their relative order; unreferenced vertices are dropped.
    """
    if mesh.num_faces == 0:
        return mesh
    faces = mesh.faces
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adjacency = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(mesh.num_vertices,) * 2
    )
    _, labels = connected_components(adjacency, directed=False)
    face_labels = labels[faces[:, 0]]
    area_per_label = np.bincount(face_labels, weights=face_areas(mesh))
    keep_faces = faces[face_labels == np.argmax(area_per_label)]
    used = np.unique(keep_faces)
    remap = np.full(mesh.num_vertices, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return TriMesh(mesh.vertices[used], remap[keep_faces])
