"""The training root finder on CPU, one thread: the C search against the PyTorch search.

On a batch of the training split (a preset's batch size), with a fresh model of the preset whose
skinning is fitted to the body prior (as training starts), times ``inverse_lbs(..., pre_blend=True)``
with ``native=True`` (:mod:`invskin.native`'s ``broyden.c``) and ``native=False`` (``broyden`` in
PyTorch), median of ``--repeats`` calls each, and compares them: valid flags that differ (each way),
root distances where both are valid, and the residual of the C-only roots recomputed with the PyTorch
grid lookup. Writes one JSON.

    python benchmarks/bench_root_finder.py --data DATA [--variant preset] \\
        [--out benchmarks/results/root-finder-cpu.json]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from ablation import variant_preset  # benchmarks/ablation.py, beside this script

from invskin.bench import hardware, median_seconds, write_json
from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.models.build import build_model
from invskin.solvers.inverse_skinning import inverse_lbs
from invskin.training.run import training_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--preset", default="cpu-quick")
    parser.add_argument("--variant", default="preset", help="a variant of benchmarks/ablation.py")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/root-finder-cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    preset = variant_preset(args.preset, args.variant, "ins", seed=0, steps=None)
    dataset = load_dataset(args.data)
    data = training_data(dataset.split("train"), SampleConfig(), progress=False)
    model = build_model(preset.model, dataset.skeleton, dataset.prior)
    model.fit_skinning_to_prior(preset.prior_fit_steps)
    generator = torch.Generator().manual_seed(0)
    train = preset.train
    cpu = torch.device("cpu")
    points, _, transforms = data.batch(generator, train.batch_frames, train.points_per_frame, cpu)
    field = model.weight_field()
    steps = model.config.broyden_steps

    def search(native: bool):
        return inverse_lbs(
            points, field, transforms, model.init_bones, steps, pre_blend=True, native=native
        )

    timings, results = {}, {}
    for name, native in (("c", True), ("pytorch", False)):
        results[name] = search(native)  # also the warm-up
        times = median_seconds(lambda n=native: search(n), args.repeats, cpu, warmup=0)
        timings[name] = statistics.median(times)
    c, plain = results["c"], results["pytorch"]
    both = c.valid & plain.valid
    distance = (c.points - plain.points).norm(dim=-1)[both]
    only_c = c.valid & ~plain.valid
    k = len(model.init_bones)
    frame = torch.arange(points.shape[0]).repeat_interleave(points.shape[1] * k)
    frame = frame.reshape(c.valid.shape)[only_c]
    roots = c.points[only_c]
    blended = field.pre_blend(transforms).lookup(roots, frame)
    target = points[:, :, None].expand(-1, -1, k, -1)[only_c]
    recomputed = ((blended[..., :3] @ roots[..., None])[..., 0] + blended[..., 3] - target).norm(
        dim=-1
    )
    result = {
        "benchmark": "training root finder, C vs PyTorch search, one thread",
        "command": f"python benchmarks/bench_root_finder.py --data {args.data} "
        f"--variant {args.variant}",
        "hardware": hardware(cpu),
        "searches": int(c.valid.numel()),
        "frames": int(points.shape[0]),
        "points_per_frame": int(points.shape[1]),
        "broyden_steps": steps,
        "median_seconds": timings,
        "speedup": timings["pytorch"] / timings["c"],
        "valid_fraction": {
            "c": float(c.valid.float().mean()),
            "pytorch": float(plain.valid.float().mean()),
        },
        "valid_only_in_c": int(only_c.sum()),
        "valid_only_in_pytorch": int((plain.valid & ~c.valid).sum()),
        "root_distance_m_both_valid": {
            "median": float(distance.median()),
            "max": float(distance.max()),
        },
        "c_only_roots_residual_by_pytorch_lookup_m_max": float(recomputed.max())
        if recomputed.numel()
        else None,
    }
    write_json(args.out, result)
    print(
        f"C {timings['c'] * 1000:.1f} ms, PyTorch {timings['pytorch'] * 1000:.1f} ms "
        f"({result['speedup']:.1f}x); valid only in C {result['valid_only_in_c']}, only in PyTorch "
        f"{result['valid_only_in_pytorch']} of {result['searches']}; roots apart by at most "
        f"{result['root_distance_m_both_valid']['max']:.1e} m -> {args.out}"
    )


if __name__ == "__main__":
    main()
