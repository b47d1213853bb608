"""A textured glTF character imported without its own scans: its skinned mesh becomes coloured
scans (the texture at each vertex's UV), so ``--signal colour`` can train on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from invskin.data.format import load_dataset
from invskin.data.loaders.appearance import SourceAppearance, load_appearance
from invskin.data.loaders.gltf import convert_gltf
from invskin.data.loaders.gltf_look import look_vertex_colours, sample_texture

ASSETS = Path(__file__).parent / "assets" / "gltf"


def test_textured_character_gives_coloured_scans_that_follow_the_vertices(tmp_path) -> None:
    dataset = convert_gltf(ASSETS / "CesiumMan.glb", tmp_path / "cesium", progress=False)
    assert dataset.scan_colour
    reopened = load_dataset(tmp_path / "cesium")
    assert reopened.scan_colour
    look = load_appearance(reopened.root)
    assert look is not None and look.textured
    expected = sample_texture(look.texture.decode(), look.uv, look.texture.sampler)
    first, last = reopened.scan(0), reopened.scan(len(reopened) - 1)
    assert first.colors is not None and first.colors.shape == (first.num_vertices, 3)
    # The same vertex has the same colour in every frame (the print moves with the mesh) ...
    np.testing.assert_allclose(first.colors, last.colors, atol=1 / 255)
    assert not np.allclose(first.vertices, last.vertices)
    # ... and it is the texture's colour at the vertex's UV (factor 1 here), not a constant.
    np.testing.assert_allclose(first.colors, expected, atol=2 / 255)
    assert first.colors.std(0).max() > 0.05


def test_vertex_colours_of_each_kind_of_look() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2]])
    assert look_vertex_colours(None) is None
    plain = SourceAppearance(vertices, faces, base_color_factor=(0.8, 0.2, 0.2, 1.0))
    assert look_vertex_colours(plain) is None  # one colour everywhere: nothing to see moving
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    painted = SourceAppearance(vertices, faces, colors=colours)
    np.testing.assert_array_equal(look_vertex_colours(painted), colours)


def test_texture_entries_of_one_image_are_one_texture(tmp_path) -> None:
    """A second mesh on the skin whose material names its own texture entry of the same image and
    sampler (as Mixamo exports do) keeps the look a texture; another sampler makes it colours."""
    import copy

    import pygltflib

    import gltf_edit as edit

    def with_copy(name: str, clamp: bool) -> Path:
        gltf = edit.load(ASSETS / "CesiumMan.glb")
        sampler = gltf.textures[0].sampler
        if clamp:
            gltf.samplers.append(pygltflib.Sampler(wrapS=33071, wrapT=33071))
            sampler = len(gltf.samplers) - 1
        gltf.textures.append(pygltflib.Texture(source=gltf.textures[0].source, sampler=sampler))
        material = copy.deepcopy(gltf.materials[0])
        material.pbrMetallicRoughness.baseColorTexture.index = len(gltf.textures) - 1
        gltf.materials.append(material)
        mesh = copy.deepcopy(gltf.meshes[0])
        for primitive in mesh.primitives:
            primitive.material = len(gltf.materials) - 1
        gltf.meshes.append(mesh)
        gltf.nodes.append(pygltflib.Node(name="copy", mesh=len(gltf.meshes) - 1, skin=0))
        gltf.scenes[0].nodes.append(len(gltf.nodes) - 1)
        return edit.save(gltf, tmp_path / f"{name}.glb")

    one = convert_gltf(with_copy("same", False), tmp_path / "one", progress=False)
    look = load_appearance(one.root)
    assert look is not None and look.textured and look.colors is None
    assert len(look.uv) == len(one.prior.vertices)
    two = convert_gltf(with_copy("clamped", True), tmp_path / "two", progress=False)
    other = load_appearance(two.root)
    assert other is not None and not other.textured and other.colors is not None
