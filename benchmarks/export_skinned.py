"""Skinned glTF export of a trained run against the model's output and the per-frame morph GLB.

For one run and one pose sequence (a dataset split, default ``test-out``), writes the skinned GLB
(`invskin export`, 8 correctives) and the per-frame morph GLB of the same frames, and measures:

- vertex error of the skinned file (read back, glTF skinning formula) against the model's own
  reposed vertices: mean and max over all vertices and frames, with and without the correctives;
- file sizes; the Khronos validator's error and warning counts (if installed);
- a screenshot of the skinned file played by three.js in headless Chromium (if installed).

    .venv/bin/python benchmarks/export_skinned.py --run RUN --data DATA --split test-out \
        --out benchmarks/results/export --screenshot docs/img/export-skinned.png

Writes ``OUT/export.json`` and prints a markdown table row.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from invskin.bench import cpu_name
from invskin.export.browser import (
    find_chromium,
    find_three,
    find_validator,
    screenshot_glb,
    validate_glb,
)
from invskin.runs.export import export_run
from invskin.runs.poses import read_poses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test-out")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--time", type=float, default=0.3, help="animation time of the screenshot")
    args = parser.parse_args()
    transforms, _ = read_poses(args.data, args.split)
    if args.max_frames:
        transforms = transforms[: args.max_frames]
    args.out.mkdir(parents=True, exist_ok=True)
    skinned = export_run(args.run, transforms, args.out / "skinned.glb", "skinned")
    morph = export_run(args.run, transforms, args.out / "morph.glb", "morph")
    result = {
        "run": str(args.run),
        "data": str(args.data),
        "split": args.split,
        "frames": skinned.frames,
        "vertices": skinned.vertices,
        "correctives": skinned.targets,
        "error_mean_mm": skinned.error_mean_m * 1000,
        "error_max_mm": skinned.error_max_m * 1000,
        "error_mean_plain_mm": skinned.error_mean_plain_m * 1000,
        "error_max_plain_mm": skinned.error_max_plain_m * 1000,
        "skinned_bytes": skinned.bytes,
        "morph_bytes": morph.bytes,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
    }
    if find_validator() is not None:
        report = validate_glb(skinned.path)["issues"]
        result |= {
            "validator_errors": report["numErrors"],
            "validator_warnings": report["numWarnings"],
        }
    if args.screenshot is not None and find_chromium() and find_three():
        shot = screenshot_glb(skinned.path, args.screenshot, time=args.time, size=480)
        result["screenshot"] = str(args.screenshot)
        result["page"] = shot.title
    (args.out / "export.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(
        f"| {result['frames']} | {result['vertices']} | {result['correctives']} | "
        f"{result['error_mean_mm']:.2f} / {result['error_max_mm']:.2f} | "
        f"{result['error_mean_plain_mm']:.2f} / {result['error_max_plain_mm']:.2f} | "
        f"{result['skinned_bytes'] / 1e6:.2f} MB | {result['morph_bytes'] / 1e6:.2f} MB |"
    )


if __name__ == "__main__":
    main()
