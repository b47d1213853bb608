"""Collect ``invskin eval`` reports into one Markdown table (one row per run and split).

python benchmarks/collect_results.py runs/*/*/eval/*/metrics.json > table.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from invskin.evaluation.evaluate import markdown_table


def main(paths: list[str]) -> None:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    for report, path in zip(reports, paths):
        report["method"] = f"{report['method']} ({Path(report['dataset']).name})"
        report.setdefault("source", path)
    reports.sort(key=lambda r: (r["dataset"], r["split"], r["method"]))
    print(markdown_table(reports), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
