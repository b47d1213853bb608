"""Skinning-weight fields: partition of unity, analytic gradients vs autograd, the nearest-vertex
prior and fitting to it, and the voxel grid (fast path) against the MLP (reference)."""

import pytest
import torch

from invskin.nets import (
    NearestVertexWeights,
    PriorFitConfig,
    SkinningField,
    SkinningFieldConfig,
    SkinningGrid,
    nearest_vertex_weights,
)

D = torch.float64
SMALL = SkinningFieldConfig(hidden_width=32, hidden_layers=3)


def autograd_weight_gradients(field: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
    x = points.clone().requires_grad_(True)
    weights = field(x)
    rows = [
        torch.autograd.grad(weights[..., j].sum(), x, retain_graph=True)[0]
        for j in range(weights.shape[-1])
    ]
    return torch.stack(rows, dim=-2)


@pytest.mark.parametrize("shape", [(6, 3), (2, 5, 3), (1, 2, 3, 3)])
@pytest.mark.parametrize("bones", [2, 25])
def test_weights_form_a_partition_of_unity(shape: tuple[int, ...], bones: int) -> None:
    weights = SkinningField(bones, SMALL)(torch.randn(shape))
    assert weights.shape == (*shape[:-1], bones)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(shape[:-1]), atol=1e-6)


@pytest.mark.parametrize("activation", ["softplus", "silu", "relu"])
def test_analytic_gradients_match_autograd(activation: str) -> None:
    cfg = SkinningFieldConfig(hidden_width=32, hidden_layers=3, activation=activation)
    field = SkinningField(4, cfg).double()
    points = torch.randn(2, 40, 3, dtype=D)
    result = field.weights_and_gradients(points)
    assert torch.allclose(result.weights, field(points), atol=1e-14)
    reference = autograd_weight_gradients(field, points)
    assert reference.abs().max() > 1e-3
    assert torch.allclose(result.gradients, reference, atol=1e-10)
    # The gradients of a partition of unity sum to zero over the bones.
    assert result.gradients.sum(-2).abs().max() < 1e-10


def test_nearest_vertex_weights_against_brute_force() -> None:
    vertices = torch.randn(300, 3)
    weights = torch.softmax(torch.randn(300, 5), dim=-1)
    points = torch.randn(4, 50, 3)
    brute = ((points[..., None, :] - vertices) ** 2).sum(-1).argmin(-1)
    out = nearest_vertex_weights(vertices, weights, points)
    assert torch.equal(out, weights[brute])
    # The lookup object (a k-d tree built once) gives the same weights and the true distances.
    distance, looked_up = NearestVertexWeights(vertices, weights).query(points)
    assert torch.equal(looked_up, out)
    assert torch.allclose(distance, (points[..., None, :] - vertices).norm(dim=-1).min(-1).values)
    assert torch.equal(nearest_vertex_weights(vertices, weights, vertices), weights)


def two_bone_prior() -> tuple[torch.Tensor, torch.Tensor]:
    """A bar along x: vertices left of 0 belong to bone 0, right of 0 to bone 1 (smooth blend)."""
    gen = torch.Generator().manual_seed(0)
    vertices = torch.rand(400, 3, generator=gen) * torch.tensor([1.6, 0.2, 0.2]) - torch.tensor(
        [0.8, 0.1, 0.1]
    )
    right = torch.sigmoid(vertices[:, 0] / 0.05)
    return vertices, torch.stack([1 - right, right], dim=-1)


def test_fit_to_prior_learns_the_prior() -> None:
    vertices, weights = two_bone_prior()
    field = SkinningField(2, SkinningFieldConfig(hidden_width=32, hidden_layers=2))
    before = field.prior_loss(vertices, weights).item()
    losses = field.fit_to_prior(
        vertices, weights, PriorFitConfig(steps=150, batch_points=256, learning_rate=5e-3)
    )
    assert len(losses) == 150
    after = field.prior_loss(vertices, weights).item()
    assert after < 0.1 * before and after < 0.05
    away = vertices[vertices[:, 0].abs() > 0.15]
    agree = field(away).argmax(-1) == weights[vertices[:, 0].abs() > 0.15].argmax(-1)
    assert agree.float().mean() > 0.97


