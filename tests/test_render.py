"""The software renderer: silhouettes against analytic areas, the z-buffer, shading, tiling."""

import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from invskin.mesh import TriMesh
from invskin.mesh.render import (
    ERROR_STOPS,
    Camera,
    color_bar,
    colormap,
    rasterize,
    render_mesh,
    save_png,
    tile_images,
)

WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def sphere() -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
    return TriMesh(s.vertices, s.faces)


def _foreground(image: np.ndarray) -> np.ndarray:
    return (image != np.array(WHITE, dtype=np.uint8)).any(-1)


def test_orthographic_sphere_silhouette_area(sphere):
    size, scale = 200, 1.0
    image = render_mesh(sphere, size, size, Camera(eye=(0, 0, 3), scale=scale))
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    radius_px = 0.5 * (size / 2) / scale
    assert _foreground(image).sum() == pytest.approx(math.pi * radius_px**2, rel=0.01)
    yy, xx = np.mgrid[:size, :size] + 0.5
    dist = np.hypot(xx - size / 2, yy - size / 2)
    assert _foreground(image)[dist < radius_px - 1.5].all()  # inside: shaded
    assert not _foreground(image)[dist > radius_px + 1.5].any()  # outside: background


def test_perspective_sphere_silhouette_area(sphere):
    size, fov, distance = 160, 40.0, 3.0
    image = render_mesh(
        sphere, size, size, Camera(eye=(0, 0, distance), orthographic=False, fov_deg=fov)
    )
    focal = 0.5 * size / math.tan(math.radians(fov) / 2)
    radius_px = focal * 0.5 / math.sqrt(distance**2 - 0.5**2)
    assert _foreground(image).sum() == pytest.approx(math.pi * radius_px**2, rel=0.02)


def test_lambert_shading_is_brightest_facing_the_light(sphere):
    image = render_mesh(sphere, 128, 128, Camera(eye=(0, 0, 3)), color=(200, 200, 200)).astype(int)
    centre = image[64, 64, 0]
    rim = image[64, 64 - 31, 0]  # near the silhouette, the normal is almost perpendicular to view
    assert centre > rim + 40
    normal = render_mesh(sphere, 64, 64, Camera(eye=(0, 0, 3)), shading="normal")
    # At the centre the camera-space normal is +z: blue channel saturated, red and green mid.
    np.testing.assert_allclose(normal[32, 32], [128, 128, 255], atol=8)


def test_zbuffer_keeps_the_nearest_face_whatever_the_order():
    near = np.array([[-0.5, -0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.5, 0.5]])
    far = near * [2, 2, 1] - [0, 0, 1.0]
    vertices = np.concatenate([far, near])
    for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        frags = rasterize((vertices, np.array(faces)), Camera(eye=(0, 0, 3), scale=1.5), 64, 64)
        centre_face = int(frags.face[32, 32])
        assert faces[centre_face] == [3, 4, 5]
        assert float(frags.depth[32, 32]) == pytest.approx(2.5, abs=1e-5)
        corner = frags.face[51, 14]  # only the large far triangle covers (-0.8, -0.9)
        assert faces[int(corner)] == [0, 1, 2]
    colors = np.array([[255, 0, 0], [0, 0, 255]])
    image = render_mesh(
        (vertices, np.array([[0, 1, 2], [3, 4, 5]])),
        64,
        64,
        Camera(eye=(0, 0, 3), scale=1.5),
        color=colors,
    )
    assert image[32, 32, 2] > 100 and image[32, 32, 0] == 0


def test_mesh_out_of_view_renders_background(sphere):
    behind = TriMesh(sphere.vertices + [0, 0, 10.0], sphere.faces)
    image = render_mesh(behind, 32, 32, Camera(eye=(0, 0, 3), orthographic=False))
    assert not _foreground(image).any()


def test_framing_camera_fits_the_mesh(sphere):
    shifted = TriMesh(sphere.vertices * [1, 3, 1] + [2, 1, -1], sphere.faces)
    image = render_mesh(shifted, 100, 100, Camera.framing(shifted.vertices, azimuth_deg=30))
    rows = np.nonzero(_foreground(image).any(1))[0]
    assert rows.min() > 0 and rows.max() < 99 and rows.max() - rows.min() > 80


