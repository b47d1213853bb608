"""Correspondence error of a reposed mesh against ground-truth surface motion.

Conventions: metres in, centimetres out. Each predicted vertex is attached, in the canonical pose,
to its closest point on the ground-truth canonical surface (a face and barycentric coordinates,
:func:`attach`). That surface point moves with the ground-truth mesh: in frame f it is the same
barycentric combination of the ground-truth posed vertices. The error of a vertex in a frame is the
distance between where the method puts it and where its attached point truly is. Shape legend:
``V`` predicted vertices, ``W`` ground-truth vertices, ``T`` ground-truth faces, ``F`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import closest_points


@dataclass(frozen=True)
class Attachment:
    """Where each predicted vertex sits on the ground-truth surface: the ground-truth vertex
    indices ``corners`` (V, 3) of its closest face and ``barycentric`` (V, 3) weights on them."""

    corners: Int[np.ndarray, "v 3"]
    barycentric: Float[np.ndarray, "v 3"]

    def __len__(self) -> int:
        return len(self.corners)

    def points(self, gt_vertices: Float[np.ndarray, "*f w 3"]) -> Float[np.ndarray, "*f v 3"]:
        """The attached points on a ground-truth mesh with these vertices (any leading frames)."""
        gt = np.asarray(gt_vertices, dtype=np.float64)
        return np.einsum("vk,...vkd->...vd", self.barycentric, gt[..., self.corners, :])

    def nearest_corner(self) -> Int[np.ndarray, " v"]:
        """The ground-truth vertex of largest barycentric weight (ties: the first corner)."""
        return self.corners[np.arange(len(self)), np.argmax(self.barycentric, axis=1)]


def attach(
    pred_canonical_vertices: Float[np.ndarray, "v 3"],
    gt_canonical_vertices: Float[np.ndarray, "w 3"],
    gt_faces: Int[np.ndarray, "t 3"],
) -> Attachment:
    """Attach each predicted canonical vertex to its closest ground-truth canonical surface point."""
    if len(pred_canonical_vertices) == 0:
        raise ValueError("attach: the predicted mesh has no vertices")
    gt_canonical = TriMesh(gt_canonical_vertices, gt_faces)
    _, face_index, barycentric = closest_points(gt_canonical, pred_canonical_vertices)
    return Attachment(gt_canonical.faces[face_index], barycentric)


def correspondence_error(
    pred_canonical_vertices: Float[np.ndarray, "v 3"],
    pred_posed_vertices: Float[np.ndarray, "f v 3"],
    gt_canonical_vertices: Float[np.ndarray, "w 3"],
    gt_faces: Int[np.ndarray, "t 3"],
    gt_posed_vertices: Float[np.ndarray, "f w 3"],
    attachment: Attachment | None = None,
) -> dict[str, float | np.ndarray]:
    """Correspondence error in cm: ``mean_cm`` and ``p95_cm`` over all vertices and frames,
    ``per_frame_mean_cm`` (F,) float64 and ``errors_cm`` (F, V) float64, every vertex in every frame.

    ``attachment`` is :func:`attach` of the same canonical meshes, when the caller already has it.
    """
    pred_posed = np.asarray(pred_posed_vertices, dtype=np.float64)
    gt_posed = np.asarray(gt_posed_vertices, dtype=np.float64)
    num_pred, num_gt = len(pred_canonical_vertices), len(gt_canonical_vertices)
    if num_pred == 0:
        raise ValueError("correspondence_error: the predicted mesh has no vertices")
    if pred_posed.shape[1:] != (num_pred, 3) or gt_posed.shape[1:] != (num_gt, 3):
        raise ValueError(
            f"correspondence_error: posed vertices must be (F, V, 3) and (F, W, 3) with V={num_pred}"
            f" and W={num_gt} from the canonical meshes, got {pred_posed.shape} and {gt_posed.shape}"
        )
    if len(pred_posed) != len(gt_posed) or len(gt_posed) == 0:
        raise ValueError(
            f"correspondence_error: {len(pred_posed)} predicted frames and {len(gt_posed)} "
            "ground-truth frames; pass the same (at least one) test frames for both"
        )
    if attachment is None:
        attachment = attach(pred_canonical_vertices, gt_canonical_vertices, gt_faces)
    elif len(attachment) != num_pred:
        raise ValueError(
            f"correspondence_error: the attachment has {len(attachment)} vertices, expected "
            f"{num_pred}"
        )
    errors_cm = np.empty(pred_posed.shape[:2], dtype=np.float64)
    for frame in range(len(gt_posed)):  # per frame keeps memory at O(V)
        truth = attachment.points(gt_posed[frame])
        errors_cm[frame] = 100.0 * np.linalg.norm(pred_posed[frame] - truth, axis=-1)
    return {
        "mean_cm": float(errors_cm.mean()),
        "p95_cm": float(np.percentile(errors_cm, 95)),
        "per_frame_mean_cm": errors_cm.mean(axis=1),
        "errors_cm": errors_cm,
    }
