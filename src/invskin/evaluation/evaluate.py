"""``invskin eval``: the evaluation protocol on the posed meshes a method outputs.

For every frame of a test split: repose (or, for ``snarf``, extract) the run's mesh, then score it
against the frame's raw scan: ``iou_bbox``, ``iou_surface``, ``chamfer_cm``,
``normal_consistency``, ``fscore_1cm``; plus, where the dataset has ground-truth correspondences
and the method keeps its vertices across frames, the correspondence error (mean and 95th
percentile, cm). Per-frame numbers are kept; the summary is the mean over frames.

Where the dataset also labels parts of its ground-truth vertices (``docs/data-format.md``; the
synthetic data: ``body``, ``garment``, ``skirt``, ``clothing``), ``per_part`` holds
:func:`invskin.metrics.part_metrics` per part (the protocol is in :mod:`invskin.metrics.parts`);
otherwise it is ``null``. Layout of ``metrics.json``::

    "per_part": {
      "stretch_threshold": 1.5,
      "chamfer_points": 25000,            # num_points // 4: part Chamfer sample density
      "seconds": float,                   # time this block took
      "parts": {
        "skirt": {
          "gt_vertices": int,             # ground-truth vertices labelled skirt
          "vertices": int,                # predicted vertices attached to the skirt
          "edges": int,                   # predicted edges with both ends there (stretch)
          "edges_skipped": int,           # ... whose ends attach to one ground-truth point
          "correspondence_mean_cm": float,  # mean over all (vertex, frame) pairs
          "correspondence_p95_cm": float,   # 95th percentile over all (vertex, frame) pairs
          "chamfer_cm": float,            # mean over frames of the per-frame part Chamfer
          "stretch_p99": float,           # 99th percentile over all (edge, frame) pairs
          "stretch_frac_above": float     # fraction of (edge, frame) pairs above the threshold
        }, ...
      }
    }

and each ``per_frame`` entry gets ``"per_part": {part: {"correspondence_mean_cm", "chamfer_cm",
"stretch_p99"}}`` for that frame.

Where the ground truth has colours and the run's canonical mesh has vertex colours (a model
trained with ``--signal colour``), ``colour`` holds the colour accuracy
(:func:`invskin.metrics.colour_error`, 8-bit levels): ``{"mean", "per_part": {part: mean}}``, and
each ``per_frame`` entry gets ``colour_error``; otherwise ``colour`` is ``null``. A number with nothing to measure (e.g. no predicted vertex in
the part) is ``null``. ``metrics.md`` holds the summary table and, with parts, a per-part table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from invskin.data.format import load_dataset
from invskin.fileio import write_text_atomic
from invskin.mesh.io import load_mesh
from invskin.metrics import (
    attach,
    colour_error,
    correspondence_error,
    mesh_metrics,
    part_metrics,
    vertex_parts,
)
from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh, repose_run

METRICS = ("iou_bbox", "iou_surface", "chamfer_cm", "normal_consistency", "fscore_1cm")
STRETCH_THRESHOLD = 1.5


def evaluate_run(
    run_dir: Path,
    data: Path | None = None,
    split: str = "test-within",
    num_points: int = 100_000,
    max_frames: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Evaluate a run on a split; writes ``RUN/eval/<split>/metrics.json`` and ``metrics.md``."""
    run_dir = Path(run_dir)
    loaded = load_run(run_dir, device)
    data = Path(data) if data is not None else Path(loaded.state["dataset"])
    dataset = load_dataset(data)
    if split not in dataset.splits:
        raise ValueError(f"dataset {data} has no split {split!r}; it has {sorted(dataset.splits)}")
    indices = list(dataset.splits[split])[: max_frames or None]
    if not indices:
        raise ValueError(f"split {split!r} of {data} is empty")
    out_dir = run_dir / "eval" / split
    names = [dataset.frame_ids[i] for i in indices]
    tic = time.perf_counter()
    reposed = repose_run(
        run_dir,
        dataset.transforms[indices],
        out_dir / "meshes",
        names,
        device=device,
        write_glb=False,
        progress=progress,
    )
    repose_seconds = time.perf_counter() - tic
    per_frame, posed, pred_faces = [], [], None
    for name, index, mesh_file in tqdm(
        list(zip(names, indices, reposed.mesh_files)), desc="metrics", disable=not progress
    ):
        pred = load_mesh(mesh_file)
        posed.append(pred.vertices)
        pred_faces = pred.faces
        scores = mesh_metrics(pred, dataset.scan(index), n=num_points, seed=index)
        per_frame.append({"frame": name, **scores})
    summary = {key: float(np.mean([f[key] for f in per_frame])) for key in METRICS}
    correspondence = per_part = colour = None
    truth = dataset.correspondence
    if truth is not None and loaded.model.pose_free:
        canonical, _ = canonical_mesh(run_dir, loaded.model, None, loaded.state)  # as reposed
        vertices = torch.as_tensor(canonical.vertices, dtype=torch.float32, device=device)
        identity = torch.eye(4, device=device).expand(1, dataset.num_bones, 4, 4)
        in_canonical_pose = loaded.model.repose(vertices, identity)[0].cpu().numpy()
        gt_canonical = truth.canonical_vertices.double().numpy()
        gt_faces = truth.faces.long().numpy()
        gt_posed = truth.posed_vertices[indices].double().numpy()
        pred_posed = np.stack(posed)
        attachment = attach(in_canonical_pose.astype(np.float64), gt_canonical, gt_faces)
        result = correspondence_error(
            in_canonical_pose.astype(np.float64),
            pred_posed,
            gt_canonical,
            gt_faces,
            gt_posed,
            attachment=attachment,
        )
        correspondence = {"mean_cm": result["mean_cm"], "p95_cm": result["p95_cm"]}
        for frame, value in zip(per_frame, result["per_frame_mean_cm"]):
            frame["correspondence_mean_cm"] = float(value)
        if truth.parts:
            tic = time.perf_counter()
            parts = part_metrics(
                attachment,
                pred_faces,
                pred_posed,
                gt_canonical,
                gt_faces,
                gt_posed,
                {name: index.numpy() for name, index in truth.parts.items()},
                pred_canonical_vertices=in_canonical_pose.astype(np.float64),
                chamfer_points=num_points // 4,
                seed=0,
                threshold=STRETCH_THRESHOLD,
            )
            per_part = {
                "stretch_threshold": STRETCH_THRESHOLD,
                "chamfer_points": num_points // 4,
                "seconds": time.perf_counter() - tic,
                "parts": parts.summary,
            }
            for frame, values in zip(per_frame, parts.per_frame):
                frame["per_part"] = values
        if truth.colors is not None and canonical.colors is not None:
            masks = vertex_parts(
                attachment,
                {name: index.numpy() for name, index in truth.parts.items()},
                len(gt_canonical),
            )
            result = colour_error(
                pred_posed,
                canonical.colors,
                gt_faces,
                gt_posed,
                truth.colors.double().numpy(),
                masks,
            )
            colour = {"mean": result["mean"], "per_part": result["per_part"]}
            for frame, value in zip(per_frame, result["per_frame_mean"]):
                frame["colour_error"] = float(value)
    report = {
        "run": str(run_dir),
        "method": loaded.method,
        "dataset": str(data),
        "split": split,
        "frames": len(indices),
        "num_points": num_points,
        "summary": summary,
        "correspondence": correspondence,
        "per_part": per_part,
        "colour": colour,
        "seconds_per_frame_repose": reposed.seconds_per_frame,
        "seconds_repose_total": repose_seconds,
        "per_frame": per_frame,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "metrics.json", json.dumps(report, indent=1))
    table = markdown_table([report])
    if per_part is not None:
        table += "\n" + per_part_table([report])
    write_text_atomic(out_dir / "metrics.md", table)
    return report


