"""PIN: a pose-conditioned invertible network on 3D points, made of coupling layers.

Conventions: points ``(*b, N, 3)`` in metres; the pose is the ``(*b, J, 4, 4)`` canonical-to-posed
bone transforms (see :mod:`invskin.nets.pose_encoder`), or its :class:`PoseCode` computed once with
:meth:`PIN.encode_pose` and reused for every chunk of points of the same frames.

Structure. Block ``i`` works on axis ``a = i mod 3`` (x, y, z, x, ...) and is two couplings:

1. a **1D coupling** transforms coordinate ``a`` given the other two;
2. a **2D coupling** transforms the other two given coordinate ``a``.

Each coupling kind (:data:`CouplingKind`, ``PINConfig.coupling``) is one class, built by
:func:`make_coupling`. An affine coupling (:class:`AffineCoupling`, INS's) computes ``y_free = x_free * exp(s) + t``
with ``(s, t) = g(features(x_fixed), pose)``, ``s = c tanh(s_raw / c)`` soft-clamped, and the last layer
of ``g`` zero-initialised, so a fresh PIN is exactly the identity. Its inverse is ``x_free = (y_free -
t) * exp(-s)``: exact, no iteration. A spline coupling (:class:`SplineCoupling`) maps each free coordinate by a
monotone rational-quadratic spline whose bins and knot slopes ``g`` gives (:func:`rational_quadratic`),
also the identity when fresh and inverted exactly. A body-anchored coupling (:class:`AnchoredCoupling`,
:mod:`invskin.nets.anchored`) is a spline in each gap beside the body, the identity on it; its blocks
are three couplings of one axis each.

**Invertibility rule.** ``g`` sees only the fixed coordinates and the pose. The pose is localised per
point by attention over the per-bone embeddings ``e_b``: logits over the ``J`` bones come from the
projected *fixed* coordinates, never from the full point. So the inverse recomputes exactly the same
``(s, t)`` from the untouched fixed coordinates. With ``pose_conditioned = False`` (the ablation),
``g`` sees the fixed coordinates only and the pose argument is ignored.

Shape legend: ``*b`` frames (any leading shape), ``N`` points, ``J`` bones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from invskin.nets.anchored import MIN_GAP, BodyTable, gap_of
from invskin.nets.mlp import Mlp
from invskin.nets.pose_encoder import PoseCode, PoseEncoder

CouplingKind = Literal["affine", "spline", "anchored"]
"""The coupling kinds of a PIN (``PINConfig.coupling``), one class each (:func:`make_coupling`)."""
COUPLINGS: tuple[CouplingKind, ...] = CouplingKind.__args__  # type: ignore[attr-defined]


@dataclass
class PINConfig:
    """Hyper-parameters of a :class:`PIN`."""

    num_blocks: int = 4
    """Blocks of (1D coupling, 2D coupling); the transformed axis cycles x, y, z."""
    hidden_width: int = 128
    """Width of each coupling's conditioner MLP ``g``."""
    hidden_layers: int = 2
    """Hidden layers of ``g``."""
    projection_dim: int = 64
    """Size of the projected features of the fixed coordinates."""
    fourier_frequencies: int = 4
    """Sine/cosine frequencies of the fixed coordinates (periods 4 m, 2 m, 1 m, ...); 0 for none."""
    pose_embed_dim: int = 32
    """Per-bone embedding size ``E`` of the pose encoder."""
    pose_hidden_width: int = 64
    """Hidden width of each per-bone MLP."""
    pooled_dim: int = 64
    """Size of the pooled whole-pose code fed to every coupling; 0 for none."""
    scale_clamp: float = 2.0
    """Soft clamp ``c`` of the log-scale: ``s = c tanh(s_raw / c)``."""
    pose_conditioned: bool = True
    """False for the ablation without pose conditioning."""
    coupling: CouplingKind = "affine"
    """Which coupling class (:func:`make_coupling`): ``affine``: ``y = x exp(s) + t``, affine along the free coordinate; ``spline``: a monotone
    rational-quadratic spline of the free coordinate (:func:`rational_quadratic`) on
    ``[-spline_bound, spline_bound]`` with ``spline_bins`` bins, the identity outside, so a coupling
    can move one stretch of a line without moving the rest of it; ``anchored``: body-anchored
    spline couplings (:mod:`invskin.nets.anchored`), the identity on the body and a spline in each
    gap beside it, one free axis per coupling (a block is three couplings: x, y, z); the PIN then
    needs a :class:`~invskin.nets.anchored.BodyTable`."""
    spline_bins: int = 16
    spline_bound: float = 1.5
    """Metres: half the width of the interval the spline acts on (the identity outside)."""


