"""One spline coupling step on CPU, one thread: the reference against the fast path.

Times :func:`invskin.nets.pin.rational_quadratic` (what ``model.repose`` runs, log-det included),
:func:`invskin.models.fast_repose.pytorch_spline` (the fast path's PyTorch spline) and the C kernel of
:mod:`invskin.native` (what ``invskin repose`` runs on CPU where it can be compiled) on the same
random parameters (16 bins, 16,384 points, 1 and 2 free coordinates), median of 30 calls each, and
their largest differences from the reference. Writes one JSON.

    python benchmarks/bench_spline_step.py [--out benchmarks/results/spline-step-cpu.json]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from bench_repose_fast import timed

from invskin import native
from invskin.bench import hardware, write_json
from invskin.models.fast_repose import pytorch_spline
from invskin.nets.pin import SPLINE_MIN_BIN, SPLINE_UNIT_SLOPE, rational_quadratic

BINS, ROWS, BOUND = 16, 16_384, 1.5


def median_ms(fn, calls: int = 30) -> float:
    return 1000 * statistics.median(timed(fn, calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spline-step-cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kernel = native.rq_spline_kernel()
    rows = {}
    for nfree in (1, 2):
        raw = 0.3 * torch.randn(nfree, 3 * BINS - 1, ROWS)
        x = (torch.rand(nfree, ROWS) * 2 - 1) * BOUND
        spline = pytorch_spline(BINS, BOUND, x)

        def reference(raw=raw, x=x):
            return rational_quadratic(x.T, raw.permute(2, 0, 1), BOUND)[0].T

        def fast(raw=raw, x=x, spline=spline):
            return spline(x, raw)

        out = torch.empty_like(x)

        def in_c(raw=raw, x=x, out=out):
            return kernel(x, raw, out, BOUND, SPLINE_MIN_BIN, SPLINE_UNIT_SLOPE)

        row = {
            "reference_ms": median_ms(reference),
            "fast_ms": median_ms(fast),
            "max_abs_difference_m": float((reference() - fast()).abs().max()),
        }
        if kernel is not None:
            row["native_ms"] = median_ms(in_c)
            row["native_max_abs_difference_m"] = float((reference() - in_c()).abs().max())
        rows[f"free_coordinates={nfree}"] = row
        print(nfree, rows[f"free_coordinates={nfree}"])
    write_json(
        args.out,
        {
            "benchmark": "one spline coupling step, reference vs fast path, one thread",
            "hardware": hardware(torch.device("cpu")),
            "native_kernel_unavailable": native.unavailable_reason(),
            "bins": BINS,
            "points": ROWS,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
