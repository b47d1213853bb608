"""4x4 homogeneous rigid (and general affine) transforms.

Conventions: column vectors, ``x' = T @ [x; 1]``; a transform has shape ``(..., 4, 4)`` with last row
``[0, 0, 0, 1]``; points have shape ``(..., N, 3)``. Units are metres.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor


def make_transform(
    rotation: Float[Tensor, "*r 3 3"], translation: Float[Tensor, "*t 3"]
) -> Float[Tensor, "*b 4 4"]:
    """Stack a rotation (or any 3x3 linear map) and a translation into a 4x4 transform.

    The batch shapes of ``rotation`` and ``translation`` broadcast against each other.
    """
    batch = torch.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
    top = torch.cat(
        [rotation.expand(*batch, 3, 3), translation.expand(*batch, 3)[..., None]], dim=-1
    )
    bottom = torch.zeros(*batch, 1, 4, dtype=top.dtype, device=top.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def identity_transforms(
    *shape: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Float[Tensor, "*b 4 4"]:
    """Identity transforms of the given batch shape."""
    return torch.eye(4, dtype=dtype, device=device).expand(*shape, 4, 4).clone()


def scale_translations(transforms, scale: float):
    """(..., 4, 4) rigid transforms (numpy array or tensor, a new one of the same kind) with their
    translations multiplied by ``scale``: the same motion expressed in units ``scale`` times larger
    (``U T U^-1``)."""
    out = transforms.clone() if isinstance(transforms, Tensor) else np.array(transforms, copy=True)
    out[..., :3, 3] *= scale
    return out


def invert_rigid(transform: Float[Tensor, "*b 4 4"]) -> Float[Tensor, "*b 4 4"]:
    """Inverse of a rigid transform: ``[R^T, -R^T t]``. Exact and cheaper than a general inverse."""
    rot_t = transform[..., :3, :3].transpose(-1, -2)
    trans = -(rot_t @ transform[..., :3, 3:4])[..., 0]
    return make_transform(rot_t, trans)


def invert_affine(transform: Float[Tensor, "*b 4 4"]) -> Float[Tensor, "*b 4 4"]:
    """Inverse of a general affine transform (e.g. blended LBS transforms, which are not rigid)."""
    linear_inv = torch.linalg.inv(transform[..., :3, :3])
    trans = -(linear_inv @ transform[..., :3, 3:4])[..., 0]
    return make_transform(linear_inv, trans)


def apply_transform(
    transform: Float[Tensor, "*b 4 4"], points: Float[Tensor, "*b n 3"]
) -> Float[Tensor, "*b n 3"]:
    """Apply one transform per batch element to a set of points: ``R x + t``."""
    rotation = transform[..., None, :3, :3]
    translation = transform[..., None, :3, 3]
    return (rotation @ points[..., None])[..., 0] + translation


def apply_pointwise_transform(
    transform: Float[Tensor, "*b n 4 4"], points: Float[Tensor, "*b n 3"]
) -> Float[Tensor, "*b n 3"]:
    """Apply a different transform to each point (e.g. per-point blended skinning transforms)."""
    return torch.einsum("...ij,...j->...i", transform[..., :3, :3], points) + transform[..., :3, 3]


def transforms_problem(transforms: np.ndarray, num_bones: int) -> str | None:
    """Why ``transforms`` is not a valid (..., J, 4, 4) stack of bone transforms, or ``None``."""
    if transforms.ndim < 3 or transforms.shape[-2:] != (4, 4):
        return f"bone transforms have shape {transforms.shape}, expected (..., {num_bones}, 4, 4)"
    if transforms.shape[-3] != num_bones:
        return (
            f"{transforms.shape[-3]} bone transforms but the skeleton has {num_bones} bones; "
            "use the skeleton the poses were made for"
        )
    if not np.isfinite(transforms).all():
        return "bone transforms contain NaN or infinite values"
    last_row = transforms[..., 3, :]
    if not np.allclose(last_row, [0.0, 0.0, 0.0, 1.0], atol=1e-4):
        if np.allclose(transforms[..., :3, 3], 0.0, atol=1e-6):
            return (
                "bone transforms look transposed (translation in the last row); invskin uses "
                "column vectors: pass T.swapaxes(-1, -2)"
            )
        return "bone transforms do not end with the row [0, 0, 0, 1]"
    return None
