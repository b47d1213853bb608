"""Inverse linear blend skinning by root finding (SNARF), and gradients through the roots.

Conventions: ``transforms`` are the ``(B, J, 4, 4)`` canonical-to-posed bone transforms, column
vectors, metres. A weight function maps canonical points ``(..., 3)`` to skinning weights
``(..., J)``, point by point and without pose (:class:`invskin.nets.SkinningField` or
:class:`invskin.nets.SkinningGrid`). Forward skinning is
``f(x) = (sum_b w_b(x) T_b) x``; inverse skinning finds every canonical ``x`` with ``f(x) = x_d``.

Each posed query starts from ``K`` guesses, one per bone in ``init_bones``: the inverse transform of
that bone applied to the query. From each, Broyden's method (:func:`invskin.solvers.broyden_solver.broyden`) runs
with the inverse of the blended transform at the guess as initial inverse Jacobian. A candidate is
valid when it converged (residual below ``cvg_thresh``); duplicates are kept.

Roots come back without autograd. :func:`implicit_correction` (or :func:`implicit_roots` for the
result of :func:`inverse_lbs`) re-attaches them to the graph by implicit differentiation:

    x = x* - J^-1 (f(x*) - x_d - stopgrad(f(x*) - x_d)),    J = d f / d x at x*

equal to ``x*`` in value, with ``d x / d theta = -J^-1 d(f - x_d) / d theta`` for every parameter
``theta`` of the weight field, the transforms and the query points.

Shape legend: ``B`` frames, ``N`` points, ``J`` bones, ``K`` root candidates (initial bones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from invskin.body import Skeleton
from invskin.geometry import invert_affine, lbs, lbs_jacobian
from invskin.native import BroydenLbs, kernel_or_fallback
from invskin.solvers.broyden_solver import RootResult, broyden

if TYPE_CHECKING:
    from invskin.nets.skinning_field import BlendedTransformGrid

WeightFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class InverseSkinningResult:
    """Candidate canonical points per posed query, their validity, residuals, and Broyden's ``J^-1``."""

    points: Float[Tensor, "b n k 3"]
    valid: Bool[Tensor, "b n k"]
    residual_norm: Float[Tensor, "b n k"]
    inverse_jacobian: Float[Tensor, "b n k 3 3"]
    """Broyden's final inverse-Jacobian estimate, returned for inspection only: invskin's gradients
    do not use it (:func:`implicit_correction` inverts the exact Jacobian at the root; FastSNARF
    reuses this estimate instead)."""


def default_init_bones(skeleton: Skeleton | Sequence[int], max_bones: int = 9) -> list[int]:
    """Bones to start root finding from, derived from the kinematic tree (sorted indices).

    Rule: with ``J <= max_bones`` bones, all of them. Otherwise:

    1. the **hub** of each tree: the first bone at or below the root with two or more children
       (the pelvis of SMPL);
    2. then the **limbs**: chains of single-child bones that start below a branching bone (or the
       root) and end at a leaf, longest chain first (length = sum of canonical bone lengths, a
       bone's length being the distance from its joint to its farthest child's joint; without
       canonical positions every non-leaf bone counts 1). From each limb, its two longest bones
       (upper and lower limb: hip and knee, shoulder and elbow), until ``max_bones`` are chosen;
    3. if bones are still missing, the longest remaining bones.

    On an SMPL-like 24-bone rig this gives SNARF's 9 (pelvis, hips, knees, shoulders, elbows). Chains that
    end in a branch (the spine) are not limbs: they move with the hub.
    """
    if isinstance(skeleton, Skeleton):
        parents = list(skeleton.parents)
        joints: Tensor | None = skeleton.joints().double()
    else:
        parents = [int(p) for p in skeleton]
        joints = None
    num_bones = len(parents)
    if num_bones <= max_bones:
        return list(range(num_bones))
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)

    def length(j: int) -> float:
        if not children[j]:
            return 0.0
        if joints is None:
            return 1.0
        return max(float((joints[c] - joints[j]).norm()) for c in children[j])

    chosen: list[int] = []
    for root in (j for j, p in enumerate(parents) if p < 0):
        hub = root
        while len(children[hub]) == 1:
            hub = children[hub][0]
        chosen.append(hub if children[hub] else root)  # a tree without branches: its root

    limbs = []
    for start, p in enumerate(parents):
        if p < 0 or len(children[p]) == 1 and parents[p] >= 0:
            continue
        chain = [start]
        while len(children[chain[-1]]) == 1:
            chain.append(children[chain[-1]][0])
        if not children[chain[-1]]:
            limbs.append(chain)
    limbs.sort(key=lambda chain: (-sum(length(j) for j in chain), chain[0]))
    for chain in limbs:
        longest = sorted(chain, key=lambda j: (-length(j), chain.index(j)))[:2]
        for j in sorted(longest, key=chain.index):
            if len(chosen) < max_bones and j not in chosen:
                chosen.append(j)
    for j in sorted(range(num_bones), key=lambda j: (-length(j), j)):
        if len(chosen) >= max_bones:
            break
        if j not in chosen:
            chosen.append(j)
    return sorted(chosen)


