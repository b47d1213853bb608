"""Motions in standard formats (BVH, AMASS-style npz, glTF animation) retargeted onto skeletons.

Ground truth is constructed: a BVH written from known rotations onto a rig with the same rest pose
must give exactly the skeleton's own bone transforms (translation rescaled from centimetres); an
AMASS-style npz on an SMPL rig must give SMPL's own transforms, turned from z up to y up.
"""

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fixtures_data import write_fake_smpl
from invskin.body.smpl import SMPLModel
from invskin.data.format import DataError
from invskin.motion import load_motion
from invskin.motion.bvh import read_bvh, write_bvh
from invskin.motion.retarget import Z_UP_TO_Y_UP
from toy_data import toy_skeleton


def zxy_degrees_to_matrix(angles: np.ndarray) -> np.ndarray:
    return Rotation.from_euler("ZXY", angles, degrees=True).as_matrix()


def toy_bvh(path, names=("root", "middle", "tip"), scale=100.0, frames=5, seed=0):
    """A BVH of the toy chain (offsets in centimetres) and the rotations/shift it holds."""
    rng = np.random.default_rng(seed)
    skeleton = toy_skeleton()
    joints = skeleton.joints().double().numpy()
    offsets = np.stack([joints[0], joints[1] - joints[0], joints[2] - joints[1]]) * scale
    angles = rng.uniform(-40, 40, size=(frames, 3, 3))
    shift = rng.uniform(-0.2, 0.2, size=(frames, 3))
    write_bvh(path, list(names), [-1, 0, 1], offsets, angles, offsets[0] + shift * scale)
    rotations = torch.from_numpy(
        zxy_degrees_to_matrix(angles.reshape(-1, 3)).reshape(frames, 3, 3, 3)
    )
    return skeleton.bone_transforms(rotations, torch.from_numpy(shift)).float()


def test_bvh_on_the_same_rig_gives_its_bone_transforms(tmp_path) -> None:
    expected = toy_bvh(tmp_path / "walk.bvh")
    motion = read_bvh(tmp_path / "walk.bvh")
    assert motion.names == ("root", "middle", "tip") and motion.num_frames == 5
    assert motion.fps == pytest.approx(30.0, rel=1e-4)
    got = load_motion(tmp_path / "walk.bvh", toy_skeleton())
    assert got.dtype == torch.float32 and got.shape == (5, 3, 4, 4)
    assert torch.allclose(got, expected, atol=1e-5)


def test_bvh_retargeted_through_a_mapping_file(tmp_path) -> None:
    expected = toy_bvh(tmp_path / "m.bvh", names=("mixamorig:Hips", "Knee", "Foot"))
    # Without a mapping file the names match nothing: the chain is matched by its structure.
    assert torch.allclose(load_motion(tmp_path / "m.bvh", toy_skeleton()), expected, atol=1e-5)
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"bones": {"root": "mixamorig:Hips", "middle": "Knee", "tip": "Foot"}})
    )
    assert torch.allclose(
        load_motion(tmp_path / "m.bvh", toy_skeleton(), mapping), expected, atol=1e-5
    )
    # An unmapped bone stays in the canonical pose relative to its parent.
    mapping.write_text(json.dumps({"bones": {"root": "mixamorig:Hips", "middle": "Knee"}}))
    got = load_motion(tmp_path / "m.bvh", toy_skeleton(), mapping)
    assert torch.allclose(got[:, 1], expected[:, 1], atol=1e-5)
    assert torch.allclose(got[:, 2], got[:, 1], atol=1e-5)  # tip rigidly follows middle
    assert not torch.allclose(got[:, 2], expected[:, 2], atol=1e-3)
    # A mapping naming bones that exist on neither side is an error naming them.
    mapping.write_text(json.dumps({"bones": {"root": "Pelvis", "wing": "Knee"}}))
    with pytest.raises(DataError, match="do not match") as error:
        load_motion(tmp_path / "m.bvh", toy_skeleton(), mapping)
    assert "'wing'" in str(error.value) and "'Pelvis'" in str(error.value)


def test_bad_bvh_files_give_clear_errors(tmp_path) -> None:
    toy_bvh(tmp_path / "ok.bvh")
    text = (tmp_path / "ok.bvh").read_text()
    (tmp_path / "short.bvh").write_text(text.rsplit("\n", 3)[0])
    with pytest.raises(DataError, match="declares 5 frames"):
        load_motion(tmp_path / "short.bvh", toy_skeleton())
    (tmp_path / "junk.bvh").write_text("hello world")
    with pytest.raises(DataError, match="HIERARCHY"):
        load_motion(tmp_path / "junk.bvh", toy_skeleton())
    with pytest.raises(DataError, match="does not exist"):
        load_motion(tmp_path / "none.bvh", toy_skeleton())


@pytest.mark.parametrize("width", [72, 156, 165])
def test_amass_npz_on_an_smpl_rig_matches_smpl(tmp_path, width: int) -> None:
    model = SMPLModel.load(write_fake_smpl(tmp_path / "SMPL_NEUTRAL.npz"))
    skeleton = model.skeleton()
    rng = np.random.default_rng(1)
    poses = rng.normal(scale=0.3, size=(4, width))
    trans = rng.normal(scale=0.5, size=(4, 3))
    np.savez(tmp_path / "clip.npz", poses=poses, trans=trans, mocap_framerate=np.array(60.0))
    got = load_motion(tmp_path / "clip.npz", skeleton)
    body = np.zeros((4, 24, 3))
    joints = 24 if width == 72 else 22  # SMPL+H / SMPL-X: body joints only, hands at rest
    body[:, :joints] = poses[:, : 3 * joints].reshape(4, joints, 3)
    smpl = model.bone_transforms(torch.from_numpy(body), transl=torch.from_numpy(trans))
    expected = torch.from_numpy(Z_UP_TO_Y_UP) @ smpl  # AMASS is z up
    assert torch.allclose(got.double(), expected, atol=1e-5)


