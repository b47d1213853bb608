"""Evaluation metrics on meshes (what ``invskin eval`` reports): IoU, Chamfer, normal consistency, F-score,
correspondence error, and per part of the ground truth: correspondence error, Chamfer, stretch;
colour accuracy where the avatar and the truth have colours.

Conventions: numpy arrays and :class:`invskin.mesh.TriMesh` in metres; Chamfer and correspondence
errors are reported in centimetres; occupancy by generalised winding numbers; every random draw is
seeded, so a metric is a deterministic function of its inputs and ``seed``.
"""

from invskin.metrics.colour import colour_error
from invskin.metrics.correspondence import Attachment, attach, correspondence_error
from invskin.metrics.mesh import mesh_metrics
from invskin.metrics.occupancy import EvaluationPoints, evaluation_points, iou, occupancy_iou
from invskin.metrics.parts import PartMetrics, edge_stretch, mesh_edges, part_metrics, vertex_parts
from invskin.metrics.surface import (
    SurfaceComparison,
    chamfer_cm,
    compare_surfaces,
    fscore,
    normal_consistency,
)

__all__ = [
    "Attachment",
    "EvaluationPoints",
    "PartMetrics",
    "SurfaceComparison",
    "attach",
    "chamfer_cm",
    "colour_error",
    "compare_surfaces",
    "correspondence_error",
    "edge_stretch",
    "evaluation_points",
    "fscore",
    "iou",
    "mesh_edges",
    "mesh_metrics",
    "normal_consistency",
    "occupancy_iou",
    "part_metrics",
    "vertex_parts",
]
