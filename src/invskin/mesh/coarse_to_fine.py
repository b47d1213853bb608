"""Coarse-to-fine grid evaluation (as SNARF's MISE): exact field values only near the surface.

Conventions as :mod:`invskin.mesh.extract`: the field is positive inside; grids are (R_x, R_y, R_z)
with index [i, j, k] at ``lo + (i, j, k) * (hi - lo) / (R - 1)``.

The field is evaluated on a coarse grid; the fine grid starts as its trilinear upsampling; then every
fine node in a coarse cell whose corners straddle the level (dilated by ``dilation`` cells) is
evaluated exactly. Far from the surface the interpolated values have the right sign, which is all
marching cubes needs there. With a fine resolution of ``(coarse - 1) * factor + 1`` this evaluates a
small fraction of the fine nodes.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import binary_dilation

from invskin.mesh.extract import Field, Vec3, as_vec3, evaluate_grid


def evaluate_grid_coarse_to_fine(
    field: Field,
    bounds_min: Vec3,
    bounds_max: Vec3,
    coarse_resolution: int,
    factor: int,
    level: float = 0.0,
    dilation: int = 1,
    chunk_size: int = 65_536,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, int]:
    """Fine values ``((coarse - 1) * factor + 1,) * 3`` and the number of field evaluations."""
    lo, hi = as_vec3(bounds_min), as_vec3(bounds_max)
    coarse = evaluate_grid(field, lo, hi, coarse_resolution, chunk_size, device)
    fine_res = (coarse_resolution - 1) * factor + 1
    fine = torch.nn.functional.interpolate(
        torch.from_numpy(coarse)[None, None],
        size=(fine_res,) * 3,
        mode="trilinear",
        align_corners=True,
    )[0, 0].numpy()
    inside = coarse > level
    nx, ny, nz = coarse.shape
    corners = [
        inside[i : nx - 1 + i, j : ny - 1 + j, k : nz - 1 + k]
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    ]
    cells = np.logical_or.reduce(corners) & ~np.logical_and.reduce(corners)
    if dilation > 0:
        cells = binary_dilation(cells, iterations=dilation)
    # Fine nodes of the marked cells (both ends of each cell).
    mark = np.zeros((fine_res,) * 3, dtype=bool)
    ci, cj, ck = np.nonzero(cells)
    offsets = np.arange(factor + 1)
    for di in offsets:
        for dj in offsets:
            for dk in offsets:
                mark[ci * factor + di, cj * factor + dj, ck * factor + dk] = True
    index = np.argwhere(mark)
    spacing = (hi - lo) / (fine_res - 1)
    points = torch.from_numpy((lo + index * spacing).astype(np.float32))
    if device is not None:
        points = points.to(device)
    with torch.no_grad():
        values = [field(part).reshape(-1).float().cpu() for part in points.split(chunk_size)]
    if values:
        fine[mark] = torch.cat(values).numpy()
    return fine, coarse.size + len(index)
