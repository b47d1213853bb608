"""Forward kinematics over any kinematic tree.

Conventions: bones are ordered so that every parent comes before its children; ``parents[j]`` is the
index of bone j's parent, ``-1`` for a root. A bone's *world* transform maps its local frame to world
(model) coordinates, 4x4, column vectors, metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor


def check_parents(parents: Sequence[int]) -> None:
    """Raise ``ValueError`` unless every parent index precedes its child (roots are ``-1``)."""
    for j, p in enumerate(parents):
        if p < -1 or p >= j:
            raise ValueError(
                f"bone {j} has parent {p}: parents must come before their children "
                "(-1 for a root); reorder the skeleton's bones."
            )


def forward_kinematics(
    local: Float[Tensor, "*b j 4 4"], parents: Sequence[int]
) -> Float[Tensor, "*b j 4 4"]:
    """Chain local (parent-from-child) transforms into world transforms: ``G_j = G_p(j) @ L_j``."""
    check_parents(parents)
    if local.shape[-3] != len(parents):
        raise ValueError(f"got {local.shape[-3]} local transforms for {len(parents)} bones")
    world: list[Tensor] = []
    for j, p in enumerate(parents):
        world.append(local[..., j, :, :] if p < 0 else world[p] @ local[..., j, :, :])
    return torch.stack(world, dim=-3)


def local_from_world(
    world: Float[Tensor, "*b j 4 4"], parents: Sequence[int]
) -> Float[Tensor, "*b j 4 4"]:
    """Inverse of :func:`forward_kinematics`: ``L_j = G_p(j)^-1 @ G_j`` (general inverse)."""
    check_parents(parents)
    local = []
    for j, p in enumerate(parents):
        g = world[..., j, :, :]
        local.append(g if p < 0 else torch.linalg.solve(world[..., p, :, :], g))
    return torch.stack(local, dim=-3)
