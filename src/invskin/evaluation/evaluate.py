"""``invskin eval``: the protocol of DESIGN.md section 6 on the posed meshes a method outputs.

For every frame of a test split: repose (or, for ``snarf``, extract) the run's mesh, then score it
against the frame's raw scan: ``iou_bbox``, ``iou_surface``, ``chamfer_cm``,
``normal_consistency``, ``fscore_1cm``; plus, where the dataset has ground-truth correspondences
and the method keeps its vertices across frames, the correspondence error (mean and 95th
percentile, cm). Per-frame numbers are kept; the summary is the mean over frames.
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
from invskin.metrics import correspondence_error, mesh_metrics
from invskin.models.pipeline import canonical_mesh, repose_run
from invskin.models.run import load_run

METRICS = ("iou_bbox", "iou_surface", "chamfer_cm", "normal_consistency", "fscore_1cm")


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
    per_frame, posed = [], []
    for name, index, mesh_file in tqdm(
        list(zip(names, indices, reposed.mesh_files)), desc="metrics", disable=not progress
    ):
        pred = load_mesh(mesh_file)
        posed.append(pred.vertices)
        scores = mesh_metrics(pred, dataset.scan(index), n=num_points, seed=index)
        per_frame.append({"frame": name, **scores})
    summary = {key: float(np.mean([f[key] for f in per_frame])) for key in METRICS}
    correspondence = None
    truth = dataset.correspondence
    if truth is not None and loaded.model.pose_free:
        canonical, _ = canonical_mesh(run_dir, loaded.model, None, loaded.state)  # as reposed
        vertices = torch.as_tensor(canonical.vertices, dtype=torch.float32, device=device)
        identity = torch.eye(4, device=device).expand(1, dataset.num_bones, 4, 4)
        in_canonical_pose = loaded.model.repose(vertices, identity)[0].cpu().numpy()
        result = correspondence_error(
            in_canonical_pose.astype(np.float64),
            np.stack(posed),
            truth.canonical_vertices.double().numpy(),
            truth.faces.long().numpy(),
            truth.posed_vertices[indices].double().numpy(),
        )
        correspondence = {"mean_cm": result["mean_cm"], "p95_cm": result["p95_cm"]}
        for frame, value in zip(per_frame, result["per_frame_mean_cm"]):
            frame["correspondence_mean_cm"] = float(value)
    report = {
        "run": str(run_dir),
        "method": loaded.method,
        "dataset": str(data),
        "split": split,
        "frames": len(indices),
        "num_points": num_points,
        "summary": summary,
        "correspondence": correspondence,
        "seconds_per_frame_repose": reposed.seconds_per_frame,
        "seconds_repose_total": repose_seconds,
        "per_frame": per_frame,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "metrics.json", json.dumps(report, indent=1))
    write_text_atomic(out_dir / "metrics.md", markdown_table([report]))
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
