"""Where the fast reposing path spends its time: torch's profiler on one thread, one worker.

The network is ``bench_repose_fast.py``'s fresh ``cpu-quick`` ins network for the dataset's skeleton
(parameters perturbed), on ``--vertices`` points around the body prior and the first ``--frames``
``test-out`` poses, in chunks of ``--chunk-rows``. Prints the per-operator table (self CPU time).

    python benchmarks/profile_repose_fast.py --data DATA [--vertices 32768] [--frames 8] \\
        [--pin-coupling spline]
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


if __name__ == "__main__":
    main()
