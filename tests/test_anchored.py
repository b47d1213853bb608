"""Body-anchored couplings: the body table, exact inverses, the body held still, cloth moved."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from invskin.models.config import method_config
from invskin.nets.anchored import ANCHOR_SHELL, BodyTable, body_lines, grid_shape
from invskin.nets.pin import PIN, PINConfig
from invskin.nets.pose_encoder import PoseCode
from toy_data import toy_animatable, toy_body, toy_transforms

SPACING = 0.01


def two_legs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two vertical capsules (radius 0.1 m, centres x = -0.2 and 0.2) as one body mesh."""
    parts = []
    for x in (-0.2, 0.2):
        capsule = trimesh.creation.capsule(height=0.6, radius=0.1, count=[16, 16])
        vertices = capsule.vertices[:, [1, 2, 0]] + np.array([x, 0.0, 0.0])
        parts.append(trimesh.Trimesh(vertices, capsule.faces, process=False))
    legs = trimesh.util.concatenate(parts)
    return torch.from_numpy(legs.vertices).float(), torch.from_numpy(legs.faces).long()


@pytest.fixture(scope="module")
def table() -> BodyTable:
    vertices, faces = two_legs()
    lo = vertices.min(0).values - 0.02
    hi = vertices.max(0).values + 0.02
    return BodyTable(lo, hi, SPACING).fill(vertices, faces)


def test_body_lines_find_both_legs_along_x(table: BodyTable) -> None:
    # The line along x at y = 0, z = 0 crosses the legs at [-0.3, -0.1] and [0.1, 0.3], each dilated
    # by about a voxel.
    rows, flag = table.lookup(0, torch.tensor([[0.0, 0.0]]))
    assert flag.item() == 1.0
    s1, e1, s2, e2 = rows[0].tolist()
    # Each end lies outside the leg's surface (dilated), by at most 2.5 voxels.
    assert -0.3 - 2.5 * SPACING <= s1 <= -0.3 + 0.5 * SPACING
    assert -0.1 - 0.5 * SPACING <= e1 <= -0.1 + 2.5 * SPACING
    assert 0.1 - 2.5 * SPACING <= s2 <= 0.1 + 0.5 * SPACING
    assert 0.3 - 0.5 * SPACING <= e2 <= 0.3 + 2.5 * SPACING
    # A line along z through one leg: one interval; a line beside both legs: no body.
    rows, flag = table.lookup(2, torch.tensor([[0.2, 0.0], [0.0, 0.0]]))
    assert flag.tolist() == [1.0, 0.0]
    s1, e1, s2, e2 = rows[0].tolist()
    assert s2 == e2 == e1 and s1 < -0.1 and e1 > 0.1


def test_body_lines_shape_matches_the_grid() -> None:
    vertices, faces = two_legs()
    lo = vertices.min(0).values
    shape = grid_shape(lo, vertices.max(0).values, 0.02)
    intervals, has_body = body_lines(vertices, faces, lo, 0.02, shape)
    assert intervals[1].shape == (shape[0], shape[2], 4) and has_body[1].shape == shape[::2]


def _random_anchored_pin(table: BodyTable, seed: int) -> tuple[PIN, PoseCode]:
    torch.manual_seed(seed)
    config = PINConfig(
        num_blocks=2, hidden_width=16, projection_dim=8, pose_embed_dim=4, pose_hidden_width=8,
        pooled_dim=4, coupling="anchored", spline_bins=6,
    )  # fmt: skip
    pin = PIN(3, config, table).double()
    with torch.no_grad():  # move every coupling away from the identity
        for p in pin.parameters():
            p.add_(0.15 * torch.randn_like(p))
    pose = torch.eye(4, dtype=torch.float64).repeat(2, 3, 1, 1)
    pose[:, 1, :3, 3] = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.2, 0.1]], dtype=torch.float64)
    return pin, pin.encode_pose(pose)


