"""How much of what a trained ``ins`` run's PINs do depends on the pose, and whether it is what skinning misses.

For each run, the ground-truth canonical surface of its synthetic dataset is pushed through the run's
chain in every frame of a split: ``x1 = PIN_c(x0)``, ``x2 = LBS(x1)``, ``x3 = PIN_d(x2)``. Per labelled
part (body, garment, skirt), over vertices and frames:

- ``pin_c_rms_cm``, ``pin_d_rms_cm``: RMS displacement of each PIN (PIN_d's in the PINs' body frame);
- ``pin_c_varying_rms_cm``, ``pin_d_varying_rms_cm``: RMS of the same displacement minus its mean over the
  split's frames, per vertex: the part that changes with the pose;
- ``residual_varying_normal_rms_cm``: what PIN_d would have to add, ``x_true - x2`` in the body frame, minus
  its per-vertex mean over frames, along the true posed surface's normal (the only direction occupancy
  sees): the pose-dependent error left by ``PIN_c`` and skinning;
- ``varying_normal_explained``: ``1 - |r - d|^2 / |r|^2`` of those pose-varying normal components, ``r`` the
  residual and ``d`` PIN_d's displacement: 0 when PIN_d removes none of the pose-dependent error, 1 when
  it removes all of it, negative when it adds error.

The ground-truth canonical surface is not the run's own (PIN_c at rest need not be the identity); the
frame-mean is removed from every quantity that is called ``varying``, so a fixed offset does not count.

    python benchmarks/pin_pose_dependence.py --data DATA RUN [RUN ...] [--split test-out] [--out JSON]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.geometry import lbs
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import vertex_normals
from invskin.models.run import load_run

FRAMES_PER_CALL = 8  # frames pushed through the chain together (bounds the PINs' intermediates)


@torch.no_grad()
def chain(model, canonical: torch.Tensor, transforms: torch.Tensor):
    """``x1, x2, x3`` of the chain for every frame, and the body frame's rotation."""
    field = model.weight_field()
    b = transforms.shape[0]
    x0 = canonical.expand(b, -1, -1)
    x1 = model.pin_c(x0, model._pin_pose(transforms)) if model.pin_c is not None else x0
    x2 = lbs(x1, field(x1), transforms)
    x3 = model._pin_d(x2, transforms, inverse=False) if model.pin_d is not None else x2
    rotation = model.body_frame(transforms)[..., :3, :3]
    return x1, x2, x3, rotation


def _varying(values: np.ndarray) -> np.ndarray:
    """Per vertex, minus the mean over frames (axis 0)."""
    return values - values.mean(axis=0, keepdims=True)


def _rms_cm(values: np.ndarray) -> float:
    return 100 * float(np.sqrt((values**2).sum(-1).mean())) if values.size else float("nan")


def check(run: Path, dataset, split: str) -> dict:
    truth = dataset.correspondence
    model = load_run(run).model.eval()
    indices = list(dataset.splits[split])
    transforms = dataset.transforms[indices].float()
    canonical = truth.canonical_vertices.float()
    parts = [chain(model, canonical, t) for t in transforms.split(FRAMES_PER_CALL)]
    x1, x2, x3, rotation = (torch.cat(values) for values in zip(*parts))
    gt = truth.posed_vertices[indices].float()
    faces = truth.faces.long().numpy()
    normals = np.stack(
        [vertex_normals(TriMesh(gt[f].double().numpy(), faces)) for f in range(len(indices))]
    )
    # Everything posed in the body frame (rotation only for directions).
    rot_t = rotation.transpose(-1, -2)
    d_pin_c = (x1 - canonical).numpy()
    d_pin_d = torch.einsum("bij,bnj->bni", rot_t, x3 - x2).numpy()
    residual = torch.einsum("bij,bnj->bni", rot_t, gt - x2).numpy()
    normals_body = torch.einsum("bij,bnj->bni", rot_t, torch.from_numpy(normals).float()).numpy()
    report: dict = {"frames": len(indices)}
    for name, index in truth.parts.items():
        idx = index.numpy()
        if idx.size == 0:
            continue
        n = normals_body[:, idx]
        r = _varying(residual[:, idx])
        d = _varying(d_pin_d[:, idx])
        # Normal components of the pose-varying parts, at each frame's true posed normal.
        r_n = (r * n).sum(-1)
        d_n = (d * n).sum(-1)
        denom = float((r_n**2).sum())
        report[name] = {
            "pin_c_rms_cm": _rms_cm(d_pin_c[:, idx]),
            "pin_c_varying_rms_cm": _rms_cm(_varying(d_pin_c[:, idx])),
            "pin_d_rms_cm": _rms_cm(d_pin_d[:, idx]),
            "pin_d_varying_rms_cm": _rms_cm(d),
            "residual_varying_rms_cm": _rms_cm(r),
            "residual_varying_normal_rms_cm": 100 * float(np.sqrt((r_n**2).mean())),
            "varying_normal_explained": 1 - float(((r_n - d_n) ** 2).sum()) / max(denom, 1e-12),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["train", "test-out"])
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/pin-pose-dependence.json")
    )
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    if dataset.correspondence is None or not dataset.correspondence.parts:
        raise SystemExit(f"{args.data} has no labelled ground-truth correspondences")
    results = []
    for run in args.runs:
        row: dict = {"run": str(run), "splits": {}}
        for split in args.splits:
            row["splits"][split] = report = check(run, dataset, split)
            for part in ("body", "skirt"):
                p = report.get(part)
                if p:
                    print(
                        f"{run} {split} {part}: PIN_c {p['pin_c_rms_cm']:.2f} cm (varying "
                        f"{p['pin_c_varying_rms_cm']:.2f}), PIN_d {p['pin_d_rms_cm']:.2f} cm (varying "
                        f"{p['pin_d_varying_rms_cm']:.2f}); pose-varying normal residual "
                        f"{p['residual_varying_normal_rms_cm']:.2f} cm, explained "
                        f"{p['varying_normal_explained']:.3f}",
                        flush=True,
                    )
        results.append(row)
    command = "python benchmarks/pin_pose_dependence.py --data DATA " + " ".join(
        str(r) for r in args.runs
    )
    write_json(
        args.out,
        {
            "command": command,
            "hardware": hardware(torch.device("cpu")),
            "dataset": str(args.data),
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()