def test_prior_loss_is_zero_on_its_own_weights_and_differentiable() -> None:
    field = SkinningField(3, SMALL)
    points = torch.randn(20, 3)
    assert field.prior_loss(points, field(points).detach()).item() < 1e-12
    loss = field.prior_loss(points, torch.softmax(torch.randn(20, 3), -1))
    loss.backward()
    assert all(p.grad is not None for p in field.parameters())


def varied_field(bones: int = 4, dtype: torch.dtype = torch.float32) -> SkinningField:
    """A field with real transitions (dominant weight ~0.9 on average, |dw/dx| ~0.3 per metre)."""
    torch.manual_seed(1)
    cfg = SkinningFieldConfig(hidden_width=32, hidden_layers=2, activation="silu")
    field = SkinningField(bones, cfg)
    with torch.no_grad():
        field.mlp.layers[-1].weight.mul_(10.0)
    return field.to(dtype)


BOUNDS = torch.tensor([[-1.0, -1.2, -0.5], [1.0, 1.2, 0.5]])


def test_grid_equals_field_at_its_nodes() -> None:
    field = varied_field(dtype=D)
    grid = SkinningGrid.from_field(field, BOUNDS.double(), (5, 7, 3))
    assert grid.resolution == (5, 7, 3) and grid.grid.shape == (4, 3, 7, 5)
    node = torch.tensor(
        [[-1.0 + 2 * 0.5, -1.2 + 2.4 * 4 / 6, 0.5]], dtype=D
    )  # (i, j, k) = (2, 4, 2)
    assert torch.allclose(grid(node), field(node), atol=1e-12)
    assert torch.allclose(grid(BOUNDS.double()), field(BOUNDS.double()), atol=1e-12)


def test_grid_agrees_with_the_mlp_forward_and_backward() -> None:
    """Fast path vs reference: at 64 x 80 x 32 nodes (3 cm cells) weights within 0.005 and
    gradients within 8%; errors shrink with the resolution."""
    field = varied_field()
    points = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * torch.rand(2000, 3)
    with torch.no_grad():
        ref = field.weights_and_gradients(points)
    errors = {}
    for res in [(16, 20, 8), (64, 80, 32)]:
        grid = SkinningGrid.from_field(field, BOUNDS, res)
        with torch.no_grad():
            fast = grid.weights_and_gradients(points)
        assert torch.allclose(fast.weights.sum(-1), torch.ones(2000), atol=1e-5)
        gradient_error = (fast.gradients - ref.gradients).norm(dim=-1).mean()
        errors[res] = (
            (fast.weights - ref.weights).abs().max(),
            gradient_error / ref.gradients.norm(dim=-1).mean(),
        )
    weight_error, gradient_error = errors[(64, 80, 32)]
    assert weight_error < 0.005 and gradient_error < 0.08
    assert weight_error < errors[(16, 20, 8)][0] / 4
    assert gradient_error < errors[(16, 20, 8)][1] / 2


def test_grid_gradients_are_the_exact_derivative_of_the_interpolation() -> None:
    field = varied_field(dtype=D)
    grid = SkinningGrid.from_field(field, BOUNDS.double(), (6, 9, 4))
    inside = BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * torch.rand(100, 3)
    outside = 1.5 * (torch.rand(30, 3) * 2 - 1)  # some points beyond the bounds
    points = torch.cat([inside, outside]).double()
    result = grid.weights_and_gradients(points)
    assert torch.allclose(result.weights, grid(points), atol=1e-14)
    assert torch.allclose(result.gradients, autograd_weight_gradients(grid, points), atol=1e-10)
    assert torch.equal(
        grid.contains(points),
        ((points >= BOUNDS[0].double()) & (points <= BOUNDS[1].double())).all(-1),
    )


def test_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 nodes"):
        SkinningGrid(torch.rand(2, 1, 4, 4), BOUNDS)
    with pytest.raises(ValueError, match="lo < hi"):
        SkinningGrid(torch.rand(2, 3, 4, 4), BOUNDS.flip(0))


