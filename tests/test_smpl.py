"""SMPL forward pass on a fake SMPL-layout model made by the tests (never a real SMPL file)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from fixtures_data import SMPL_PARENTS, fake_smpl_arrays, write_fake_smpl
from invskin.body.smpl import (
    SMPL_JOINT_NAMES,
    SMPLFileError,
    SMPLModel,
    find_smpl_file,
    star_pose,
)

D = torch.float64


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return fake_smpl_arrays()


@pytest.fixture(scope="module")
def model(arrays: dict[str, np.ndarray]) -> SMPLModel:
    return SMPLModel.from_arrays(arrays, source="fake")


def naive_smpl(
    arrays: dict[str, np.ndarray], pose: np.ndarray, betas: np.ndarray, transl: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Independent float64 reference: explicit loops, scipy rotations, one 4x4 per joint."""
    shaped = arrays["v_template"] + arrays["shapedirs"][:, :, : len(betas)] @ betas
    rest_joints = arrays["J_regressor"] @ shaped
    rotations = [Rotation.from_rotvec(p).as_matrix() for p in pose.reshape(-1, 3)]
    features = np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
    rest = shaped + arrays["posedirs"] @ features
    world: list[np.ndarray] = []
    for j, parent in enumerate(SMPL_PARENTS):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = rest_joints[j] - (rest_joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    skinning = []
    for j in range(len(SMPL_PARENTS)):
        unrest = np.eye(4)
        unrest[:3, 3] = -rest_joints[j]
        skinning.append(world[j] @ unrest)
    vertices = np.zeros_like(rest)
    for v in range(len(rest)):
        blended = sum(arrays["weights"][v, j] * skinning[j] for j in range(len(SMPL_PARENTS)))
        vertices[v] = (blended @ np.append(rest[v], 1.0))[:3]
    joints = np.stack([g[:3, 3] for g in world])
    return vertices + transl, joints + transl, skinning


def test_zero_pose_returns_the_shaped_template(model: SMPLModel, arrays: dict) -> None:
    out = model(torch.zeros(72, dtype=D))
    np.testing.assert_allclose(out.vertices.numpy(), arrays["v_template"], atol=1e-12)
    np.testing.assert_allclose(
        out.joints.numpy(), arrays["J_regressor"] @ arrays["v_template"], atol=1e-12
    )
    betas = torch.linspace(-1, 1, 10, dtype=D)
    shaped = model(torch.zeros(24, 3, dtype=D), betas=betas).vertices
    expected = arrays["v_template"] + arrays["shapedirs"] @ betas.numpy()
    np.testing.assert_allclose(shaped.numpy(), expected, atol=1e-12)
    assert out.vertices.dtype == D and model(torch.zeros(72)).vertices.dtype == torch.float32


def test_one_joint_moves_only_its_vertices(arrays: dict) -> None:
    no_pose_blend = dict(arrays, posedirs=np.zeros_like(arrays["posedirs"]))
    model = SMPLModel.from_arrays(no_pose_blend)
    elbow = SMPL_JOINT_NAMES.index("left_elbow")
    pose = torch.zeros(24, 3, dtype=D)
    pose[elbow] = torch.tensor([0.0, 0.0, 1.2], dtype=D)
    out = model(pose)
    subtree = {elbow, *(j for j in range(24) if SMPL_PARENTS[j] == elbow)}
    subtree |= {j for j in range(24) if SMPL_PARENTS[j] in subtree}
    influenced = arrays["weights"][:, sorted(subtree)].sum(1) > 0
    moved = np.linalg.norm(out.vertices.numpy() - arrays["v_template"], axis=1) > 1e-9
    np.testing.assert_array_equal(moved, influenced)
    assert influenced.any() and not influenced.all()
    joints_moved = np.linalg.norm(
        out.joints.numpy() - arrays["J_regressor"] @ arrays["v_template"], axis=1
    )
    assert set(np.flatnonzero(joints_moved > 1e-9)) == subtree - {elbow}


def test_matches_naive_reference_in_float64(model: SMPLModel, arrays: dict) -> None:
    rng = np.random.default_rng(1)
    pose = rng.normal(scale=0.4, size=72)
    betas = rng.normal(size=7)
    transl = rng.normal(size=3)
    out = model(torch.from_numpy(pose), torch.from_numpy(betas), torch.from_numpy(transl))
    vertices, joints, skinning = naive_smpl(arrays, pose, betas, transl)
    np.testing.assert_allclose(out.vertices.numpy(), vertices, atol=1e-10)
    np.testing.assert_allclose(out.joints.numpy(), joints, atol=1e-10)
    # Canonical-to-posed = A(pose) A(star)^-1 with the translation in front.
    _, _, star = naive_smpl(arrays, star_pose().numpy().ravel(), betas, np.zeros(3))
    shift = np.eye(4)
    shift[:3, 3] = transl
    expected = np.stack([shift @ a @ np.linalg.inv(c) for a, c in zip(skinning, star)])
    np.testing.assert_allclose(out.bone_transforms.numpy(), expected, atol=1e-10)
    only = model.bone_transforms(torch.from_numpy(pose), torch.from_numpy(betas))
    np.testing.assert_allclose(only.numpy()[:, :3, 3] + transl, expected[:, :3, 3], atol=1e-10)


def test_batched_forward_equals_per_frame(model: SMPLModel) -> None:
    poses = 0.3 * torch.randn(3, 24, 3, dtype=D)
    batched = model(poses, betas=torch.randn(3, 10, dtype=D))
    single = model(poses[1], betas=batched.vertices.new_zeros(0))  # betas of length 0 allowed
    assert batched.vertices.shape == (3, model.num_vertices, 3)
    assert batched.bone_transforms.shape == (3, 24, 4, 4)
    assert single.vertices.shape == (model.num_vertices, 3)


def test_canonical_pose_bone_transforms(model: SMPLModel) -> None:
    canonical = model.bone_transforms(star_pose().float())
    assert torch.allclose(canonical, torch.eye(4).expand(24, 4, 4), atol=1e-6)
    skeleton = model.skeleton()
    assert skeleton.names == SMPL_JOINT_NAMES and skeleton.parents == SMPL_PARENTS
    joints = skeleton.joints().double()
    # Star pose: the left ankle swings outwards (+x) and up compared with the T-pose.
    t_joints = model.with_canonical_pose(torch.zeros(24, 3)).skeleton().joints().double()
    ankle = SMPL_JOINT_NAMES.index("left_ankle")
    assert joints[ankle, 0] > t_joints[ankle, 0] + 0.1 and joints[ankle, 1] > t_joints[ankle, 1]
    # T_j maps canonical joint j onto posed joint j; the Skeleton reproduces the same transforms.
    pose = 0.5 * torch.randn(24, 3, dtype=D)
    out = model(pose)
    posed = out.bone_transforms[:, :3, :3] @ joints[:, :, None] + out.bone_transforms[:, :3, 3:]
    assert torch.allclose(posed[..., 0], out.joints, atol=1e-5)
    from_skeleton = skeleton.bone_transforms(model.skeleton_rotations(pose).float())
    assert torch.allclose(from_skeleton.double(), out.bone_transforms, atol=1e-5)


def test_v_template_override(model: SMPLModel, arrays: dict) -> None:
    minimal = torch.from_numpy(arrays["v_template"] * 1.1)
    out = model(torch.zeros(72, dtype=D), v_template=minimal)
    assert torch.allclose(out.vertices, minimal)
    with pytest.raises(ValueError, match="vertex count"):
        model(torch.zeros(72, dtype=D), v_template=minimal[:10])


def test_file_variants_load_the_same_model(tmp_path: Path, arrays: dict) -> None:
    npz = SMPLModel.load(write_fake_smpl(tmp_path / "SMPL_NEUTRAL.npz"))
    pkl_arrays = dict(arrays)
    pkl_arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    pkl_arrays["posedirs"] = arrays["posedirs"].reshape(-1, 207)
    with open(tmp_path / "model.pkl", "wb") as handle:
        pickle.dump(pkl_arrays, handle, protocol=2)
    pkl = SMPLModel.load(tmp_path / "model.pkl")
    sparse_npz = dict(arrays, posedirs=arrays["posedirs"].reshape(-1, 207).T)
    np.savez(tmp_path / "t.npz", **sparse_npz)
    transposed = SMPLModel.load(tmp_path / "t.npz")
    pose = 0.3 * torch.randn(72, dtype=D)
    reference = npz(pose).vertices
    assert torch.allclose(pkl(pose).vertices, reference)
    assert torch.allclose(transposed(pose).vertices, reference)


def test_missing_and_bad_files(tmp_path: Path, arrays: dict) -> None:
    with pytest.raises(
        SMPLFileError, match=r"licensed \(https://smpl.is.tue.mpg.de\).*smpl_model_path"
    ):
        SMPLModel.load(tmp_path / "SMPL_MALE.npz")
    np.savez(tmp_path / "nokey.npz", **{k: v for k, v in arrays.items() if k != "weights"})
    with pytest.raises(SMPLFileError, match=r"nokey.npz lacks the keys \['weights'\]"):
        SMPLModel.load(tmp_path / "nokey.npz")
    np.savez(tmp_path / "shape.npz", **dict(arrays, posedirs=arrays["posedirs"][:, :, :100]))
    with pytest.raises(SMPLFileError, match="shape.npz: posedirs has shape"):
        SMPLModel.load(tmp_path / "shape.npz")
    nan = dict(arrays, v_template=arrays["v_template"].copy())
    nan["v_template"][3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **nan)
    with pytest.raises(SMPLFileError, match="v_template contains NaN"):
        SMPLModel.load(tmp_path / "nan.npz")
    # A pickle that needs chumpy: the error says how to convert it to .npz.
    (tmp_path / "chumpy.pkl").write_bytes(b"\x80\x02cchumpy.ch\nCh\nq\x00)\x81q\x01.")
    with pytest.raises(SMPLFileError, match="(?s)chumpy.*np.savez"):
        SMPLModel.load(tmp_path / "chumpy.pkl")
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(SMPLFileError, match="refused to load the object os.system"):
        SMPLModel.load(tmp_path / "evil.pkl")


def test_find_smpl_file_by_gender(tmp_path: Path) -> None:
    for name in ("basicModel_f_lbs_10_207_0_v1.0.0.pkl", "SMPL_MALE.npz", "smpl_neutral.npz"):
        (tmp_path / name).write_bytes(b"")
    assert find_smpl_file(tmp_path, "female").name.startswith("basicModel_f")
    assert find_smpl_file(tmp_path, "male").name == "SMPL_MALE.npz"
    assert find_smpl_file(tmp_path, "neutral").name == "smpl_neutral.npz"
    assert find_smpl_file(tmp_path / "SMPL_MALE.npz", "female").name == "SMPL_MALE.npz"
    with pytest.raises(SMPLFileError, match="licensed"):
        find_smpl_file(tmp_path / "nowhere", "male")
    assert math.isclose(float(star_pose()[1, 2]), math.pi / 6)