def test_amass_npz_errors(tmp_path) -> None:
    model = SMPLModel.load(write_fake_smpl(tmp_path / "SMPL_NEUTRAL.npz"))
    np.savez(tmp_path / "bad.npz", poses=np.zeros((3, 50)))
    with pytest.raises(DataError, match="SMPL-X"):
        load_motion(tmp_path / "bad.npz", model.skeleton())
    np.savez(tmp_path / "other.npz", hello=np.zeros(3))
    with pytest.raises(DataError, match="AMASS"):
        load_motion(tmp_path / "other.npz", model.skeleton())
    # SMPL joint names do not exist on the toy rig: the error names them.
    np.savez(tmp_path / "clip.npz", poses=np.zeros((2, 72)))
    with pytest.raises(DataError, match="root"):
        load_motion(tmp_path / "clip.npz", toy_skeleton())


def test_plain_transform_arrays_pass_through(tmp_path) -> None:
    transforms = toy_skeleton().bone_transforms(torch.eye(3).repeat(2, 3, 1, 1)).numpy()
    np.save(tmp_path / "t.npy", transforms)
    np.savez(tmp_path / "t.npz", transforms=transforms)
    for name in ("t.npy", "t.npz"):
        assert torch.allclose(
            load_motion(tmp_path / name, toy_skeleton()), torch.from_numpy(transforms)
        )
    np.save(tmp_path / "wrong.npy", transforms[:, :2])
    with pytest.raises(DataError, match="skeleton has 3 bones"):
        load_motion(tmp_path / "wrong.npy", toy_skeleton())


def test_amass_rest_posture_through_a_mapping_file(tmp_path) -> None:
    """Without a mapping file an SMPL rig's T-pose frames are axis-aligned (SMPL's convention);
    a mapping file says the rigs' rest postures match unless it sets "rest": "identity"."""
    model = SMPLModel.load(write_fake_smpl(tmp_path / "SMPL_NEUTRAL.npz"))
    skeleton = model.skeleton()
    np.savez(tmp_path / "zero.npz", poses=np.zeros((2, 72)), trans=np.zeros((2, 3)))
    names = {name: name for name in skeleton.names}
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"bones": names}))
    turned = torch.from_numpy(Z_UP_TO_Y_UP).float()
    canonical_rest = load_motion(tmp_path / "zero.npz", skeleton, mapping)
    assert torch.allclose(canonical_rest, turned.expand_as(canonical_rest), atol=1e-5)
    mapping.write_text(json.dumps({"bones": names, "rest": "identity"}))
    identity_rest = load_motion(tmp_path / "zero.npz", skeleton, mapping)
    assert torch.allclose(identity_rest, load_motion(tmp_path / "zero.npz", skeleton), atol=1e-6)
    assert not torch.allclose(identity_rest, canonical_rest, atol=1e-2)  # legs leave the star pose
    mapping.write_text(json.dumps({"bones": names, "rest": "tpose"}))
    with pytest.raises(DataError, match="'rest' must be"):
        load_motion(tmp_path / "zero.npz", skeleton, mapping)


def test_gltf_animation_from_glb_and_from_gltf_with_bin_match(tmp_path) -> None:
    import pygltflib

    from gltf_quadruped import NAMES, write_quadruped_glb
    from invskin.motion.gltf_anim import read_gltf_motion

    glb = write_quadruped_glb(tmp_path / "q.glb")
    gltf = pygltflib.GLTF2().load(str(glb))
    (tmp_path / "q.bin").write_bytes(gltf.binary_blob())
    gltf.buffers[0].uri = "q.bin"
    gltf._glb_data = None
    gltf.save_json(str(tmp_path / "q.gltf"))
    a, b = read_gltf_motion(glb), read_gltf_motion(tmp_path / "q.gltf")
    assert sorted(a.names) == sorted(NAMES) and a.names == b.names
    assert all(p < j for j, p in enumerate(a.parents))  # parents first, though the file is not
    assert a.num_frames == 12 and np.allclose(a.world, b.world)
    with pytest.raises(DataError, match="no animation 'run'"):
        read_gltf_motion(glb, animation="run")


def test_amass_smplx_split_keys_equal_the_flat_poses(tmp_path) -> None:
    model = SMPLModel.load(write_fake_smpl(tmp_path / "SMPL_NEUTRAL.npz"))
    rng = np.random.default_rng(2)
    poses = rng.normal(scale=0.3, size=(3, 165))
    trans = rng.normal(scale=0.2, size=(3, 3))
    np.savez(tmp_path / "flat.npz", poses=poses, trans=trans)
    np.savez(
        tmp_path / "split.npz",
        root_orient=poses[:, :3],
        pose_body=poses[:, 3:66],
        pose_hand=poses[:, 75:],
        trans=trans,
        mocap_frame_rate=np.array(120.0),
    )
    flat = load_motion(tmp_path / "flat.npz", model.skeleton())
    split = load_motion(tmp_path / "split.npz", model.skeleton())
    assert torch.allclose(flat, split, atol=1e-6)
