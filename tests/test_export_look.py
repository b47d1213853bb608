"""The avatar's look: UV islands, UV transfer with seams split, the order of looks, and a textured
character through import, training and the skinned export (real GLB, Khronos validator)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from invskin.cli.main import main
from invskin.data.loaders.appearance import SourceAppearance, TextureImage
from invskin.export.browser import find_validator, validate_glb
from invskin.export.look import avatar_look, transfer_uv, uv_islands
from invskin.mesh.io import TriMesh

ASSETS = Path(__file__).parent / "assets" / "gltf"


def two_island_square() -> SourceAppearance:
    """The unit square in z = 0 as two triangle pairs (x < 0.5, x > 0.5), laid out in two separate
    pieces of the image: the left half at u in [0, 0.25], the right half at u in [0.5, 0.75]."""
    left = [[0, 0, 0], [0.5, 0, 0], [0.5, 1, 0], [0, 1, 0]]
    right = [[0.5, 0, 0], [1, 0, 0], [1, 1, 0], [0.5, 1, 0]]
    vertices = np.array(left + right, dtype=np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    uv = np.array(
        [[0, 0], [0.25, 0], [0.25, 1], [0, 1], [0.5, 0], [0.75, 0], [0.75, 1], [0.5, 1]],
        dtype=np.float64,
    )
    texture = TextureImage(b"\x89PNG", "image/png")  # never decoded by the transfer
    return SourceAppearance(vertices, faces, uv=uv, texture=texture)


def grid(n: int) -> TriMesh:
    xs = np.linspace(0.0, 1.0, n)
    vertices = np.array([[x, y, 0.0] for y in xs for x in xs])
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i + 1, (j + 1) * n + i
            faces += [[a, b, c], [a, c, d]]
    return TriMesh(vertices, np.array(faces))


def test_islands_join_faces_through_edges_that_agree_in_position_and_uv() -> None:
    source = two_island_square()
    islands = uv_islands(source.vertices, source.faces, source.uv)
    assert islands[0] == islands[1] and islands[2] == islands[3] and islands[0] != islands[2]
    one_piece_uv = source.vertices[:, :2] * np.array([0.25, 1.0])  # one continuous layout
    welded = uv_islands(source.vertices, source.faces, one_piece_uv)
    assert len(set(welded.tolist())) == 1


def test_uv_transfer_splits_the_seam_and_never_interpolates_across_it() -> None:
    source = two_island_square()
    avatar = grid(8)  # x = 3/7 and 4/7 straddle the seam at x = 0.5
    index, faces, uv, distance = transfer_uv(avatar.vertices, avatar.faces, source)
    assert distance < 1e-9
    assert len(index) > avatar.num_vertices  # copies were made at the seam
    np.testing.assert_array_equal(index[: avatar.num_vertices], np.arange(avatar.num_vertices))
    # Every triangle reads one piece of the image: all its u in the left or all in the right one.
    u = uv[faces][..., 0]
    left, right = (u <= 0.25 + 1e-6).all(1), (u >= 0.5 - 1e-6).all(1)
    assert (left | right).all()
    # A vertex keeps the UV of the point it sits on; a copy the UV of that point in its island.
    position = avatar.vertices[index]
    on_left = position[:, 0] < 0.5 - 1e-9
    expected_u = np.where(on_left, position[:, 0] * 0.5, 0.5 + (position[:, 0] - 0.5) * 0.5)
    first = np.arange(len(index)) < avatar.num_vertices
    np.testing.assert_allclose(uv[first, 0], expected_u[first], atol=1e-6)
    np.testing.assert_allclose(uv[:, 1], position[:, 1], atol=1e-6)
    copies = uv[~first, 0]
    for w, u_copy in zip(np.flatnonzero(~first), copies):
        x = position[w, 0]
        assert np.isclose(u_copy, x * 0.5, atol=0.07) or np.isclose(
            u_copy, 0.5 + (x - 0.5) * 0.5, atol=0.07
        )


def test_looks_are_taken_in_order() -> None:
    source = two_island_square()
    avatar = grid(4)
    painted = TriMesh(avatar.vertices, avatar.faces, np.full((avatar.num_vertices, 3), 0.3))
    assert avatar_look(painted, source).kind == "texture"  # the source's texture first
    assert avatar_look(painted, source, "colours").kind == "colours"
    assert avatar_look(painted, None).origin == "the canonical mesh's vertex colours"
    coloured = SourceAppearance(source.vertices, source.faces, colors=np.full((8, 3), 0.5))
    look = avatar_look(avatar, coloured)
    assert look.kind == "colours" and np.allclose(look.colors, 0.5)
    plain = SourceAppearance(source.vertices, source.faces, base_color_factor=(1.0, 0.0, 0.0, 1.0))
    assert avatar_look(avatar, plain).kind == "factor"
    assert avatar_look(avatar, None) is None and avatar_look(painted, source, "none") is None


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20 : 20 + length])


def test_textured_character_exports_with_its_texture(tmp_path) -> None:
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "cesium.glb"
    main(["import", "gltf", "--src", str(ASSETS / "CesiumMan.glb"), "--out", str(data)])
    main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"])
    main(["export", "--run", str(run), "--poses", str(data), "--split", "test-out",
          "--out", str(out)])  # fmt: skip
    gltf = glb_json(out)
    primitive = gltf["meshes"][0]["primitives"][0]
    assert "TEXCOORD_0" in primitive["attributes"]
    material = gltf["materials"][primitive["material"]]
    assert "baseColorTexture" in material["pbrMetallicRoughness"]
    assert gltf["images"] and gltf["textures"]
    if find_validator() is not None:
        report = validate_glb(out)
        assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
