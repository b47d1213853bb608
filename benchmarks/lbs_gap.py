"""How far the synthetic outfits are from linear blend skinning (the "LBS gap").

For each outfit, fit the best per-vertex LBS weights (non-negative, summing to 1) to the
correspondence ground truth of the ``train`` frames, then measure the vertex error of those weights
on ``test-within`` and ``test-out`` (mean and 95th percentile over vertices and frames, in cm). The
body model's own weights, carried to each surface vertex from the nearest canonical body vertex
(the skinning-weight prior), are measured the same way for comparison. A large gap for ``dress``
and a small one for ``fitted`` means the dress carries deformation no LBS can express.

Errors are over all vertices of the ground-truth surface (``all``: the exposed body included,
which is exactly LBS), over its clothing vertices (``clothing``) and per clothing part
(``garment``: the fitted garment or the dress's bodice; ``skirt``). The fit is exact: per vertex it is a convex quadratic program over the simplex,
``min_w ||A w - y||^2`` with ``A`` (3F x J) the vertex moved by every bone in every train frame.
Its normal equations ``G = A^T A`` (J x J) and ``c = A^T y`` are accumulated once; then
accelerated projected gradient (FISTA, step ``1 / (2 lambda_max(G))``, Euclidean projection onto
the simplex) runs on all vertices at once.

    python benchmarks/lbs_gap.py [--preset default] [--data-root data] [--out benchmarks/results/lbs_gap.json]

Datasets are read from ``<data-root>/synth-<outfit>-<preset>`` and generated there if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from scipy.spatial import cKDTree

from invskin.data import Dataset, load_dataset
from invskin.data.synth.generate import generate_dataset
from invskin.geometry import lbs


def project_simplex(w: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row (..., J) onto the probability simplex."""
    u, _ = torch.sort(w, dim=-1, descending=True)
    css = u.cumsum(-1) - 1.0
    k = torch.arange(1, w.shape[-1] + 1, dtype=w.dtype, device=w.device)
    cond = (u - css / k) > 0
    rho = (cond * k).amax(-1, keepdim=True)  # number of positive entries
    theta = css.gather(-1, rho.long() - 1) / rho
    return (w - theta).clamp(min=0)


