"""Surface metrics from random surface samples: Chamfer distance, normal consistency, F-score.

Conventions: metres in, Chamfer reported in **centimetres**; the F-score threshold is in metres (1 cm
by default). Each mesh gets ``n`` area-uniform samples (independent streams derived from ``seed``);
distances are from each sample to the nearest *sample* of the other mesh (scipy ``cKDTree``), so even
identical meshes score a small non-zero Chamfer distance, about ``0.5 / sqrt(n / area)``.

- Chamfer: ``(mean_p d(p, G) + mean_g d(g, P)) / 2``, L2 (not squared) distances.
- Normal consistency: mean ``|cos|`` between a sample's face normal and the normal of its nearest
  sample on the other mesh, averaged over both directions (orientation-blind, 1 is best).
- F-score: harmonic mean of precision (fraction of predicted samples within the threshold of the
  ground truth) and recall (the converse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from scipy.spatial import cKDTree

from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import Seed, sample_surface, seed_sequence


@dataclass(frozen=True)
class SurfaceComparison:
    """Nearest-sample distances (metres) and ``|cos|`` of normals, per sample, both directions."""

    pred_to_gt: Float[np.ndarray, " n"]
    gt_to_pred: Float[np.ndarray, " m"]
    pred_to_gt_cos: Float[np.ndarray, " n"]
    gt_to_pred_cos: Float[np.ndarray, " m"]

    def chamfer_cm(self) -> float:
        return float(50.0 * (self.pred_to_gt.mean() + self.gt_to_pred.mean()))

    def normal_consistency(self) -> float:
        return float(0.5 * (self.pred_to_gt_cos.mean() + self.gt_to_pred_cos.mean()))

    def fscore(self, threshold: float = 0.01) -> float:
        precision = float(np.mean(self.pred_to_gt < threshold))
        recall = float(np.mean(self.gt_to_pred < threshold))
        if precision + recall == 0.0:
            return 0.0
        return 2.0 * precision * recall / (precision + recall)


def compare_surfaces(
    pred: TriMesh, gt: TriMesh, n: int = 100_000, seed: Seed = 0
) -> SurfaceComparison:
    """Sample both surfaces (``n`` points each) and match every sample to the other set."""
    if n < 1:
        raise ValueError(f"compare_surfaces: n must be >= 1, got {n}")
    pred_seed, gt_seed = seed_sequence(seed).spawn(2)
    p = sample_surface(pred, n, pred_seed)
    g = sample_surface(gt, n, gt_seed)
    d_pg, i_pg = cKDTree(g.points).query(p.points, k=1, workers=-1)
    d_gp, i_gp = cKDTree(p.points).query(g.points, k=1, workers=-1)
    cos_pg = np.abs(np.einsum("nd,nd->n", p.normals, g.normals[i_pg]))
    cos_gp = np.abs(np.einsum("nd,nd->n", g.normals, p.normals[i_gp]))
    return SurfaceComparison(d_pg, d_gp, cos_pg, cos_gp)


def chamfer_cm(pred: TriMesh, gt: TriMesh, n: int = 100_000, seed: Seed = 0) -> float:
    """Symmetric mean L2 Chamfer distance in centimetres (see module doc)."""
    return compare_surfaces(pred, gt, n, seed).chamfer_cm()


def normal_consistency(pred: TriMesh, gt: TriMesh, n: int = 100_000, seed: Seed = 0) -> float:
    """Mean ``|cos|`` between nearest-sample normals, both directions averaged; in [0, 1]."""
    return compare_surfaces(pred, gt, n, seed).normal_consistency()


def fscore(
    pred: TriMesh, gt: TriMesh, threshold: float = 0.01, n: int = 100_000, seed: Seed = 0
) -> float:
    """F-score at ``threshold`` metres (default 1 cm); in [0, 1]."""
    return compare_surfaces(pred, gt, n, seed).fscore(threshold)
