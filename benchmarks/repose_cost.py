"""Reposing cost of trained runs, per frame and 100,000 vertices, on the path ``invskin repose`` takes.

Each run reposes the ground-truth canonical surface of its synthetic dataset (about 15,000 vertices)
to ``--frames`` ``test-out`` frames at once with :func:`invskin.runs.pipeline.reposer_for` (the CPU
fast path where it supports the model's couplings, ``model.repose`` otherwise); the best of
``--repeats``, all runs measured in one process, one after the other, so their ratios hold.
``--preset-ins`` also measures a fresh ``ins`` of the ``cpu-quick`` preset (occupancy signal).

    python benchmarks/repose_cost.py --data DATA RUN [RUN ...] [--preset-ins] \\
        [--out benchmarks/results/repose-cost.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.models.build import build_model
from invskin.models.fast_repose import fast_path_supports
from invskin.runs.folder import load_run
from invskin.runs.pipeline import reposer_for
from invskin.training.presets import make_preset


def repose_ms(model, dataset, frames: int, repeats: int) -> float:
    """Best milliseconds per frame, scaled to 100,000 vertices."""
    vertices = dataset.correspondence.canonical_vertices.float()
    transforms = dataset.transforms[list(dataset.splits["test-out"])[:frames]].float()
    repose = reposer_for(model)
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        repose(vertices, transforms)
        best = min(best, time.perf_counter() - tic)
    return best / frames * 1e3 * 1e5 / vertices.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--preset-ins", action="store_true")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/repose-cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    dataset = load_dataset(args.data)
    models = [(f"{run.parent.name}/{run.name}", load_run(run).model) for run in args.runs]
    named = " ".join(name for name, _ in models)
    if args.preset_ins:
        config = make_preset("cpu-quick", "ins").model
        models.append(
            ("cpu-quick ins (fresh)", build_model(config, dataset.skeleton, dataset.prior))
        )
    rows = []
    for name, model in models:
        ms = repose_ms(model.eval(), dataset, args.frames, args.repeats)
        row = {
            "run": name,
            "method": model.config.method,
            "pin_c_coupling": model.config.pin_c_coupling or model.config.pin_coupling,
            "pin_d": model.config.use_pin_d,
            "fast_path": fast_path_supports(model),
            "ms_per_frame_100k_vertices": round(ms, 1),
        }
        print(row, flush=True)
        rows.append(row)
    write_json(
        args.out,
        {
            "command": f"python benchmarks/repose_cost.py --data DATA {named}"
            + (" --preset-ins" if args.preset_ins else ""),
            "frames": args.frames,
            "rows": rows,
            "hardware": hardware(torch.device("cpu")),
        },
    )


if __name__ == "__main__":
    main()
