"""A loose skirt as a closed surface, draped per pose by a short position-based cloth relaxation.

Conventions: metres, y up, the body facing +z (see :mod:`invskin.body.anny_model`). The skirt is
a grid of ``rows`` rings (row 0 at the waist, the last at the hem) by ``segments`` points around
(segment 0 at the front, +x at a quarter turn), closed by a flat waist cap (inside the body) and a
hem cap that rises as a cone into the skirt (its underside, between the legs), so it bounds a
volume. Shape legend: ``F`` frames, ``J`` bones, ``R`` rows, ``S`` segments, ``N`` vertices.

How a pose places the skirt (a pure, deterministic function of the bone transforms):

1. **Attachment** (linear blend skinning): each grid point is skinned with weights that go from
   the body's weights at the nearest body vertex (waist and hips) to a blend of the two thighs
   below the hips, left and right by the side of the skirt, half and half at the front and back.
2. **Drape** (not expressible by skinning): a fixed number of relaxation steps, each pulling free
   points down by gravity in **world** space, back towards the attachment with a strength that
   fades from the waist (fully pinned) to the hem (nearly free), restoring the canonical lengths
   of the cloth edges (stretch, shear and bending springs), and pushing points out of tapered
   capsules around the thighs and shins. The hem therefore hangs between the legs, is carried by
   a forward thigh, stretches taut between spread knees and stays closer to vertical when the
   trunk leans, while the waist follows the body exactly.

The relaxation starts from the attachment and runs a fixed number of iterations, so the result is
smooth in the pose and identical for identical poses (no time integration, no history).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from scipy.spatial import cKDTree
from torch import Tensor

from invskin.body.anny_model import AnnyBody

LEG_BONES = ("upperleg01", "lowerleg01", "foot")
ARM_BONES = ("clavicle", "upperarm01", "lowerarm01", "wrist")
RELAXATION = 1.8  # over-relaxation of the averaged (Jacobi) spring projection
SPRING_SWEEPS = 2  # spring sweeps per relaxation iteration
HANG_SLACK = 1.02  # a column may stretch this much under gravity (long-range attachment)


@dataclass(frozen=True)
class SkirtConfig:
    """Shape, resolution and cloth parameters of the skirt (metres, unless said otherwise)."""

    segments: int = 96
    """Points around each ring."""
    rows: int = 26
    """Rings from the waist to the hem."""
    cap_rings: int = 4
    """Rings of each cap between its border and its centre."""
    waist: float = 0.4
    """Waist height as a fraction of the way from the lower to the middle spine joint."""
    hem_above_knee: float = 0.04
    """Hem height above the canonical knee joints."""
    ease_waist: float = 0.012
    ease_hem: float = 0.035
    """Clearance between body and skirt at the waist and at the hem, canonical pose."""
    flare: float = 0.3
    """Least growth of the radius per metre below the waist (A-line)."""
    leg_follow: float = 0.85
    """Share of the thighs in the attachment of the hem (the rest follows the pelvis)."""
    gravity: float = 0.005
    """Downward step of a free point per iteration."""
    iterations: int = 40
    pin_min: float = 0.02
    """Pull back towards the attachment per iteration at the hem (1 at the waist)."""
    collision_margin: float = 0.015
    """Clearance kept between the cloth and the leg capsules."""
    fairing: int = 4
    """Taubin smoothing steps after the relaxation."""
    dome: float = 0.1
    """Height of the hem cap's apex above the hem's highest point."""


@dataclass(frozen=True, eq=False)
class SkirtTemplate:
    """The canonical skirt and everything the drape needs; see :func:`build_skirt`.

    ``rest`` (R, S, 3) canonical grid; ``weights`` (R*S, J) attachment weights; ``pin`` (R,)
    per-row pull towards the attachment; ``edges`` (E, 2) grid vertex pairs with ``lengths`` and
    ``stiffness`` (E,); ``hang_limit`` (R*S,) the farthest a grid point may get from its column's
    waist point; tapered capsules with ends at canonical ``capsule_points`` (C, 2, 3) carried by
    ``capsule_bones`` (C, 2) and ``radii`` (C, 2) at both ends; ``faces`` (T, 3) over all skirt
    vertices (grid, then the waist cap, then the hem cap), outward.
    """

    config: SkirtConfig
    rest: Float[Tensor, "r s 3"]
    weights: Float[Tensor, "g j"]
    pin: Float[Tensor, " r"]
    edges: Int[Tensor, "e 2"]
    lengths: Float[Tensor, " e"]
    stiffness: Float[Tensor, " e"]
    capsule_bones: Int[Tensor, "c 2"]
    capsule_points: Float[Tensor, "c 2 3"]
    radii: Float[Tensor, "c 2"]
    faces: Int[Tensor, "t 3"]
    hang_limit: Float[Tensor, " g"]

    @property
    def num_vertices(self) -> int:
        r, s = self.rest.shape[:2]
        return r * s + 2 * (self.config.cap_rings - 1) * s + 2


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _bone_mask(body: AnnyBody, prefixes: tuple[str, ...]) -> np.ndarray:
    names = body.skeleton.names
    return np.array([name.split(".")[0] in prefixes for name in names])


def build_skirt(body: AnnyBody, config: SkirtConfig | None = None) -> SkirtTemplate:
    """Fit the canonical skirt around the canonical body and set up its cloth model."""
    config = config or SkirtConfig()
    skel = body.skeleton
    joints = skel.joints().double().numpy()
    verts = body.vertices.double().numpy()
    weights = body.weights.double().numpy()
    # Torso and legs only: the hands hang beside the hips and must not widen the skirt.
    arm_share = weights[:, _bone_mask(body, ARM_BONES)].sum(1)
    trunk = verts[arm_share < 0.2]
    y_waist = joints[skel.index("spine04"), 1] + config.waist * (
        joints[skel.index("spine02"), 1] - joints[skel.index("spine04"), 1]
    )
    knee_y = 0.5 * (joints[skel.index("lowerleg01.L"), 1] + joints[skel.index("lowerleg01.R"), 1])
    y_hem = knee_y + config.hem_above_knee
    band = trunk[np.abs(trunk[:, 1] - y_waist) < 0.02]
    centre_z = 0.5 * (band[:, 2].min() + band[:, 2].max())

    rows, segments = config.rows, config.segments
    v = np.linspace(0.0, 1.0, rows)
    heights = y_waist + v * (y_hem - y_waist)
    u = 2 * math.pi * np.arange(segments) / segments
    direction = np.stack([np.sin(u), np.zeros_like(u), np.cos(u)], -1)  # (S, 3), u=0 is +z

    extent = _radial_extent(trunk, centre_z, heights, u)
    ease = config.ease_waist + v * (config.ease_hem - config.ease_waist)
    waist_radius = extent[0] + ease[0]
    profile = waist_radius[None, :] + config.flare * (y_waist - heights)[:, None]
    radius = np.maximum(profile, extent + ease[:, None])
    radius = np.maximum.accumulate(radius, axis=0)  # never tucks in below the widest point
    radius = _smooth_periodic(radius, sigma=2.0)
    rest = np.empty((rows, segments, 3))
    rest[..., 0] = radius * direction[None, :, 0]
    rest[..., 1] = heights[:, None]
    rest[..., 2] = centre_z + radius * direction[None, :, 2]

    attach = _attachment_weights(body, rest, joints, config, u)
    hip_y = 0.5 * (joints[skel.index("upperleg01.L"), 1] + joints[skel.index("upperleg01.R"), 1])
    free = _smoothstep((hip_y + 0.02 - heights) / 0.2)
    pin = 1.0 - (1.0 - config.pin_min) * free
    edges, stiffness = _grid_edges(rows, segments)
    flat = rest.reshape(-1, 3)
    lengths = np.linalg.norm(flat[edges[:, 1]] - flat[edges[:, 0]], axis=-1)
    capsule_bones, capsule_points, radii = _leg_capsules(body, joints)
    return SkirtTemplate(
        config=config,
        rest=torch.from_numpy(rest),
        weights=torch.from_numpy(attach),
        pin=torch.from_numpy(pin),
        edges=torch.from_numpy(edges),
        lengths=torch.from_numpy(lengths),
        stiffness=torch.from_numpy(stiffness),
        capsule_bones=torch.from_numpy(capsule_bones),
        capsule_points=torch.from_numpy(capsule_points),
        radii=torch.from_numpy(radii),
        faces=torch.from_numpy(_skirt_faces(rows, segments, config.cap_rings)),
        hang_limit=torch.from_numpy(HANG_SLACK * _column_lengths(rest).reshape(-1)),
    )


def _column_lengths(rest: np.ndarray) -> np.ndarray:
    """Length (R, S) along each column of the canonical grid from the waist down to each row."""
    step = np.linalg.norm(np.diff(rest, axis=0), axis=-1)
    return np.concatenate([np.zeros((1, rest.shape[1])), np.cumsum(step, axis=0)])


def _radial_extent(
    points: np.ndarray, centre_z: float, heights: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Largest distance (R, S) from the vertical axis of body points near each (height, angle)."""
    rel_x, rel_z = points[:, 0], points[:, 2] - centre_z
    theta = np.arctan2(rel_x, rel_z)
    rho = np.hypot(rel_x, rel_z)
    extent = np.zeros((len(heights), len(u)))
    for k, h in enumerate(heights):
        near = np.abs(points[:, 1] - h) < 0.025
        if not near.any():
            continue
        diff = np.angle(np.exp(1j * (theta[near][None, :] - u[:, None])))
        window = np.abs(diff) < math.radians(10)
        extent[k] = np.where(window, rho[near][None, :], 0.0).max(1)
    return extent


