"""Renders of coloured avatars beside the scans they were learned from.

    python benchmarks/colour_figure.py --data DATA --split test-out \
        --run "ins, colour loss=RUNS/colour/ins-s0" --run "ins, no colour loss=RUNS/colour-off/ins-s0" \
        --frames 3 --out docs/img/colour-avatar.png

For each run: its canonical mesh reposed (``invskin.runs.pipeline.repose_run``, what ``invskin
repose`` does) to the split's frames, painted with the
canonical mesh's own vertex colours (``canonical.ply``, which ``invskin extract`` or ``invskin
eval`` paints from a run's colour field); the first row is the split's raw scans with their colours
(as scanned: lighting included), labelled with the frame; ``--frames`` frames are picked evenly inside the split; one
orthographic camera per view (front, then side) frames every mesh. Writes one PNG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from invskin.data import load_dataset
from invskin.export.figures import view_camera
from invskin.mesh.io import load_mesh
from invskin.mesh.render import render_mesh, save_png, tile_images
from invskin.runs.pipeline import repose_run


def parse_run(text: str) -> tuple[str, Path]:
    label, _, path = text.rpartition("=")
    if not label:
        raise argparse.ArgumentTypeError(f"--run takes LABEL=RUN_FOLDER, got {text!r}")
    return label, Path(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test-out")
    parser.add_argument("--run", type=parse_run, action="append", required=True)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--tile", type=int, nargs=2, default=(200, 300))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    indices = dataset.splits[args.split]
    picks = np.linspace(0, len(indices) - 1, args.frames + 2).round().astype(int)[1:-1]
    names = [dataset.frame_ids[indices[k]] for k in picks]
    rows = {"scan": ([dataset.scan(indices[k]) for k in picks], None)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, run in args.run:
            canonical = load_mesh(run / "canonical.ply")
            if canonical.colors is None:
                sys.exit(f"{run}/canonical.ply has no colours: train with --signal colour")
            out = Path(tmp) / label.replace(" ", "_").replace(",", "")
            split = dataset.split(args.split)
            repose_run(run, split.transforms.float(), out, list(split.frame_ids), write_glb=False)
            meshes = [load_mesh(out / f"{name}.ply") for name in names]
            rows[label] = (meshes, np.asarray(canonical.colors) * 255.0)
    width, height = args.tile
    images, labels = [], []
    for view in ("front", "side"):
        camera = view_camera(
            [m for meshes, _ in rows.values() for m in meshes], view, width / height
        )
        for label, (meshes, colours) in rows.items():
            for name, mesh in zip(names, meshes):
                vertex_colours = colours if colours is not None else np.asarray(mesh.colors) * 255
                images.append(
                    render_mesh(mesh, width, height, camera, vertex_colors=vertex_colours,
                                ambient=0.45)
                )  # fmt: skip
                labels.append(f"{label}  {name}  {view}" if label == "scan" else f"{label}  {view}")
    figure = tile_images(images, labels, columns=len(names))
    print(save_png(args.out, figure))


if __name__ == "__main__":
    main()
