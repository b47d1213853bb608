"""Training signals a model can receive beside posed occupancy samples.

Occupancy (posed points labelled inside or outside the scan) is what every dataset gives. Where the
data also knows where each point of the surface went (registered meshes, synthetic data, rigged
characters), a batch carries :class:`CorrespondenceBatch`: canonical surface points and their posed
positions in the batch's frames. Where the scans carry colour, a batch carries :class:`ColourBatch`:
points of each frame's scan surface and their colours. Shape legend: ``B`` frames, ``M`` points per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Float
from torch import Tensor

SIGNALS = ("occupancy", "correspondence", "colour")
"""The training signals a run can be given: ``occupancy`` alone, or with ``correspondence``, or
with ``colour`` (coloured scans: a photometric loss through a learned canonical colour field)."""


@dataclass(frozen=True)
class CorrespondenceBatch:
    """Known correspondences of a batch's frames: ``canonical`` points of the canonical surface and
    ``posed``, where each of them is in its frame."""

    canonical: Float[Tensor, "b m 3"]
    posed: Float[Tensor, "b m 3"]


@dataclass(frozen=True)
class ColourBatch:
    """Coloured points of a batch's scans: ``points`` on each frame's scan surface (posed space) and
    their RGB ``colours`` in [0, 1], as the scanner saw them (lighting included)."""

    points: Float[Tensor, "b m 3"]
    colours: Float[Tensor, "b m 3"]
