"""What the whole-body metrics can reach on a synthetic dataset, and where a trained run loses them.

``invskin eval`` scores a predicted mesh against each frame's raw scan. This script scores, with the
same :func:`invskin.metrics.mesh_metrics` and the same per-frame seeds, surfaces whose error is known:

- ``ground_truth``: the ground-truth correspondence surface in the frame's pose. It is the surface
  visible in the canonical pose, not the scan itself, so this is the floor of the metrics (Chamfer's
  floor also falls with more sample points);
- ``best_lbs``: the ground-truth canonical surface skinned with the best per-vertex LBS weights,
  fitted to the ground truth of the ``train`` frames (``benchmarks/lbs_gap.py``): the best any
  skinning-only method (``snarf-nc``, ``lbs-body``) can do with a perfect canonical shape;
- ``body_prior``: the same surface skinned with the weights of the nearest body-prior vertex;
- per ``--runs`` RUN: ``RUN:extracted``, the run's extracted canonical mesh (``canonical.ply``)
  through its deformation (``AnimatableModel.repose``, what ``invskin eval`` scores), and
  ``RUN:gt_canonical``, the ground-truth canonical surface through the run's deformation (for a run
  with PIN_c this includes PIN_c's offset of the canonical space, so it does not compare).

Splits ``test-within`` and ``test-out`` take every ``--stride``-th frame, ``train`` every
``2 * stride``-th (for runs: the fit on frames they were trained on against held-out ones).

    python benchmarks/ceiling.py --data DATA [--runs RUN ...] [--points 30000] [--stride 4] \\
        [--out benchmarks/results/ceiling.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from lbs_gap import best_weights, nearest_prior_weights, skin

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.mesh.io import TriMesh, load_mesh
from invskin.metrics import mesh_metrics
from invskin.runs.folder import load_run

METRICS = ("iou_bbox", "iou_surface", "chamfer_cm")
FIT_STEPS = 1500  # FISTA steps of the best-LBS fit, as lbs_gap.py's default


def score(dataset, indices: list[int], vertices, faces, points: int) -> dict[str, float]:
    """Mean over frames of ``mesh_metrics`` against the scans (seeded by frame index, as eval)."""
    rows = [
        mesh_metrics(TriMesh(np.asarray(v, np.float64), faces), dataset.scan(i), n=points, seed=i)
        for v, i in zip(vertices, indices)
    ]
    return {key: round(float(np.mean([r[key] for r in rows])), 4) for key in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, nargs="*", default=[])
    parser.add_argument("--points", type=int, default=30_000)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ceiling.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    tic = time.perf_counter()
    dataset = load_dataset(args.data)
    truth = dataset.correspondence
    if truth is None or dataset.prior is None:
        raise SystemExit(f"{args.data} has no correspondence ground truth or body prior")
    canonical = truth.canonical_vertices.double()
    faces = truth.faces.long().numpy()
    prior_weights = nearest_prior_weights(dataset, canonical)
    best = best_weights(dataset, canonical, prior_weights, FIT_STEPS)
    # Each run's model and its extracted canonical mesh, read once for every split.
    runs = {
        str(run): (load_run(run).model.eval(), load_mesh(run / "canonical.ply"))
        for run in args.runs
    }
    results = {}
    for split, stride in (("test-within", args.stride), ("test-out", args.stride), ("train", 0)):
        stride = stride or 2 * args.stride
        indices = list(dataset.splits[split])[::stride]
        if not indices:
            continue
        transforms = dataset.transforms[indices].double()
        row = {"frames": len(indices)}
        if split != "train":
            row["ground_truth"] = score(
                dataset, indices, truth.posed_vertices[indices].numpy(), faces, args.points
            )
            row["best_lbs"] = score(
                dataset, indices, skin(canonical, best, transforms).numpy(), faces, args.points
            )
            row["body_prior"] = score(
                dataset,
                indices,
                skin(canonical, prior_weights, transforms).numpy(),
                faces,
                args.points,
            )
        for name, (model, mesh) in runs.items():
            with torch.no_grad():
                mesh_vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
                posed = model.repose(mesh_vertices, transforms.float()).double().numpy()
                gt_posed = model.repose(canonical.float(), transforms.float()).double().numpy()
            row[f"{name}:extracted"] = score(dataset, indices, posed, mesh.faces, args.points)
            row[f"{name}:gt_canonical"] = score(dataset, indices, gt_posed, faces, args.points)
        results[split] = row
        print(split, row, flush=True)
    write_json(
        args.out,
        {
            "command": "python benchmarks/ceiling.py --data DATA "
            + (" --runs " + " ".join(map(str, args.runs)) if args.runs else "")
            + f" --points {args.points} --stride {args.stride}",
            "dataset": str(args.data),
            "points": args.points,
            "best_lbs_fit_steps": FIT_STEPS,
            "results": results,
            "seconds": round(time.perf_counter() - tic, 1),
            "hardware": hardware(torch.device("cpu")),
        },
    )


if __name__ == "__main__":
    main()
