"""Per-bone pose encoder: one small MLP per bone on that bone's relative transform.

Conventions: the pose is given as the 4x4 **canonical-to-posed** bone transforms ``T_b`` (the
transforms linear blend skinning uses, from :meth:`invskin.body.Skeleton.bone_transforms`), column
vectors, metres. Each bone's input is 9 numbers: its rotation in the 6D representation minus that of
the identity (so the canonical pose encodes to zeros) and its translation. Every bone has its own
weights (bones differ in meaning), evaluated for all bones at once with batched matrix products; the
bone count comes from the constructor and is never assumed.

Shape legend: ``*b`` frames (any leading shape), ``J`` bones, ``E`` per-bone embedding size, ``C``
pooled (global) code size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from invskin.geometry import rotation_6d_offset

BONE_FEATURES = 9  # 6D rotation + translation


@dataclass(frozen=True)
class PoseCode:
    """An encoded pose: one embedding per bone plus a pooled code for the whole frame."""

    bones: Float[Tensor, "*b j e"]
    pooled: Float[Tensor, "*b c"]


def bone_features(transforms: Float[Tensor, "*b j 4 4"]) -> Float[Tensor, "*b j 9"]:
    """``[6d(R_b) - 6d(I), t_b]`` per bone: zero for the canonical pose."""
    return torch.cat([rotation_6d_offset(transforms[..., :3, :3]), transforms[..., :3, 3]], dim=-1)


def _uniform_(tensor: Tensor, fan_in: int) -> Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(tensor, -bound, bound)


class PoseEncoder(nn.Module):
    """Per-bone MLP ``9 -> hidden -> E`` (SiLU), then an MLP on the concatenated ``e_b`` to ``C``.

    ``pooled_dim = 0`` skips the pooled code (it is then an empty ``(*b, 0)`` tensor).
    """

    def __init__(
        self, num_bones: int, embed_dim: int = 32, hidden_width: int = 64, pooled_dim: int = 64
    ) -> None:
        super().__init__()
        if num_bones < 1:
            raise ValueError(f"num_bones must be >= 1, got {num_bones}")
        self.num_bones = num_bones
        self.embed_dim = embed_dim
        self.pooled_dim = pooled_dim
        self.weight1 = nn.Parameter(
            _uniform_(torch.empty(num_bones, BONE_FEATURES, hidden_width), BONE_FEATURES)
        )
        self.bias1 = nn.Parameter(_uniform_(torch.empty(num_bones, hidden_width), BONE_FEATURES))
        self.weight2 = nn.Parameter(
            _uniform_(torch.empty(num_bones, hidden_width, embed_dim), hidden_width)
        )
        self.bias2 = nn.Parameter(_uniform_(torch.empty(num_bones, embed_dim), hidden_width))
        self.pool = (
            nn.Sequential(
                nn.Linear(num_bones * embed_dim, pooled_dim),
                nn.SiLU(),
                nn.Linear(pooled_dim, pooled_dim),
            )
            if pooled_dim > 0
            else None
        )

    def forward(self, transforms: Float[Tensor, "*b j 4 4"]) -> PoseCode:
        if transforms.shape[-3] != self.num_bones:
            raise ValueError(
                f"pose has {transforms.shape[-3]} bones, the encoder was built for {self.num_bones}"
            )
        features = bone_features(transforms)
        hidden = nn.functional.silu(
            torch.einsum("...ji,jih->...jh", features, self.weight1) + self.bias1
        )
        bones = torch.einsum("...jh,jhe->...je", hidden, self.weight2) + self.bias2
        if self.pool is None:
            pooled = bones.new_zeros(*bones.shape[:-2], 0)
        else:
            pooled = self.pool(bones.flatten(-2))
        return PoseCode(bones=bones, pooled=pooled)
