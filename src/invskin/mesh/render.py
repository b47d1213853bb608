"""A small software mesh renderer: z-buffered triangle rasterisation in plain torch, no GL.

Conventions: world space is metres, y up, right-handed. A :class:`Camera` looks from ``eye`` at
``target``; camera space has x to the right, y up and the camera looking along -z, so a point's
depth is ``-z_cam`` (positive in front). Image rows go top to bottom, pixel (row i, column j) has
its centre at ``(j + 0.5, i + 0.5)`` in screen coordinates. An orthographic camera shows
``2 * scale`` metres over the image height; a perspective one has a vertical field of view
``fov_deg``. Faces are drawn two-sided (raw scans are open), shaded by the absolute cosine between
the normal and the light, so a face's winding order never hides it. Colours are RGB in [0, 255]:
one colour, one per face, or one per vertex (interpolated across each face), which is how a texture
painted on the canonical mesh or a per-vertex error is shown.

The same code runs on CPU or GPU (the ``device`` argument): fragments are generated per face by
expanding its screen bounding box, tested with barycentric coordinates, and resolved with a
``scatter_reduce(amin)`` depth buffer, in chunks of faces so memory stays bounded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int, Shaped, UInt8
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from invskin.fileio import atomic_path
from invskin.mesh.io import TriMesh

Color = tuple[int, int, int]
Number = int | float
Point3 = tuple[Number, Number, Number]
MeshLike = TriMesh | tuple[np.ndarray | Tensor, np.ndarray | Tensor]

DEFAULT_COLOR: Color = (200, 200, 210)
BACKGROUND: Color = (255, 255, 255)
MAX_FRAGMENTS = 4_000_000  # fragments per chunk of faces: ~100 MB of temporaries


@dataclass(frozen=True)
class Camera:
    """A look-at camera, orthographic (``scale``: half the view height in metres) or perspective."""

    eye: Point3 = (0.0, 0.0, 3.0)
    target: Point3 = (0.0, 0.0, 0.0)
    up: Point3 = (0.0, 1.0, 0.0)
    orthographic: bool = True
    scale: Number = 1.0
    fov_deg: Number = 40.0

    def __post_init__(self) -> None:
        for name in ("eye", "target", "up"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.scale <= 0 or not 0 < self.fov_deg < 180:
            raise ValueError(f"camera needs scale > 0 and 0 < fov_deg < 180, got {self}")
        forward = np.subtract(self.target, self.eye)
        if np.linalg.norm(forward) < 1e-9:
            raise ValueError("camera eye and target coincide")
        if np.linalg.norm(np.cross(forward, self.up)) < 1e-9 * np.linalg.norm(forward):
            raise ValueError("camera up vector is parallel to the viewing direction")

    def view_matrix(self) -> Float[np.ndarray, "4 4"]:
        """World-to-camera 4x4 transform (rows: right, up, backward)."""
        eye = np.asarray(self.eye, dtype=np.float64)
        back = eye - np.asarray(self.target, dtype=np.float64)
        back /= np.linalg.norm(back)
        right = np.cross(np.asarray(self.up, dtype=np.float64), back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        view = np.eye(4)
        view[:3, :3] = np.stack([right, up, back])
        view[:3, 3] = -view[:3, :3] @ eye
        return view

    @staticmethod
    def framing(
        vertices: Float[np.ndarray, "n 3"] | Float[Tensor, "n 3"],
        azimuth_deg: Number = 0.0,
        elevation_deg: Number = 0.0,
        margin: Number = 1.08,
        orthographic: bool = True,
        aspect: Number = 1.0,
    ) -> Camera:
        """A camera looking at the bounding-box centre of ``vertices`` so that they fill the view.

        Azimuth 0 looks from +z (the front of a y-up body facing +z); positive azimuth turns the
        camera towards +x. ``aspect`` is width / height of the image the camera will render.
        """
        points = np.asarray(
            vertices.detach().cpu() if isinstance(vertices, Tensor) else vertices, float
        )
        lo, hi = points.min(0), points.max(0)
        centre = 0.5 * (lo + hi)
        radius = 0.5 * float(np.linalg.norm(hi - lo))
        az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
        direction = np.array(
            [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)]
        )
        # Half extents of the box seen from this direction give a tight orthographic scale.
        back = direction
        right = np.cross([0.0, 1.0, 0.0], back)
        right = (
            right / np.linalg.norm(right) if np.linalg.norm(right) > 1e-9 else np.array([1.0, 0, 0])
        )
        up = np.cross(back, right)
        half_h = float(np.abs((points - centre) @ up).max())
        half_w = float(np.abs((points - centre) @ right).max())
        scale = margin * max(half_h, half_w / aspect, 1e-3)
        fov = 40.0
        distance = (
            3.0 * radius + 1.0 if orthographic else scale / math.tan(math.radians(fov / 2)) + radius
        )
        eye = centre + distance * direction
        return Camera(
            eye=tuple(float(v) for v in eye),
            target=tuple(float(v) for v in centre),
            up=(0.0, 1.0, 0.0) if abs(el) < math.pi / 2 - 1e-3 else (0.0, 0.0, -1.0),
            orthographic=orthographic,
            scale=scale,
            fov_deg=fov,
        )


@dataclass(frozen=True)
class Fragments:
    """The visible surface per pixel: ``face`` (H, W) int64 (-1 for background), ``depth`` (H, W)
    (inf for background) and ``barycentric`` (H, W, 3) coordinates on that face."""

    face: Int[Tensor, "h w"]
    depth: Float[Tensor, "h w"]
    barycentric: Float[Tensor, "h w 3"]


def _as_tensors(
    mesh: MeshLike, device: torch.device | str
) -> tuple[Float[Tensor, "v 3"], Int[Tensor, "t 3"]]:
    if isinstance(mesh, TriMesh):
        vertices, faces = mesh.vertices, mesh.faces
    else:
        vertices, faces = mesh
    vertices = torch.as_tensor(vertices).to(device=device, dtype=torch.float32)
    faces = torch.as_tensor(faces).to(device=device, dtype=torch.int64)
    if vertices.ndim != 2 or vertices.shape[-1] != 3 or faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(
            f"render: need vertices (V, 3) and faces (T, 3), got {tuple(vertices.shape)} "
            f"and {tuple(faces.shape)}"
        )
    return vertices, faces


def project(
    vertices: Float[Tensor, "v 3"], camera: Camera, width: int, height: int
) -> tuple[Float[Tensor, "v 2"], Float[Tensor, " v"]]:
    """Screen coordinates (V, 2) as (column, row) in pixels, and depth (V,) in metres."""
    view = torch.as_tensor(camera.view_matrix(), dtype=vertices.dtype, device=vertices.device)
    cam = vertices @ view[:3, :3].T + view[:3, 3]
    depth = -cam[:, 2]
    if camera.orthographic:
        focal = 0.5 * height / camera.scale
        x, y = cam[:, 0] * focal, cam[:, 1] * focal
    else:
        focal = 0.5 * height / math.tan(math.radians(camera.fov_deg) / 2)
        safe = depth.clamp(min=1e-6)
        x, y = cam[:, 0] * focal / safe, cam[:, 1] * focal / safe
    return torch.stack([0.5 * width + x, 0.5 * height - y], dim=-1), depth


def rasterize(
    mesh: MeshLike,
    camera: Camera,
    width: int,
    height: int,
    device: torch.device | str = "cpu",
) -> Fragments:
    """Z-buffered rasterisation: the nearest face, its depth and barycentrics at every pixel.

    Faces with a vertex behind a perspective camera are skipped (no near-plane clipping).
    Depth is interpolated linearly in screen space for orthographic cameras and as ``1/z`` for
    perspective ones, so it is exact for both.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    vertices, faces = _as_tensors(mesh, device)
    screen, depth = project(vertices, camera, width, height)
    tri = screen[faces]  # (T, 3, 2)
    tri_depth = depth[faces]  # (T, 3)
    keep = torch.ones(len(faces), dtype=torch.bool, device=device)
    if not camera.orthographic:
        keep &= (tri_depth > 1e-6).all(-1)
    # Screen bounding boxes in pixel indices (pixel centres at +0.5).
    lo = torch.ceil(tri.amin(1) - 0.5).clamp(min=0)
    hi = torch.floor(tri.amax(1) - 0.5)
    hi = torch.minimum(hi, torch.tensor([width - 1.0, height - 1.0], device=device))
    size = (hi - lo + 1).clamp(min=0)
    area2 = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (
        tri[:, 1, 1] - tri[:, 0, 1]
    ) * (tri[:, 2, 0] - tri[:, 0, 0])
    keep &= (size > 0).all(-1) & (area2.abs() > 1e-12) & torch.isfinite(tri).all(-1).all(-1)
    counts = (size[:, 0] * size[:, 1]).long() * keep
    zbuf = torch.full((height * width,), math.inf, device=device)
    face_buf = torch.full((height * width,), -1, dtype=torch.int64, device=device)
    order = torch.nonzero(counts, as_tuple=True)[0]
    csum = torch.cumsum(counts[order], 0)
    start = 0
    while start < len(order):
        base = int(csum[start - 1]) if start > 0 else 0
        stop = int(torch.searchsorted(csum, base + MAX_FRAGMENTS, right=True))
        stop = max(stop, start + 1)
        chunk = order[start:stop]
        start = stop
        n = counts[chunk]
        face_of = torch.repeat_interleave(chunk, n)
        offset = torch.arange(int(n.sum()), device=device) - torch.repeat_interleave(
            torch.cumsum(n, 0) - n, n
        )
        w = size[face_of, 0].long()
        px = lo[face_of, 0].long() + offset % w
        py = lo[face_of, 1].long() + offset // w
        bary = _barycentric(tri[face_of], px.float() + 0.5, py.float() + 0.5)
        inside = (bary >= -1e-6).all(-1)
        face_of, px, py, bary = face_of[inside], px[inside], py[inside], bary[inside]
        frag_depth = _interpolate_depth(bary, tri_depth[face_of], camera.orthographic)
        pixel = py * width + px
        chunk_z = torch.full_like(zbuf, math.inf).scatter_reduce(
            0, pixel, frag_depth, "amin", include_self=True
        )
        winner = frag_depth <= chunk_z[pixel]
        chunk_face = torch.full_like(face_buf, -1).scatter_reduce(
            0, pixel[winner], face_of[winner], "amax", include_self=True
        )
        better = chunk_z < zbuf
        zbuf = torch.where(better, chunk_z, zbuf)
        face_buf = torch.where(better, chunk_face, face_buf)
    face_img = face_buf.view(height, width)
    bary_img = torch.zeros(height * width, 3, device=device)
    hit = face_buf >= 0
    if hit.any():
        idx = torch.nonzero(hit, as_tuple=True)[0]
        px = (idx % width).float() + 0.5
        py = torch.div(idx, width, rounding_mode="floor").float() + 0.5
        bary_img[idx] = _barycentric(tri[face_buf[idx]], px, py).clamp(min=0)
        bary_img[idx] /= bary_img[idx].sum(-1, keepdim=True).clamp(min=1e-12)
    return Fragments(
        face=face_img, depth=zbuf.view(height, width), barycentric=bary_img.view(height, width, 3)
    )