@dataclass(frozen=True)
class PINOutput:
    """Mapped points and ``log |det d out / d in|`` per point."""

    points: Float[Tensor, "*b n 3"]
    log_det: Float[Tensor, "*b n"]


def fourier_features(coords: Float[Tensor, "*b f"], num_frequencies: int) -> Float[Tensor, "*b d"]:
    """``[x, sin(2^k pi x / 2), cos(2^k pi x / 2)]`` for ``k < num_frequencies``."""
    if num_frequencies == 0:
        return coords
    freqs = (2.0 ** torch.arange(num_frequencies, dtype=coords.dtype, device=coords.device)) * (
        math.pi / 2.0
    )
    angles = (coords[..., :, None] * freqs).flatten(-2)
    return torch.cat([coords, torch.sin(angles), torch.cos(angles)], dim=-1)


GAPS = 3
"""Gaps of a line that a body-anchored coupling moves (:mod:`invskin.nets.anchored`)."""

SPLINE_MIN_BIN = 1e-3
"""Smallest bin width and height, as a fraction of the interval; and the smallest knot slope."""
SPLINE_UNIT_SLOPE = math.log(math.expm1(1.0 - SPLINE_MIN_BIN))
"""The slope logits' offset: a zero conditioner gives knot slopes of 1."""


