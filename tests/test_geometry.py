"""Geometry core: constructed ground truth, naive references in float64, gradcheck, batch shapes."""

import math

import pytest
import torch

from invskin.body import Skeleton, merge_weights
from invskin.geometry import (
    apply_transform,
    axis_angle_to_matrix,
    forward_kinematics,
    identity_transforms,
    invert_affine,
    invert_rigid,
    lbs,
    lbs_jacobian,
    local_from_world,
    make_transform,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)

BATCH_SHAPES = [(), (2,), (1, 2)]
D = torch.float64


def random_rigid(*shape: int) -> torch.Tensor:
    return make_transform(
        axis_angle_to_matrix(torch.randn(*shape, 3, dtype=D)), torch.randn(*shape, 3, dtype=D)
    )


def test_axis_angle_known_rotation() -> None:
    # 90 degrees about z maps x to y (right-handed, column vectors).
    rot = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=D))
    assert torch.allclose(
        rot @ torch.tensor([1.0, 0, 0], dtype=D), torch.tensor([0.0, 1, 0], dtype=D)
    )


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_rotation_round_trips(shape: tuple[int, ...]) -> None:
    aa = torch.randn(*shape, 3, dtype=D)
    aa = aa / aa.norm(dim=-1, keepdim=True).clamp(min=1e-9) * torch.rand(*shape, 1, dtype=D) * 3.0
    rot = axis_angle_to_matrix(aa)
    assert rot.shape == (*shape, 3, 3)
    eye = torch.eye(3, dtype=D).expand_as(rot)
    assert torch.allclose(rot @ rot.transpose(-1, -2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(shape, dtype=D))
    assert torch.allclose(matrix_to_axis_angle(rot), aa, atol=1e-9)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(rot)), rot, atol=1e-12)


def test_axis_angle_near_pi_and_zero() -> None:
    aa = torch.tensor(
        [[0.0, 0.0, 0.0], [1e-9, 0, 0], [0, math.pi - 1e-7, 0], [0, 0, math.pi]], dtype=D
    )
    back = axis_angle_to_matrix(matrix_to_axis_angle(axis_angle_to_matrix(aa)))
    assert torch.allclose(back, axis_angle_to_matrix(aa), atol=1e-6)


