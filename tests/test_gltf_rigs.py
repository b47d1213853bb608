"""glTF characters as people have them: the Khronos sample characters, and the skinning corner
cases the glTF specification allows (built here from those files and from the test quadruped)."""

import logging

import numpy as np
import pygltflib
import pytest

import gltf_edit as edit
from gltf_quadruped import NAMES, write_quadruped_glb
from invskin.data.format import DataError, load_dataset
from invskin.data.loaders.gltf import (
    convert_gltf,
    detect_units,
    factor_uniform_scale,
    one_clip_split,
    split_frames,
)
from invskin.motion.gltf_anim import upright_rotation

ASSETS = edit.ASSETS


def _import(src, out, **kwargs):
    kwargs.setdefault("fps", 10.0)
    return convert_gltf(src, out, progress=False, **kwargs)


def _same_dataset(a, b, atol: float = 1e-4) -> None:
    assert a.skeleton.names == b.skeleton.names and a.skeleton.parents == b.skeleton.parents
    assert np.allclose(a.skeleton.canonical, b.skeleton.canonical, atol=atol)
    assert np.allclose(a.prior.vertices, b.prior.vertices, atol=atol)
    assert np.allclose(a.prior.weights, b.prior.weights, atol=atol)
    assert a.frame_ids == b.frame_ids
    assert np.allclose(a.transforms, b.transforms, atol=atol)


# -- pure helpers ---------------------------------------------------------------------------------


def test_factor_uniform_scale_keeps_rotation_and_names_a_sheared_joint() -> None:
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    m = np.eye(4)[None].repeat(2, 0)
    m[0, :3, :3] = 0.01 * rotation
    m[0, :3, 3] = [1.0, 2.0, 3.0]
    rigid, scale = factor_uniform_scale(m, ["a", "b"], "x.glb")
    assert np.allclose(rigid[0, :3, :3], rotation) and np.allclose(rigid[0, :3, 3], [1, 2, 3])
    assert np.allclose(scale, [0.01, 1.0])
    m[1, :3, :3] = np.diag([1.0, 2.0, 1.0])
    with pytest.raises(DataError, match="joint 'b' is scaled non-uniformly or sheared"):
        factor_uniform_scale(m, ["a", "b"], "x.glb")
    m[1, :3, :3] = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(DataError, match="joint 'b' is mirrored"):
        factor_uniform_scale(m, ["a", "b"], "x.glb")


def test_units_are_detected_from_the_size() -> None:
    assert detect_units(2.0, "x") == 1.0
    assert detect_units(171.0, "x") == 0.01
    assert detect_units(1800.0, "x") == 0.001
    with pytest.raises(DataError, match="--units"):
        detect_units(50_000.0, "x")


def test_upright_rotation_turns_z_up_to_y_up() -> None:
    z_up_to_y_up = np.eye(4)
    z_up_to_y_up[1:3, 1:3] = [[0.0, 1.0], [-1.0, 0.0]]  # (x, y, z) -> (x, z, -y)
    assert np.allclose(upright_rotation(z_up_to_y_up) @ [0, 0, 1, 0], [0, 1, 0, 0])
    assert np.allclose(upright_rotation(np.eye(4)), np.eye(4))
    for rest in (np.diag([1.0, -1.0, -1.0, 1.0]), np.diag([2.0, 2.0, 2.0, 1.0])):
        turn = upright_rotation(rest)
        up = np.linalg.inv(rest[:3, :3]) @ [0, 1, 0]
        assert np.allclose(turn[:3, :3] @ up / np.linalg.norm(up), [0, 1, 0])


def test_one_clip_window_and_frame_splits() -> None:
    assert one_clip_split(12, 0.2) == 10 and one_clip_split(12, 0.0) == 12
    splits = dict(split_frames(12, 2, held_out=False, window_start=10))
    assert [k for k, s in splits.items() if s == "test-out"] == [10]
    assert [k for k, s in splits.items() if s == "train"] == [0, 2, 4, 6, 8]
    assert [k for k, s in splits.items() if s == "test-within"] == [1, 3, 5, 7, 9]
    assert dict(split_frames(8, 2, held_out=True, window_start=8)) == {
        0: "test-out", 2: "test-out", 4: "test-out", 6: "test-out",
    }  # fmt: skip