def test_anchored_pin_round_trip_and_log_det(table: BodyTable) -> None:
    pin, code = _random_anchored_pin(table, 0)
    x = (torch.rand(2, 500, 3, dtype=torch.float64) - 0.5) * torch.tensor([0.9, 0.9, 0.5])
    out = pin.forward_with_log_det(x, code)
    back = pin.inverse_with_log_det(out.points, code)
    assert torch.allclose(back.points, x, atol=1e-9)
    assert torch.allclose(back.log_det, -out.log_det, atol=1e-8)
    assert (out.points - x).norm(dim=-1).max() > 0.01  # it does move points
    # log |det| against the Jacobian by autograd for a few points.
    for i in range(5):
        point = x[0, i : i + 1].clone().requires_grad_(True)
        jac = torch.autograd.functional.jacobian(
            lambda p: pin(p[None], PoseCode(code.bones[:1], code.pooled[:1]))[0], point
        )[0, :, 0, :]
        assert torch.isclose(torch.linalg.det(jac).abs().log(), out.log_det[0, i], atol=1e-6)


def test_anchored_pin_holds_the_body_and_moves_what_is_off_it(table: BodyTable) -> None:
    pin, code = _random_anchored_pin(table, 1)
    vertices, _ = two_legs()
    body = vertices.double()[None].expand(2, -1, -1)
    assert torch.equal(pin(body, code), body)  # skin points: exactly still
    # Points 3-6 cm off the legs' sides move, and never into the legs.
    angle = torch.rand(400, dtype=torch.float64) * 2 * torch.pi
    radius = 0.13 + 0.03 * torch.rand(400, dtype=torch.float64)
    centre = torch.where(torch.rand(400) < 0.5, -0.2, 0.2).double()
    cloth = torch.stack(
        [centre + radius * torch.cos(angle), 0.2 * torch.rand(400, dtype=torch.float64) - 0.1,
         radius * torch.sin(angle)], dim=-1,
    )[None].expand(2, -1, -1)  # fmt: skip
    moved = pin(cloth, code)
    assert (moved - cloth).norm(dim=-1).mean() > 0.005
    to_axis = torch.stack([moved[..., 0] - centre, moved[..., 2]], -1).norm(dim=-1)
    other = torch.stack([moved[..., 0] + centre, moved[..., 2]], -1).norm(dim=-1)
    assert (torch.minimum(to_axis, other) > 0.1).all()
    # Beyond the free bound (1.5 m) on every axis, and beyond the shell of a line through a leg.
    far = torch.tensor(
        [[[1.6, 1.6, 1.6], [0.2, 0.0, 0.1 + ANCHOR_SHELL + 0.05]]], dtype=torch.float64
    )
    far = far.expand(2, 2, 3)
    moved_far = pin(far, code)
    assert torch.equal(moved_far[:, 0], far[:, 0])
    assert torch.equal(moved_far[:, 1, 2], far[:, 1, 2])  # z beyond the shell of its line


def test_model_with_anchored_pin_c_repose_canonicalise_round_trip() -> None:
    torch.manual_seed(0)
    config = method_config("ins").__class__(
        pin_blocks=1, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
        shape_width=32, shape_layers=2, pin_c_coupling="anchored", pin_coupling="spline",
    )  # fmt: skip
    vertices, faces, weights = toy_body()
    from invskin.models.animatable import AnimatableModel
    from toy_data import toy_skeleton

    model = AnimatableModel(
        config,
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
        prior_faces=torch.from_numpy(faces).long(),
    )
    assert model.pin_c.table.has_body_1.sum() > 0
    with torch.no_grad():
        for p in model.pin_c.parameters():
            p.add_(0.1 * torch.randn_like(p))
    transforms = toy_transforms([0.3, 0.6])
    canonical = torch.from_numpy(vertices).float()
    with torch.no_grad():
        x_cp = model.pin_c(canonical.expand(2, -1, -1), model.pin_pose(transforms))
    assert torch.equal(x_cp, canonical.expand(2, -1, -1))  # the body prior's skin stays put
    # A saved model's table comes back from its weights (built without the faces).
    again = toy_animatable(config)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.pin_c.table.intervals_2, model.pin_c.table.intervals_2)