def markdown_table(reports: list[dict]) -> str:
    """One row per report: the summary metrics and the correspondence error."""
    header = (
        "| method | split | frames | IoU bbox | IoU surface | Chamfer (cm) | normal cons. | "
        "F-score 1 cm | corr. mean (cm) | corr. p95 (cm) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in reports:
        s, c = r["summary"], r["correspondence"]
        corr = (f"{c['mean_cm']:.2f}", f"{c['p95_cm']:.2f}") if c else ("n/a", "n/a")
        corr = tuple("-" if value == "nan" else value for value in corr)
        rows.append(
            f"| {r['method']} | {r['split']} | {r['frames']} | {s['iou_bbox']:.4f} | "
            f"{s['iou_surface']:.4f} | {s['chamfer_cm']:.3f} | {s['normal_consistency']:.4f} | "
            f"{s['fscore_1cm']:.4f} | {corr[0]} | {corr[1]} |"
        )
    return header + "\n".join(rows) + "\n"


def per_part_table(reports: list[dict]) -> str:
    """One row per report and part: the ``per_part`` summary (reports without it are skipped)."""
    rows = []
    threshold = STRETCH_THRESHOLD
    for r in reports:
        block = r.get("per_part")
        if not block:
            continue
        threshold = block["stretch_threshold"]
        for part, p in block["parts"].items():
            cells = [
                _cell(p["correspondence_mean_cm"], 2),
                _cell(p["correspondence_p95_cm"], 2),
                _cell(p["chamfer_cm"], 3),
                _cell(p["stretch_p99"], 2),
                _cell(p["stretch_frac_above"], 4),
            ]
            rows.append(
                f"| {r['method']} | {r['split']} | {part} | {p['vertices']} | "
                + " | ".join(cells)
                + " |"
            )
    header = (
        "| method | split | part | vertices | corr. mean (cm) | corr. p95 (cm) | Chamfer (cm) | "
        f"stretch p99 | stretch > {threshold:g} |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    return header + "\n".join(rows) + "\n"


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