def rational_quadratic(
    x: Float[Tensor, "*b f"],
    raw: Float[Tensor, "*b f p"],
    bound: float,
    inverse: bool = False,
) -> tuple[Float[Tensor, "*b f"], Float[Tensor, "*b f"]]:
    """Monotone rational-quadratic spline per coordinate (Durkan et al., Neural Spline Flows, 2019).

    ``raw`` holds, per coordinate, ``K`` bin widths, ``K`` bin heights (soft-max, so they fill
    ``[-bound, bound]``) and the ``K - 1`` interior knot slopes (softplus); the slopes at the two ends
    are 1 and the map is the identity outside the interval, so it is continuous with a continuous
    derivative everywhere. A zero ``raw`` is the identity. Returns the mapped coordinates (or, with
    ``inverse``, the coordinates that map to ``x``) and ``log |d out / d in|`` per coordinate.
    """
    bins = (raw.shape[-1] + 1) // 3
    width = 2.0 * bound

    def knots(logits: Tensor) -> Tensor:
        sizes = SPLINE_MIN_BIN + (1.0 - SPLINE_MIN_BIN * bins) * torch.softmax(logits, dim=-1)
        edges = nn.functional.pad(torch.cumsum(sizes, dim=-1), (1, 0))
        return width * edges - bound  # (*, K + 1), from -bound to +bound

    xs = knots(raw[..., :bins])
    ys = knots(raw[..., bins : 2 * bins])
    inner = SPLINE_MIN_BIN + nn.functional.softplus(raw[..., 2 * bins :] + SPLINE_UNIT_SLOPE)
    slopes = nn.functional.pad(inner, (1, 1), value=1.0)  # (*, K + 1)
    inside = (x > -bound) & (x < bound)
    value = x.clamp(-bound, bound)
    edges = ys if inverse else xs
    k = (torch.searchsorted(edges[..., 1:-1].contiguous(), value[..., None].contiguous()))[..., 0]
    k = k.clamp(0, bins - 1)

    def pick(t: Tensor, offset: int = 0) -> Tensor:
        return t.gather(-1, (k + offset)[..., None])[..., 0]

    x0, x1, y0, y1 = pick(xs), pick(xs, 1), pick(ys), pick(ys, 1)
    d0, d1 = pick(slopes), pick(slopes, 1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    if inverse:
        dy = value - y0
        a = h * (s - d0) + dy * (d0 + d1 - 2.0 * s)
        b = h * d0 - dy * (d0 + d1 - 2.0 * s)
        c = -s * dy
        xi = (2.0 * c) / (-b - torch.sqrt((b * b - 4.0 * a * c).clamp(min=0.0)))
        out = x0 + xi * w
    else:
        xi = (value - x0) / w
        num = h * (s * xi * xi + d0 * xi * (1.0 - xi))
        den = s + (d0 + d1 - 2.0 * s) * xi * (1.0 - xi)
        out = y0 + num / den
    xi = xi.clamp(0.0, 1.0)
    den = s + (d0 + d1 - 2.0 * s) * xi * (1.0 - xi)
    slope = s * s * (d1 * xi * xi + 2.0 * s * xi * (1.0 - xi) + d0 * (1.0 - xi) ** 2) / (den * den)
    log_slope = torch.log(slope)
    if inverse:
        log_slope = -log_slope
    out = torch.where(inside, out, x)
    return out, torch.where(inside, log_slope, torch.zeros_like(log_slope))


class PoseAwareCoupling(nn.Module):
    """What every coupling kind shares: the conditioner ``g`` of the coordinates ``free`` given the
    remaining ones and the pose, and the contract ``forward(x, code)`` / ``inverse(y, code)``, each
    returning the mapped points and ``log |det|`` (:class:`PINOutput`).

    One subclass per :data:`CouplingKind` (:class:`AffineCoupling`, :class:`SplineCoupling`,
    :class:`AnchoredCoupling`); :func:`make_coupling` builds one from its kind. A subclass says how
    many conditioner outputs each free coordinate takes (:meth:`outputs_per_coordinate`) and which
    free axes the couplings of a PIN block move (:meth:`block_axes`).
    """

    kind: ClassVar[CouplingKind]
    needs_body_table: ClassVar[bool] = False
    """Whether a PIN of this kind needs the body's :class:`~invskin.nets.anchored.BodyTable`."""

    def __init__(self, free: tuple[int, ...], num_bones: int, config: PINConfig) -> None:
        super().__init__()
        if not free or len(free) > 2 or any(i not in (0, 1, 2) for i in free):
            raise ValueError(f"free must name one or two of the axes 0, 1, 2; got {free}")
        self.free = tuple(free)
        self.fixed = tuple(i for i in range(3) if i not in free)
        self.config = config
        feature_dim = len(self.fixed) * (1 + 2 * config.fourier_frequencies)
        p = config.projection_dim
        self.projection = Mlp(feature_dim, p, p, 1, activation="silu")
        cond_dim = p
        self.attention: nn.Linear | None = None
        if config.pose_conditioned:
            self.attention = nn.Linear(p, num_bones)
            cond_dim += config.pose_embed_dim + config.pooled_dim
        self.conditioner = Mlp(
            cond_dim,
            self.outputs_per_coordinate(config) * len(self.free),
            config.hidden_width,
            config.hidden_layers,
            activation="silu",
            zero_last=True,
        )

    @staticmethod
    def outputs_per_coordinate(config: PINConfig) -> int:
        """Conditioner outputs per free coordinate."""
        raise NotImplementedError

    @staticmethod
    def block_axes(block: int) -> tuple[tuple[int, ...], ...]:
        """The free axes of each coupling of block ``block``: a 1D coupling of axis
        ``block mod 3``, then a 2D coupling of the other two."""
        axis = block % 3
        return (axis,), tuple(i for i in range(3) if i != axis)

    def raw_parameters(self, x: Float[Tensor, "*b n 3"], code: PoseCode | None) -> Tensor:
        """The conditioner's output for the free coordinates; reads only the fixed ones of ``x``.

        The conditioner's input is ``[features, attention @ e, pooled]``; its first layer is applied
        term by term instead of on the concatenation (the same numbers, no per-point copies):
        ``W [f; a e; c] = W_f f + a (e W_e^T) + W_c c``, where ``e W_e^T`` (J x H) and ``W_c c`` are
        computed once per frame.
        """
        fixed = x[..., list(self.fixed)]
        features = self.projection(fourier_features(fixed, self.config.fourier_frequencies))
        first = self.conditioner.layers[0]
        p = features.shape[-1]
        pre = nn.functional.linear(features, first.weight[:, :p], first.bias)
        if self.attention is not None:
            if code is None:
                raise ValueError("this PIN is pose-conditioned: pass a pose or a PoseCode")
            e = code.bones.shape[-1]
            attention = torch.softmax(self.attention(features), dim=-1)  # (*b, n, J)
            per_bone = code.bones @ first.weight[:, p : p + e].T  # (*b, J, H)
            pooled = code.pooled @ first.weight[:, p + e :].T  # (*b, H)
            pre = pre + attention @ per_bone + pooled[..., None, :]
        return self.conditioner.forward_from_first(pre)

    def _assemble(self, x: Tensor, free_values: Tensor) -> Tensor:
        columns = list(x.unbind(-1))
        for k, axis in enumerate(self.free):
            columns[axis] = free_values[..., k]
        return torch.stack(columns, dim=-1)

    def forward(self, x: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        raise NotImplementedError

    def inverse(self, y: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        raise NotImplementedError


class AffineCoupling(PoseAwareCoupling):
    """INS's coupling: ``y_free = x_free * exp(s) + t``, ``s`` soft-clamped."""

    kind = "affine"

    @staticmethod
    def outputs_per_coordinate(config: PINConfig) -> int:
        return 2

    def scale_shift(
        self, x: Float[Tensor, "*b n 3"], code: PoseCode | None
    ) -> tuple[Float[Tensor, "*b n f"], Float[Tensor, "*b n f"]]:
        """``(s, t)`` for the free coordinates (:meth:`raw_parameters`)."""
        raw = self.raw_parameters(x, code)
        s_raw, shift = raw.split(len(self.free), dim=-1)
        c = self.config.scale_clamp
        return c * torch.tanh(s_raw / c), shift

    def forward(self, x: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        s, shift = self.scale_shift(x, code)
        y_free = x[..., list(self.free)] * torch.exp(s) + shift
        return PINOutput(self._assemble(x, y_free), s.sum(-1))

    def inverse(self, y: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        s, shift = self.scale_shift(y, code)
        x_free = (y[..., list(self.free)] - shift) * torch.exp(-s)
        return PINOutput(self._assemble(y, x_free), -s.sum(-1))


class SplineCoupling(PoseAwareCoupling):
    """A monotone rational-quadratic spline of each free coordinate on ``[-spline_bound,
    spline_bound]`` (:func:`rational_quadratic`), the identity outside."""

    kind = "spline"

    @staticmethod
    def outputs_per_coordinate(config: PINConfig) -> int:
        return 3 * config.spline_bins - 1

    def _map(self, x: Tensor, code: PoseCode | None, inverse: bool) -> PINOutput:
        raw = self.raw_parameters(x, code)
        raw = raw.unflatten(-1, (len(self.free), 3 * self.config.spline_bins - 1))
        out, log_slope = rational_quadratic(
            x[..., list(self.free)], raw, self.config.spline_bound, inverse=inverse
        )
        return PINOutput(self._assemble(x, out), log_slope.sum(-1))

    def forward(self, x: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        return self._map(x, code, inverse=False)

    def inverse(self, y: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        return self._map(y, code, inverse=True)


class AnchoredCoupling(PoseAwareCoupling):
    """A body-anchored spline coupling of one axis (:mod:`invskin.nets.anchored`): the identity on
    the body's intervals of the line through the point, a spline per gap beside them."""

    kind = "anchored"
    needs_body_table = True

    def __init__(self, axis: int, num_bones: int, config: PINConfig, table: BodyTable) -> None:
        super().__init__((axis,), num_bones, config)
        self.axis = axis
        object.__setattr__(self, "table", table)  # the PIN's module, not one of this coupling

    @staticmethod
    def outputs_per_coordinate(config: PINConfig) -> int:
        return GAPS * (3 * config.spline_bins - 1)

    @staticmethod
    def block_axes(block: int) -> tuple[tuple[int, ...], ...]:
        """Three couplings per block, one per axis: x, y, z."""
        return (0,), (1,), (2,)

    def _map(self, x: Tensor, code: PoseCode | None, inverse: bool) -> PINOutput:
        rows, flag = self.table.lookup(self.axis, x[..., list(self.fixed)])
        value = x[..., self.axis]
        which, g0, g1 = gap_of(value, rows, flag, self.config.spline_bound)
        raw = self.raw_parameters(x, code).unflatten(-1, (GAPS, 3 * self.config.spline_bins - 1))
        chosen = raw.gather(
            -2, which.clamp(min=0)[..., None, None].expand(*which.shape, 1, raw.shape[-1])
        )
        width = (g1 - g0).clamp(min=MIN_GAP)
        unit = (2.0 * (value - g0) / width - 1.0).clamp(-1.0, 1.0)
        out, log_slope = rational_quadratic(unit[..., None], chosen, 1.0, inverse=inverse)
        moved = g0 + 0.5 * (out[..., 0] + 1.0) * width
        active = which >= 0
        new = torch.where(active, moved, value)
        log_det = torch.where(active, log_slope[..., 0], torch.zeros_like(value))
        return PINOutput(self._assemble(x, new[..., None]), log_det)

    def forward(self, x: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        return self._map(x, code, inverse=False)

    def inverse(self, y: Float[Tensor, "*b n 3"], code: PoseCode | None) -> PINOutput:
        return self._map(y, code, inverse=True)


COUPLING_CLASSES: dict[CouplingKind, type[PoseAwareCoupling]] = {
    "affine": AffineCoupling,
    "spline": SplineCoupling,
    "anchored": AnchoredCoupling,
}
"""The class of each coupling kind."""


def coupling_class(kind: CouplingKind) -> type[PoseAwareCoupling]:
    """The coupling class of ``kind``; a ``ValueError`` names the kinds for any other string."""
    if kind not in COUPLING_CLASSES:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {kind!r}")
    return COUPLING_CLASSES[kind]


def make_coupling(
    kind: CouplingKind,
    free: tuple[int, ...],
    num_bones: int,
    config: PINConfig,
    table: BodyTable | None = None,
) -> PoseAwareCoupling:
    """A coupling of ``kind`` moving the axes ``free`` (one axis for ``anchored``, which also needs
    the body's ``table``)."""
    cls = coupling_class(kind)
    if not cls.needs_body_table:
        return cls(free, num_bones, config)
    if table is None:
        raise ValueError(f"a {kind} coupling needs the body's BodyTable")
    if len(free) != 1:
        raise ValueError(f"a {kind} coupling moves one axis; got {free}")
    return AnchoredCoupling(free[0], num_bones, config, table)


class PIN(nn.Module):
    """Pose-conditioned invertible network: ``forward`` and its exact ``inverse``.

    With couplings that need it (``anchored``), ``table`` (the body's extent along the grid lines
    of each axis, :class:`~invskin.nets.anchored.BodyTable`) is required.
    """

    def __init__(
        self, num_bones: int, config: PINConfig | None = None, table: BodyTable | None = None
    ) -> None:
        super().__init__()
        self.config = config = config or PINConfig()
        self.num_bones = num_bones
        self.encoder = (
            PoseEncoder(
                num_bones, config.pose_embed_dim, config.pose_hidden_width, config.pooled_dim
            )
            if config.pose_conditioned
            else None
        )
        cls = coupling_class(config.coupling)
        if cls.needs_body_table:
            if table is None:
                raise ValueError(f"a PIN of {config.coupling} couplings needs the body's BodyTable")
            self.table = table
        couplings = [
            make_coupling(config.coupling, free, num_bones, config, table)
            for block in range(config.num_blocks)
            for free in cls.block_axes(block)
        ]
        self.couplings = nn.ModuleList(couplings)

    def encode_pose(self, pose: Float[Tensor, "*b j 4 4"]) -> PoseCode | None:
        """Encode a pose once (``None`` for a PIN without pose conditioning)."""
        return None if self.encoder is None else self.encoder(pose)

    def _code(self, pose: Float[Tensor, "*b j 4 4"] | PoseCode | None) -> PoseCode | None:
        if self.encoder is None:
            return None
        if pose is None:
            raise ValueError("this PIN is pose-conditioned: pass a pose or a PoseCode")
        return pose if isinstance(pose, PoseCode) else self.encoder(pose)

    def forward_with_log_det(
        self, x: Float[Tensor, "*b n 3"], pose: Float[Tensor, "*b j 4 4"] | PoseCode | None
    ) -> PINOutput:
        code = self._code(pose)
        log_det = x.new_zeros(x.shape[:-1])
        for coupling in self.couplings:
            out = coupling(x, code)
            x, log_det = out.points, log_det + out.log_det
        return PINOutput(x, log_det)

    def inverse_with_log_det(
        self, y: Float[Tensor, "*b n 3"], pose: Float[Tensor, "*b j 4 4"] | PoseCode | None
    ) -> PINOutput:
        code = self._code(pose)
        log_det = y.new_zeros(y.shape[:-1])
        for coupling in reversed(self.couplings):
            out = coupling.inverse(y, code)
            y, log_det = out.points, log_det + out.log_det
        return PINOutput(y, log_det)

    def forward(
        self, x: Float[Tensor, "*b n 3"], pose: Float[Tensor, "*b j 4 4"] | PoseCode | None
    ) -> Float[Tensor, "*b n 3"]:
        """Map points forward; ``pose`` is the bone transforms or their :class:`PoseCode`."""
        return self.forward_with_log_det(x, pose).points

    def inverse(
        self, y: Float[Tensor, "*b n 3"], pose: Float[Tensor, "*b j 4 4"] | PoseCode | None
    ) -> Float[Tensor, "*b n 3"]:
        """Exact inverse of :meth:`forward` for the same pose."""
        return self.inverse_with_log_det(y, pose).points
