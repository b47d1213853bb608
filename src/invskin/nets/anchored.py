"""Body-anchored couplings: invertible maps that move what lies off the body and hold the body still.

A coupling layer of a PIN moves its free coordinate by a function of the fixed ones, so it is a
smooth map of all of space: where cloth hangs a centimetre or two from the skin (a skirt over the
thighs) it cannot move the one without dragging the other. A body-anchored coupling knows where
the body is. For the line through a point along the free axis ``a`` (the fixed coordinates pick the
line), a table gives the body's extent on that line, dilated by a margin: at most two intervals
``[s1, e1]`` and ``[s2, e2]``. The coupling is the identity on them and maps each gap between or
beside them onto itself by a monotone rational-quadratic spline (:func:`~invskin.nets.pin.rational_quadratic`)
whose parameters the conditioner gives (one set per gap):

- below the body: ``[s1 - shell, s1]``; between the two intervals: ``[e1, s2]``; above it:
  ``[e2, e2 + shell]``; the identity everywhere else;
- a line that misses the body: one gap ``[-bound, bound]`` (the middle gap's parameters).

So points of the body (and within the margin of it) never move, points off it move along the line
but never into the body, and the map is a bijection of every line, inverted exactly by the inverse
splines of the same gaps. The table depends on the fixed coordinates only, so the invertibility rule
of :mod:`invskin.nets.pin` holds.

The table (:func:`body_lines`) is built once from the canonical body mesh: its occupancy
(generalised winding numbers, either orientation) at the centres of a voxel grid, dilated by one voxel, read along the
grid's lines in each axis; a line with more than two runs of body keeps two intervals, split at its
largest gap (what lies between the other runs is then held still as if it were body). Lookups take
the nearest line.

Conventions: metres, canonical space. Shape legend: ``*b`` frames, ``N`` points, ``Ra, Rb, Rc``
voxels along the axes.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from invskin.mesh.winding import winding_numbers

ANCHOR_SPACING = 0.005
"""Metres between the lines (and the voxel size) of the body table."""
ANCHOR_SHELL = 0.4
"""Metres beyond the body's first and last crossing over which a line's outer gaps reach."""
MIN_GAP = 1e-3
"""Gaps narrower than this (metres) are held still."""
NO_BODY = 0.0
"""Table value of a line that misses the body (its ``has_body`` flag is 0)."""


def grid_shape(lo: Tensor, hi: Tensor, spacing: float) -> tuple[int, int, int]:
    """Voxels per axis covering ``[lo, hi]`` at ``spacing``."""
    return tuple(int(v) for v in torch.ceil((hi - lo) / spacing).clamp(min=1).tolist())  # type: ignore[return-value]


def _runs(line: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a 1D bool array: (first, last) indices."""
    padded = np.concatenate([[False], line, [False]]).astype(np.int8)
    change = np.diff(padded)
    starts = np.flatnonzero(change == 1)
    ends = np.flatnonzero(change == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _two_intervals(runs: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    """At most two intervals covering ``runs`` (sorted), split at the largest gap, as voxel edges
    ``s1, e1, s2, e2`` (each end one past its run's last voxel); one run gives ``s2 = e2 = e1``."""
    if len(runs) == 1:
        return runs[0][0], runs[0][1] + 1, runs[0][1] + 1, runs[0][1] + 1
    gaps = [runs[i + 1][0] - runs[i][1] for i in range(len(runs) - 1)]
    split = int(np.argmax(gaps))
    return runs[0][0], runs[split][1] + 1, runs[split + 1][0], runs[-1][1] + 1


def body_lines(
    vertices: Float[Tensor, "v 3"],
    faces: Tensor,
    lo: Float[Tensor, " 3"],
    spacing: float,
    shape: tuple[int, int, int],
) -> tuple[list[Tensor], list[Tensor]]:
    """Per axis ``a``: the body's (at most two, dilated) intervals on every grid line along ``a``.

    Returns ``intervals[a]`` of shape ``(Rb, Rc, 4)`` (``s1, e1, s2, e2`` in metres; a line with one
    interval has ``s2 = e2 = e1``) and ``has_body[a]`` of shape ``(Rb, Rc)`` (1 where the line meets
    the body), ``b < c`` the other two axes in increasing order.
    """
    lo_np = lo.double().numpy()
    axes = [lo_np[i] + (np.arange(shape[i]) + 0.5) * spacing for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # |winding| > 0.5: inside whichever way the body mesh's triangles are oriented.
    winding = winding_numbers((vertices.double().numpy(), faces.numpy()), centres)
    inside = (np.abs(winding) > 0.5).reshape(shape)
    dilated = (
        nn.functional.max_pool3d(
            torch.from_numpy(inside).float()[None, None], kernel_size=3, stride=1, padding=1
        )[0, 0]
        > 0
    ).numpy()
    intervals, has_body = [], []
    for a in range(3):
        occ = np.moveaxis(dilated, a, -1)  # (Rb, Rc, Ra)
        table = np.full(occ.shape[:2] + (4,), NO_BODY, dtype=np.float32)
        flag = occ.any(-1)
        for b, c in zip(*np.nonzero(flag), strict=True):
            edges = np.array(_two_intervals(_runs(occ[b, c])), dtype=np.float64)
            table[b, c] = lo_np[a] + edges * spacing
        intervals.append(torch.from_numpy(table))
        has_body.append(torch.from_numpy(flag.astype(np.float32)))
    return intervals, has_body


def lookup(
    fixed: Float[Tensor, "*b n 2"],
    intervals: Float[Tensor, "rb rc 4"],
    has_body: Float[Tensor, "rb rc"],
    lo: Float[Tensor, " 2"],
    spacing: float,
) -> tuple[Float[Tensor, "*b n 4"], Float[Tensor, "*b n"]]:
    """The nearest line's intervals and body flag for points with fixed coordinates ``fixed``
    (0 outside the table)."""
    idx = torch.floor((fixed - lo) / spacing).long()
    size = torch.tensor(has_body.shape, device=fixed.device)
    inside = ((idx >= 0) & (idx < size)).all(-1)
    idx = torch.minimum(idx.clamp(min=0), size - 1)
    flat = idx[..., 0] * has_body.shape[1] + idx[..., 1]
    rows = intervals.reshape(-1, 4)[flat].to(fixed.dtype)
    flag = has_body.reshape(-1)[flat].to(fixed.dtype) * inside.to(fixed.dtype)
    return rows, flag


def gap_of(
    x: Float[Tensor, "*b n"],
    rows: Float[Tensor, "*b n 4"],
    flag: Float[Tensor, "*b n"],
    bound: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Which gap each coordinate lies in (0 below, 1 between or no body, 2 above, -1 none: on the
    body or in a gap too narrow to move) and that gap's ends ``(g0, g1)``."""
    s1, e1, s2, e2 = rows.unbind(-1)
    body = flag > 0
    low = body & (x > s1 - ANCHOR_SHELL) & (x < s1)
    mid = body & (x > e1) & (x < s2)
    high = body & (x > e2) & (x < e2 + ANCHOR_SHELL)
    free = ~body & (x > -bound) & (x < bound)
    which = torch.full_like(x, -1, dtype=torch.long)
    which = torch.where(low, 0, which)
    which = torch.where(mid | free, 1, which)
    which = torch.where(high, 2, which)
    g0 = torch.where(low, s1 - ANCHOR_SHELL, torch.where(mid, e1, torch.where(high, e2, -bound)))
    g1 = torch.where(low, s1, torch.where(mid, s2, torch.where(high, e2 + ANCHOR_SHELL, bound)))
    which = torch.where(g1 - g0 < MIN_GAP, -1, which)
    return which, g0, g1


class BodyTable(nn.Module):
    """The body's intervals on the grid lines of each axis, as buffers (saved with the model).

    Made empty for the box ``[lo, hi]`` (a checkpoint's weights fill it), or filled from the body
    mesh with :meth:`fill`.
    """

    def __init__(self, lo: Float[Tensor, " 3"], hi: Float[Tensor, " 3"], spacing: float) -> None:
        super().__init__()
        self.spacing = spacing
        self.shape = grid_shape(lo, hi, spacing)
        self.register_buffer("lo", lo.detach().float().clone())
        for a in range(3):
            rb, rc = (self.shape[i] for i in range(3) if i != a)
            self.register_buffer(f"intervals_{a}", torch.zeros(rb, rc, 4))
            self.register_buffer(f"has_body_{a}", torch.zeros(rb, rc))

    @torch.no_grad()
    def fill(self, vertices: Float[Tensor, "v 3"], faces: Tensor) -> BodyTable:
        """Compute the table from the canonical body mesh (:func:`body_lines`)."""
        intervals, has_body = body_lines(vertices, faces, self.lo.cpu(), self.spacing, self.shape)
        for a in range(3):
            getattr(self, f"intervals_{a}").copy_(intervals[a])
            getattr(self, f"has_body_{a}").copy_(has_body[a])
        return self

    def lookup(
        self, axis: int, fixed: Float[Tensor, "*b n 2"]
    ) -> tuple[Float[Tensor, "*b n 4"], Float[Tensor, "*b n"]]:
        """The intervals and body flag of the line along ``axis`` nearest to ``fixed``."""
        lo = self.lo[[i for i in range(3) if i != axis]]
        return lookup(
            fixed,
            getattr(self, f"intervals_{axis}"),
            getattr(self, f"has_body_{axis}"),
            lo.to(fixed.dtype),
            self.spacing,
        )