# -- the Khronos samples --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "bones", "height"),
    [("RiggedSimple", 2, 9.15), ("RiggedFigure", 19, 1.45), ("CesiumMan", 19, 1.51),
     ("Fox", 24, 0.79)],
)  # fmt: skip
def test_khronos_samples_import_upright_in_metres(tmp_path, name, bones, height) -> None:
    dataset = _import(ASSETS / f"{name}.glb", tmp_path / name, height="keep")
    assert dataset.num_bones == bones
    extent = np.ptp(dataset.prior.vertices.numpy(), axis=0)
    assert extent[1] == pytest.approx(height, rel=0.01)  # y up, in metres
    assert dataset.info["metres_per_unit"] == (0.01 if name == "Fox" else 1.0)
    assert dataset.info["resized"] is None
    # The scans are the file's skinned mesh; the canonical joints lie inside the mesh's box.
    joints = dataset.skeleton.joints().numpy()
    lo, hi = dataset.prior.vertices.numpy().min(0), dataset.prior.vertices.numpy().max(0)
    assert ((joints > lo - 0.01) & (joints < hi + 0.01)).all()
    assert all(len(ids) > 0 for ids in dataset.splits.values())


@pytest.mark.slow
def test_a_character_outside_human_heights_is_resized_for_training(tmp_path) -> None:
    """RiggedSimple is 9.15 m tall: ``auto`` scales everything (mesh, skeleton, motion, scans) by
    one factor to 1.7 m and records it; a given height does the same to that height; the human-
    sized CesiumMan is kept as it is."""
    src = ASSETS / "RiggedSimple.glb"
    kept = _import(src, tmp_path / "keep", height="keep")
    auto = _import(src, tmp_path / "auto")
    given = _import(src, tmp_path / "given", height=0.8)
    for dataset, tall in ((auto, 1.7), (given, 0.8)):
        factor = tall / np.ptp(kept.prior.vertices[:, 1].numpy())
        assert np.ptp(dataset.prior.vertices[:, 1].numpy()) == pytest.approx(tall, rel=1e-5)
        assert dataset.info["resized"]["factor"] == pytest.approx(factor, rel=1e-6)
        assert dataset.info["metres_per_unit"] == pytest.approx(factor, rel=1e-6)
        scaled = kept.transforms.clone()
        scaled[..., :3, 3] *= factor
        assert np.allclose(dataset.transforms, scaled, atol=1e-5)
        assert np.allclose(dataset.skeleton.joints(), kept.skeleton.joints() * factor, atol=1e-5)
        assert np.allclose(dataset.prior.weights, kept.prior.weights)
        scan, scan_kept = dataset.split("train").scan(0), kept.split("train").scan(0)
        assert np.allclose(scan.vertices, scan_kept.vertices * factor, atol=1e-5)
    assert _import(ASSETS / "CesiumMan.glb", tmp_path / "man").info["resized"] is None
    with pytest.raises(DataError, match="height must be"):
        _import(src, tmp_path / "bad", height="tall")


@pytest.mark.slow
def test_fox_in_centimetres_is_refused_as_metres_and_read_as_centimetres(tmp_path, caplog) -> None:
    fox = ASSETS / "Fox.glb"
    auto = _import(fox, tmp_path / "auto", animations=["Walk"])
    given = _import(fox, tmp_path / "cm", animations=["Walk"], units="cm")
    _same_dataset(auto, given, atol=1e-6)
    with pytest.raises(DataError, match="expected metres"):
        _import(fox, tmp_path / "m", animations=["Walk"], units="m", height="keep")
    # Read as metres the fox is 79 m tall: the default size brings it to 1.7 m, and says so.
    with caplog.at_level(logging.WARNING):
        giant = _import(fox, tmp_path / "giant", animations=["Walk"], units="m")
    assert "scaled by" in caplog.text and "79 m tall" in caplog.text
    assert np.ptp(giant.prior.vertices[:, 1].numpy()) == pytest.approx(1.7, rel=1e-5)


def test_one_clip_holds_out_its_last_time_window(tmp_path) -> None:
    dataset = _import(ASSETS / "RiggedFigure.glb", tmp_path / "figure")
    test_out = [dataset.frame_ids[i] for i in dataset.splits["test-out"]]
    train = [dataset.frame_ids[i] for i in dataset.splits["train"]]
    last_train = max(int(f.rsplit("_", 1)[1]) for f in train)
    assert test_out and all(int(f.rsplit("_", 1)[1]) > last_train for f in test_out)
    none = _import(ASSETS / "RiggedFigure.glb", tmp_path / "none", test_out_window=0.0)
    assert len(none.splits["test-out"]) == 0


