"""Error-coloured comparison figures: per-vertex distance to the scan, coloured on a fixed scale."""

import numpy as np
import pytest
import trimesh

from invskin.export.figures import error_figure, save_gif, vertex_error_cm
from invskin.mesh import TriMesh
from invskin.mesh.render import ERROR_STOPS


@pytest.fixture(scope="module")
def sphere() -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    return TriMesh(s.vertices, s.faces)


def test_vertex_error_is_distance_to_the_scan_surface(sphere):
    grown = TriMesh(sphere.vertices * 1.04, sphere.faces)  # 2 cm further out everywhere
    error = vertex_error_cm(grown, sphere)
    assert error.shape == (sphere.num_vertices,)
    np.testing.assert_allclose(error, 2.0, atol=0.05)
    assert np.allclose(vertex_error_cm(sphere, sphere), 0.0, atol=1e-6)


def test_error_figure_colours_the_wrong_half(sphere):
    # The prediction is right on the left half (x < 0) and 4 cm too far out on the right half.
    bulge = sphere.vertices * np.where(sphere.vertices[:, :1] > 0, 1.08, 1.0)
    pred = TriMesh(bulge, sphere.faces)
    errors = vertex_error_cm(pred, sphere)
    image = error_figure(
        [sphere], {"method": [pred]}, {"method": [errors]}, ["f0"], views=("front",),
        tile=(200, 200), vmax_cm=5.0, font_size=12,
    )  # fmt: skip
    label_h, pad = 14, 4
    assert image.shape[0] == 2 * (200 + label_h + pad) + pad
    truth_panel = image[pad + label_h : pad + label_h + 200, pad : pad + 200].astype(int)
    row0 = 2 * pad + 200 + 2 * label_h
    pred_panel = image[row0 : row0 + 200, pad : pad + 200].astype(int)
    # Ground truth is grey; the prediction's right half is red (high error), left half blue.
    assert np.abs(truth_panel[100, 100] - truth_panel[100, 100].mean()).max() < 3
    left, right = pred_panel[90:110, 55:75].mean((0, 1)), pred_panel[90:110, 125:145].mean((0, 1))
    assert right[0] > 120 and right[0] > right[2] + 80, right  # warm: red dominates
    assert left[2] > left[0] + 40, left  # cool: blue dominates
    # The colour bar sits to the right of the grid and shows the scale's end colours.
    bar = image[:, pad + 200 + pad :]
    pixels = bar.reshape(-1, 3).astype(int)
    for stop in (ERROR_STOPS[0], ERROR_STOPS[-1]):
        assert np.abs(pixels - stop).max(-1).min() <= 3


def test_error_figure_needs_one_mesh_per_frame(sphere):
    with pytest.raises(ValueError, match="one per frame"):
        error_figure([sphere], {"m": []}, {"m": []}, ["f0"])


def test_save_gif(tmp_path):
    from PIL import Image

    frames = [np.full((10, 12, 3), v, np.uint8) for v in (0, 128, 255)]
    path = save_gif(tmp_path / "a.gif", frames, 50)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (12, 10)
