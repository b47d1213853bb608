"""Root finding: Broyden on known systems, inverse LBS on constructed ground truth (one rigid bone,
two blended bones), inputs left untouched, batch shapes, init-bone selection, and implicit gradients
checked by gradcheck in float64 against finite differences of the whole root finding."""

import math
from collections.abc import Callable

import pytest
import torch

from invskin.body import Skeleton
from invskin.geometry import axis_angle_to_matrix, identity_transforms, lbs, make_transform
from invskin.nets import PriorFitConfig, SkinningField, SkinningFieldConfig, SkinningGrid
from invskin.solvers import (
    InverseSkinningResult,
    broyden,
    default_init_bones,
    implicit_correction,
    implicit_roots,
    inverse_lbs,
)

D = torch.float64


def random_rigid(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return make_transform(
        axis_angle_to_matrix(torch.randn(*shape, 3, dtype=dtype)),
        torch.randn(*shape, 3, dtype=dtype),
    )


# ----------------------------------------------------------------------------- Broyden


def test_broyden_solves_batched_linear_systems_without_touching_inputs() -> None:
    a = torch.eye(3) + 0.3 * torch.randn(200, 3, 3)
    b = torch.randn(200, 3)
    x0 = torch.randn(200, 3)
    jac_inv0 = torch.linalg.inv(a + 0.05 * torch.randn(200, 3, 3))  # a rough initial guess
    x0_copy, jac_copy = x0.clone(), jac_inv0.clone()
    calls = []

    def fn(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        calls.append(rows.numel())
        return (a[rows] @ x[..., None])[..., 0] - b[rows]

    result = broyden(fn, x0, jac_inv0, max_steps=30, cvg_thresh=1e-5, dvg_thresh=1e6)
    assert result.converged.all()
    assert torch.allclose(result.x, torch.linalg.solve(a, b), atol=1e-4)
    assert (result.residual_norm < 1e-5).all()
    assert torch.equal(x0, x0_copy) and torch.equal(jac_inv0, jac_copy)
    assert calls[0] == 200 and calls[-1] < 200  # converged rows leave the active set


def test_broyden_flags_rows_without_roots_and_diverged_rows() -> None:
    def fn(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return x * x + torch.tensor([1.0, 0.0, 0.0])  # no root: x_0^2 + 1 > 0

    start = torch.tensor([[0.5, 0.5, 0.5], [100.0, 0.0, 0.0]])
    result = broyden(fn, start, torch.eye(3).expand(2, 3, 3), max_steps=20, dvg_thresh=1.0)
    assert not result.converged.any()
    assert result.residual_norm[1] > 1.0  # stopped at once: beyond the divergence threshold
    assert torch.equal(result.x[1], start[1])


def test_broyden_keeps_leading_shapes() -> None:
    target = torch.randn(2, 4, 5, 3)

    def fn(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * torch.sin(x) - target.reshape(-1, 3)[rows]

    start, eye = torch.zeros(2, 4, 5, 3), torch.eye(3).expand(2, 4, 5, 3, 3)
    result = broyden(fn, start, eye, dvg_thresh=100.0)
    assert result.x.shape == (2, 4, 5, 3) and result.converged.shape == (2, 4, 5)
    assert result.inverse_jacobian.shape == (2, 4, 5, 3, 3)
    assert result.converged.all()
    assert torch.allclose(result.x + 0.1 * torch.sin(result.x), target, atol=1e-5)


# ------------------------------------------------------------------------- inverse LBS


def test_one_rigid_bone_gives_the_exact_inverse_transform() -> None:
    transforms = random_rigid(2, 1)
    posed = torch.randn(2, 100, 3)
    result = inverse_lbs(posed, lambda x: torch.ones(*x.shape[:-1], 1), transforms, [0])
    inverse = torch.linalg.inv(transforms[:, 0])
    expected = (inverse[:, None, :3, :3] @ posed[..., None])[..., 0] + inverse[:, None, :3, 3]
    assert result.points.shape == (2, 100, 1, 3)
    assert result.valid.all()
    assert torch.allclose(result.points[:, :, 0], expected, atol=1e-5)


def bar_weights(x: torch.Tensor) -> torch.Tensor:
    """Two bones along x: bone 0 on the left, bone 1 on the right, blended over ~20 cm."""
    right = torch.sigmoid(x[..., 0] / 0.05)
    return torch.stack([1 - right, right], dim=-1)


def bent_bar(angles: list[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bone 0 fixed, bone 1 rotated about z through the joint at the origin, one angle per frame."""
    rot = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, a] for a in angles], dtype=dtype))
    transforms = identity_transforms(len(angles), 2, dtype=dtype)
    transforms[:, 1, :3, :3] = rot
    return transforms


def bar_points(frames: int, points: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    scale = torch.tensor([0.8, 0.08, 0.08], dtype=dtype)
    return (torch.rand(frames, points, 3, dtype=dtype) * 2 - 1) * scale


def test_two_bones_every_converged_root_maps_to_the_query() -> None:
    transforms = bent_bar([math.radians(40), math.radians(80)])
    canonical = bar_points(2, 300)
    posed = lbs(canonical, bar_weights(canonical), transforms)
    result = inverse_lbs(posed, bar_weights, transforms, [0, 1])
    assert result.points.shape == (2, 300, 2, 3)
    assert result.valid.any(-1).float().mean() > 0.97
    remapped = lbs(
        result.points.reshape(2, -1, 3), bar_weights(result.points.reshape(2, -1, 3)), transforms
    ).reshape(2, 300, 2, 3)
    error = (remapped - posed[:, :, None]).norm(dim=-1)
    assert (error[result.valid] < 1e-5).all()
    assert (result.residual_norm[result.valid] < 1e-5).all()
    # The ground-truth canonical point is among the valid candidates.
    found = ((result.points - canonical[:, :, None]).norm(dim=-1) < 1e-3) & result.valid
    assert found.any(-1).float().mean() > 0.97


def test_inverse_lbs_leaves_its_inputs_alone_and_keeps_batch_shapes() -> None:
    field = SkinningField(4, SkinningFieldConfig(hidden_width=16, hidden_layers=2))
    transforms = random_rigid(3, 4)
    posed = torch.randn(3, 7, 3)
    posed_copy, transforms_copy = posed.clone(), transforms.clone()
    state = {k: v.clone() for k, v in field.state_dict().items()}
    result = inverse_lbs(posed, field, transforms, [0, 2, 3], max_steps=5)
    assert torch.equal(posed, posed_copy) and torch.equal(transforms, transforms_copy)
    assert all(torch.equal(v, field.state_dict()[k]) for k, v in state.items())
    assert result.points.shape == (3, 7, 3, 3)
    assert result.valid.shape == result.residual_norm.shape == (3, 7, 3)
    assert result.valid.dtype == torch.bool
    assert result.inverse_jacobian.shape == (3, 7, 3, 3, 3)
    assert not result.points.requires_grad


def test_frames_are_solved_with_their_own_transforms() -> None:
    transforms = bent_bar([0.3, 1.0, -0.6])
    canonical = bar_points(3, 50)
    posed = lbs(canonical, bar_weights(canonical), transforms)
    batched = inverse_lbs(posed, bar_weights, transforms, [0, 1])
    for f in range(3):
        single = inverse_lbs(posed[f : f + 1], bar_weights, transforms[f : f + 1], [0, 1])
        assert torch.equal(single.valid[0], batched.valid[f])
        assert torch.allclose(single.points[0], batched.points[f], atol=1e-6)


def test_inverse_lbs_rejects_bad_init_bones() -> None:
    with pytest.raises(ValueError, match="empty"):
        inverse_lbs(torch.zeros(1, 2, 3), bar_weights, bent_bar([0.1]), [])
    with pytest.raises(ValueError, match="out of range"):
        inverse_lbs(torch.zeros(1, 2, 3), bar_weights, bent_bar([0.1]), [0, 2])


def test_grid_fast_path_finds_the_same_roots_as_the_mlp() -> None:
    torch.manual_seed(0)
    field = SkinningField(2, SkinningFieldConfig(hidden_width=32, hidden_layers=2))
    canonical = bar_points(1, 400)
    field.fit_to_prior(
        canonical.reshape(-1, 3),
        bar_weights(canonical.reshape(-1, 3)),
        PriorFitConfig(steps=150, batch_points=512, learning_rate=5e-3, surface_noise=0.02),
    )
    bounds = torch.tensor([[-1.0, -1.0, -0.3], [1.0, 1.0, 0.3]])
    grid = SkinningGrid.from_field(field, bounds, (96, 96, 32))
    transforms = bent_bar([math.radians(50)])
    with torch.no_grad():
        posed = lbs(canonical, field(canonical), transforms)
    reference = inverse_lbs(posed, field, transforms, [0, 1])
    fast = inverse_lbs(posed, grid, transforms, [0, 1], cvg_thresh=1e-4)
    both = reference.valid & fast.valid
    assert both.any(-1).float().mean() > 0.9
    assert (reference.points - fast.points).norm(dim=-1)[both].max() < 5e-3


def test_c_root_finder_matches_the_pytorch_search() -> None:
    # inverse_lbs with pre-blended grids: the C search (native) against broyden in PyTorch, on
    # rows of two frames, some queries beyond the grid's bounds, one frame whose roots are the
    # starting points (rows that never iterate), and a search cut short (max_steps).
    from invskin import native

    assert native.broyden_lbs_kernel() is not None, native.unavailable_reason("broyden")
    torch.manual_seed(3)
    bounds = torch.tensor([[-1.0, -1.0, -0.3], [1.0, 1.0, 0.3]])
    grid = SkinningGrid.from_field(bar_weights, bounds, (40, 12, 8))
    transforms = bent_bar([math.radians(60), 0.0, math.radians(-30)])
    canonical = bar_points(3, 500)
    canonical[0, :50] *= 1.6  # beyond the bounds: border values
    posed = lbs(canonical, bar_weights(canonical), transforms)
    for steps in (30, 3):
        args = (posed, grid, transforms, [0, 1])
        c = inverse_lbs(*args, max_steps=steps, pre_blend=True, native=True)
        torch_search = inverse_lbs(*args, max_steps=steps, pre_blend=True, native=False)
        assert (c.valid == torch_search.valid).float().mean() > 0.995
        both = c.valid & torch_search.valid
        assert both.float().mean() > (0.5 if steps > 3 else 0.05)
        assert (c.points - torch_search.points).norm(dim=-1)[both].max() < 1e-4
        torch.testing.assert_close(c.residual_norm, torch_search.residual_norm, atol=1e-4, rtol=0)
        assert (c.residual_norm[c.valid] < 1e-5).all()
    # The identity frame: every start is a root, the search returns it and J^-1 = I untouched.
    c = inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True, native=True)
    assert c.valid[1].all()
    torch.testing.assert_close(c.points[1], posed[1][:, None].expand(-1, 2, -1))
    torch.testing.assert_close(c.inverse_jacobian[1], torch.eye(3).expand(500, 2, 3, 3))


def test_without_the_c_root_finder_training_warns_and_searches_in_pytorch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from invskin import native

    monkeypatch.setitem(native._kernels, "broyden", None)
    monkeypatch.setitem(native._reasons, "broyden", "no C compiler found")
    grid = SkinningGrid.from_field(
        bar_weights, torch.tensor([[-1.0, -1, -1], [1, 1, 1]]), (9, 9, 9)
    )
    transforms = bent_bar([0.5])
    canonical = bar_points(1, 50)
    posed = lbs(canonical, bar_weights(canonical), transforms)
    with pytest.warns(UserWarning, match="PyTorch search.*no C compiler found"):
        roots = inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True)
    expected = inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True, native=False)
    torch.testing.assert_close(roots.points, expected.points)
    with pytest.raises(RuntimeError, match="unavailable: no C compiler found"):
        inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True, native=True)


def test_c_root_finder_survives_nan_and_infinite_points() -> None:
    # A diverged network can hand the search NaN or infinite points: those rows come back invalid
    # (no crash, no read outside the grid), the others are solved as usual.
    transforms = bent_bar([0.7])
    grid = SkinningGrid.from_field(
        bar_weights, torch.tensor([[-1.0, -1, -1], [1, 1, 1]]), (9, 9, 9)
    )
    canonical = bar_points(1, 40)
    posed = lbs(canonical, bar_weights(canonical), transforms)
    posed[0, :3] = torch.tensor([[float("nan")] * 3, [float("inf")] * 3, [-float("inf"), 0.0, 0.0]])
    roots = inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True, native=True)
    assert not roots.valid[0, :3].any()
    clean = inverse_lbs(posed[:, 3:], grid, transforms, [0, 1], pre_blend=True, native=True)
    assert torch.equal(roots.valid[:, 3:], clean.valid)
    torch.testing.assert_close(roots.points[:, 3:], clean.points)


def test_c_root_finder_rejects_what_it_cannot_run() -> None:
    from invskin import native

    transforms = bent_bar([0.5])
    posed = bar_points(1, 10)
    with pytest.raises(ValueError, match="needs pre_blend"):
        inverse_lbs(posed, bar_weights, transforms, [0, 1], pre_blend=True, native=True)
    kernel = native.broyden_lbs_kernel()
    table, x = torch.zeros(2 * 2 * 2 * 2, 12), torch.zeros(4, 3)
    lo, hi, frame = -torch.ones(3), torch.ones(3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="outside the grid's frames"):
        kernel(table, (2, 2, 2), lo, hi, frame + 2, x, x, 5, 1e-5, 1.0)
    with pytest.raises(ValueError, match="is not"):
        kernel(table[:, :9].contiguous(), (2, 2, 2), lo, hi, frame, x, x, 5, 1e-5, 1.0)
    with pytest.raises(ValueError, match="contiguous float32"):
        kernel(table.double(), (2, 2, 2), lo, hi, frame, x, x, 5, 1e-5, 1.0)


# ----------------------------------------------------------------------- init bones


SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# Rough joint positions of a standing adult (metres, y up, x to the body's left); our own numbers.
SMPL_LIKE_JOINTS = [
    (0.0, 0.0, 0.0), (0.08, -0.09, 0.0), (-0.08, -0.09, 0.0), (0.0, 0.11, 0.0),
    (0.10, -0.48, 0.0), (-0.10, -0.48, 0.0), (0.0, 0.24, 0.0), (0.10, -0.88, 0.0),
    (-0.10, -0.88, 0.0), (0.0, 0.30, 0.0), (0.11, -0.94, 0.12), (-0.11, -0.94, 0.12),
    (0.0, 0.51, 0.0), (0.07, 0.42, 0.0), (-0.07, 0.42, 0.0), (0.0, 0.60, 0.05),
    (0.18, 0.45, 0.0), (-0.18, 0.45, 0.0), (0.44, 0.43, 0.0), (-0.44, 0.43, 0.0),
    (0.69, 0.44, 0.0), (-0.69, 0.44, 0.0), (0.77, 0.43, 0.0), (-0.77, 0.43, 0.0),
]  # fmt: skip


def smpl_like_skeleton() -> Skeleton:
    joints = torch.tensor(SMPL_LIKE_JOINTS)
    canonical = make_transform(torch.eye(3).expand(24, 3, 3), joints)
    return Skeleton(tuple(f"bone{j}" for j in range(24)), tuple(SMPL_PARENTS), canonical)


def test_default_init_bones_on_an_smpl_like_rig_are_snarfs() -> None:
    # pelvis, hips, knees, shoulders, elbows
    assert default_init_bones(smpl_like_skeleton()) == [0, 1, 2, 4, 5, 16, 17, 18, 19]


def test_default_init_bones_other_rigs() -> None:
    assert default_init_bones([-1, 0, 0, 1]) == [0, 1, 2, 3]  # few bones: all of them
    from_parents = default_init_bones(SMPL_PARENTS)  # no geometry: every bone has length 1
    assert len(from_parents) == 9 and len(set(from_parents)) == 9
    assert {0, 1, 2, 4, 5} <= set(from_parents)  # hub and the two first bones of each leg
    assert default_init_bones(smpl_like_skeleton(), max_bones=5) == [0, 1, 2, 4, 5]
    assert len(default_init_bones(smpl_like_skeleton(), max_bones=13)) == 13
    # A dummy root above the pelvis: the hub (first branching bone) is picked, not the dummy.
    shifted = [-1] + [p + 1 for p in SMPL_PARENTS]
    assert default_init_bones(shifted)[0] == 1
    assert default_init_bones(list(range(-1, 11))) == sorted(default_init_bones(range(-1, 11)))


# ------------------------------------------------------------------ implicit gradients


def _solve_bar(
    sharpness: torch.Tensor, axis_angle: torch.Tensor, posed: torch.Tensor
) -> torch.Tensor:
    """Roots of a two-bone bar whose weight field and bend are parameters, made differentiable."""

    def weights(x: torch.Tensor) -> torch.Tensor:
        right = torch.sigmoid((x * sharpness).sum(-1))
        return torch.stack([1 - right, right], dim=-1)

    transforms = torch.stack(
        [
            identity_transforms(1, dtype=D)[0],
            make_transform(
                axis_angle_to_matrix(axis_angle), torch.tensor([0.02, 0.0, 0.01], dtype=D)
            ),
        ]
    )[None]
    result = inverse_lbs(posed, weights, transforms, [0, 1], cvg_thresh=1e-12, max_steps=100)
    assert result.valid.all()
    return implicit_roots(result, posed, weights, transforms)


def test_implicit_gradients_match_finite_differences_of_the_whole_solve() -> None:
    sharpness = torch.tensor([12.0, 1.0, -2.0], dtype=D, requires_grad=True)
    axis_angle = torch.tensor([0.1, -0.2, 0.7], dtype=D, requires_grad=True)
    canonical = torch.tensor([[[-0.3, 0.05, 0.0], [0.05, -0.02, 0.03], [0.4, 0.0, -0.05]]], dtype=D)
    with torch.no_grad():
        posed = _solve_bar(sharpness, axis_angle, canonical).mean(2)  # any posed points will do
    posed.requires_grad_(True)
    assert torch.autograd.gradcheck(_solve_bar, (sharpness, axis_angle, posed), atol=1e-6)


def test_implicit_correction_on_a_closed_form_root() -> None:
    """f(x) = A x + c has the root A^-1 (y - c): compare with its exact derivatives."""
    a = (torch.eye(3, dtype=D) + 0.3 * torch.randn(3, 3, dtype=D)).requires_grad_(True)
    c = torch.randn(3, dtype=D, requires_grad=True)
    y = torch.randn(5, 3, dtype=D, requires_grad=True)
    exact = torch.linalg.solve(a, (y - c).T).T
    corrected = implicit_correction(exact.detach(), lambda x: x @ a.T + c, y)
    assert torch.allclose(corrected, exact)
    weights = torch.randn(5, 3, dtype=D)
    grads = torch.autograd.grad((corrected * weights).sum(), (a, c, y))
    expected = torch.autograd.grad((exact * weights).sum(), (a, c, y))
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-12)
    with torch.no_grad():
        assert not implicit_correction(exact, lambda x: x @ a.T + c, y).requires_grad


def test_analytic_and_autograd_jacobians_give_the_same_parameter_gradients() -> None:
    torch.manual_seed(0)
    field = SkinningField(3, SkinningFieldConfig(hidden_width=16, hidden_layers=2)).double()
    rotations = axis_angle_to_matrix(0.4 * torch.randn(2, 3, 3, dtype=D))
    transforms = make_transform(rotations, 0.1 * torch.randn(2, 3, 3, dtype=D))
    transforms.requires_grad_(True)
    posed = (0.3 * torch.randn(2, 20, 3, dtype=D)).requires_grad_(True)
    result = inverse_lbs(posed, field, transforms, [0, 1, 2], cvg_thresh=1e-10, max_steps=100)
    assert result.valid.float().mean() > 0.5
    params = [*field.parameters(), transforms, posed]

    def gradients(weight_fn: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        roots = implicit_roots(result, posed, weight_fn, transforms)
        assert torch.equal(roots.detach(), result.points)
        return torch.autograd.grad(roots.square().sum(), params)

    analytic = gradients(field)  # uses weights_and_gradients
    generic = gradients(lambda x: field(x))  # autograd Jacobian
    for a, g in zip(analytic, generic):
        assert torch.isfinite(a).all()
        assert torch.allclose(a, g, atol=1e-8)
    assert any(a.abs().max() > 1e-6 for a in analytic[:-2])  # the field does get gradients


def test_invalid_candidates_get_no_gradient() -> None:
    transforms = bent_bar([1.2, 0.4], dtype=D)
    posed = torch.tensor([[[0.5, 0.2, 0.0]], [[0.3, 0.1, 0.0]]], dtype=D, requires_grad=True)
    solved = inverse_lbs(posed, bar_weights, transforms, [0, 1])
    assert solved.valid.all()
    # Mark frame 0's candidates invalid and move them far away (as a diverged search leaves them).
    valid = solved.valid.clone()
    valid[0] = False
    points = solved.points.clone()
    points[0] = 50.0
    result = InverseSkinningResult(points, valid, solved.residual_norm, solved.inverse_jacobian)
    roots = implicit_roots(result, posed, bar_weights, transforms)
    assert torch.equal(roots.detach(), points)
    (grad,) = torch.autograd.grad(roots.sum(), posed)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[0], torch.zeros_like(grad[0])) and grad[1].abs().sum() > 0