# -- scales ---------------------------------------------------------------------------------------


def test_scaled_armature_imports_like_the_unscaled_character(tmp_path) -> None:
    """A Khronos character under a node scaled by 0.01, joints in centimetres, inverse bind
    matrices scaled by 100 (a Mixamo or Blender export in centimetres) imports rigid, in metres,
    the same as the file it was made from."""
    source = ASSETS / "RiggedFigure.glb"
    gltf = edit.load(source)
    edit.scale_armature(gltf, 0.01)
    scaled = edit.save(gltf, tmp_path / "scaled.glb")
    assert np.allclose(np.linalg.det(edit.inverse_bind(gltf)[:, :3, :3]), 1e6, rtol=1e-3)
    _same_dataset(_import(source, tmp_path / "a"), _import(scaled, tmp_path / "b"))


def test_scaled_joints_are_factored_and_non_uniform_ones_refused(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = edit.load(glb)
    ibm = edit.inverse_bind(gltf)
    names = [gltf.nodes[j].name for j in gltf.skins[0].joints]
    uniform = ibm.copy()
    uniform[names.index("tail_2")] = np.diag([3.0, 3.0, 3.0, 1.0]) @ ibm[names.index("tail_2")]
    edit.set_inverse_bind(gltf, uniform)
    edit.save(gltf, tmp_path / "uniform.glb")
    # The bind pose imports rigid; the animation's skinning of tail_2 is now scaled: named.
    with pytest.raises(DataError, match="scales joint 'tail_2'"):
        _import(tmp_path / "uniform.glb", tmp_path / "u")
    sheared = ibm.copy()
    sheared[names.index("paw_fl")] = np.diag([1.0, 1.5, 1.0, 1.0]) @ ibm[names.index("paw_fl")]
    edit.set_inverse_bind(gltf, sheared)
    edit.save(gltf, tmp_path / "sheared.glb")
    with pytest.raises(DataError, match="joint 'paw_fl' is scaled non-uniformly"):
        _import(tmp_path / "sheared.glb", tmp_path / "s")


# -- the skinning cases of the glTF specification ---------------------------------------------------


def test_transform_on_the_skinned_node_and_its_parent_is_ignored(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = edit.load(glb)
    body = edit.mesh_node(gltf)
    gltf.nodes[body].translation = [5.0, 0.0, 0.0]
    gltf.nodes[body].scale = [2.0, 2.0, 2.0]
    edit.insert_parent(gltf, body, pygltflib.Node(name="group", rotation=[0.0, 0.7071, 0, 0.7071]))
    moved = edit.save(gltf, tmp_path / "moved.glb")
    _same_dataset(_import(glb, tmp_path / "a"), _import(moved, tmp_path / "b"), atol=1e-6)


def test_skin_without_inverse_bind_matrices_is_refused(tmp_path) -> None:
    gltf = edit.load(write_quadruped_glb(tmp_path / "q.glb"))
    gltf.skins[0].inverseBindMatrices = None
    with pytest.raises(DataError, match="no inverseBindMatrices"):
        _import(edit.save(gltf, tmp_path / "no_ibm.glb"), tmp_path / "out")


def test_two_meshes_sharing_one_skin_merge_or_are_chosen(tmp_path) -> None:
    gltf = edit.load(write_quadruped_glb(tmp_path / "q.glb"))
    gltf.nodes.append(pygltflib.Node(name="body_copy", mesh=0, skin=0))
    gltf.scenes[0].nodes.append(len(gltf.nodes) - 1)
    glb = edit.save(gltf, tmp_path / "two.glb")
    both = _import(glb, tmp_path / "both")
    one = _import(glb, tmp_path / "one", meshes=["body"])
    assert both.prior.vertices.shape[0] == 2 * one.prior.vertices.shape[0]
    with pytest.raises(DataError, match=r"meshes \['hat'\] are not skinned.*body_copy"):
        _import(glb, tmp_path / "bad", meshes=["hat"])


def test_joint_that_is_a_scene_root_imports(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = edit.load(glb)
    hips = edit.root_joint(gltf)
    assert hips in gltf.scenes[0].nodes and gltf.nodes[hips].name == "hips"
    dataset = _import(glb, tmp_path / "out")
    assert dataset.skeleton.names[0] == "hips" and dataset.skeleton.parents[0] == -1


def test_two_skins_sharing_joints_default_and_choice(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = edit.load(glb)
    skin = gltf.skins[0]
    gltf.skins.append(
        pygltflib.Skin(
            name="copy", joints=list(skin.joints), inverseBindMatrices=skin.inverseBindMatrices
        )
    )
    gltf.nodes.append(pygltflib.Node(name="small", mesh=0, skin=1))
    gltf.nodes.append(pygltflib.Node(name="big", mesh=0, skin=1))
    gltf.scenes[0].nodes += [len(gltf.nodes) - 2, len(gltf.nodes) - 1]
    two = edit.save(gltf, tmp_path / "two_skins.glb")
    default = _import(two, tmp_path / "default")  # skin 1: its meshes hold the most vertices
    assert default.info["skin"] == 1
    first = _import(two, tmp_path / "first", skin="0")
    assert first.info["skin"] == 0
    assert default.prior.vertices.shape[0] == 2 * first.prior.vertices.shape[0]
    assert np.allclose(default.transforms, first.transforms)
    assert _import(two, tmp_path / "named", skin="copy").info["skin"] == 1
    with pytest.raises(DataError, match="no skin named 'other'; it has 0, 1 \\('copy'\\)"):
        _import(two, tmp_path / "bad", skin="other")


def test_non_joint_node_inside_the_joint_hierarchy(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = edit.load(glb)
    head = next(i for i, n in enumerate(gltf.nodes) if n.name == "head")
    offset = np.array([0.0, 0.02, 0.05])
    gltf.nodes[head].translation = (np.array(gltf.nodes[head].translation) - offset).tolist()
    edit.insert_parent(gltf, head, pygltflib.Node(name="helper", translation=offset.tolist()))
    helper = edit.save(gltf, tmp_path / "helper.glb")
    plain, nested = _import(glb, tmp_path / "a"), _import(helper, tmp_path / "b")
    _same_dataset(plain, nested, atol=1e-5)
    names = nested.skeleton.names
    assert names[nested.skeleton.parents[names.index("head")]] == "chest"
    assert "helper" not in names and sorted(names) == sorted(NAMES)


def test_open_parts_get_a_warning(tmp_path, caplog) -> None:
    gltf = edit.load(write_quadruped_glb(tmp_path / "q.glb"))
    prim = gltf.meshes[0].primitives[0]
    faces = edit.accessor(gltf, prim.indices).reshape(-1, 3)[10:]
    blob = gltf.binary_blob()
    raw = faces.astype(np.uint32).tobytes()
    gltf.bufferViews.append(
        pygltflib.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(raw))
    )
    gltf.accessors.append(
        pygltflib.Accessor(bufferView=len(gltf.bufferViews) - 1, componentType=5125,
                           count=faces.size, type="SCALAR")
    )  # fmt: skip
    gltf.set_binary_blob(blob + raw)
    gltf.buffers[0].byteLength = len(blob) + len(raw)
    prim.indices = len(gltf.accessors) - 1
    with caplog.at_level(logging.WARNING, logger="invskin.data"):
        _import(edit.save(gltf, tmp_path / "open.glb"), tmp_path / "out")
    assert "open edges" in caplog.text and "--mesh" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="invskin.data"):
        _import(tmp_path / "q.glb", tmp_path / "closed")
    assert "open edges" not in caplog.text


def test_cli_options_skin_mesh_units(tmp_path, capsys) -> None:
    from invskin.cli.main import main

    main(["import", "gltf", "--src", str(ASSETS / "RiggedSimple.glb"), "--out",
          str(tmp_path / "d"), "--skin", "0", "--mesh", "Cylinder", "--units", "m",
          "--test-out-window", "0.3", "--height", "keep"])  # fmt: skip
    assert "2 bones" in capsys.readouterr().out
    assert load_dataset(tmp_path / "d").info["metres_per_unit"] == 1.0
    main(["import", "gltf", "--src", str(ASSETS / "RiggedSimple.glb"), "--out",
          str(tmp_path / "e"), "--height", "2"])  # fmt: skip
    resized = load_dataset(tmp_path / "e")
    assert np.ptp(resized.prior.vertices[:, 1].numpy()) == pytest.approx(2.0, rel=1e-5)
