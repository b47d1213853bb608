"""Training signals a model can receive beside posed occupancy samples.

Occupancy (posed points labelled inside or outside the scan) is what every dataset gives. Where the
data also knows where each point of the surface went (registered meshes, synthetic data, rigged
characters), a batch carries :class:`CorrespondenceBatch`: canonical surface points and their posed
positions in the batch's frames. Shape legend: ``B`` frames, ``M`` points per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor

SIGNALS = ("occupancy", "correspondence")
"""The training signals a run can be given: ``occupancy`` alone, or with ``correspondence``."""


@dataclass(frozen=True)
class CorrespondenceBatch:
    """Known correspondences of a batch's frames: ``canonical`` points of the canonical surface and
    ``posed``, where each of them is in its frame."""

    canonical: Float[Tensor, "b m 3"]
    posed: Float[Tensor, "b m 3"]
