"""Where the fast reposing path spends its time: torch's profiler on one thread, one worker.

The network is ``bench_repose_fast.py``'s fresh ``cpu-quick`` ins network for the dataset's skeleton
(parameters perturbed), on ``--vertices`` points around the body prior and the first ``--frames``
``test-out`` poses, in chunks of ``--chunk-rows``. Prints the per-operator table (self CPU time),
and with ``--per-coupling`` the wall time of each coupling of PIN_c and PIN_d (its pose-independent
part and its per-frame part) and of the skinning grid lookup, per frame, from timers wrapped around
those methods in this process only.

    python benchmarks/profile_repose_fast.py --data DATA [--vertices 32768] [--frames 8] \\
        [--pin-coupling spline] [--per-coupling]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_repose_fast import fresh_model

from invskin.data.format import load_dataset
from invskin.models import fast_repose
from invskin.models.fast_repose import DEFAULT_CHUNK_ROWS, FastReposer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--vertices", type=int, default=32_768)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--pin-coupling", choices=("affine", "spline"), default=None)
    parser.add_argument("--per-coupling", action="store_true", help="also time each coupling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, vertices = fresh_model(args.data, args.vertices, 0, args.pin_coupling)
    dataset = load_dataset(args.data)
    poses = dataset.transforms[list(dataset.splits["test-out"])[: args.frames]].float()
    fast = FastReposer(model, chunk_rows=args.chunk_rows, workers=1)
    fast.repose(vertices, poses)  # warm-up
    tic = time.perf_counter()
    fast.repose(vertices, poses)
    print(f"{(time.perf_counter() - tic) / args.frames:.4f} s per frame, one thread")
    with torch.profiler.profile() as prof:
        fast.repose(vertices, poses)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if args.per_coupling:
        per_coupling(fast, vertices, poses)


def per_coupling(fast: FastReposer, vertices: torch.Tensor, poses: torch.Tensor) -> None:
    """Wall time per frame of each coupling's two parts and of the grid lookup (one worker)."""
    labels = {}
    for pin_name, pin in (("PIN_c", fast.pin_c), ("PIN_d", fast.pin_d)):
        for i, coupling in enumerate(pin.couplings if pin is not None else []):
            free = "".join("xyz"[a] for a in coupling.free)
            labels[id(coupling)] = f"{pin_name} coupling {i} (free {free})"
    totals: dict[str, float] = defaultdict(float)
    originals = {name: getattr(fast_repose._FastCoupling, name) for name in ("front_", "back_")}

    def wrap(name):
        original = originals[name]

        def timed(self, *args, **kwargs):
            tic = time.perf_counter()
            result = original(self, *args, **kwargs)
            totals[f"{labels[id(self)]}: {name.rstrip('_')}"] += time.perf_counter() - tic
            return result

        return timed

    lookup = FastReposer._blended_transforms

    def timed_lookup(self, *args):
        tic = time.perf_counter()
        result = lookup(self, *args)
        totals["skinning: grid lookup"] += time.perf_counter() - tic
        return result

    try:
        for name in originals:
            setattr(fast_repose._FastCoupling, name, wrap(name))
        FastReposer._blended_transforms = timed_lookup
        tic = time.perf_counter()
        fast.repose(vertices, poses)
        whole = time.perf_counter() - tic
    finally:
        for name, original in originals.items():
            setattr(fast_repose._FastCoupling, name, original)
        FastReposer._blended_transforms = lookup
    frames = poses.shape[0]
    print(f"per frame, {vertices.shape[0]} vertices, one worker (timers included):")
    for label, seconds in totals.items():
        print(f"  {label:40s} {1000 * seconds / frames:8.2f} ms  {100 * seconds / whole:5.1f}%")
    rest = whole - sum(totals.values())
    print(
        f"  {'the rest (LBS blend, copies, Python)':40s} {1000 * rest / frames:8.2f} ms  "
        f"{100 * rest / whole:5.1f}%"
    )


if __name__ == "__main__":
    main()
