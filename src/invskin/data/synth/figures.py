"""Figures of the synthetic outfits: the visible (scanned) surface in a few poses, per outfit.

    python -m invskin.data.synth.figures [--out docs/img] [--size 200]

writes ``synth-dress.png`` and ``synth-fitted.png``: the canonical star pose and frames of
training and held-out motions, from the front and from three quarters behind, body in grey and
clothing in colour (the colours are for the figure only; scans carry no colour).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from invskin.body.anny_model import AnnyBody, load_anny_body
from invskin.body.motions import make_clip
from invskin.data.synth.outfits import build_outfit, compact, dress, visible_faces
from invskin.mesh.render import Camera, render_mesh, save_png, tile_images

#: Poses shown: (label, motion); None is the canonical pose. Each motion shows the frame of an
#: 8-frame clip farthest from the neutral pose (largest sum of absolute joint angles).
POSES = (
    ("canonical", None),
    ("walk", "walk"),
    ("lunge", "lunge"),
    ("kick (held out)", "kick"),
    ("jumping jacks (held out)", "jumping_jacks"),
)
PART_COLORS = np.array([[205, 205, 212], [90, 125, 205], [205, 95, 90]])


def outfit_figure(body: AnnyBody, outfit: str, size: int = 200, seed: int = 0) -> np.ndarray:
    """Two rows (front, back three-quarter) of the outfit's visible surface in :data:`POSES`."""
    clothes = build_outfit(body, outfit)
    faces = clothes.faces.numpy()
    part = clothes.part.numpy()
    transforms = []
    for _, motion in POSES:
        if motion is None:
            transforms.append(torch.eye(4).expand(body.skeleton.num_bones, 4, 4))
            continue
        clip = make_clip(body.skeleton, motion, 8, seed=[seed, 7])
        frame = int(np.argmax(sum(np.abs(a).sum(1) for a in clip.angles.values())))
        transforms.append(
            body.skeleton.bone_transforms(clip.local_rotations, clip.root_translation)[
                frame
            ].float()
        )
    vertices = dress(clothes, torch.stack(transforms)).numpy()
    rows: list[list[np.ndarray]] = [[], []]
    for v in vertices:
        keep = visible_faces(v, faces)
        mesh, _ = compact(v, faces[keep])
        centre = 0.5 * (mesh.vertices.min(0) + mesh.vertices.max(0))
        for row, azimuth in zip(rows, (0.0, 150.0)):
            az = np.radians(azimuth)
            eye = centre + 4.0 * np.array([np.sin(az), 0.15, np.cos(az)])
            camera = Camera(eye=tuple(eye), target=tuple(centre), scale=0.92)
            row.append(render_mesh(mesh, size, size, camera, color=PART_COLORS[part[keep]]))
    labels = [label for label, _ in POSES] + [""] * len(POSES)
    return tile_images(rows[0] + rows[1], labels, columns=len(POSES))


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the synthetic outfits for the docs.")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()
    body = load_anny_body()
    for outfit in ("dress", "fitted"):
        path = save_png(args.out / f"synth-{outfit}.png", outfit_figure(body, outfit, args.size))
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
