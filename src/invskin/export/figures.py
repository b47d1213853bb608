"""Figures that compare methods against ground truth, drawn with the CPU software renderer.

- :func:`vertex_error_cm`: each predicted vertex's distance to the ground-truth scan surface, in cm.
- :func:`error_figure`: a grid with one row for the ground truth (grey) and one per method (its mesh
  coloured by :func:`vertex_error_cm` on a fixed scale), one column per (frame, view), and a colour
  bar. The same camera draws every row of a column, so rows can be compared pixel for pixel.
- :func:`texture_frames`: the frames of an animation in which every mesh carries its per-vertex
  colours (a texture painted on its canonical mesh), side by side.

Views are named by azimuth: ``front`` looks from +z (the body faces +z), ``side`` from +x.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from jaxtyping import Float, UInt8
from PIL import Image

from invskin.fileio import atomic_path
from invskin.mesh.io import TriMesh
from invskin.mesh.render import (
    Camera,
    color_bar,
    colormap,
    concat_horizontal,
    render_mesh,
    tile_images,
)
from invskin.mesh.sampling import closest_points

VIEWS: dict[str, float] = {"front": 0.0, "side": 90.0}
GROUND_TRUTH_COLOR = (205, 205, 205)


def vertex_error_cm(mesh: TriMesh, scan: TriMesh) -> Float[np.ndarray, " v"]:
    """Distance (cm) from each vertex of ``mesh`` to the closest point of the ``scan`` surface."""
    closest, _, _ = closest_points(scan, mesh.vertices)
    return 100.0 * np.linalg.norm(mesh.vertices - closest, axis=1)


def view_camera(meshes: Sequence[TriMesh], view: str, aspect: float) -> Camera:
    """An orthographic camera from view ``view`` framing all ``meshes`` together."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    points = np.concatenate([m.vertices for m in meshes])
    return Camera.framing(points, azimuth_deg=VIEWS[view], aspect=aspect, margin=1.04)


def error_figure(
    truth: Sequence[TriMesh],
    predictions: Mapping[str, Sequence[TriMesh]],
    errors_cm: Mapping[str, Sequence[np.ndarray]],
    frame_names: Sequence[str],
    views: Sequence[str] = ("front", "side"),
    tile: tuple[int, int] = (300, 440),
    vmax_cm: float = 5.0,
    font_size: int = 16,
) -> UInt8[np.ndarray, "h w 3"]:
    """The ground truth and each method's per-vertex error, frame by frame, view by view.

    ``truth[k]`` is frame k's ground-truth mesh; ``predictions[m][k]`` method m's mesh of that
    frame and ``errors_cm[m][k]`` its per-vertex error (cm), coloured on ``[0, vmax_cm]``.
    ``tile`` is (width, height) of one panel in pixels.
    """
    width, height = tile
    if not len(truth) == len(frame_names) or any(
        len(predictions[m]) != len(truth) or len(errors_cm[m]) != len(truth) for m in predictions
    ):
        raise ValueError("error_figure: truth, every method's meshes and errors need one per frame")
    columns = [(k, view) for k in range(len(truth)) for view in views]
    cameras = [
        view_camera([truth[k], *(predictions[m][k] for m in predictions)], view, width / height)
        for k, view in columns
    ]
    images, labels = [], []
    for c, (k, view) in enumerate(columns):
        images.append(render_mesh(truth[k], width, height, cameras[c], color=GROUND_TRUTH_COLOR))
        labels.append(f"ground truth  {frame_names[k]}  {view}")
    for method in predictions:
        for c, (k, view) in enumerate(columns):
            error = np.asarray(errors_cm[method][k], dtype=np.float64)
            colors = colormap(error, 0.0, vmax_cm)
            images.append(
                render_mesh(
                    predictions[method][k],
                    width,
                    height,
                    cameras[c],
                    vertex_colors=colors,
                    ambient=0.45,
                )  # fmt: skip
            )
            labels.append(f"{method}  {view}  mean {error.mean():.2f} cm")
    grid = tile_images(images, labels, columns=len(columns), font_size=font_size)
    bar = color_bar(
        min(grid.shape[0], 3 * height),
        0.0,
        vmax_cm,
        "distance to scan (cm)",
        font_size=font_size - 2,
        width=190,
    )
    return concat_horizontal([grid, bar])


def texture_frames(
    sequences: Mapping[str, tuple[Sequence[TriMesh], np.ndarray]],
    frame_names: Sequence[str],
    view: str = "front",
    tile: tuple[int, int] = (220, 320),
    font_size: int = 14,
) -> list[UInt8[np.ndarray, "h w 3"]]:
    """One image per frame: each named sequence's mesh of that frame drawn with its colours.

    ``sequences[name] = (meshes, colors)``: one mesh per frame, all with the same vertex count,
    and the (V, 3) colours painted on the canonical mesh (the same array for every frame). One
    camera frames every mesh of every frame, so the animation does not jump.
    """
    width, height = tile
    all_meshes = [m for meshes, _ in sequences.values() for m in meshes]
    camera = view_camera(all_meshes, view, width / height)
    frames = []
    for k, name in enumerate(frame_names):
        images = [
            render_mesh(meshes[k], width, height, camera, vertex_colors=colors, ambient=0.45)
            for meshes, colors in sequences.values()
        ]
        labels = [f"{label}  {name}" for label in sequences]
        frames.append(tile_images(images, labels, font_size=font_size))
    return frames


def save_gif(
    path: str | os.PathLike[str],
    frames: Sequence[UInt8[np.ndarray, "h w 3"]],
    milliseconds_per_frame: int = 100,
) -> Path:
    """Write ``frames`` as a looping GIF, atomically."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=milliseconds_per_frame,
            loop=0,
            optimize=True,
        )
    return path
