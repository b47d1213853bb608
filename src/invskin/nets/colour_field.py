"""A canonical colour field: RGB in [0, 1] at every canonical point, learned with the shape.

Conventions: metres, canonical space (the pose-free space of the occupancy network). The field is a
sum of dense voxel grids of decreasing cell size (:data:`DEFAULT_CELLS`: 8, 4 and 2 cm) over a box,
read by trilinear interpolation, then a sigmoid: ``rgb(x) = sigmoid(sum_l grid_l(x))``. A coarse
level gives a smooth colour over a wide area (and so a gradient with respect to the point that
reaches several centimetres), the fine one resolves a print of 2-5 cm blobs. Every grid starts at
zero (mid grey). Points outside the box read the border value.

A grid is cheap on a CPU (eight reads per level per point) and its gradient with respect to the
query point is the interpolation's own, which the photometric loss uses to move canonical points.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

DEFAULT_CELLS = (0.08, 0.04, 0.02)
"""Cell sizes (metres) of the levels, coarse to fine."""


class ColourField(nn.Module):
    """``rgb(x) = sigmoid(sum of trilinear grids)`` over the box ``bounds`` (2, 3)."""

    def __init__(
        self, bounds: Float[Tensor, "2 3"], cells: tuple[float, ...] = DEFAULT_CELLS
    ) -> None:
        super().__init__()
        if not cells or min(cells) <= 0:
            raise ValueError(f"colour field cells must be positive sizes in metres, got {cells}")
        bounds = bounds.detach().float()
        self.register_buffer("bounds", bounds.clone())
        size = (bounds[1] - bounds[0]).tolist()
        self.levels = nn.ParameterList()
        for cell in cells:
            nx, ny, nz = (max(2, math.ceil(s / cell) + 1) for s in size)
            self.levels.append(nn.Parameter(torch.zeros(1, 3, nz, ny, nx)))

    def logits(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p 3"]:
        """The summed grids at ``points`` (before the sigmoid)."""
        shape = points.shape[:-1]
        lo, hi = self.bounds[0], self.bounds[1]
        unit = (2 * (points.reshape(1, -1, 1, 1, 3) - lo) / (hi - lo) - 1).to(self.levels[0].dtype)
        total = 0.0
        for grid in self.levels:
            total = total + nn.functional.grid_sample(
                grid, unit, mode="bilinear", padding_mode="border", align_corners=True
            )
        return total.reshape(3, -1).T.reshape(*shape, 3)

    def forward(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p 3"]:
        """RGB in [0, 1] at ``points``."""
        return torch.sigmoid(self.logits(points))


def brightness_gain(
    predicted: Float[Tensor, "b m 3"], observed: Float[Tensor, "b m 3"], mask: Tensor
) -> Float[Tensor, " b"]:
    """Per frame, the factor ``g`` minimising ``sum |g * predicted - observed|^2`` over the points
    where ``mask`` (B, M) holds: ``<p, o> / <p, p>`` (1 for a frame with no such point)."""
    weight = mask.to(predicted.dtype)[..., None]
    dot = (predicted * observed * weight).sum((1, 2))
    norm = (predicted.square() * weight).sum((1, 2))
    return torch.where(norm > 1e-8, dot / norm.clamp(min=1e-8), torch.ones_like(norm))
