"""Volumetric IoU between meshes over explicit evaluation points.

Conventions: metres; occupancy of both meshes by generalised winding numbers (> 0.5), so open scans
are handled. The evaluation points are drawn once from the ground-truth mesh and seed, and shared
by every method being compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float

from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import Seed, sample_surface, seed_sequence
from invskin.mesh.winding import occupancy


@dataclass(frozen=True)
class EvaluationPoints:
    """The two IoU point sets: ``bbox`` (n, 3) uniform in the enlarged ground-truth bounding box,
    ``surface`` (n, 3) on the ground-truth surface plus Gaussian noise."""

    bbox: Float[np.ndarray, "n 3"]
    surface: Float[np.ndarray, "m 3"]


def evaluation_points(
    gt_mesh: TriMesh,
    n: int = 100_000,
    seed: Seed = 0,
    padding: float = 0.1,
    noise_std: float = 0.01,
) -> EvaluationPoints:
    """``n`` uniform points in the ground-truth bounding box enlarged by ``padding`` (10%: each side
    length times 1.1, about the box centre) and ``n`` surface samples plus N(0, ``noise_std``^2)
    noise per coordinate (1 cm). Deterministic for a seed.
    """
    if gt_mesh.num_vertices == 0:
        raise ValueError("evaluation_points: ground-truth mesh is empty")
    bbox_seed, surface_seed, noise_seed = seed_sequence(seed).spawn(3)
    lo, hi = gt_mesh.vertices.min(axis=0), gt_mesh.vertices.max(axis=0)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * (1.0 + padding)
    bbox = np.random.default_rng(bbox_seed).uniform(centre - half, centre + half, size=(n, 3))
    surface = sample_surface(gt_mesh, n, surface_seed).points
    surface = surface + np.random.default_rng(noise_seed).normal(0.0, noise_std, size=(n, 3))
    return EvaluationPoints(bbox=bbox, surface=surface)


def iou(pred_occupancy: Bool[np.ndarray, " n"], gt_occupancy: Bool[np.ndarray, " n"]) -> float:
    """Intersection over union of two boolean occupancy vectors (n,); 1.0 when both are empty."""
    union = np.count_nonzero(pred_occupancy | gt_occupancy)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred_occupancy & gt_occupancy) / union)


def occupancy_iou(pred_mesh: TriMesh, gt_mesh: TriMesh, points: Float[np.ndarray, "n 3"]) -> float:
    """IoU of the two meshes' winding-number occupancies at ``points`` (n, 3)."""
    return iou(occupancy(pred_mesh, points), occupancy(gt_mesh, points))
