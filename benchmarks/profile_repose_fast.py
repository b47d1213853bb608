"""Where the fast reposing path spends its time: torch's profiler on one thread, one worker.

The network is ``bench_repose_fast.py``'s fresh ``cpu-quick`` ins network for the dataset's skeleton
(parameters perturbed), on ``--vertices`` points around the body prior and the first ``--frames``
``test-out`` poses, in chunks of ``--chunk-rows``. Prints the per-operator table (self CPU time),
and with ``--per-coupling`` the wall time of each coupling of PIN_c and PIN_d (its pose-independent
part and its per-frame part) and of the skinning grid lookup, per frame: the named profiler ranges
the fast path opens (:mod:`invskin.models.fast_repose`).

    python benchmarks/profile_repose_fast.py --data DATA [--vertices 32768] [--frames 8] \\
        [--pin-coupling spline] [--per-coupling]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_repose_fast import fresh_model

from invskin.data.format import load_dataset
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
        per_coupling(prof, args.frames)


def per_coupling(prof: torch.profiler.profile, frames: int) -> None:
    """Wall time per frame of each coupling and of the grid lookup: the named ranges
    :class:`FastReposer` opens under the profiler (one worker, so they add up)."""
    ranges = {
        event.key: event.cpu_time_total / 1e3  # microseconds to milliseconds
        for event in prof.key_averages()
        if event.key.startswith(("PIN_c coupling", "PIN_d coupling", "skinning grid lookup"))
    }
    print("per frame, one worker, profiler on:")
    for label in sorted(ranges):
        print(f"  {label:40s} {ranges[label] / frames:8.2f} ms")


if __name__ == "__main__":
    main()