def _smooth_periodic(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the last (periodic) axis."""
    offsets = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    return sum(w * np.roll(values, o, axis=-1) for o, w in zip(offsets, kernel))


def _attachment_weights(
    body: AnnyBody, rest: np.ndarray, joints: np.ndarray, config: SkirtConfig, u: np.ndarray
) -> np.ndarray:
    """Skinning weights of the grid (R*S, J): nearest body vertex at the top, thighs below."""
    skel = body.skeleton
    verts = body.vertices.double().numpy()
    weights = body.weights.double().numpy()
    usable = weights[:, _bone_mask(body, ARM_BONES)].sum(1) < 0.05
    tree = cKDTree(verts[usable])
    _, nearest = tree.query(rest.reshape(-1, 3))
    near_w = weights[usable][nearest]
    rows, segments = rest.shape[:2]
    hip_y = 0.5 * (joints[skel.index("upperleg01.L"), 1] + joints[skel.index("upperleg01.R"), 1])
    follow = config.leg_follow * _smoothstep((hip_y - rest[:, 0, 1]) / 0.15)  # (R,)
    left = 0.5 + 0.5 * np.sin(u)  # (S,): 1 on the left (+x) side, 1/2 at the front and back
    legs = np.zeros((rows, segments, skel.num_bones))
    legs[..., skel.index("upperleg01.L")] = left[None, :]
    legs[..., skel.index("upperleg01.R")] = 1.0 - left[None, :]
    pelvis = np.zeros(skel.num_bones)
    pelvis[skel.index("root")] = 1.0
    # Below the hips the body's own weights would jump from one leg to the other at the front.
    below = _smoothstep((hip_y - rest[:, 0, 1]) / 0.1)[:, None, None]
    base = (1 - below) * near_w.reshape(rows, segments, -1) + below * pelvis
    out = (1 - follow)[:, None, None] * base + follow[:, None, None] * legs
    return (out / out.sum(-1, keepdims=True)).reshape(rows * segments, -1)


def _grid_edges(rows: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Springs of the periodic grid: stretch, shear and bending, with their stiffness."""
    idx = np.arange(rows * segments).reshape(rows, segments)
    ring = lambda k: np.roll(idx, -k, axis=1)  # neighbour k segments further around
    pairs, stiff = [], []
    for a, b, k in (
        (idx, ring(1), 1.0),  # around
        (idx[:-1], idx[1:], 1.0),  # down
        (idx[:-1], ring(1)[1:], 0.5),  # shear
        (ring(1)[:-1], idx[1:], 0.5),
        (idx, ring(2), 0.6),  # bending
        (idx[:-2], idx[2:], 0.6),
    ):
        pairs.append(np.stack([a.ravel(), b.ravel()], -1))
        stiff.append(np.full(a.size, k))
    return np.concatenate(pairs).astype(np.int64), np.concatenate(stiff)


def _leg_capsules(body: AnnyBody, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tapered capsules around thighs, shins and feet: the bones carrying each end (C, 2), the
    canonical end points (C, 2, 3) and the end radii (C, 2), fitted to the body's vertices."""
    skel = body.skeleton
    verts = body.vertices.double().numpy()
    weights = body.weights.double().numpy()
    bones, points, radii = [], [], []
    for side in ("L", "R"):
        hip, knee, ankle = (skel.index(f"{b}.{side}") for b in LEG_BONES)
        foot = verts[weights[:, ankle] > 0.6]
        toe = foot[np.argmax(np.linalg.norm(foot - joints[ankle], axis=-1))]
        for (i, a), (j, b) in (
            ((hip, joints[hip]), (knee, joints[knee])),
            ((knee, joints[knee]), (ankle, joints[ankle])),
            ((ankle, joints[ankle]), (ankle, toe + 0.15 * (joints[ankle] - toe))),
        ):
            mine = verts[weights[:, i] > 0.6]
            axis = b - a
            t = np.clip((mine - a) @ axis / (axis @ axis), 0, 1)
            dist = np.linalg.norm(mine - (a + t[:, None] * axis), axis=-1)
            ends = []
            for lo, hi in ((0.1, 0.35), (0.65, 0.9)):
                sel = (t > lo) & (t < hi)
                ends.append(np.percentile(dist[sel], 90) if sel.any() else np.median(dist))
            bones.append((i, j))
            points.append((a, b))
            radii.append(ends)
    return np.array(bones, dtype=np.int64), np.array(points), np.array(radii)


def _skirt_faces(rows: int, segments: int, cap_rings: int) -> np.ndarray:
    """Outward faces of the tube and both caps (rings shrinking to a centre vertex)."""
    idx = np.arange(rows * segments).reshape(rows, segments)
    nxt = np.roll(idx, -1, axis=1)
    # a -> c goes down a column, a -> b around (+u, front towards +x): (a, c, b) faces outwards.
    a, b, c, d = idx[:-1], nxt[:-1], idx[1:], nxt[1:]
    faces = [np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)]
    start = rows * segments
    for border, up in ((idx[0], True), (idx[-1], False)):
        ring_ids = [border]
        for _ in range(cap_rings - 1):
            ring_ids.append(start + np.arange(segments))
            start += segments
        centre = start
        start += 1
        for outer, inner in zip(ring_ids[:-1], ring_ids[1:]):
            o, on, i_, inn = outer, np.roll(outer, -1), inner, np.roll(inner, -1)
            quad = [np.stack([o, i_, on], -1), np.stack([on, i_, inn], -1)]
            if up:
                quad = [q[:, [0, 2, 1]] for q in quad]
            faces += quad
        last = ring_ids[-1]
        fan = np.stack([last, np.full(segments, centre), np.roll(last, -1)], -1)
        faces.append(fan[:, [0, 2, 1]] if up else fan)
    return np.concatenate(faces).astype(np.int64)


def drape_skirt(
    template: SkirtTemplate, transforms: Float[Tensor, "f j 4 4"]
) -> Float[Tensor, "f n 3"]:
    """All skirt vertices (grid, waist cap, hem cap) in every frame, float64."""
    cfg = template.config
    transforms = transforms.double()
    rows, segments = template.rest.shape[:2]
    rest = template.rest.reshape(-1, 3)
    blended = torch.einsum("gj,fjkl->fgkl", template.weights, transforms)
    attach = torch.einsum("fgij,gj->fgi", blended[..., :3, :3], rest) + blended[..., :3, 3]
    ends = template.capsule_points.reshape(-1, 3)
    carriers = transforms[:, template.capsule_bones.reshape(-1)]  # (F, 2C, 4, 4)
    capsule_ends = torch.einsum("fcik,ck->fci", carriers[..., :3, :3], ends) + carriers[..., :3, 3]
    capsule_ends = capsule_ends.reshape(transforms.shape[0], -1, 2, 3)
    pin = template.pin.repeat_interleave(segments)[None, :, None]  # (1, G, 1)
    gravity = torch.tensor([0.0, -cfg.gravity, 0.0], dtype=torch.float64)
    count = torch.zeros(rows * segments, dtype=torch.float64)
    count.index_add_(
        0, template.edges.reshape(-1), torch.ones(template.edges.numel(), dtype=torch.float64)
    )
    points = attach.clone()
    for _ in range(cfg.iterations):
        points = points + (1 - pin) * gravity
        points = points + pin * (attach - points)
        for _ in range(SPRING_SWEEPS):
            points = _relax_springs(points, template, count)
        points[:, :segments] = attach[:, :segments]
        points = _limit_hang(points, template, segments)
        points = _collide(points, capsule_ends, template, pin)
        points[:, :segments] = attach[:, :segments]
    points = _fair(points.reshape(-1, rows, segments, 3), cfg.fairing).reshape(points.shape)
    points = _collide(points, capsule_ends, template, pin)
    grid = points.reshape(-1, rows, segments, 3)
    return torch.cat([points, *_cap_vertices(grid, cfg.cap_rings, cfg.dome)], dim=1)


def _relax_springs(
    points: Float[Tensor, "f g 3"], template: SkirtTemplate, count: Float[Tensor, " g"]
) -> Float[Tensor, "f g 3"]:
    """One Jacobi sweep over all springs: move both ends towards the rest length, averaged."""
    i, j = template.edges[:, 0], template.edges[:, 1]
    delta = points[:, j] - points[:, i]
    length = delta.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    corr = 0.5 * template.stiffness[None, :, None] * (length - template.lengths[None, :, None])
    corr = corr * delta / length
    move = torch.zeros_like(points)
    move.index_add_(1, i, corr)
    move.index_add_(1, j, -corr)
    return points + RELAXATION * move / count[None, :, None]


def _fair(grid: Float[Tensor, "f r s 3"], steps: int) -> Float[Tensor, "f r s 3"]:
    """Taubin smoothing of the grid below the waist row (removes the zig-zag of buckled
    springs without shrinking the skirt); the hem row is smoothed along the ring only."""
    for _ in range(steps):
        for factor in (0.5, -0.53):
            around = 0.5 * (grid.roll(1, dims=2) + grid.roll(-1, dims=2))
            down = torch.cat([grid[:, :1], 0.5 * (grid[:, :-2] + grid[:, 2:]), grid[:, -1:]], 1)
            target = torch.cat([0.5 * (around[:, :-1] + down[:, :-1]), around[:, -1:]], 1)
            moved = grid + factor * (target - grid)
            grid = torch.cat([grid[:, :1], moved[:, 1:]], 1)
    return grid


def _limit_hang(
    points: Float[Tensor, "f g 3"], template: SkirtTemplate, segments: int
) -> Float[Tensor, "f g 3"]:
    """Long-range attachment: no point gets farther from its column's waist point than the
    canonical length of the column down to it (stops gravity from stretching the cloth)."""
    anchor = points[:, :segments].repeat(1, template.rest.shape[0], 1)
    offset = points - anchor
    dist = offset.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    limit = template.hang_limit[None, :, None]
    return anchor + offset * torch.clamp(limit / dist, max=1.0)


def _collide(
    points: Float[Tensor, "f g 3"],
    capsule_ends: Float[Tensor, "f c 2 3"],
    template: SkirtTemplate,
    pin: Float[Tensor, "1 g 1"],
) -> Float[Tensor, "f g 3"]:
    """Push free points out of every leg capsule (radius plus margin)."""
    for c, (r0, r1) in enumerate(template.radii.tolist()):
        a, b = capsule_ends[:, c, 0, None], capsule_ends[:, c, 1, None]  # (F, 1, 3)
        axis = b - a
        t = (
            ((points - a) * axis).sum(-1, keepdim=True) / (axis * axis).sum(-1, keepdim=True)
        ).clamp(0, 1)
        centre = a + t * axis
        offset = points - centre
        dist = offset.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        radius = r0 + t * (r1 - r0) + template.config.collision_margin
        push = (radius - dist).clamp(min=0) * (1 - pin)
        points = points + push * offset / dist
    return points


def _cap_vertices(grid: Float[Tensor, "f r s 3"], cap_rings: int, dome: float) -> list[Tensor]:
    """Inner rings and centre of the waist cap and the hem cap.

    The waist cap shrinks to the waist ring's mean. The hem cap is a cone from the hem up to a
    point ``dome`` above the hem's highest point (over the hem's mean), so it never dips below the
    hem: legs leave the closed skirt volume at the cap and stay visible below the hem.
    """
    out = []
    for border, lift in ((grid[:, 0], None), (grid[:, -1], dome)):
        centre = border.mean(1, keepdim=True)
        if lift is not None:
            centre = centre.clone()
            centre[..., 1] = border[..., 1].amax(1, keepdim=True) + lift
        for k in range(1, cap_rings):
            s = 1.0 - k / cap_rings
            out.append(centre + s * (border - centre))
        out.append(centre)
    return out