def initial_guesses(
    points_posed: Float[Tensor, "b n 3"],
    transforms: Float[Tensor, "b j 4 4"],
    init_bones: Sequence[int],
) -> Float[Tensor, "b n k 3"]:
    """``T_k^-1 x_d`` for each initial bone ``k``: the query carried back rigidly by that bone."""
    index = torch.as_tensor(list(init_bones), dtype=torch.long, device=transforms.device)
    inverse = invert_affine(transforms[:, index])  # (B, K, 4, 4)
    return (
        torch.einsum("bkij,bnj->bnki", inverse[..., :3, :3], points_posed)
        + inverse[:, None, :, :3, 3]
    )


def inverse_lbs(
    points_posed: Float[Tensor, "b n 3"],
    weight_fn: WeightFn,
    transforms: Float[Tensor, "b j 4 4"],
    init_bones: Sequence[int],
    max_steps: int = 50,
    cvg_thresh: float = 1e-5,
    dvg_thresh: float = 1.0,
    pre_blend: bool = False,
    native: bool | None = None,
) -> InverseSkinningResult:
    """All canonical candidates ``x`` with ``LBS(x) = x_d``, one search per initial bone.

    With ``pre_blend`` and a weight field that offers ``pre_blend(transforms)`` (a
    :class:`invskin.nets.SkinningGrid`), the residual reads per-frame grids of blended transforms
    (12 channels, only the row's own frame) instead of blending ``J`` weights for every frame: the
    same roots up to float rounding, fewer operations. There, on CPU in float32, the whole search
    runs in the C root finder of :mod:`invskin.native` (the same iteration, one row at a time, on
    torch's thread count) unless ``native`` is False or the kernel cannot be built; ``native=True``
    requires it.
    """
    if len(init_bones) == 0:
        raise ValueError("init_bones is empty: pass at least one bone (see default_init_bones)")
    num_frames, num_points, _ = points_posed.shape
    num_bones = transforms.shape[-3]
    if any(not 0 <= k < num_bones for k in init_bones):
        raise ValueError(f"init_bones {list(init_bones)} out of range for {num_bones} bones")
    k = len(init_bones)
    with torch.no_grad():
        x0 = initial_guesses(points_posed.detach(), transforms.detach(), init_bones)
        target = points_posed.detach()[:, :, None].expand(-1, -1, k, -1).reshape(-1, 3)
        frame = torch.arange(num_frames, device=points_posed.device).repeat_interleave(
            num_points * k
        )
        # (J, B * 12): the top 3x4 block of every transform, frames side by side, so one matmul
        # blends rows of any mix of frames.
        packed = transforms.detach()[..., :3, :].permute(1, 0, 2, 3).reshape(num_bones, -1)
        grids = (
            weight_fn.pre_blend(transforms)
            if pre_blend and hasattr(weight_fn, "pre_blend")
            else None
        )

        def blended(x: Tensor, rows: Tensor) -> Tensor:
            if grids is not None:
                return grids.lookup(x, frame[rows]).to(packed)
            all_frames = (weight_fn(x).to(packed) @ packed).reshape(-1, num_frames, 3, 4)
            return all_frames[torch.arange(x.shape[0], device=x.device), frame[rows]]

        def residual(x: Tensor, rows: Tensor) -> Tensor:
            a = blended(x, rows)
            return (a[..., :3] @ x[..., None])[..., 0] + a[..., 3] - target[rows]

        flat_x0 = x0.reshape(-1, 3)
        kernel = _native_root_finder(grids, flat_x0, native)
        if kernel is not None:  # the same search in C (grids is not None there)
            x, norm, jac_inv = kernel(
                grids.table.contiguous(), grids.sizes, grids.lo.contiguous(),
                grids.hi.contiguous(), frame, target.contiguous(), flat_x0.contiguous(),
                max_steps, cvg_thresh, dvg_thresh, workers=torch.get_num_threads(),
            )  # fmt: skip
            roots = RootResult(x, norm, norm < cvg_thresh, jac_inv)
        else:
            all_rows = torch.arange(flat_x0.shape[0], device=flat_x0.device)
            jac_inv0, info = torch.linalg.inv_ex(blended(flat_x0, all_rows)[..., :3])
            eye = torch.eye(3, dtype=jac_inv0.dtype, device=jac_inv0.device)
            jac_inv0 = torch.where((info == 0)[:, None, None], jac_inv0, eye)
            roots = broyden(
                residual,
                flat_x0,
                jac_inv0,
                max_steps=max_steps,
                cvg_thresh=cvg_thresh,
                dvg_thresh=dvg_thresh,
            )
    shape = (num_frames, num_points, k)
    return InverseSkinningResult(
        points=roots.x.reshape(*shape, 3),
        valid=roots.converged.reshape(shape),
        residual_norm=roots.residual_norm.reshape(shape),
        inverse_jacobian=roots.inverse_jacobian.reshape(*shape, 3, 3),
    )


