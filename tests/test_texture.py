"""Texture propagation: painting by front projection, coloured PLY and GLB (COLOR_0), and a
painted mesh whose colours follow its vertices when it moves."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

from invskin.export.figures import texture_frames
from invskin.export.glb import read_glb_colors, read_glb_frames, write_glb
from invskin.export.texture import (
    checker_image,
    front_box,
    load_ply_colors,
    load_texture_image,
    project_front,
    save_colored_ply,
)
from invskin.mesh import TriMesh
from invskin.mesh.io import load_mesh

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sphere() -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    return TriMesh(s.vertices, s.faces)


def test_checker_image_has_distinct_cells():
    image = checker_image(columns=4, rows=3, cell=16, text=None)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    centres = image[8::16, 8::16].reshape(-1, 3)
    assert len({tuple(c) for c in centres}) == 12  # every cell its own colour
    assert (image[0] == 255).all() and (image[:, 16] == 255).all()  # grid lines
    labelled = checker_image(columns=4, rows=3, cell=16)
    assert (labelled != image).any()


def test_project_front_puts_image_pixels_at_their_place():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0], image[0, 1], image[1, 0], image[1, 1] = (
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (9, 9, 9),
    )
    points = np.array([[-0.5, 0.5, 0.3], [0.5, 0.5, -0.3], [-0.5, -0.5, 0.0], [0.5, -0.5, 0.0],
                       [5.0, 5.0, 0.0]])  # fmt: skip
    colors = project_front(points, image, ((-1.0, -1.0), (1.0, 1.0)))
    np.testing.assert_array_equal(colors[:4], image.reshape(4, 3))  # top-left is +y, -x
    np.testing.assert_array_equal(colors[4], image[0, 1])  # outside: nearest edge pixel
    box = front_box(points[:4], margin=0.1)
    assert np.allclose(box, [[-0.6, -0.6], [0.6, 0.6]])
    with pytest.raises(ValueError, match="uint8"):
        project_front(points, image.astype(float), box)


def test_colored_ply_round_trip_keeps_order(tmp_path, sphere):
    colors = project_front(sphere.vertices, checker_image(), front_box(sphere.vertices))
    path = save_colored_ply(tmp_path / "painted.ply", sphere, colors)
    np.testing.assert_array_equal(load_ply_colors(path), colors)
    back = load_mesh(path)
    np.testing.assert_allclose(back.vertices, sphere.vertices)
    np.testing.assert_array_equal(back.faces, sphere.faces)
    with pytest.raises(ValueError, match="one RGB per vertex"):
        save_colored_ply(tmp_path / "bad.ply", sphere, colors[:-1])
    assert not (tmp_path / "bad.ply").exists()


def test_glb_color_0_round_trip_and_validator(tmp_path, sphere):
    colors = project_front(sphere.vertices, checker_image(), front_box(sphere.vertices))
    frames = np.stack([sphere.vertices, sphere.vertices + [0.1, 0, 0]]).astype(np.float32)
    path = tmp_path / "painted.glb"
    write_glb(path, frames, sphere.faces, colors=colors)
    np.testing.assert_array_equal(read_glb_colors(path), colors)
    np.testing.assert_allclose(read_glb_frames(path)[0], frames, atol=1e-6)
    write_glb(tmp_path / "plain.glb", frames, sphere.faces)
    assert read_glb_colors(tmp_path / "plain.glb") is None
    validator = ROOT / ".tools" / "node_modules" / "gltf-validator"
    if shutil.which("node") is None or not validator.is_dir():
        pytest.skip("gltf-validator not installed (run scripts/install_browser.sh)")
    script = (
        "const v=require(process.argv[1]);const fs=require('fs');"
        "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))"
        ".then(r=>console.log(JSON.stringify({e:r.issues.numErrors,w:r.issues.numWarnings})))"
    )
    out = subprocess.run(["node", "-e", script, str(validator), str(path)], capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    report = json.loads(out.stdout)
    assert report["e"] == 0, out.stdout


def test_texture_image_file(tmp_path):
    from PIL import Image

    Image.fromarray(checker_image(2, 2, 8, text=None)).save(tmp_path / "t.png")
    assert load_texture_image(tmp_path / "t.png").shape == (16, 16, 3)
    with pytest.raises(FileNotFoundError):
        load_texture_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="PNG"):
        load_texture_image(tmp_path / "bad.png")


def test_painted_colours_travel_with_the_vertices(sphere):
    # Paint a sphere once, move it 0.4 m to the right: the colour seen at a painted point's new
    # screen position equals the colour that was at its old one.
    colors = project_front(
        sphere.vertices, checker_image(4, 4, 16, text=None), front_box(sphere.vertices)
    )
    moved = TriMesh(sphere.vertices + [0.4, 0.0, 0.0], sphere.faces)
    still = TriMesh(sphere.vertices.copy(), sphere.faces)
    frames = texture_frames(
        {"a": ([still, moved], colors)}, ["f0", "f1"], tile=(160, 120), font_size=10
    )
    assert len(frames) == 2 and frames[0].shape == frames[1].shape
    first, second = frames[0].astype(int), frames[1].astype(int)
    label_h, pad = 12, 4
    # The camera frames both spheres: 1.4 m wide (x -0.5..0.9) by 1 m high, scale from the width.
    # Orthographic, so a 0.4 m shift is a constant number of pixels; find it by cross-correlation.
    a = first[pad + label_h : pad + label_h + 120, pad : pad + 160]
    b = second[pad + label_h : pad + label_h + 120, pad : pad + 160]
    scores = [
        np.abs(a[:, 10 : 160 - 60] - b[:, 10 + s : 160 - 60 + s]).mean() for s in range(0, 60)
    ]
    shift = int(np.argmin(scores))
    assert shift > 20 and scores[shift] < 2.0  # a real shift, and the pattern matches after it
    assert np.abs(a - b).mean() > 10  # without shifting they differ