def test_rodrigues_gradcheck_including_identity() -> None:
    aa = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0]], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    d6 = torch.randn(4, 6, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_transform_inverses(shape: tuple[int, ...]) -> None:
    t = random_rigid(*shape)
    eye = torch.eye(4, dtype=D).expand_as(t)
    assert torch.allclose(invert_rigid(t) @ t, eye, atol=1e-12)
    a = t.clone()
    a[..., :3, :3] *= 1.7
    assert torch.allclose(invert_affine(a) @ a, eye, atol=1e-12)
    pts = torch.randn(*shape, 5, 3, dtype=D)
    assert torch.allclose(apply_transform(invert_rigid(t), apply_transform(t, pts)), pts)


def test_forward_kinematics_against_naive_chain() -> None:
    parents = (-1, 0, 1, 0, 3)
    local = random_rigid(2, 5)
    world = forward_kinematics(local, parents)
    # Naive: walk up the chain to the root for every bone.
    for j in range(5):
        chain = torch.eye(4, dtype=D).expand(2, 4, 4)
        k = j
        while k >= 0:
            chain = local[:, k] @ chain
            k = parents[k]
        assert torch.allclose(world[:, j], chain)
    assert torch.allclose(local_from_world(world, parents), local, atol=1e-10)


def test_forward_kinematics_rejects_bad_parent_order() -> None:
    with pytest.raises(ValueError, match="parents must come before"):
        forward_kinematics(identity_transforms(2, dtype=D), (1, -1))


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_lbs_identity_pose_returns_input(shape: tuple[int, ...]) -> None:
    pts = torch.randn(*shape, 7, 3, dtype=D)
    w = torch.softmax(torch.randn(*shape, 7, 4, dtype=D), -1)
    out = lbs(pts, w, identity_transforms(*shape, 4, dtype=D))
    assert out.shape == pts.shape
    assert torch.allclose(out, pts)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_lbs_one_rigid_bone_is_exact_rigid_transform(shape: tuple[int, ...]) -> None:
    pts = torch.randn(*shape, 7, 3, dtype=D)
    t = random_rigid(*shape, 1)
    out = lbs(pts, torch.ones(*shape, 7, 1, dtype=D), t)
    assert torch.allclose(out, apply_transform(t[..., 0, :, :], pts))


def test_lbs_jacobian_matches_autograd_for_a_weight_field() -> None:
    transforms = random_rigid(3)
    centres = torch.randn(3, 3, dtype=D)

    def weight_field(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(-((x[..., None, :] - centres) ** 2).sum(-1), -1)

    def skin(x: torch.Tensor) -> torch.Tensor:
        return lbs(x, weight_field(x), transforms)

    pts = torch.randn(6, 3, dtype=D)
    grads = torch.stack(
        [torch.autograd.functional.jacobian(lambda p: weight_field(p[None])[0], p) for p in pts]
    )
    analytic = lbs_jacobian(pts, weight_field(pts), grads, transforms)
    numeric = torch.stack(
        [torch.autograd.functional.jacobian(lambda p: skin(p[None])[0], p) for p in pts]
    )
    assert torch.allclose(analytic, numeric, atol=1e-10)


def test_lbs_gradcheck() -> None:
    pts = torch.randn(4, 3, dtype=D, requires_grad=True)
    w = torch.softmax(torch.randn(4, 3, dtype=D), -1).requires_grad_()
    t = random_rigid(3).requires_grad_()
    assert torch.autograd.gradcheck(lbs, (pts, w, t))


def make_arm() -> Skeleton:
    canonical = torch.stack(
        [
            make_transform(torch.eye(3), torch.tensor([0.0, 0.0, 0.0])),
            make_transform(torch.eye(3), torch.tensor([1.0, 0.0, 0.0])),
            make_transform(torch.eye(3), torch.tensor([2.0, 0.0, 0.0])),
        ]
    )
    return Skeleton(names=("root", "elbow", "hand"), parents=(-1, 0, 1), canonical=canonical)


def test_skeleton_identity_pose_gives_identity_bone_transforms() -> None:
    skel = make_arm()
    rots = torch.eye(3).expand(2, 3, 3, 3)
    t = skel.bone_transforms(rots)
    assert torch.allclose(t, torch.eye(4).expand_as(t), atol=1e-6)


def test_skeleton_bending_elbow_moves_the_hand_correctly() -> None:
    skel = make_arm()
    rots = torch.eye(3).repeat(3, 1, 1)
    rots[1] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    t = skel.bone_transforms(rots, root_translation=torch.tensor([0.0, 0.0, 0.5]))
    hand = apply_transform(t[2], skel.joints()[2:3])[0]
    assert torch.allclose(hand, torch.tensor([1.0, 1.0, 0.5]), atol=1e-6)
    # The elbow itself stays put apart from the root translation.
    assert torch.allclose(apply_transform(t[1], skel.joints()[1:2])[0], torch.tensor([1.0, 0, 0.5]))


def test_skeleton_validation_and_json_round_trip(tmp_path) -> None:
    skel = make_arm()
    skel.save(tmp_path / "skeleton.json")
    back = Skeleton.load(tmp_path / "skeleton.json")
    assert back.names == skel.names and back.parents == skel.parents
    assert torch.allclose(back.canonical, skel.canonical)
    with pytest.raises(ValueError):
        Skeleton(names=("a", "b"), parents=(1, -1), canonical=torch.eye(4).expand(2, 4, 4))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid skeleton"):
        Skeleton.load(tmp_path / "bad.json")


def test_merge_weights_sums_into_parents() -> None:
    w = torch.tensor([[0.2, 0.3, 0.5]])
    merged = merge_weights(w, keep_of=[0, 1, 1], num_kept=2)
    assert torch.allclose(merged, torch.tensor([[0.2, 0.8]]))