def _native_root_finder(
    grids: BlendedTransformGrid | None, x0: Tensor, native: bool | None
) -> BroydenLbs | None:
    """The C root finder where it applies (pre-blended grids, CPU, float32) and is wanted."""
    if native is False:
        return None
    applies = grids is not None and x0.device.type == "cpu" and x0.dtype == torch.float32
    applies = applies and grids.table.dtype == torch.float32
    if not applies:
        if native:
            raise ValueError("the C root finder needs pre_blend, a grid field, CPU and float32")
        return None
    return kernel_or_fallback(
        "broyden", native, "root finder", "root finding runs the slower PyTorch search", 3
    )


def pointwise_jacobian(
    outputs: Float[Tensor, "*p 3"], inputs: Float[Tensor, "*p 3"]
) -> Float[Tensor, "*p 3 3"]:
    """``d outputs / d inputs`` per point for a point-by-point map (three backward passes)."""
    rows = [
        torch.autograd.grad(outputs[..., i].sum(), inputs, retain_graph=True)[0] for i in range(3)
    ]
    return torch.stack(rows, dim=-2)


def apply_implicit_correction(
    x_star: Float[Tensor, "*p 3"],
    residual: Float[Tensor, "*p 3"],
    jacobian: Float[Tensor, "*p 3 3"],
    valid: Bool[Tensor, "*p"] | None = None,
) -> Float[Tensor, "*p 3"]:
    """``x* - J^-1 (r - stopgrad(r))``: the value of ``x*``, the gradient of the implicit root.

    ``residual`` is ``f(x*) - x_d`` computed with autograd; ``jacobian`` is ``d f / d x`` at
    ``x*`` (used without gradient). Rows that are invalid or have a singular ``J`` get no gradient.
    """
    jac_inv, info = torch.linalg.inv_ex(jacobian.detach())
    ok = (info == 0) & torch.isfinite(jac_inv).all(dim=(-2, -1))
    if valid is not None:
        ok = ok & valid
    jac_inv = torch.where(ok[..., None, None], jac_inv, torch.zeros_like(jac_inv))
    delta = residual - residual.detach()
    return x_star.detach() - (jac_inv @ delta[..., None])[..., 0]


