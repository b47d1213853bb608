"""Training throughput: posed samples per second per core, reference path against fast path.

One run measures both query paths of :class:`invskin.models.animatable.AnimatableModel` on the same
batches (same model, same weights, interleaved so that machine load affects both alike): a full
training step (``model.losses``, weighted sum, backward, Adam step on a copy of the model per path)
at a preset's batch size; the reference step uses per-tensor Adam (the trainer before the fast
path), the fast step multi-tensor Adam (the trainer now). It also checks that the two paths give
the same losses on the first batch.

    python benchmarks/bench_train_step.py --data DATA [--method ins] [--preset cpu-quick]
        [--variant old] [--steps 20]

Writes ``benchmarks/results/train-throughput.json``: median step seconds, posed samples per second and
per core for each path, their ratio, and the losses of both paths on the first batch.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch
from ablation import variant_preset  # benchmarks/ablation.py, beside this script

from invskin.bench import cpu_name
from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.fileio import write_bytes_atomic
from invskin.models.build import build_model
from invskin.training.run import training_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--method", default="ins")
    parser.add_argument("--preset", default="cpu-quick")
    parser.add_argument(
        "--variant",
        default="old",
        help="a variant of benchmarks/ablation.py; 'old' is the first cpu-quick configuration "
        "(docs/experiments.md); 'preset' is the current one",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true", help="print a torch profiler table")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "train-throughput.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    preset = variant_preset(args.preset, args.variant, args.method, seed=0, steps=None)
    dataset = load_dataset(args.data)
    data = training_data(dataset.split("train"), SampleConfig(), progress=False)
    base = build_model(preset.model, dataset.skeleton, dataset.prior)
    base.fit_skinning_to_prior(preset.prior_fit_steps)
    train = preset.train
    weights = train.loss_weights
    paths = {"reference": False, "fast": True}
    models = {name: copy.deepcopy(base) for name in paths}
    # The reference step is the step before the fast path (per-tensor Adam, as the trainer had);
    # the fast step is what the trainer does now (multi-tensor Adam).
    optimisers = {
        name: torch.optim.Adam(models[name].parameters(), lr=train.lr, foreach=fast)
        for name, fast in paths.items()
    }
    generator = torch.Generator().manual_seed(0)
    device = torch.device("cpu")

    def step(name: str, batch, number: int) -> dict[str, float]:
        model = models[name]
        model.fast_query = paths[name]
        losses = model.losses(*batch, number)
        total = sum(weights.weight(k, number) * v for k, v in losses.items())
        optimisers[name].zero_grad(set_to_none=True)
        total.backward()
        optimisers[name].step()
        return {k: float(v.detach()) for k, v in losses.items()}

    # Same batch, same weights: the two paths must give the same losses.
    first = data.batch(generator, train.batch_frames, train.points_per_frame, device)
    agree = {}
    for name in paths:
        torch.manual_seed(1)
        agree[name] = step(name, first, 0)

    times: dict[str, list[float]] = {name: [] for name in paths}
    for number in range(args.warmup + args.steps):
        batch = data.batch(generator, train.batch_frames, train.points_per_frame, device)
        for name in paths:
            torch.manual_seed(number)
            tic = time.perf_counter()
            step(name, batch, number)
            if number >= args.warmup:
                times[name].append(time.perf_counter() - tic)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name in paths:
            batch = data.batch(generator, train.batch_frames, train.points_per_frame, device)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(name, batch, 0)
            print(f"--- {name}")
            print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))

    samples = train.batch_frames * train.points_per_frame
    result = {
        "command": "python benchmarks/bench_train_step.py "
        f"--data {args.data} --method {args.method} --preset {args.preset} "
        f"--variant {args.variant} --steps {args.steps}",
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "load_average": os.getloadavg(),
        },
        "batch": {"frames": train.batch_frames, "points_per_frame": train.points_per_frame},
        "paths": {},
        "losses_first_batch": agree,
    }
    for name, values in times.items():
        median = statistics.median(values)
        result["paths"][name] = {
            "median_step_seconds": median,
            "posed_samples_per_second": samples / median,
            "posed_samples_per_second_per_core": samples / median / args.threads,
        }
    result["speedup"] = (
        result["paths"]["fast"]["posed_samples_per_second"]
        / result["paths"]["reference"]["posed_samples_per_second"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out, (json.dumps(result, indent=2) + "\n").encode())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