def test_pre_blended_transform_grid_matches_blending_the_weights() -> None:
    # Trilinear interpolation is linear: the blended-transform grid gives the same 3x4 transforms
    # as blending the interpolated weights, for rows of mixed frames, inside and outside the bounds.
    from invskin.geometry import blend_transforms
    from invskin.geometry.rotations import axis_angle_to_matrix

    torch.manual_seed(0)
    num_bones, frames = 5, 3
    grid = torch.softmax(torch.randn(num_bones, 4, 6, 5) * 3, dim=0)
    bounds = torch.tensor([[-0.5, -1.0, -0.3], [0.5, 1.0, 0.4]])
    field = SkinningGrid(grid, bounds)
    transforms = torch.eye(4).repeat(frames, num_bones, 1, 1)
    transforms[..., :3, :3] = axis_angle_to_matrix(torch.randn(frames, num_bones, 3))
    transforms[..., :3, 3] = torch.randn(frames, num_bones, 3)
    points = torch.rand(200, 3) * 1.6 - 0.8  # some beyond the bounds: border values
    frame = torch.randint(frames, (200,))
    expected = blend_transforms(field(points)[:, None], transforms[frame])[:, 0, :3, :]
    got = field.pre_blend(transforms).lookup(points, frame)
    assert torch.allclose(got, expected, atol=1e-5)


def test_diffused_weights_keep_the_body_and_blend_smoothly_between_limbs() -> None:
    from invskin.nets.skinning_field import diffused_grid_weights, grid_nodes

    # Two "legs" (vertical lines of vertices at x = -0.3 and x = +0.3), bone 0 and bone 1.
    t = torch.linspace(-0.5, 0.5, 21)
    left = torch.stack([torch.full_like(t, -0.3), t, torch.zeros_like(t)], -1)
    right = torch.stack([torch.full_like(t, 0.3), t, torch.zeros_like(t)], -1)
    vertices = torch.cat([left, right])
    weights = torch.cat(
        [torch.tensor([[1.0, 0.0]]).expand(21, 2), torch.tensor([[0.0, 1.0]]).expand(21, 2)]
    )
    bounds = torch.tensor([[-0.6, -0.6, -0.3], [0.6, 0.6, 0.3]])
    nodes = grid_nodes(bounds, (25, 13, 7))
    diffused = diffused_grid_weights(nodes, vertices, weights, fixed_radius=0.06)
    assert torch.allclose(diffused.sum(-1), torch.ones(()), atol=1e-5) and (diffused >= 0).all()
    # Nodes near a leg keep its weights; the midline between the legs is an even blend, and the
    # weight of bone 1 rises steadily from left to right (no jump where the nearest vertex flips).
    row = diffused[3, 6, :, 1]  # z = 0, y = 0, every x
    xs = nodes[3, 6, :, 0]
    assert torch.allclose(row[(xs + 0.3).abs() < 0.05], torch.zeros(()), atol=1e-6)
    assert torch.allclose(row[(xs - 0.3).abs() < 0.05], torch.ones(()), atol=1e-6)
    between = (xs > -0.25) & (xs < 0.25)
    assert (row[between].diff() > 0.02).all()
    assert row[xs.abs() < 1e-6].item() == pytest.approx(0.5, abs=1e-3)
    # Harmonic at free nodes: each interior free node is the mean of its 6 neighbours.
    inner = diffused[1:-1, 1:-1, 1:-1]
    mean = (
        diffused[2:, 1:-1, 1:-1] + diffused[:-2, 1:-1, 1:-1] + diffused[1:-1, 2:, 1:-1]
        + diffused[1:-1, :-2, 1:-1] + diffused[1:-1, 1:-1, 2:] + diffused[1:-1, 1:-1, :-2]
    ) / 6  # fmt: skip
    x_inner = nodes[1:-1, 1:-1, 1:-1, 0]
    free = x_inner.abs() < 0.2
    assert (inner - mean)[free].abs().max() < 1e-3