def normal_equations(
    canonical: torch.Tensor, posed: torch.Tensor, transforms: torch.Tensor, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """``G`` (V, J, J) and ``c`` (V, J) of ``min_w sum_f ||sum_b w_b T_fb x - y_f||^2``."""
    gram, rhs = [], []
    rot, trans = transforms[..., :3, :3], transforms[..., :3, 3]
    for lo in range(0, canonical.shape[0], chunk):
        x = canonical[lo : lo + chunk]
        moved = torch.einsum("fjab,nb->fnja", rot, x) + trans[:, None]  # (F, n, J, 3)
        gram.append(torch.einsum("fnja,fnka->njk", moved, moved))
        rhs.append(torch.einsum("fnja,fna->nj", moved, posed[:, lo : lo + chunk]))
    return torch.cat(gram), torch.cat(rhs)


def fit_weights(
    gram: torch.Tensor, rhs: torch.Tensor, init: torch.Tensor, steps: int
) -> torch.Tensor:
    """FISTA on ``w^T G w - 2 c^T w`` over the simplex, per vertex."""
    lipschitz = 2.0 * torch.linalg.eigvalsh(gram)[:, -1:].clamp(min=1e-12)
    w = project_simplex(init)
    z, t = w.clone(), 1.0
    for _ in range(steps):
        grad = 2.0 * (torch.einsum("njk,nk->nj", gram, z) - rhs)
        w_next = project_simplex(z - grad / lipschitz)
        t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        z = w_next + ((t - 1.0) / t_next) * (w_next - w)
        w, t = w_next, t_next
    return w


def skin(canonical: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """(V, 3) canonical vertices with (V, J) weights, skinned in each of (F, J, 4, 4) poses: (F, V, 3)."""
    frames = transforms.shape[0]
    return lbs(canonical.expand(frames, -1, -1), weights.expand(frames, -1, -1), transforms)


def lbs_error(
    canonical: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor, posed: torch.Tensor
) -> torch.Tensor:
    """Per-frame, per-vertex distance (F, V) between skinned canonical vertices and the truth."""
    return (skin(canonical, weights, transforms) - posed).norm(dim=-1)


def summary(error: torch.Tensor) -> dict[str, float]:
    cm = error.flatten().double() * 100.0
    return {
        "mean_cm": float(cm.mean()),
        "p95_cm": float(torch.quantile(cm, 0.95)),
        "max_cm": float(cm.max()),
    }


def split_arrays(dataset: Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.tensor(dataset.splits[split], dtype=torch.long)
    truth = dataset.correspondence
    return dataset.transforms[idx].double(), truth.posed_vertices[idx].double()


def nearest_prior_weights(dataset: Dataset, canonical: torch.Tensor) -> torch.Tensor:
    """(V, J) float64: the weights of the body-prior vertex nearest to each canonical vertex."""
    prior = dataset.prior
    nearest = cKDTree(prior.vertices.numpy()).query(canonical.numpy())[1]
    return prior.weights[torch.from_numpy(nearest)].double()


def best_weights(
    dataset: Dataset, canonical: torch.Tensor, init: torch.Tensor, steps: int
) -> torch.Tensor:
    """The best per-vertex LBS weights (V, J) for the ground truth of the ``train`` frames."""
    train_t, train_y = split_arrays(dataset, "train")
    gram, rhs = normal_equations(canonical, train_y, train_t)
    return fit_weights(gram, rhs, init, steps)


def gap(dataset: Dataset, steps: int) -> dict:
    truth = dataset.correspondence
    if truth is None or dataset.prior is None:
        raise ValueError(f"{dataset.root} has no correspondence ground truth or body prior")
    canonical = truth.canonical_vertices.double()
    prior_weights = nearest_prior_weights(dataset, canonical)
    start = time.perf_counter()
    fitted = best_weights(dataset, canonical, prior_weights, steps)
    seconds = time.perf_counter() - start
    result = {
        "frames": {name: len(ids) for name, ids in dataset.splits.items()},
        "fit_seconds": round(seconds, 2),
    }
    # Vertices of the ground-truth surface: all, and per labelled part (docs/data-format.md).
    parts = truth.parts
    groups = {"all": torch.arange(canonical.shape[0])}
    if parts:
        garment, skirt = parts["garment"], parts["skirt"]  # old datasets lack "clothing"
        groups["clothing"] = parts.get("clothing", torch.cat([garment, skirt]))
        groups |= {"garment": garment, "skirt": skirt}
    groups = {name: g for name, g in groups.items() if len(g) > 0}
    result["vertices"] = {name: len(g) for name, g in groups.items()}
    for split in ("train", "test-within", "test-out"):
        transforms, posed = split_arrays(dataset, split)
        if len(transforms) == 0:
            continue
        result[split] = {}
        for name, weights in (("best_lbs", fitted), ("body_prior", prior_weights)):
            error = lbs_error(canonical, weights, transforms, posed)
            result[split][name] = {group: summary(error[:, g]) for group, g in groups.items()}
    return result


def hardware() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["small", "default"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--steps", type=int, default=1500, help="FISTA iterations")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lbs_gap.json"))
    args = parser.parse_args()
    report = {"preset": args.preset, "seed": args.seed, "hardware": hardware(), "outfits": {}}
    for outfit in ("dress", "fitted"):
        path = args.data_root / f"synth-{outfit}-{args.preset}"
        try:
            dataset = load_dataset(path)
        except (FileNotFoundError, ValueError):
            print(f"generating {path}")
            dataset = generate_dataset(path, outfit=outfit, preset=args.preset, seed=args.seed)
        report["outfits"][outfit] = result = gap(dataset, args.steps)
        for split in ("test-within", "test-out"):
            for name, groups in result.get(split, {}).items():
                for group, r in groups.items():
                    print(
                        f"{outfit:7s} {split:11s} {name:10s} {group:8s} "
                        f"mean {r['mean_cm']:.2f} cm, p95 {r['p95_cm']:.2f} cm"
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
