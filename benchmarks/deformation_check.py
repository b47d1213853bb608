"""What a trained deformation does to the ground-truth surface, without any mesh extraction.

For each trained run, push the ground-truth canonical surface of its synthetic dataset through the
run's deformation (``AnimatableModel.repose``: PIN_c, LBS, PIN_d) in every frame of a split and
compare with the ground-truth posed surface, per labelled part: vertex error (mean, 95th percentile,
cm), split into its component along the true posed surface's vertex normal and the component
tangential to it, the distance from each deformed vertex to the true posed surface (the only part of
the error occupancy can see), and the stretch of every ground-truth edge of the part (deformed over
true posed length: 99th percentile and fraction above 1.5; the canonical lengths are the same on
both sides). This separates the deformation from the extracted canonical mesh.

For ``ins`` the ground-truth canonical surface is not the model's canonical surface (PIN_c at the
canonical pose need not be the identity); every number includes that offset.

    python benchmarks/deformation_check.py --data DATA RUN [RUN ...] \\
        [--splits train test-within test-out] [--out benchmarks/results/deformation-check.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import closest_points, vertex_normals
from invskin.metrics.parts import edge_lengths, mesh_edges
from invskin.runs.folder import load_run

TRAIN_STRIDE = 4  # every 4th training frame: the fit on seen poses, at a quarter of the cost


def check(model, dataset, split: str) -> dict:
    """The report of one trained model on one split (see the module's docstring)."""
    truth = dataset.correspondence
    indices = list(dataset.splits[split])
    if split == "train":
        indices = indices[::TRAIN_STRIDE]
    canonical = truth.canonical_vertices.float()
    posed = model.repose(canonical, dataset.transforms[indices].float()).double().numpy()
    gt = truth.posed_vertices[indices].double().numpy()
    faces = truth.faces.long().numpy()
    edges = mesh_edges(faces)
    report = {"frames": len(indices)}
    per_frame = []
    for f in range(len(indices)):
        true_surface = TriMesh(gt[f], faces)
        normals = vertex_normals(true_surface)
        delta = posed[f] - gt[f]
        along = (delta * normals).sum(1)
        tangential = np.linalg.norm(delta - along[:, None] * normals, axis=1)
        closest, _, _ = closest_points(true_surface, posed[f])
        off_surface = np.linalg.norm(closest - posed[f], axis=1)
        length, true_length = edge_lengths(edges, posed[f]), edge_lengths(edges, gt[f])
        per_frame.append(
            (np.linalg.norm(delta, axis=1), np.abs(along), tangential, off_surface,
             length / np.maximum(true_length, 1e-9))
        )  # fmt: skip
    for name, index in truth.parts.items():
        in_part = np.zeros(len(canonical), dtype=bool)
        in_part[index.numpy()] = True
        if not in_part.any():
            continue
        part_edges = in_part[edges].all(1)
        error, normal, tangent, off, stretch = (
            np.concatenate([frame[k][in_part if k < 4 else part_edges] for frame in per_frame])
            for k in range(5)
        )
        report[name] = {
            "error_mean_cm": 100 * float(error.mean()),
            "error_p95_cm": 100 * float(np.percentile(error, 95)),
            "normal_mean_cm": 100 * float(normal.mean()),
            "tangential_mean_cm": 100 * float(tangent.mean()),
            "off_surface_mean_cm": 100 * float(off.mean()),
            "stretch_p99": float(np.percentile(stretch, 99)) if stretch.size else None,
            "stretch_frac_above_1.5": float((stretch > 1.5).mean()) if stretch.size else None,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["train", "test-within", "test-out"])
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/deformation-check.json")
    )
    args = parser.parse_args()

    def describe(run: Path, split: str, report: dict) -> list[str]:
        skirt = report.get("skirt", {})
        return [
            f"{run} {split}: skirt error {skirt.get('error_mean_cm', float('nan')):.2f} cm "
            f"(normal {skirt.get('normal_mean_cm', float('nan')):.2f}, tangential "
            f"{skirt.get('tangential_mean_cm', float('nan')):.2f}, off the surface "
            f"{skirt.get('off_surface_mean_cm', float('nan')):.2f}), stretch p99 "
            f"{skirt.get('stretch_p99') or float('nan'):.2f}"
        ]

    report_runs("deformation_check.py", args, check, describe, extra={"train_stride": TRAIN_STRIDE})


def report_runs(script: str, args, check, describe, extra: dict | None = None) -> None:
    """Run ``check(model, dataset, split)`` for every run of ``args.runs`` (each loaded once) and
    split of ``args.splits`` on the labelled dataset ``args.data``, print ``describe(run, split,
    report)``'s lines, and write all reports to ``args.out`` with the command (``script`` and the
    runs), the hardware, the dataset and ``extra``."""
    dataset = load_dataset(args.data)
    if dataset.correspondence is None or not dataset.correspondence.parts:
        raise SystemExit(f"{args.data} has no labelled ground-truth correspondences")
    results = []
    for run in args.runs:
        model = load_run(run).model.eval()
        row: dict = {"run": str(run), "splits": {}}
        for split in args.splits:
            row["splits"][split] = report = check(model, dataset, split)
            for line in describe(run, split, report):
                print(line, flush=True)
        results.append(row)
    command = f"python benchmarks/{script} --data DATA " + " ".join(str(r) for r in args.runs)
    write_json(
        args.out,
        {
            "command": command,
            "hardware": hardware(torch.device("cpu")),
            "dataset": str(args.data),
            **(extra or {}),
            "runs": results,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
