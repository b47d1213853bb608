"""How good is a skinning-weight grid before any learning? Skin the ground truth with it.

For each prior grid (the nearest body vertex's weights, or the diffused prior, at a few grid
resolutions), skin the ground-truth canonical surface of a synthetic dataset with the grid's
weights and compare with the ground-truth posed surface in every frame of ``test-within`` and
``test-out``: vertex error (mean, 95th percentile, cm) over the whole surface and per labelled part,
and the stretch of every ground-truth edge of a part (posed length over true length: 99th
percentile and fraction above 1.5). Nothing is trained: this isolates what the weights alone do.

    python benchmarks/prior_check.py --data DATA [--out benchmarks/results/prior-check.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.geometry import lbs
from invskin.nets.skinning_field import (
    SkinningGrid,
    diffused_grid_weights,
    grid_nodes,
    nearest_vertex_weights,
)

PADDING = 0.25  # as AnimatableModel's default bounds
GRIDS = [
    ("nearest", (24, 32, 16), None),
    ("diffused", (24, 32, 16), 0.05),
    ("nearest", (36, 48, 24), None),
    ("diffused", (36, 48, 24), 0.03),
    ("diffused", (36, 48, 24), 0.05),
    ("nearest", (48, 64, 32), None),
    ("diffused", (48, 64, 32), 0.05),
]


def edges_of(faces: np.ndarray) -> np.ndarray:
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(pairs, axis=1), axis=0)


def score(grid: SkinningGrid, dataset, split: str, parts: dict, edges: np.ndarray) -> dict:
    truth = dataset.correspondence
    index = list(dataset.splits[split])
    transforms = dataset.transforms[index].float()
    canonical = truth.canonical_vertices.float()
    weights = grid(canonical)
    posed = lbs(
        canonical.expand(len(index), -1, -1), weights.expand(len(index), -1, -1), transforms
    )
    target = truth.posed_vertices[index].float()
    error = (posed - target).norm(dim=-1) * 100  # (F, V) cm
    out = {"all": {"mean_cm": float(error.mean()), "p95_cm": float(error.quantile(0.95))}}
    for name, members in parts.items():
        mask = torch.zeros(canonical.shape[0], dtype=torch.bool)
        mask[members] = True
        part_edges = torch.from_numpy(edges[mask[edges].all(1).numpy()])
        pred = (posed[:, part_edges[:, 0]] - posed[:, part_edges[:, 1]]).norm(dim=-1)
        true = (target[:, part_edges[:, 0]] - target[:, part_edges[:, 1]]).norm(dim=-1)
        stretch = (pred / true.clamp(min=1e-6)).flatten()
        out[name] = {
            "mean_cm": float(error[:, mask].mean()),
            "p95_cm": float(error[:, mask].flatten().quantile(0.95)),
            "stretch_p99": float(stretch.quantile(0.99)),
            "stretch_frac_above_1.5": float((stretch > 1.5).float().mean()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "prior-check.json"
    )
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    if dataset.correspondence is None or dataset.prior is None:
        raise SystemExit(f"{args.data} has no correspondence ground truth or no prior")
    prior = dataset.prior
    parts = {name: idx for name, idx in dataset.correspondence.parts.items() if len(idx)}
    edges = edges_of(dataset.correspondence.faces.numpy())
    lo = prior.vertices.min(0).values - PADDING
    hi = prior.vertices.max(0).values + PADDING
    bounds = torch.stack([lo, hi]).float()
    results = []
    for kind, resolution, radius in GRIDS:
        tic = time.perf_counter()
        nodes = grid_nodes(bounds, resolution)
        if kind == "nearest":
            weights = nearest_vertex_weights(prior.vertices.float(), prior.weights.float(), nodes)
        else:
            weights = diffused_grid_weights(
                nodes, prior.vertices.float(), prior.weights.float(), radius
            )
        seconds = time.perf_counter() - tic
        grid = SkinningGrid(weights.permute(3, 0, 1, 2).contiguous(), bounds)
        row = {"prior": kind, "grid": resolution, "radius_m": radius, "build_seconds": seconds}
        for split in ("test-within", "test-out"):
            row[split] = score(grid, dataset, split, parts, edges)
        results.append(row)
        out = row["test-out"]
        skirt = out.get("skirt", {})
        print(
            f"{kind:8s} {resolution} r={radius}: test-out all {out['all']['mean_cm']:.2f} cm, "
            f"skirt {skirt.get('mean_cm', float('nan')):.2f} cm, "
            f"stretch p99 {skirt.get('stretch_p99', float('nan')):.2f}",
            flush=True,
        )
    write_json(
        args.out,
        {
            "command": f"python benchmarks/prior_check.py --data {args.data}",
            "hardware": hardware(torch.device("cpu")),
            "dataset": str(args.data),
            "grids": results,
        },
    )


if __name__ == "__main__":
    main()
