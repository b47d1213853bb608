"""Rotation conversions: axis-angle, 6D (first two matrix columns), rotation matrices.

Conventions: rotation matrices act on column vectors (``x' = R @ x``); shapes are ``(..., 3)`` for
axis-angle, ``(..., 6)`` for 6D and ``(..., 3, 3)`` for matrices, with any leading batch shape. Device
and dtype always come from the inputs. All functions are differentiable, including at the identity.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def skew(v: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3 3"]:
    """The cross-product matrix ``[v]_x`` such that ``[v]_x @ u == cross(v, u)``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack([zero, -z, y], dim=-1),
        torch.stack([z, zero, -x], dim=-1),
        torch.stack([-y, x, zero], dim=-1),
    )
    return torch.stack(rows, dim=-2)


def axis_angle_to_matrix(axis_angle: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 3 3"]:
    """Rodrigues' formula ``R = I + a [k]_x + b [k]_x^2`` with a Taylor expansion near angle 0.

    ``axis_angle`` is the rotation axis scaled by the angle in radians (right-hand rule).
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (*b, 1, 1)
    small = theta2 < 1e-8
    safe_theta2 = torch.where(small, torch.ones_like(theta2), theta2)
    safe_theta = safe_theta2.sqrt()
    # a = sin(t)/t and b = (1 - cos(t))/t^2, each with its series near t = 0.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(safe_theta) / safe_theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(safe_theta)) / safe_theta2)
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b 3"]:
    """Inverse of :func:`axis_angle_to_matrix`, returning angles in ``[0, pi]``.

    Uses the quaternion route, which is stable near 0 and near pi.
    """
    quat = matrix_to_quaternion(matrix)
    return quaternion_to_axis_angle(quat)


def matrix_to_quaternion(matrix: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b 4"]:
    """Rotation matrix to unit quaternion ``(w, x, y, z)`` with ``w >= 0``.

    Picks, per matrix, the best-conditioned of the four classic formulas (largest diagonal term).
    """
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate 4*q_i^2 values; the largest gives the best-conditioned division.
    q_abs_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    q_abs = torch.sqrt(torch.clamp(q_abs_sq, min=1e-12))
    m21_m12 = m[..., 2, 1] - m[..., 1, 2]
    m02_m20 = m[..., 0, 2] - m[..., 2, 0]
    m10_m01 = m[..., 1, 0] - m[..., 0, 1]
    m10_p01 = m[..., 1, 0] + m[..., 0, 1]
    m02_p20 = m[..., 0, 2] + m[..., 2, 0]
    m12_p21 = m[..., 1, 2] + m[..., 2, 1]
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21_m12, m02_m20, m10_m01], -1),
            torch.stack([m21_m12, q_abs[..., 1] ** 2, m10_p01, m02_p20], -1),
            torch.stack([m02_m20, m10_p01, q_abs[..., 2] ** 2, m12_p21], -1),
            torch.stack([m10_m01, m02_p20, m12_p21, q_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2.0 * q_abs[..., :, None])
    best = q_abs.argmax(-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: Float[Tensor, "*b 4"]) -> Float[Tensor, "*b 3"]:
    """Unit quaternion ``(w, x, y, z)`` to axis-angle."""
    w = quat[..., :1]
    xyz = quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    half = torch.atan2(sin_half, w)
    small = sin_half < 1e-6
    safe_sin = torch.where(small, torch.ones_like(sin_half), sin_half)
    # angle / sin(angle/2) -> 2 / w as angle -> 0.
    scale = torch.where(small, 2.0 / w.clamp(min=1e-12), 2.0 * half / safe_sin)
    return xyz * scale


def rotation_6d_to_matrix(d6: Float[Tensor, "*b 6"]) -> Float[Tensor, "*b 3 3"]:
    """Zhou et al. (CVPR 2019) 6D representation: Gram-Schmidt on two 3-vectors.

    The two input vectors become the first two **columns** of the matrix.
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(matrix: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b 6"]:
    """The first two columns of ``matrix``, concatenated: inverse of :func:`rotation_6d_to_matrix`."""
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def rotation_6d_offset(matrix: Float[Tensor, "*b 3 3"]) -> Float[Tensor, "*b 6"]:
    """:func:`matrix_to_rotation_6d` minus the identity's: zero for the identity rotation."""
    rot6d = matrix_to_rotation_6d(matrix)
    return rot6d - rot6d.new_tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
