"""Collect ``invskin eval`` reports into one Markdown table (one row per run and split).

    python benchmarks/collect_results.py runs/*/*/eval/*/metrics.json > table.md
    python benchmarks/collect_results.py --first 6 runs/dress/*/eval/*/metrics.json

``--first N`` recomputes every summary from the first N frames of each split only (the per-frame
numbers are in the reports), so methods evaluated on different numbers of frames (``snarf``, which
re-extracts per frame, is slow) can be compared on the same frames; the 95th percentile of the
correspondence error cannot be recomputed from per-frame means and is left out then.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from invskin.evaluation.evaluate import METRICS, markdown_table


def first_frames(report: dict, count: int) -> dict:
    frames = report["per_frame"][:count]
    report = dict(report, frames=len(frames))
    report["summary"] = {key: float(np.mean([f[key] for f in frames])) for key in METRICS}
    if report["correspondence"] is not None:
        mean = float(np.mean([f["correspondence_mean_cm"] for f in frames]))
        report["correspondence"] = {"mean_cm": mean, "p95_cm": float("nan")}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--first", type=int, default=None)
    args = parser.parse_args()
    reports = [json.loads(p.read_text()) for p in args.reports]
    if args.first is not None:
        reports = [first_frames(r, args.first) for r in reports]
    for report in reports:
        report["method"] = f"{report['method']} ({Path(report['run']).parent.name})"
    reports.sort(key=lambda r: (r["dataset"], r["split"], r["method"]))
    print(markdown_table(reports), end="")


if __name__ == "__main__":
    main()
