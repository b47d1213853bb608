"""All mesh-quality metrics of one predicted mesh against one ground-truth mesh."""

from __future__ import annotations

from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import Seed, seed_sequence
from invskin.metrics.occupancy import evaluation_points, occupancy_iou
from invskin.metrics.surface import compare_surfaces


def mesh_metrics(
    pred_mesh: TriMesh, gt_mesh: TriMesh, n: int = 100_000, seed: Seed = 0
) -> dict[str, float]:
    """``iou_bbox``, ``iou_surface``, ``chamfer_cm``, ``normal_consistency``, ``fscore_1cm``.

    ``n`` points for each IoU set and ``n`` surface samples per mesh; the IoU points depend only on
    ``gt_mesh`` and ``seed``, so every method is scored on the same points.
    """
    points_seed, surface_seed = seed_sequence(seed).spawn(2)
    points = evaluation_points(gt_mesh, n, points_seed)
    surfaces = compare_surfaces(pred_mesh, gt_mesh, n, surface_seed)
    return {
        "iou_bbox": occupancy_iou(pred_mesh, gt_mesh, points.bbox),
        "iou_surface": occupancy_iou(pred_mesh, gt_mesh, points.surface),
        "chamfer_cm": surfaces.chamfer_cm(),
        "normal_consistency": surfaces.normal_consistency(),
        "fscore_1cm": surfaces.fscore(0.01),
    }