def _barycentric(
    tri: Float[Tensor, "n 3 2"], x: Float[Tensor, " n"], y: Float[Tensor, " n"]
) -> Float[Tensor, "n 3"]:
    """Screen-space barycentric coordinates of points (x, y) in triangles (either winding)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    w0 = (b[:, 0] - x) * (c[:, 1] - y) - (b[:, 1] - y) * (c[:, 0] - x)
    w1 = (c[:, 0] - x) * (a[:, 1] - y) - (c[:, 1] - y) * (a[:, 0] - x)
    w2 = (a[:, 0] - x) * (b[:, 1] - y) - (a[:, 1] - y) * (b[:, 0] - x)
    return torch.stack([w0, w1, w2], dim=-1) / area2[:, None]


def _interpolate_depth(
    bary: Float[Tensor, "n 3"], depth: Float[Tensor, "n 3"], orthographic: bool
) -> Float[Tensor, " n"]:
    if orthographic:
        return (bary * depth).sum(-1)
    return 1.0 / (bary / depth).sum(-1)


def render_mesh(
    mesh: MeshLike,
    width: int = 256,
    height: int = 256,
    camera: Camera | None = None,
    color: Color | Shaped[np.ndarray, "t 3"] = DEFAULT_COLOR,
    background: Color = BACKGROUND,
    shading: str = "lambert",
    smooth: bool = True,
    device: torch.device | str = "cpu",
    vertex_colors: Shaped[np.ndarray, "v 3"] | None = None,
    ambient: float = 0.25,
) -> UInt8[np.ndarray, "h w 3"]:
    """Render a mesh to an RGB image (H, W, 3) uint8.

    ``camera`` defaults to :meth:`Camera.framing` from the front. ``color`` is one RGB colour or a
    (T, 3) array of per-face colours in [0, 255]; ``vertex_colors`` (V, 3) in [0, 255], when
    given, replaces it and is interpolated barycentrically across each face. ``shading`` is
    ``"lambert"`` (a light near the camera, plus ``ambient`` light) or ``"normal"`` (camera-space
    normals mapped to RGB). ``smooth`` uses interpolated vertex normals instead of flat face normals.
    """
    if shading not in ("lambert", "normal"):
        raise ValueError(f"shading must be 'lambert' or 'normal', got {shading!r}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient must be in [0, 1], got {ambient}")
    vertices, faces = _as_tensors(mesh, device)
    if vertex_colors is not None:
        vertex_colors = np.asarray(vertex_colors, dtype=np.float32)
        if vertex_colors.shape != (len(vertices), 3):
            raise ValueError(
                f"vertex_colors must have shape (V, 3) = ({len(vertices)}, 3), "
                f"got {vertex_colors.shape}"
            )
    if camera is None:
        camera = Camera.framing(vertices.cpu().numpy(), aspect=width / height)
    frags = rasterize((vertices, faces), camera, width, height, device=device)
    image = torch.tensor(background, dtype=torch.float32, device=device).expand(height, width, 3)
    image = image.clone()
    hit = frags.face >= 0
    if not hit.any():
        return image.round().to(torch.uint8).cpu().numpy()
    face = frags.face[hit]
    normal = _face_normals(vertices, faces)
    if smooth:
        vnormal = _vertex_normals(vertices, faces)
        corner = vnormal[faces[face]]  # (n, 3 corners, 3)
        # Smooth normals on the side of the face normal, so creases of open scans stay sane.
        n = (frags.barycentric[hit][..., None] * corner).sum(1)
        flip = (n * normal[face]).sum(-1, keepdim=True) < 0
        n = torch.where(flip, -n, n)
        n = torch.nn.functional.normalize(n, dim=-1)
    else:
        n = normal[face]
    view = torch.as_tensor(camera.view_matrix()[:3, :3], dtype=torch.float32, device=device)
    n_cam = n @ view.T
    # Two-sided: flip normals that face away from the camera (camera looks along -z).
    n_cam = torch.where(n_cam[:, 2:3] < 0, -n_cam, n_cam)
    if shading == "normal":
        rgb = (n_cam * 0.5 + 0.5) * 255.0
    else:
        light = torch.nn.functional.normalize(torch.tensor([-0.3, 0.5, 1.0], device=device), dim=0)
        lambert = (n_cam @ light).clamp(min=0)
        if vertex_colors is not None:
            corner = torch.as_tensor(vertex_colors, device=device)[faces[face]]  # (n, 3, 3)
            albedo = (frags.barycentric[hit][..., None] * corner).sum(1)
        else:
            albedo = torch.as_tensor(np.asarray(color, dtype=np.float32), device=device)
            albedo = albedo[face] if albedo.ndim == 2 else albedo.expand(len(face), 3)
        rgb = albedo * (ambient + (1.0 - ambient) * lambert)[:, None]
    image[hit] = rgb
    return image.clamp(0, 255).round().to(torch.uint8).cpu().numpy()


def _face_normals(
    vertices: Float[Tensor, "v 3"], faces: Int[Tensor, "t 3"]
) -> Float[Tensor, "t 3"]:
    tri = vertices[faces]
    cross = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    return torch.nn.functional.normalize(cross, dim=-1)


def _vertex_normals(
    vertices: Float[Tensor, "v 3"], faces: Int[Tensor, "t 3"]
) -> Float[Tensor, "v 3"]:
    tri = vertices[faces]
    cross = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    summed = torch.zeros_like(vertices).index_add_(
        0, faces.reshape(-1), cross.repeat_interleave(3, 0)
    )
    return torch.nn.functional.normalize(summed, dim=-1)


def label_font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` pixels (a bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def tile_images(
    images: Sequence[UInt8[np.ndarray, "h w 3"]],
    labels: Sequence[str] | None = None,
    columns: int | None = None,
    pad: int = 4,
    background: Color = BACKGROUND,
    font_size: int = 12,
) -> UInt8[np.ndarray, "hh ww 3"]:
    """Tile equally sized images into a grid (row-major), each with an optional label on top."""
    if not images:
        raise ValueError("tile_images needs at least one image")
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise ValueError(f"tile_images needs images of one size, got {sorted(shapes)}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    h, w, _ = images[0].shape
    columns = columns or len(images)
    rows = math.ceil(len(images) / columns)
    font = label_font(font_size)
    label_h = font_size + 2 if labels is not None else 0
    canvas = Image.new(
        "RGB", (columns * (w + pad) + pad, rows * (h + label_h + pad) + pad), background
    )
    draw = ImageDraw.Draw(canvas)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (w + pad), pad + r * (h + label_h + pad)
        if labels is not None:
            draw.text((x0 + 2, y0), labels[k], fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(np.ascontiguousarray(image)), (x0, y0 + label_h))
    return np.asarray(canvas)


# Colour scale for errors: dark blue (0) through cyan, green and yellow to red and dark red (max).
# Piecewise linear in RGB between these stops, which are equally spaced over [0, 1].
ERROR_STOPS: tuple[Color, ...] = (
    (48, 18, 120),
    (40, 110, 230),
    (30, 200, 200),
    (90, 210, 80),
    (240, 220, 40),
    (240, 110, 30),
    (200, 20, 20),
    (110, 0, 10),
)


def colormap(
    values: Float[np.ndarray, " n"] | Sequence[float],
    vmin: float,
    vmax: float,
    stops: Sequence[Color] = ERROR_STOPS,
) -> UInt8[np.ndarray, "n 3"]:
    """Map ``values`` to RGB on a fixed scale: ``vmin`` to the first stop, ``vmax`` (and above) to
    the last, piecewise linear in between. NaN maps to grey. A fixed scale keeps images comparable
    across methods and frames."""
    if not vmax > vmin:
        raise ValueError(f"colormap needs vmax > vmin, got [{vmin}, {vmax}]")
    values = np.asarray(values, dtype=np.float64)
    table = np.asarray(stops, dtype=np.float64)
    t = np.clip((np.nan_to_num(values, nan=vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    position = t * (len(table) - 1)
    low = np.minimum(np.floor(position).astype(np.int64), len(table) - 2)
    frac = (position - low)[..., None]
    rgb = table[low] * (1.0 - frac) + table[low + 1] * frac
    rgb[np.isnan(values)] = 128.0
    return np.round(rgb).astype(np.uint8)


def color_bar(
    height: int,
    vmin: float,
    vmax: float,
    label: str,
    ticks: Sequence[float] | None = None,
    width: int = 110,
    stops: Sequence[Color] = ERROR_STOPS,
    font_size: int = 14,
    background: Color = BACKGROUND,
) -> UInt8[np.ndarray, "h w 3"]:
    """A vertical colour bar image (``vmax`` at the top) with tick values and a label on top.

    The last tick reads ``>= vmax`` because :func:`colormap` clips larger values to the top colour.
    """
    font = label_font(font_size)
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    top, bottom = 2 * font_size + 10, height - font_size
    bar_w = max(8, width // 5)
    if bottom - top < 10:
        raise ValueError(f"color_bar: height {height} is too small for font size {font_size}")
    rows = np.arange(top, bottom)
    values = vmax - (rows - top) / max(1, bottom - top - 1) * (vmax - vmin)
    strip = np.repeat(colormap(values, vmin, vmax, stops)[:, None], bar_w, axis=1)
    canvas.paste(Image.fromarray(strip), (6, top))
    draw.rectangle([6, top, 6 + bar_w - 1, bottom - 1], outline=(0, 0, 0))
    draw.text((4, 2), label, fill=(0, 0, 0), font=font)
    ticks = list(ticks) if ticks is not None else list(np.linspace(vmin, vmax, 6))
    for value in ticks:
        y = top + (vmax - value) / (vmax - vmin) * (bottom - top - 1)
        draw.line([6 + bar_w, y, 6 + bar_w + 5, y], fill=(0, 0, 0))
        text = f"{value:g}" if value < vmax else f">= {value:g}"
        draw.text((6 + bar_w + 8, y - font_size // 2 - 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def concat_horizontal(
    images: Sequence[np.ndarray], background: Color = BACKGROUND
) -> UInt8[np.ndarray, "hh ww 3"]:
    """Place images side by side, top-aligned, padding shorter ones with ``background``."""
    height = max(image.shape[0] for image in images)
    padded = []
    for image in images:
        pad = np.empty((height - image.shape[0], image.shape[1], 3), np.uint8)
        pad[:] = background
        padded.append(np.concatenate([image, pad]))
    return np.concatenate(padded, axis=1)


def save_png(path: str | os.PathLike[str], image: UInt8[np.ndarray, "h w 3"]) -> Path:
    """Write an RGB image as an optimised PNG, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG", optimize=True)
    return path
