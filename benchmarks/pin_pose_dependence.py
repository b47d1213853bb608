"""How much of what a trained ``ins`` run's PINs do depends on the pose, and whether it is what skinning misses.

For each run, the ground-truth canonical surface of its synthetic dataset is pushed through the run's
chain in every frame of a split: ``x1 = PIN_c(x0)``, ``x2 = LBS(x1)``, ``x3 = PIN_d(x2)``, and through
the run's skinning alone, ``s = LBS(x0)`` (the PINs left out). Per labelled part (body, garment, skirt),
over vertices and frames, posed quantities in the PINs' body frame:

- ``pin_c_rms_cm``, ``pin_d_rms_cm``: RMS displacement of each PIN;
- ``pin_c_varying_rms_cm``, ``pin_d_varying_rms_cm``: RMS of the same displacement minus its mean over the
  split's frames, per vertex: the part that changes with the pose;
- ``lbs_varying_rms_cm``, ``ins_varying_rms_cm``: RMS of the error ``x_true - s`` (skinning alone) and
  ``x_true - x3`` (the whole chain) minus its per-vertex mean over frames: the pose-dependent error;
  ``*_varying_normal_rms_cm``: its component along the true posed surface's normal (the only direction
  occupancy sees);
- ``varying_normal_explained``: ``1 - sum(ins^2) / sum(lbs^2)`` of those normal components: the share of the
  pose-dependent error skinning leaves across the surface that the PINs remove (0: none, 1: all,
  negative: they add some); ``varying_explained`` the same for the whole 3D error.

The ground-truth canonical surface is not the run's own (PIN_c at rest need not be the identity); the
frame-mean is removed from every quantity called ``varying``, so a fixed offset does not count.

    python benchmarks/pin_pose_dependence.py --data DATA RUN [RUN ...] [--splits train test-out] [--out JSON]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from deformation_check import report_runs

from invskin.geometry import lbs
from invskin.mesh.io import TriMesh
from invskin.mesh.sampling import vertex_normals

FRAMES_PER_CALL = 8  # frames pushed through the chain together (bounds the PINs' intermediates)


@torch.no_grad()
def chain(model, canonical: torch.Tensor, transforms: torch.Tensor):
    """``x1, x2, x3`` of the chain and ``s`` (skinning alone) for every frame, and the body frame's
    rotation."""
    field = model.weight_field()
    b = transforms.shape[0]
    x0 = canonical.expand(b, -1, -1)
    x1 = model.pin_c(x0, model.pin_pose(transforms)) if model.pin_c is not None else x0
    x2 = lbs(x1, field(x1), transforms)
    x3 = model.apply_pin_d(x2, transforms, inverse=False) if model.pin_d is not None else x2
    skinned = lbs(x0, field(x0), transforms)
    rotation = model.body_frame(transforms)[..., :3, :3]
    return x1, x2, x3, skinned, rotation


def _varying(values: np.ndarray) -> np.ndarray:
    """Per vertex, minus the mean over frames (axis 0)."""
    return values - values.mean(axis=0, keepdims=True)


def _rms_cm(values: np.ndarray) -> float:
    return 100 * float(np.sqrt((values**2).sum(-1).mean())) if values.size else float("nan")


def check_model(model, dataset, split: str) -> dict:
    """The report of one model with PINs on one split (see the module's docstring)."""
    truth = dataset.correspondence
    indices = list(dataset.splits[split])
    transforms = dataset.transforms[indices].float()
    canonical = truth.canonical_vertices.float()
    parts = [chain(model, canonical, t) for t in transforms.split(FRAMES_PER_CALL)]
    x1, x2, x3, skinned, rotation = (torch.cat(values) for values in zip(*parts))
    gt = truth.posed_vertices[indices].float()
    faces = truth.faces.long().numpy()
    normals = np.stack(
        [vertex_normals(TriMesh(gt[f].double().numpy(), faces)) for f in range(len(indices))]
    )
    rot_t = rotation.transpose(-1, -2)  # world to body frame, for directions

    def body(vectors: torch.Tensor) -> np.ndarray:
        return torch.einsum("bij,bnj->bni", rot_t, vectors).numpy()

    d_pin_c = (x1 - canonical).numpy()
    d_pin_d = body(x3 - x2)
    error_lbs, error_ins = body(gt - skinned), body(gt - x3)
    normals_body = body(torch.from_numpy(normals).float())
    report: dict = {"frames": len(indices)}
    for name, index in truth.parts.items():
        idx = index.numpy()
        if idx.size == 0:
            continue
        n = normals_body[:, idx]
        lbs_v, ins_v = _varying(error_lbs[:, idx]), _varying(error_ins[:, idx])
        # Normal components of the pose-varying errors, at each frame's true posed normal.
        lbs_n, ins_n = (lbs_v * n).sum(-1), (ins_v * n).sum(-1)
        report[name] = {
            "pin_c_rms_cm": _rms_cm(d_pin_c[:, idx]),
            "pin_c_varying_rms_cm": _rms_cm(_varying(d_pin_c[:, idx])),
            "pin_d_rms_cm": _rms_cm(d_pin_d[:, idx]),
            "pin_d_varying_rms_cm": _rms_cm(_varying(d_pin_d[:, idx])),
            "lbs_varying_rms_cm": _rms_cm(lbs_v),
            "ins_varying_rms_cm": _rms_cm(ins_v),
            "lbs_varying_normal_rms_cm": 100 * float(np.sqrt((lbs_n**2).mean())),
            "ins_varying_normal_rms_cm": 100 * float(np.sqrt((ins_n**2).mean())),
            "varying_normal_explained": 1
            - float((ins_n**2).sum()) / max(float((lbs_n**2).sum()), 1e-12),
            "varying_explained": 1 - float((ins_v**2).sum()) / max(float((lbs_v**2).sum()), 1e-12),
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

    def describe(run: Path, split: str, report: dict) -> list[str]:
        return [
            f"{run} {split} {part}: PIN_c {p['pin_c_rms_cm']:.2f} cm (varying "
            f"{p['pin_c_varying_rms_cm']:.2f}), PIN_d {p['pin_d_rms_cm']:.2f} cm (varying "
            f"{p['pin_d_varying_rms_cm']:.2f}); pose-varying error across the surface: "
            f"skinning {p['lbs_varying_normal_rms_cm']:.2f} cm, chain "
            f"{p['ins_varying_normal_rms_cm']:.2f} cm (explained "
            f"{p['varying_normal_explained']:.3f}; 3D {p['varying_explained']:.3f})"
            for part in ("body", "skirt")
            if (p := report.get(part))
        ]

    report_runs("pin_pose_dependence.py", args, check_model, describe)


if __name__ == "__main__":
    main()
