"""Linear blend skinning (LBS) and its Jacobian.

Conventions: ``transforms[..., b, :, :]`` is bone b's 4x4 **canonical-to-posed** transform
(posed world transform times the inverse of the canonical world transform); column vectors; metres.
Shape legend: ``N`` points, ``J`` bones, any leading batch ``*b`` (frames).

    x_posed = (sum_b w_b(x) T_b) [x; 1]
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def blend_transforms(
    weights: Float[Tensor, "*b n j"], transforms: Float[Tensor, "*b j 4 4"]
) -> Float[Tensor, "*b n 4 4"]:
    """Per-point blended transforms ``sum_b w_b T_b``."""
    return torch.einsum("...nj,...jkl->...nkl", weights, transforms)


def lbs(
    points: Float[Tensor, "*b n 3"],
    weights: Float[Tensor, "*b n j"],
    transforms: Float[Tensor, "*b j 4 4"],
) -> Float[Tensor, "*b n 3"]:
    """Forward linear blend skinning of canonical points with per-point weights."""
    blended = blend_transforms(weights, transforms)
    return torch.einsum("...nij,...nj->...ni", blended[..., :3, :3], points) + blended[..., :3, 3]


def lbs_jacobian(
    points: Float[Tensor, "*b n 3"],
    weights: Float[Tensor, "*b n j"],
    weight_gradients: Float[Tensor, "*b n j 3"],
    transforms: Float[Tensor, "*b j 4 4"],
) -> Float[Tensor, "*b n 3 3"]:
    """Jacobian ``d x_posed / d x`` of LBS with a weight field ``w(x)``.

    ``weight_gradients[..., n, b, :]`` is ``d w_b / d x`` at point n. Then
    ``J = sum_b w_b R_b + sum_b (T_b x) (grad w_b)^T``; with constant weights the second term is zero.
    """
    blended = blend_transforms(weights, transforms)
    per_bone = (
        torch.einsum("...jkl,...nl->...njk", transforms[..., :3, :3], points)
        + transforms[..., None, :, :3, 3]
    )  # (*b, n, j, 3): T_b x for every bone
    return blended[..., :3, :3] + torch.einsum("...njk,...njl->...nkl", per_bone, weight_gradients)


def unpose(
    posed: Float[Tensor, "*b n 3"],
    weights: Float[Tensor, "*b n j"],
    transforms: Float[Tensor, "*b j 4 4"],
) -> Float[Tensor, "*b n 3"]:
    """The exact inverse of :func:`lbs` for known weights: each posed point carried back by the
    inverse of its own blended transform."""
    blended = blend_transforms(weights, transforms)
    local = posed - blended[..., :3, 3]
    return torch.linalg.solve(blended[..., :3, :3], local[..., None])[..., 0]