def test_camera_validation():
    with pytest.raises(ValueError, match="coincide"):
        Camera(eye=(0, 0, 0), target=(0, 0, 0))
    with pytest.raises(ValueError, match="parallel"):
        Camera(eye=(0, 3, 0), target=(0, 0, 0), up=(0, 1, 0))
    with pytest.raises(ValueError, match="scale"):
        Camera(scale=0.0)


def test_tile_images_and_save_png(tmp_path):
    images = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 100, 200)]
    tiled = tile_images(images, ["a", "b", "c"], columns=2, pad=2)
    assert tiled.shape == (2 * (20 + 14 + 2) + 2, 2 * (30 + 2) + 2, 3)
    assert (tiled[2 + 14 : 2 + 14 + 20, 2 : 2 + 30] == 0).all()
    with pytest.raises(ValueError, match="labels"):
        tile_images(images, ["a"])
    with pytest.raises(ValueError, match="one size"):
        tile_images([images[0], np.zeros((5, 5, 3), np.uint8)])
    path = save_png(tmp_path / "sub" / "t.png", tiled)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), tiled)
    assert not list(path.parent.glob("*.tmp"))


def test_renders_torch_inputs(sphere):
    v = torch.from_numpy(sphere.vertices).float()
    f = torch.from_numpy(sphere.faces)
    a = render_mesh((v, f), 48, 48, Camera(eye=(0, 0, 3)))
    b = render_mesh(sphere, 48, 48, Camera(eye=(0, 0, 3)))
    np.testing.assert_array_equal(a, b)


def test_vertex_colors_are_interpolated_across_faces():
    # One quad facing the camera: left vertices red, right vertices blue; flat light, no ambient loss.
    vertices = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    colors = np.array([[255, 0, 0], [0, 0, 255], [0, 0, 255], [255, 0, 0]])
    image = render_mesh(
        (vertices, faces), 64, 64, Camera(eye=(0, 0, 3), scale=1.0), vertex_colors=colors,
        ambient=1.0,
    )  # fmt: skip
    assert image[32, 1, 0] > 240 and image[32, 1, 2] < 15  # left edge: red
    assert image[32, 62, 2] > 240 and image[32, 62, 0] < 15  # right edge: blue
    np.testing.assert_allclose(image[32, 32, [0, 2]], [128, 128], atol=5)  # half way: mixed
    with pytest.raises(ValueError, match="vertex_colors"):
        render_mesh((vertices, faces), 8, 8, vertex_colors=colors[:3])


def test_colormap_fixed_scale_and_clipping():
    rgb = colormap([0.0, 5.0, 50.0, -1.0, float("nan")], 0.0, 5.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 3)
    np.testing.assert_array_equal(rgb[0], ERROR_STOPS[0])
    np.testing.assert_array_equal(rgb[1], ERROR_STOPS[-1])
    np.testing.assert_array_equal(rgb[2], ERROR_STOPS[-1])  # above vmax: clipped
    np.testing.assert_array_equal(rgb[3], ERROR_STOPS[0])
    np.testing.assert_array_equal(rgb[4], [128, 128, 128])
    ramp = colormap(np.linspace(0, 5, 50), 0.0, 5.0).astype(int)
    assert (np.abs(np.diff(ramp, axis=0)).max()) < 40  # continuous, no jumps
    with pytest.raises(ValueError, match="vmax"):
        colormap([1.0], 1.0, 1.0)


def test_color_bar_shows_the_scale_top_to_bottom():
    bar = color_bar(300, 0.0, 5.0, "cm", width=120)
    assert bar.shape == (300, 120, 3)
    column = bar[:, 10].astype(int)  # inside the strip
    coloured = np.nonzero(column.max(-1) - column.min(-1) > 30)[0]  # the strip, not the text
    assert coloured.max() - coloured.min() > 200
    np.testing.assert_allclose(bar[coloured.min(), 10], ERROR_STOPS[-1], atol=12)  # vmax on top
    np.testing.assert_allclose(bar[coloured.max(), 10], ERROR_STOPS[0], atol=12)  # vmin below
    text = bar[:, 40:]
    assert (text < 100).all(-1).sum() > 50  # tick labels were drawn (dark pixels)
