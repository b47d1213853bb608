"""Per-part metrics of a reposed mesh: correspondence error, Chamfer and stretch.

Conventions: metres in, centimetres out; the predicted vertices are attached to the ground-truth
surface once, in the canonical pose (:func:`invskin.metrics.correspondence.attach`). Parts are named
sets of ground-truth vertices (``docs/data-format.md``; they may overlap). Shape legend: ``V``
predicted vertices, ``T`` predicted faces, ``E`` predicted edges, ``W`` ground-truth vertices,
``S`` ground-truth faces, ``F`` frames.

- **Membership.** A predicted vertex belongs to a part when the ground-truth vertex of largest
  barycentric weight at its attached point (:meth:`Attachment.nearest_corner`) does; a predicted
  face or edge belongs to a part when all its vertices do; a ground-truth face when its three
  corners do.
- **Correspondence error** of a part: the per-vertex errors of
  :func:`~invskin.metrics.correspondence.correspondence_error` over the part's vertices; the mean
  and the 95th percentile pool every (vertex, frame) pair of all frames.
- **Chamfer** of a part in a frame: :func:`~invskin.metrics.surface.compare_surfaces` of the
  predicted faces of the part against the ground-truth posed faces of the part, with
  ``chamfer_points * (part area / whole area)`` samples per side (at least 1000; areas of the
  ground-truth canonical surface), i.e. the sample density of a whole-surface Chamfer of
  ``chamfer_points`` samples, whose floor (identical surfaces) is about
  ``0.5 / sqrt(chamfer_points / area)``; reported as the mean over frames.
- **Stretch** of an edge ``(a, b)`` in a frame: how much more the prediction stretched the edge
  than the ground truth stretched the surface under it, ``(posed length / canonical length) /
  (posed distance / canonical distance)``, the lengths of the predicted edge, the distances between
  the ground-truth points ``a`` and ``b`` are attached to, canonical meaning the canonical pose; 1
  is exact (a rigid move, or cloth stretched as much as the ground truth's), a tear shows as
  stretch far above 1. Dividing by the canonical ratio keeps out what no pose causes: where the
  extracted surface lies off the ground truth's (a rounded hem), many vertices attach close
  together and the plain ratio ``posed length / posed distance`` is far above 1 in every frame,
  the canonical pose included; that ratio's p99 in the canonical pose is reported as
  ``canonical_stretch_p99``. Edges whose attached points (or whose own ends) are less than
  ``min_length`` apart in the canonical pose (no length to compare) are left out and counted. The
  99th percentile and the fraction above ``threshold`` pool every (edge, frame) pair of all frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int

from invskin.mesh.io import TriMesh, face_areas
from invskin.mesh.sampling import Seed, seed_sequence
from invskin.metrics.correspondence import Attachment
from invskin.metrics.surface import compare_surfaces

MIN_PART_SAMPLES = 1000


@dataclass(frozen=True)
class PartMetrics:
    """Per-part numbers: ``summary[part]`` over all frames, ``per_frame[f][part]`` for frame f.

    Keys of ``summary[part]``: ``gt_vertices``, ``vertices``, ``edges`` (used for stretch),
    ``edges_skipped``, ``correspondence_mean_cm``, ``correspondence_p95_cm``, ``chamfer_cm``,
    ``stretch_p99``, ``stretch_frac_above`` (above ``threshold``), ``canonical_stretch_p99``; of
    ``per_frame[f][part]``:
    ``correspondence_mean_cm``, ``chamfer_cm``, ``stretch_p99``. A number that has nothing to
    measure (no predicted vertex, face or edge in the part) is ``None``.
    """

    summary: dict[str, dict[str, float | int | None]]
    per_frame: list[dict[str, dict[str, float | None]]]
    threshold: float


def mesh_edges(faces: Int[np.ndarray, "t 3"]) -> Int[np.ndarray, "e 2"]:
    """The unique undirected edges of a triangle mesh, each as ``(low, high)`` vertex indices."""
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    if len(edges) == 0:
        return edges
    size = int(edges.max()) + 1
    keys = np.unique(edges[:, 0] * size + edges[:, 1])  # one int64 key per edge: fast unique
    return np.stack([keys // size, keys % size], axis=1)


def vertex_parts(
    attachment: Attachment, parts: Mapping[str, Int[np.ndarray, " n"]], num_gt_vertices: int
) -> dict[str, Bool[np.ndarray, " v"]]:
    """For each part, which predicted vertices belong to it (see the module doc)."""
    nearest = attachment.nearest_corner()
    masks = {}
    for name, indices in parts.items():
        in_part = np.zeros(num_gt_vertices, dtype=bool)
        in_part[np.asarray(indices, dtype=np.int64)] = True
        masks[name] = in_part[nearest]
    return masks


def edge_lengths(
    edges: Int[np.ndarray, "e 2"], vertices: Float[np.ndarray, "*f v 3"]
) -> Float[np.ndarray, "*f e"]:
    """The length of every edge (any leading frames)."""
    return np.linalg.norm(vertices[..., edges[:, 0], :] - vertices[..., edges[:, 1], :], axis=-1)


def edge_stretch(
    edges: Int[np.ndarray, "e 2"],
    pred_posed_vertices: Float[np.ndarray, "f v 3"],
    attached_posed: Float[np.ndarray, "f v 3"],
    pred_canonical_vertices: Float[np.ndarray, "v 3"],
    attached_canonical: Float[np.ndarray, "v 3"],
) -> Float[np.ndarray, "f e"]:
    """Each edge's stretch in each frame (see the module doc): its predicted posed over canonical
    length, over the same ratio for the ground-truth points its ends are attached to."""
    pred = edge_lengths(edges, pred_posed_vertices) * _inverse(
        edge_lengths(edges, pred_canonical_vertices)
    )
    truth = edge_lengths(edges, attached_posed) * _inverse(edge_lengths(edges, attached_canonical))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(truth > 0, pred / np.where(truth > 0, truth, 1.0), np.inf)


def _inverse(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(x > 0, 1.0 / np.where(x > 0, x, 1.0), np.inf)


def part_metrics(
    attachment: Attachment,
    pred_faces: Int[np.ndarray, "t 3"],
    pred_posed_vertices: Float[np.ndarray, "f v 3"],
    gt_canonical_vertices: Float[np.ndarray, "w 3"],
    gt_faces: Int[np.ndarray, "s 3"],
    gt_posed_vertices: Float[np.ndarray, "f w 3"],
    parts: Mapping[str, Int[np.ndarray, " n"]],
    *,
    pred_canonical_vertices: Float[np.ndarray, "v 3"],
    chamfer_points: int = 25_000,
    seed: Seed = 0,
    threshold: float = 1.5,
    min_length: float = 1e-4,
) -> PartMetrics:
    """Correspondence error, Chamfer and stretch per part (see the module doc for the protocol);
    ``pred_canonical_vertices`` are the predicted vertices in the canonical pose (those attached)."""
    pred_posed = np.asarray(pred_posed_vertices, dtype=np.float64)
    pred_canonical = np.asarray(pred_canonical_vertices, dtype=np.float64)
    gt_posed = np.asarray(gt_posed_vertices, dtype=np.float64)
    gt_canonical = np.asarray(gt_canonical_vertices, dtype=np.float64)
    pred_faces = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    gt_faces = np.asarray(gt_faces, dtype=np.int64).reshape(-1, 3)
    num_frames, num_pred = pred_posed.shape[:2]
    if (
        len(attachment) != num_pred
        or pred_canonical.shape != pred_posed.shape[1:]
        or gt_posed.shape[1:] != gt_canonical.shape
    ):
        raise ValueError(
            f"part_metrics: {len(attachment)} attached vertices for posed predictions of shape "
            f"{pred_posed.shape} (canonical {pred_canonical.shape}), and ground truth {gt_canonical.shape} canonical vs "
            f"{gt_posed.shape} posed; pass the same vertices throughout"
        )
    if len(gt_posed) != num_frames or num_frames == 0:
        raise ValueError(
            f"part_metrics: {num_frames} predicted and {len(gt_posed)} ground-truth frames; "
            "pass the same (at least one) frames for both"
        )
    num_gt = len(gt_canonical)
    masks = vertex_parts(attachment, parts, num_gt)
    edges = mesh_edges(pred_faces)
    attached_canonical = attachment.points(gt_canonical)
    canonical_gap = edge_lengths(edges, attached_canonical)
    own_length = edge_lengths(edges, pred_canonical)
    measurable = (canonical_gap >= min_length) & (own_length >= min_length)
    canonical_stretch = own_length / np.where(measurable, canonical_gap, 1.0)

    attached = np.stack([attachment.points(frame) for frame in gt_posed])  # (F, V, 3)
    errors_cm = 100.0 * np.linalg.norm(pred_posed - attached, axis=-1)  # (F, V)
    gt_face_area = face_areas(TriMesh(gt_canonical, gt_faces))
    total_area = float(gt_face_area.sum())
    seeds = [frame.spawn(len(parts)) for frame in seed_sequence(seed).spawn(num_frames)]

    summary: dict[str, dict[str, float | int | None]] = {}
    per_frame: list[dict[str, dict[str, float | None]]] = [{} for _ in range(num_frames)]
    for part_number, (name, indices) in enumerate(parts.items()):
        in_gt = np.zeros(num_gt, dtype=bool)
        in_gt[np.asarray(indices, dtype=np.int64)] = True
        mask = masks[name]
        part_edges = mask[edges].all(axis=1)
        used = edges[part_edges & measurable]
        pred_part_faces = pred_faces[mask[pred_faces].all(axis=1)]
        gt_part = in_gt[gt_faces].all(axis=1)
        gt_part_faces = gt_faces[gt_part]
        share = float(gt_face_area[gt_part].sum()) / total_area if total_area > 0 else 0.0
        samples = max(MIN_PART_SAMPLES, math.ceil(chamfer_points * share))

        errors = errors_cm[:, mask]  # (F, n)
        stretch = edge_stretch(used, pred_posed, attached, pred_canonical, attached_canonical)
        chamfer = [None] * num_frames
        if len(pred_part_faces) and len(gt_part_faces) and share > 0:
            for f in range(num_frames):
                pred_mesh = TriMesh(pred_posed[f], pred_part_faces)
                gt_mesh = TriMesh(gt_posed[f], gt_part_faces)
                if face_areas(pred_mesh).sum() > 0 and face_areas(gt_mesh).sum() > 0:
                    part_seed = seeds[f][part_number]
                    comparison = compare_surfaces(pred_mesh, gt_mesh, samples, part_seed)
                    chamfer[f] = comparison.chamfer_cm()
        for f in range(num_frames):
            per_frame[f][name] = {
                "correspondence_mean_cm": _stat(errors[f], np.mean),
                "chamfer_cm": chamfer[f],
                "stretch_p99": _stat(stretch[f], lambda x: np.percentile(x, 99)),
            }
        known = [c for c in chamfer if c is not None]
        summary[name] = {
            "gt_vertices": int(in_gt.sum()),
            "vertices": int(mask.sum()),
            "edges": int(len(used)),
            "edges_skipped": int((part_edges & ~measurable).sum()),
            "correspondence_mean_cm": _stat(errors, np.mean),
            "correspondence_p95_cm": _stat(errors, lambda x: np.percentile(x, 95)),
            "chamfer_cm": float(np.mean(known)) if len(known) == num_frames else None,
            "stretch_p99": _stat(stretch, lambda x: np.percentile(x, 99)),
            "stretch_frac_above": _stat(stretch, lambda x: np.mean(x > threshold)),
            "canonical_stretch_p99": _stat(
                canonical_stretch[part_edges & measurable], lambda x: np.percentile(x, 99)
            ),
        }
    return PartMetrics(summary, per_frame, threshold)


def _stat(values: np.ndarray, statistic) -> float | None:
    return float(statistic(values)) if values.size else None
