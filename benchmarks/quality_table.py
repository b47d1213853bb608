"""Collect ``invskin eval`` reports of many runs and seeds into the quality table and its JSON.

    python benchmarks/quality_table.py --outfit dress RUNS/*/*/eval/*/metrics.json \
        [--json benchmarks/results/quality-cpu.json] > table.md

Runs are expected at ``RUNS/VARIANT/METHOD-sSEED`` (as ``benchmarks/ablation.py`` writes them).
Every report becomes one JSON row (outfit, variant, method, ``signal`` (the run's training signal:
``occupancy``, ``correspondence`` or ``colour``), ``no_loss`` (the losses the run switched off),
split, seed, frames, ``summary``, ``correspondence``, the ``per_part`` block and, where the data
has colour truth, the ``colour`` block (8-bit levels)); rows of an existing JSON file for other outfits
are kept. The Markdown table has one line per (variant, method, split): the mean over seeds and,
with several seeds, the spread (sample standard deviation) after ``±``. The stretch column is
``n/a`` for reports written before stretch was measured against the canonical pose.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from invskin.fileio import write_bytes_atomic

COLUMNS = (
    ("IoU bbox", lambda r: r["summary"]["iou_bbox"], "{:.4f}"),
    ("IoU surface", lambda r: r["summary"]["iou_surface"], "{:.4f}"),
    ("Chamfer cm", lambda r: r["summary"]["chamfer_cm"], "{:.3f}"),
    ("NC", lambda r: r["summary"]["normal_consistency"], "{:.4f}"),
    ("corr. mean", lambda r: (r.get("correspondence") or {}).get("mean_cm"), "{:.2f}"),
    ("corr. p95", lambda r: (r.get("correspondence") or {}).get("p95_cm"), "{:.2f}"),
    ("skirt corr. mean", lambda r: _part(r, "skirt", "correspondence_mean_cm"), "{:.2f}"),
    ("skirt corr. p95", lambda r: _part(r, "skirt", "correspondence_p95_cm"), "{:.2f}"),
    ("skirt Chamfer", lambda r: _part(r, "skirt", "chamfer_cm"), "{:.3f}"),
    ("skirt stretch p99", lambda r: _stretch(r, "skirt"), "{:.2f}"),
    ("body corr. mean", lambda r: _part(r, "body", "correspondence_mean_cm"), "{:.2f}"),
    ("colour err.", lambda r: (r.get("colour") or {}).get("mean"), "{:.1f}"),
    (
        "skirt colour err.",
        lambda r: ((r.get("colour") or {}).get("per_part") or {}).get("skirt"),
        "{:.1f}",
    ),
)


def _part(report: dict, part: str, key: str) -> float | None:
    block = report.get("per_part") or {}
    block = block.get("parts", block)
    return (block.get(part) or {}).get(key)


def _stretch(report: dict, part: str) -> float | None:
    """The part's stretch p99, only from reports that measure stretch against the canonical pose
    (they also report ``canonical_stretch_p99``); older reports divided by the posed distance alone."""
    if _part(report, part, "canonical_stretch_p99") is None:
        return None
    return _part(report, part, "stretch_p99")


def _state(run: Path) -> dict:
    state = run / "checkpoint" / "state.json"
    return json.loads(state.read_text()) if state.exists() else {}


def signal_of(run: Path) -> str:
    """The run's training signal (its checkpoint's ``state.json``; runs that predate the field
    trained on occupancy alone)."""
    return _state(run).get("signal", "occupancy")


def row_of(path: Path, outfit: str) -> dict:
    report = json.loads(path.read_text())
    run = path.parents[2]
    match = re.fullmatch(r"(.+)-s(\d+)", run.name)
    method, seed = (match.group(1), int(match.group(2))) if match else (run.name, 0)
    return {
        "outfit": outfit,
        "variant": run.parent.name,
        "method": method,
        "signal": signal_of(run),
        "split": report["split"],
        "seed": seed,
        "frames": report["frames"],
        "summary": report["summary"],
        "correspondence": report.get("correspondence"),
        "per_part": report.get("per_part"),
        "colour": report.get("colour"),
        "no_loss": _state(run).get("no_loss", []),
        "run": f"{run.parent.name}/{run.name}",  # VARIANT/METHOD-sSEED, not this machine's path
    }


def cell(values: list[float | None], fmt: str) -> str:
    numbers = [v for v in values if v is not None]
    if not numbers:
        return "n/a"
    text = fmt.format(statistics.mean(numbers))
    if len(numbers) > 1:
        text += " ± " + fmt.format(statistics.stdev(numbers))
    return text


def markdown(rows: list[dict]) -> str:
    groups: dict[tuple[str, str, str, str, str], list[dict]] = {}
    for row in rows:
        signal = row.get("signal", "occupancy")
        key = (row["outfit"], row["split"], row["variant"], signal, row["method"])
        groups.setdefault(key, []).append(row)
    head = ["outfit", "split", "variant", "signal", "method", "seeds", "frames"]
    head += [c[0] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (outfit, split, variant, signal, method), group in sorted(groups.items()):
        cells = [outfit, split, variant, signal, method, str(len(group)), str(group[0]["frames"])]
        cells += [cell([get(r) for r in group], fmt) for _, get, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--outfit", required=True)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the JSON's rows of this outfit, replacing only those of the same runs",
    )
    args = parser.parse_args()
    rows = [row_of(path, args.outfit) for path in args.reports]
    if args.json is not None:
        kept = []
        if args.json.exists():
            new = {(r["run"], r["split"]) for r in rows}
            kept = [
                {"signal": "occupancy", **r}
                for r in json.loads(args.json.read_text())
                if r["outfit"] != args.outfit or (args.keep and (r["run"], r["split"]) not in new)
            ]
        payload = json.dumps(kept + rows, indent=1) + "\n"
        write_bytes_atomic(args.json, payload.encode())
    print(markdown(rows), end="")


if __name__ == "__main__":
    main()
