"""Skinning-weight fields in canonical space: an MLP (reference) and a voxel grid (fast path).

Conventions: canonical points ``(..., 3)`` in metres map to skinning weights ``(..., J)`` that are
non-negative and sum to one, in the skeleton's bone order. ``weights_and_gradients`` also returns
the spatial gradients ``d w_b / d x`` as ``(..., J, 3)``, the layout
:func:`invskin.geometry.lbs_jacobian` takes. Both fields are pure functions of the point (no pose),
which the root finder relies on.

- :class:`SkinningField`: ``w = softmax(logit_scale * MLP(x / input_radius))`` (SNARF's form, with
  its "soft blend" of 20 as the default logit scale). Its gradients are computed analytically in the
  same pass (:meth:`invskin.nets.mlp.Mlp.forward_with_jacobian`), no backward pass per bone.
- :class:`SkinningGrid`: the weights baked on a voxel grid over explicit bounds and interpolated
  trilinearly with ``grid_sample`` (as FastSNARF); outside the bounds the border value is used. Its
  gradients are the exact derivatives of that trilinear interpolation.
- :func:`nearest_vertex_weights`: the body model's per-vertex weights carried to any point by its
  nearest body vertex; the prior used to initialise (:meth:`SkinningField.fit_to_prior`) and to
  regularise (:meth:`SkinningField.prior_loss`) the learned field.

Shape legend: ``V`` prior (body) vertices, ``J`` bones, ``M`` flattened points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from jaxtyping import Bool, Float
from scipy.spatial import cKDTree
from torch import Tensor, nn

from invskin.nets.mlp import Activation, Mlp


@dataclass(frozen=True)
class SkinningWeights:
    """Skinning weights and their spatial gradients ``d w_b / d x``."""

    weights: Float[Tensor, "*p j"]
    gradients: Float[Tensor, "*p j 3"]


@runtime_checkable
class WeightField(Protocol):
    """What the root finder and the model need from a skinning-weight field."""

    def __call__(self, points: Tensor) -> Tensor: ...

    def weights_and_gradients(self, points: Tensor) -> SkinningWeights: ...


class NearestVertexWeights:
    """The prior's per-vertex weights carried to any point by its nearest vertex (a k-d tree over
    the vertices, built once; queries on the CPU, results on the weights' device)."""

    def __init__(self, prior_vertices: Float[Tensor, "v 3"], prior_weights: Float[Tensor, "v j"]):
        self.tree = cKDTree(prior_vertices.detach().cpu().double().numpy())
        self.weights = prior_weights

    def query(
        self, points: Float[Tensor, "*p 3"]
    ) -> tuple[Float[Tensor, "*p"], Float[Tensor, "*p j"]]:
        """Distance to the nearest vertex and its weights, for every point."""
        distance, index = self.tree.query(points.detach().reshape(-1, 3).cpu().double().numpy())
        index = torch.from_numpy(index.astype("int64")).to(self.weights.device)
        weights = self.weights[index].reshape(*points.shape[:-1], self.weights.shape[-1])
        distance = torch.from_numpy(distance).to(points).reshape(points.shape[:-1])
        return distance, weights

    def __call__(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p j"]:
        return self.query(points)[1]


def nearest_vertex_weights(
    prior_vertices: Float[Tensor, "v 3"],
    prior_weights: Float[Tensor, "v j"],
    points: Float[Tensor, "*p 3"],
) -> Float[Tensor, "*p j"]:
    """Weights of the nearest prior vertex for every point."""
    return NearestVertexWeights(prior_vertices, prior_weights)(points)


@dataclass
class SkinningFieldConfig:
    """Hyper-parameters of a :class:`SkinningField`."""

    hidden_width: int = 128
    hidden_layers: int = 4
    logit_scale: float = 20.0
    """Multiplies the logits before the softmax (SNARF's soft blend); higher is sharper."""
    input_radius: float = 1.25
    """Points are divided by this (metres) before the MLP."""
    activation: Activation = "silu"
    """Smooth, so the Jacobian Broyden and the implicit gradient use is continuous, and about ten
    times cheaper on CPU than SNARF's softplus with beta 100 (``"softplus"``, still available)."""
    softplus_beta: float = 100.0
    zero_last: bool = False
    """Zero-initialise the MLP's output layer: the logits start at 0 (for a residual field)."""


@dataclass
class PriorFitConfig:
    """How :meth:`SkinningField.fit_to_prior` samples points and optimises."""

    steps: int = 1000
    batch_points: int = 4096
    learning_rate: float = 1e-3
    surface_noise: float = 0.05
    """Standard deviation (metres) of the offsets of samples around prior vertices."""
    uniform_fraction: float = 0.25
    """Fraction of samples drawn uniformly in the vertices' bounding box, padded."""
    padding: float = 0.2
    """Padding (metres) of that bounding box."""
    pool_batches: int = 16
    """Samples and their nearest-vertex targets are drawn once, ``pool_batches * batch_points`` of
    them, and each step takes a random batch from that pool (the nearest-vertex search, not the
    network, is the expensive part)."""


class SkinningField(nn.Module):
    """MLP skinning-weight field ``w(x) = softmax(logit_scale * MLP(x / input_radius))``."""

    def __init__(self, num_bones: int, config: SkinningFieldConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SkinningFieldConfig()
        self.num_bones = num_bones
        self.mlp = Mlp(
            3,
            num_bones,
            config.hidden_width,
            config.hidden_layers,
            activation=config.activation,
            softplus_beta=config.softplus_beta,
            zero_last=config.zero_last,
        )

    def logits(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p j"]:
        return self.config.logit_scale * self.mlp(points / self.config.input_radius)

    def forward(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p j"]:
        return torch.softmax(self.logits(points), dim=-1)

    def weights_and_gradients(self, points: Float[Tensor, "*p 3"]) -> SkinningWeights:
        """Weights and ``d w / d x`` (analytic, forward mode; differentiable by autograd)."""
        cfg = self.config
        raw, raw_jac = self.mlp.forward_with_jacobian(points / cfg.input_radius)
        weights = torch.softmax(cfg.logit_scale * raw, dim=-1)
        logit_jac = raw_jac * (cfg.logit_scale / cfg.input_radius)  # (*p, J, 3)
        mean_jac = torch.einsum("...j,...jk->...k", weights, logit_jac)
        gradients = weights[..., None] * (logit_jac - mean_jac[..., None, :])
        return SkinningWeights(weights, gradients)

    def prior_loss(
        self, points: Float[Tensor, "*p 3"], prior_weights: Float[Tensor, "*p j"]
    ) -> Float[Tensor, ""]:
        """Mean over points of the squared distance between the field's and the prior's weights."""
        return (self(points) - prior_weights).square().sum(-1).mean()

    def fit_to_prior(
        self,
        prior_vertices: Float[Tensor, "v 3"],
        prior_weights: Float[Tensor, "v j"],
        config: PriorFitConfig | None = None,
    ) -> list[float]:
        """Regress the field to the nearest-vertex prior near the body; returns the loss per step.

        Samples are prior vertices plus Gaussian offsets, and a fraction uniform in the padded
        bounding box, drawn once into a pool; the targets are :func:`nearest_vertex_weights`. Uses
        its own Adam optimiser.
        """
        cfg = config or PriorFitConfig()
        lo = prior_vertices.min(dim=0).values - cfg.padding
        hi = prior_vertices.max(dim=0).values + cfg.padding
        pool_size = cfg.batch_points * max(1, cfg.pool_batches)
        num_uniform = int(pool_size * cfg.uniform_fraction)
        picks = torch.randint(
            prior_vertices.shape[0], (pool_size - num_uniform,), device=prior_vertices.device
        )
        near = prior_vertices[picks] + cfg.surface_noise * torch.randn_like(prior_vertices[picks])
        uniform = lo + (hi - lo) * torch.rand(num_uniform, 3, dtype=lo.dtype, device=lo.device)
        pool = torch.cat([near, uniform])
        pool_targets = nearest_vertex_weights(prior_vertices, prior_weights, pool)
        optimizer = torch.optim.Adam(self.parameters(), lr=cfg.learning_rate)
        losses = []
        for _ in range(cfg.steps):
            batch = torch.randint(pool_size, (cfg.batch_points,), device=pool.device)
            loss = self.prior_loss(pool[batch], pool_targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses


def grid_nodes(
    bounds: Float[Tensor, "2 3"], resolution: tuple[int, int, int]
) -> Float[Tensor, "rz ry rx 3"]:
    """Node positions of a grid of ``resolution`` (x, y, z counts) over ``bounds``, in the
    ``(Rz, Ry, Rx)`` layout of :class:`SkinningGrid`."""
    axes = [
        torch.linspace(
            float(bounds[0, a]), float(bounds[1, a]), resolution[a], dtype=bounds.dtype,
            device=bounds.device,
        )
        for a in range(3)
    ]  # fmt: skip
    zz, yy, xx = torch.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


class SkinningGrid(nn.Module):
    """Skinning weights on a voxel grid over ``bounds``, interpolated trilinearly.

    ``grid`` has shape ``(J, Rz, Ry, Rx)`` (``grid_sample``'s depth, height, width order); node
    ``(k, j, i)`` sits at ``lo + (i, j, k) * (hi - lo) / (R - 1)``; ``bounds`` is ``[lo, hi]``.
    """

    def __init__(self, grid: Float[Tensor, "j rz ry rx"], bounds: Float[Tensor, "2 3"]) -> None:
        super().__init__()
        if min(grid.shape[1:]) < 2:
            raise ValueError(f"a grid needs at least 2 nodes per axis, got {tuple(grid.shape[1:])}")
        if not bool((bounds[1] > bounds[0]).all()):
            raise ValueError(f"bounds must be [lo, hi] with lo < hi, got {bounds.tolist()}")
        self.register_buffer("grid", grid)
        self.register_buffer("bounds", bounds.to(grid))

    @property
    def num_bones(self) -> int:
        return self.grid.shape[0]

    @property
    def resolution(self) -> tuple[int, int, int]:
        """Nodes along x, y, z."""
        return (self.grid.shape[3], self.grid.shape[2], self.grid.shape[1])

    @classmethod
    @torch.no_grad()
    def from_field(
        cls,
        field: Callable[[Tensor], Tensor],
        bounds: Float[Tensor, "2 3"],
        resolution: int | tuple[int, int, int],
        chunk: int = 65536,
    ) -> SkinningGrid:
        """Bake ``field`` on a grid of ``resolution`` nodes per axis (one int, or x, y, z counts)."""
        res = (resolution,) * 3 if isinstance(resolution, int) else tuple(resolution)
        nodes = grid_nodes(bounds, res).reshape(-1, 3)
        weights = torch.cat([field(part) for part in nodes.split(chunk)])
        grid = weights.T.reshape(-1, res[2], res[1], res[0]).contiguous()
        return cls(grid, bounds)

    def _normalised(self, points: Tensor) -> Tensor:
        lo, hi = self.bounds.to(points)
        return (points - lo) / (hi - lo) * 2.0 - 1.0

    @staticmethod
    def _sample(grid: Tensor, coords: Tensor) -> Tensor:
        """Trilinear lookup of a ``(C, D, H, W)`` grid at normalised ``(M, 3)`` coords -> ``(M, C)``."""
        out = nn.functional.grid_sample(
            grid[None],
            coords[None, None, None],
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        return out[0, :, 0, 0].T

    def forward(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p j"]:
        coords = self._normalised(points.reshape(-1, 3))
        weights = self._sample(self.grid.to(points.dtype), coords)
        return weights.reshape(*points.shape[:-1], self.num_bones)

    def weights_and_gradients(self, points: Float[Tensor, "*p 3"]) -> SkinningWeights:
        """Weights and the exact gradient of the trilinear interpolation (zero across the border).

        Along axis a the derivative is the cell's forward difference, interpolated in the two other
        axes: a lookup in the difference grid at the cell's node along a.
        """
        flat = points.reshape(-1, 3)
        grid = self.grid.to(points.dtype)
        coords = self._normalised(flat)
        weights = self._sample(grid, coords)
        lo, hi = self.bounds.to(points)
        columns = []
        for axis, dim in zip(range(3), (3, 2, 1)):  # x, y, z live in grid dims 3, 2, 1
            nodes = grid.shape[dim]
            spacing = (hi[axis] - lo[axis]) / (nodes - 1)
            diff = torch.diff(grid, dim=dim) / spacing
            u = (flat[:, axis] - lo[axis]) / spacing
            cell = u.floor().clamp(0, nodes - 2)
            snapped = cell / (nodes - 2) * 2.0 - 1.0 if nodes > 2 else torch.zeros_like(cell)
            cell_coords = coords.clone()
            cell_coords[:, axis] = snapped
            inside = ((u >= 0) & (u <= nodes - 1)).to(points.dtype)
            columns.append(self._sample(diff, cell_coords) * inside[:, None])
        gradients = torch.stack(columns, dim=-1)
        return SkinningWeights(
            weights.reshape(*points.shape[:-1], self.num_bones),
            gradients.reshape(*points.shape[:-1], self.num_bones, 3),
        )

    def pre_blend(self, transforms: Float[Tensor, "b j 4 4"]) -> BlendedTransformGrid:
        """The grid of blended transforms ``sum_b w_b(node) T_b`` of every frame (FastSNARF).

        Trilinear interpolation is linear, so interpolating the blended transforms equals blending
        with interpolated weights: the same ``LBS`` with 12 channels per frame instead of ``J``.
        """
        return BlendedTransformGrid(self.grid, self.bounds, transforms)

    def contains(self, points: Float[Tensor, "*p 3"]) -> Bool[Tensor, "*p"]:
        """Whether points lie inside the grid's bounds."""
        lo, hi = self.bounds.to(points)
        return ((points >= lo) & (points <= hi)).all(dim=-1)


def blended_transform_grids(
    grid: Float[Tensor, "j rz ry rx"], transforms: Float[Tensor, "b j 4 4"]
) -> Float[Tensor, "b 12 rz ry rx"]:
    """Each frame's bone transforms (their top 3x4 rows, row-major) blended at every node of a
    weight grid: ``sum_b w_b(node) T_b``. Trilinear interpolation is linear, so interpolating these
    equals blending with interpolated weights."""
    rows = transforms[..., :3, :].reshape(*transforms.shape[:-2], 12).to(grid)
    return torch.einsum("jzyx,bjc->bczyx", grid, rows)


class BlendedTransformGrid:
    """Per-frame grids of the blended 3x4 transforms of a :class:`SkinningGrid` (no autograd).

    ``lookup(x, frame)`` interpolates frame ``frame[i]``'s grid trilinearly at ``x[i]`` (border
    values outside the bounds, as :class:`SkinningGrid`), so one call serves rows of mixed frames.
    It equals ``blend_transforms(grid(x), transforms[frame])[..., :3, :]`` up to float rounding
    (test: ``tests/test_skinning_field.py``).
    """

    def __init__(
        self,
        grid: Float[Tensor, "j rz ry rx"],
        bounds: Float[Tensor, "2 3"],
        transforms: Float[Tensor, "b j 4 4"],
    ) -> None:
        with torch.no_grad():
            blended = blended_transform_grids(grid.detach(), transforms.detach())
        self.table = blended.permute(0, 2, 3, 4, 1).reshape(-1, 12)  # (B * Rz * Ry * Rx, 12)
        self.sizes = (grid.shape[3], grid.shape[2], grid.shape[1])  # nodes along x, y, z
        self.lo, self.hi = bounds.detach().to(grid)

    @torch.no_grad()
    def lookup(self, points: Float[Tensor, "m 3"], frame: Tensor) -> Float[Tensor, "m 3 4"]:
        nx, ny, nz = self.sizes
        sizes = points.new_tensor([nx - 1, ny - 1, nz - 1])
        u = ((points - self.lo) / (self.hi - self.lo) * sizes).clamp(min=0).minimum(sizes)
        cell = u.floor().minimum(sizes - 1)
        t = u - cell
        cell = cell.long()
        base = ((frame * nz + cell[:, 2]) * ny + cell[:, 1]) * nx + cell[:, 0]
        tx, ty, tz = t.unbind(-1)
        out = points.new_zeros(points.shape[0], 12)
        for dz in (0, 1):
            wz = tz if dz else 1 - tz
            for dy in (0, 1):
                wzy = wz * (ty if dy else 1 - ty)
                offset = (dz * ny + dy) * nx
                out.addcmul_(self.table[base + offset], (wzy * (1 - tx))[:, None])
                out.addcmul_(self.table[base + offset + 1], (wzy * tx)[:, None])
        return out.reshape(-1, 3, 4)


@torch.no_grad()
def diffused_grid_weights(
    nodes: Float[Tensor, "rz ry rx 3"],
    prior_vertices: Float[Tensor, "v 3"],
    prior_weights: Float[Tensor, "v j"],
    fixed_radius: float,
    max_iterations: int = 400,
    tolerance: float = 1e-5,
) -> Float[Tensor, "rz ry rx j"]:
    """Body weights carried into space by diffusion (harmonic extension) on a grid.

    Nodes within ``fixed_radius`` of a prior vertex keep their nearest vertex's weights; every other
    node gets the solution of Laplace's equation on the grid graph (6 neighbours, no flux across the
    grid's border) with those values fixed: the discrete harmonic extension, solved per bone by
    conjugate gradients from the nearest-vertex weights. Between and around the limbs the weights
    then blend smoothly instead of jumping where the nearest vertex changes sides (as loose clothing
    needs: a skirt between the legs, FITE's "diffused skinning"). Rows are clamped at 0 and
    renormalised to sum to 1.
    """
    distance, nearest = NearestVertexWeights(prior_vertices, prior_weights).query(nodes)
    fixed = (distance < fixed_radius).to(prior_weights.device)
    if bool(fixed.all()) or not bool(fixed.any()):
        return nearest
    u = nearest.permute(3, 0, 1, 2).double()  # (J, Rz, Ry, Rx)
    free = ~fixed

    def neighbour_sum(field: Tensor) -> tuple[Tensor, Tensor]:
        total = torch.zeros_like(field)
        count = torch.zeros_like(field[:1])
        ones = torch.ones_like(field[:1])
        for dim in (1, 2, 3):
            n = field.shape[dim]
            if n < 2:
                continue
            lo, hi = field.narrow(dim, 0, n - 1), field.narrow(dim, 1, n - 1)
            total.narrow(dim, 1, n - 1).add_(lo)
            total.narrow(dim, 0, n - 1).add_(hi)
            count.narrow(dim, 1, n - 1).add_(ones.narrow(dim, 0, n - 1))
            count.narrow(dim, 0, n - 1).add_(ones.narrow(dim, 1, n - 1))
        return total, count

    _, degree = neighbour_sum(u[:1])

    def apply(p: Tensor) -> Tensor:  # A p = (D - N) p on free nodes, p zero on fixed ones
        total, _ = neighbour_sum(p)
        return (degree * p - total) * free

    boundary = u * fixed
    rhs = neighbour_sum(boundary)[0] * free  # N u_fixed, seen from free nodes
    x = u * free
    r = rhs - apply(x)
    p = r.clone()
    rs = (r * r).sum(dim=(1, 2, 3))
    start = rs.sqrt().clamp(min=1e-30)
    for _ in range(max_iterations):
        ap = apply(p)
        alpha = rs / (p * ap).sum(dim=(1, 2, 3)).clamp(min=1e-30)
        x = x + alpha[:, None, None, None] * p
        r = r - alpha[:, None, None, None] * ap
        rs_new = (r * r).sum(dim=(1, 2, 3))
        if bool((rs_new.sqrt() <= tolerance * start).all()):
            break
        p = r + (rs_new / rs.clamp(min=1e-30))[:, None, None, None] * p
        rs = rs_new
    weights = (x + boundary).clamp(min=0.0)
    weights = weights / weights.sum(0, keepdim=True).clamp(min=1e-12)
    return weights.permute(1, 2, 3, 0).to(nearest.dtype)
