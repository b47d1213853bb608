"""Round-trip error of the whole reposing chain on a run's extracted canonical mesh.

For every vertex ``x_c`` of the canonical mesh and every test pose: ``x_d = PIN_d(LBS(PIN_c(x_c)))``
then back ``PIN_c^-1(LBS^-1(PIN_d^-1(x_d)))`` (root finding; of the valid roots, the one closest to
``x_c``), and the distance to ``x_c``. Writes a JSON with the maximum, the 99.9th percentile, the
mean, and the fraction of vertices whose inverse skinning found a valid root.

    python benchmarks/round_trip.py --run RUN [--split test-out] [--frames 8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.geometry import lbs_jacobian
from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--split", default="test-out")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    loaded = load_run(args.run)
    mesh, _ = canonical_mesh(args.run, loaded.model, None, loaded.state)
    dataset = load_dataset(loaded.state["dataset"]).split(args.split)
    picks = np.linspace(0, len(dataset) - 1, min(args.frames, len(dataset))).round().astype(int)
    transforms = dataset.transforms[torch.from_numpy(picks)]
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    model = loaded.model
    field = model.weight_field()
    errors, valid, dets, pin_errors = [], [], [], []
    with torch.no_grad():
        for frame in transforms[:, None]:
            posed = model.repose(vertices, frame)
            back, ok = model.canonicalise(posed, frame, vertices)
            errors.append((back[0] - vertices).norm(dim=-1).masked_fill(~ok[0], float("inf")))
            valid.append(ok[0].float().mean())
            rel = model.pin_pose(frame)
            x_cp = model.pin_c(vertices[None], rel) if model.pin_c is not None else vertices[None]
            skin = field.weights_and_gradients(x_cp)
            dets.append(
                torch.linalg.det(lbs_jacobian(x_cp, skin.weights, skin.gradients, frame))[0]
            )
            if model.pin_c is not None:
                pin_errors.append((model.pin_c.inverse(x_cp, rel) - vertices[None]).norm(dim=-1))
            if model.pin_d is not None:
                y = model.apply_pin_d(posed, frame, inverse=True)
                pin_errors.append((model.apply_pin_d(y, frame, inverse=False) - posed).norm(dim=-1))
    err = torch.cat(errors).double().numpy()
    det = torch.cat(dets).double().numpy()
    bad = err > 1e-4
    pin_max = float(torch.cat([e.flatten() for e in pin_errors]).max()) if pin_errors else None
    result = {
        "benchmark": "round trip x_c -> x_d -> x_c on the extracted canonical mesh",
        "run": str(args.run),
        "method": loaded.method,
        "split": args.split,
        "frames": [dataset.frame_ids[i] for i in picks],
        "vertices": mesh.num_vertices,
        "root_finding_starts": model.skeleton.num_bones,
        "max_m": float(err[np.isfinite(err)].max()),
        "p999_m": float(np.percentile(err[np.isfinite(err)], 99.9)),
        "mean_m": float(err[np.isfinite(err)].mean()),
        "valid_fraction": float(torch.stack(valid).mean()),
        "fraction_below_1e-4_m": float(1.0 - bad.mean()),
        "pins_round_trip_max_m": pin_max,
        "lbs_jacobian_det_all_median": float(np.median(det)),
        "lbs_jacobian_det_where_above_1e-4": {
            "count": int(bad.sum()),
            "median": float(np.median(det[bad])) if bad.any() else None,
            "fraction_det_below_0.1": float((det[bad] < 0.1).mean()) if bad.any() else None,
        },
        "hardware": hardware(torch.device("cpu")),
    }
    out = args.out or Path("benchmarks/results") / f"round-trip-{loaded.method}.json"
    write_json(out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "hardware"}, indent=1))


if __name__ == "__main__":
    main()
