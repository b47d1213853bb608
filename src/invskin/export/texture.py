"""Texture propagation: paint the canonical mesh once, carry the colours to every pose by vertex id.

An extract-once method (``ins``, ``snarf-nc``, ``lbs-body``) outputs one mesh whose vertex i is the
same point of the body in every frame, so a per-vertex colour painted on the canonical mesh is a
texture that travels with the garment: frame f's mesh is drawn with the same colour array. How well
it travels (how far a painted point drifts from where the ground truth puts it) is the
correspondence error of ``invskin eval``.

The painting here is a front projection: an RGB image is laid over a fixed box in the canonical
x-y plane (x to the right, y up; the body faces +z) and each vertex takes the colour of the pixel
in front of it, on both sides of the body. The box is explicit so that several meshes (a method's
canonical mesh and the ground-truth canonical mesh) get the same picture at the same place.
:func:`checker_image` generates a UV-checker-like image; any RGB image (a logo, a photo) works.
"""

from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np
import trimesh
from jaxtyping import Float, Shaped, UInt8
from PIL import Image, ImageDraw

from invskin.fileio import write_bytes_atomic
from invskin.mesh.io import TriMesh
from invskin.mesh.render import label_font

Box2 = tuple[tuple[float, float], tuple[float, float]]


def checker_image(
    columns: int = 16, rows: int = 24, cell: int = 24, text: str | None = "invskin"
) -> UInt8[np.ndarray, "h w 3"]:
    """A UV-checker-like RGB image in which every cell has its own colour: the hue changes along
    a row, the saturation down a column, and the brightness alternates like a chessboard; thin
    white grid lines, and ``text`` written across the middle (so left and right can be told apart).
    """
    if columns < 1 or rows < 1 or cell < 4:
        raise ValueError(f"checker_image needs columns, rows >= 1 and cell >= 4, got {columns}, "
                         f"{rows}, {cell}")  # fmt: skip
    image = np.zeros((rows * cell, columns * cell, 3), dtype=np.uint8)
    for c in range(columns):
        for r in range(rows):
            value = 0.95 if (r + c) % 2 == 0 else 0.6
            saturation = 0.35 + 0.6 * r / max(1, rows - 1)
            rgb = colorsys.hsv_to_rgb(c / columns, saturation, value)
            image[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = np.round(
                np.asarray(rgb) * 255
            )
    image[::cell] = 255
    image[:, ::cell] = 255
    if text:
        canvas = Image.fromarray(image)
        draw = ImageDraw.Draw(canvas)
        font = label_font(max(8, int(1.6 * cell)))
        box = draw.textbbox((0, 0), text, font=font)
        x = (canvas.width - (box[2] - box[0])) // 2
        y = (canvas.height - (box[3] - box[1])) // 2 - cell
        draw.text((x, y), text, fill=(20, 20, 20), font=font, stroke_width=2, stroke_fill="white")
        image = np.asarray(canvas)
    return image


def front_box(vertices: Float[np.ndarray, "v 3"], margin: float = 0.02) -> Box2:
    """The x-y bounding box of ``vertices`` enlarged by ``margin`` metres: ``((x0, y0), (x1, y1))``."""
    points = np.asarray(vertices, dtype=np.float64)
    lo, hi = points[:, :2].min(0) - margin, points[:, :2].max(0) + margin
    return (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))


def project_front(
    vertices: Float[np.ndarray, "v 3"],
    image: Shaped[np.ndarray, "h w c"],
    box: Box2,
) -> UInt8[np.ndarray, "v 3"]:
    """Per-vertex colours (V, 3) uint8: ``image`` stretched over ``box`` in the x-y plane, seen
    from +z; vertices outside the box take the nearest edge pixel (nearest-pixel lookup)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
        raise ValueError(f"project_front needs an (H, W, 3) uint8 image, got {image.shape} "
                         f"{image.dtype}")  # fmt: skip
    (x0, y0), (x1, y1) = box
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"project_front: empty box {box}")
    points = np.asarray(vertices, dtype=np.float64)
    h, w = image.shape[:2]
    u = (points[:, 0] - x0) / (x1 - x0)
    v = (y1 - points[:, 1]) / (y1 - y0)  # image rows go down, y goes up
    col = np.clip((u * w).astype(np.int64), 0, w - 1)
    row = np.clip((v * h).astype(np.int64), 0, h - 1)
    return np.ascontiguousarray(image[row, col, :3])


def load_texture_image(path: str | os.PathLike[str]) -> UInt8[np.ndarray, "h w 3"]:
    """An image file as RGB uint8 (any format Pillow reads)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"texture image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise ValueError(f"cannot read texture image {path}: {error}; use a PNG or JPEG") from error


def check_colors(colors: np.ndarray, num_vertices: int) -> UInt8[np.ndarray, "v 3"]:
    """``colors`` as (V, 3) uint8, or a clear error."""
    colors = np.asarray(colors)
    if colors.shape != (num_vertices, 3):
        raise ValueError(
            f"vertex colours must have shape ({num_vertices}, 3) (one RGB per vertex), "
            f"got {colors.shape}"
        )
    if colors.dtype != np.uint8:
        if colors.min() < 0 or colors.max() > 255:
            raise ValueError("vertex colours must be in [0, 255]")
        colors = np.round(colors).astype(np.uint8)
    return np.ascontiguousarray(colors)


def save_colored_ply(path: str | os.PathLike[str], mesh: TriMesh, colors: np.ndarray) -> Path:
    """Write ``mesh`` as a binary PLY with per-vertex RGBA colours (alpha 255), atomically.

    Vertex order is kept, so the file still corresponds vertex by vertex to every other frame.
    """
    colors = check_colors(colors, mesh.num_vertices)
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise ValueError(f"save_colored_ply writes .ply files, got {path}")
    rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    tri = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=rgba, process=False)
    return write_bytes_atomic(path, trimesh.exchange.ply.export_ply(tri, encoding="binary"))


def load_ply_colors(path: str | os.PathLike[str]) -> UInt8[np.ndarray, "v 3"]:
    """The per-vertex RGB colours of a PLY file (as written by :func:`save_colored_ply`)."""
    loaded = trimesh.load(Path(path), file_type="ply", process=False, force="mesh")
    colors = getattr(loaded.visual, "vertex_colors", None)
    if colors is None or len(colors) != len(loaded.vertices):
        raise ValueError(f"{path} has no per-vertex colours")
    return np.asarray(colors)[:, :3].astype(np.uint8)