def implicit_correction(
    x_star: Float[Tensor, "*p 3"],
    forward_fn: Callable[[Tensor], Tensor],
    target: Float[Tensor, "*p 3"],
    valid: Bool[Tensor, "*p"] | None = None,
) -> Float[Tensor, "*p 3"]:
    """Roots ``x*`` of ``forward_fn(x) = target``, re-attached to the autograd graph.

    ``forward_fn`` must act point by point; its Jacobian at ``x*`` is taken by autograd. Gradients
    reach everything ``forward_fn`` and ``target`` depend on. Under ``torch.no_grad`` this returns
    ``x*`` unchanged.
    """
    if not torch.is_grad_enabled():
        return x_star.detach()
    x_req = x_star.detach().requires_grad_(True)
    posed = forward_fn(x_req)
    jacobian = pointwise_jacobian(posed, x_req)
    return apply_implicit_correction(x_star, posed - target, jacobian, valid)


def implicit_roots(
    result: InverseSkinningResult,
    points_posed: Float[Tensor, "b n 3"],
    weight_fn: WeightFn,
    transforms: Float[Tensor, "b j 4 4"],
) -> Float[Tensor, "b n k 3"]:
    """The candidates of :func:`inverse_lbs`, differentiable w.r.t. the field, transforms, queries.

    Uses the field's analytic ``weights_and_gradients`` for the Jacobian when it has one (the
    :class:`invskin.nets.SkinningField` and :class:`invskin.nets.SkinningGrid` do), else autograd.
    Invalid candidates keep their value and get no gradient.
    """
    b, n, k, _ = result.points.shape
    if not torch.is_grad_enabled():
        return result.points
    x_star = result.points.reshape(b, n * k, 3)
    target = points_posed[:, :, None].expand(-1, -1, k, -1).reshape(b, n * k, 3)
    valid = result.valid.reshape(b, n * k)
    return implicit_points(x_star, target, valid, weight_fn, transforms).reshape(b, n, k, 3)


def implicit_points(
    x_star: Float[Tensor, "b m 3"],
    target: Float[Tensor, "b m 3"],
    valid: Bool[Tensor, "b m"],
    weight_fn: WeightFn,
    transforms: Float[Tensor, "b j 4 4"],
) -> Float[Tensor, "b m 3"]:
    """Roots ``x_star`` of ``LBS(x) = target`` (frame by frame), re-attached to the autograd graph.

    The flat form of :func:`implicit_roots`, for any list of roots per frame.
    """
    if not torch.is_grad_enabled():
        return x_star.detach()
    with_gradients = getattr(weight_fn, "weights_and_gradients", None)
    if with_gradients is None:
        corrected = implicit_correction(
            x_star, lambda x: lbs(x, weight_fn(x), transforms), target, valid
        )
    else:
        with torch.no_grad():  # the Jacobian is used without gradient: record no graph for it
            skinning = with_gradients(x_star)
            jacobian = lbs_jacobian(x_star, skinning.weights, skinning.gradients, transforms)
        posed = lbs(x_star, weight_fn(x_star), transforms)
        corrected = apply_implicit_correction(x_star, posed - target, jacobian, valid)
    return corrected
