"""Colour accuracy of an avatar: its vertex colours against the colour truth where it puts them.

Conventions: RGB in [0, 1] in, errors out in 8-bit levels (0-255). In each frame, every posed
predicted vertex takes the truth's colour at the closest point of the frame's posed ground-truth
surface (barycentric interpolation of the truth's per-vertex colours, which are printed on the
surface and so the same in every frame, unlit). The vertex's error is the mean absolute difference
over the three channels between its own colour (the avatar's, the same in every frame) and that
truth colour. A vertex whose point slid along the cloth lands on another part of the print: colour
accuracy sees sliding, which a distance to the surface does not. Shape legend: ``V`` predicted
vertices, ``W`` ground-truth vertices, ``T`` ground-truth faces, ``F`` frames.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import Bool, Float, Int

from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import closest_points


def colour_error(
    pred_posed_vertices: Float[np.ndarray, "f v 3"],
    pred_colours: Float[np.ndarray, "v 3"],
    gt_faces: Int[np.ndarray, "t 3"],
    gt_posed_vertices: Float[np.ndarray, "f w 3"],
    gt_colours: Float[np.ndarray, "w 3"],
    parts: Mapping[str, Bool[np.ndarray, " v"]] | None = None,
) -> dict:
    """``mean`` (8-bit levels) over all (vertex, frame) pairs, ``per_frame_mean`` (F,), and with
    ``parts`` (which predicted vertices belong to each part) ``per_part``: part -> mean, or None
    for a part without predicted vertices."""
    pred_posed = np.asarray(pred_posed_vertices, dtype=np.float64)
    colours = np.asarray(pred_colours, dtype=np.float64)
    truth_colours = np.asarray(gt_colours, dtype=np.float64)
    gt_posed = np.asarray(gt_posed_vertices, dtype=np.float64)
    if pred_posed.ndim != 3 or colours.shape != (pred_posed.shape[1], 3):
        raise ValueError(
            f"colour_error: predicted vertices (F, V, 3) and colours (V, 3) must agree, got "
            f"{pred_posed.shape} and {colours.shape}"
        )
    if gt_posed.ndim != 3 or truth_colours.shape != (gt_posed.shape[1], 3):
        raise ValueError(
            f"colour_error: ground-truth vertices (F, W, 3) and colours (W, 3) must agree, got "
            f"{gt_posed.shape} and {truth_colours.shape}"
        )
    if len(pred_posed) != len(gt_posed) or len(gt_posed) == 0:
        raise ValueError(
            f"colour_error: {len(pred_posed)} predicted and {len(gt_posed)} ground-truth frames; "
            "pass the same (at least one) frames for both"
        )
    errors = np.empty(pred_posed.shape[:2])
    for frame in range(len(gt_posed)):
        surface = TriMesh(gt_posed[frame], gt_faces)
        _, face_index, barycentric = closest_points(surface, pred_posed[frame])
        seen = np.einsum("vk,vkd->vd", barycentric, truth_colours[surface.faces[face_index]])
        errors[frame] = 255.0 * np.abs(colours - seen).mean(-1)
    result: dict = {"mean": float(errors.mean()), "per_frame_mean": errors.mean(1)}
    if parts is not None:
        result["per_part"] = {
            name: float(errors[:, mask].mean()) if mask.any() else None
            for name, mask in parts.items()
        }
    return result
