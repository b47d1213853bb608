"""Fast reposing on CPU: the same ``PIN_c -> LBS -> PIN_d`` as :meth:`AnimatableModel.repose`,
restructured for throughput. :meth:`AnimatableModel.repose` stays the reference; the tests check that
the two agree to float32 rounding for every method.

What is restructured (the numbers are the same up to rounding):

- **Weights fused once.** Each coupling's projection MLP ends in a linear layer that feeds two
  linear maps (the conditioner's first layer and the attention logits); both products are folded
  into one matrix each (``W_f W_p`` and ``W_a W_p``), so the projected features are never formed.
- **Pose work once per frame.** The per-bone embeddings through the conditioner's first layer plus
  the pooled code (``W_e e_b + W_c c``, an H x J table per frame and coupling) are computed once
  per frame; attention rows sum to one, so ``sum_b a_b W_e e_b + W_c c = sum_b a_b (W_e e_b + W_c
  c)``: the pooled term rides in the attention product.
- **Skinning per frame on the grid, not per point.** Trilinear interpolation and blending are
  both linear, so each frame's bone transforms (top 3 x 4 rows) are blended at the nodes of the
  skinning grid once, and each point needs one 12-channel lookup instead of a J-channel weight
  lookup followed by a blend.
- **PIN_d's frame folded into LBS.** PIN_d works in the body frame ``H``
  (:meth:`AnimatableModel.body_frame`); LBS is linear in the bone transforms, so
  ``H^-1 (sum_b w_b T_b) x = (sum_b w_b H^-1 T_b) x``: the bone
  transforms are premultiplied once per frame and the per-point change of frame disappears.
- **The first coupling of PIN_c once per chunk.** Its fixed coordinates are canonical, so its
  features and attention weights do not depend on the pose: they are computed once per chunk of
  vertices and reused for every frame.
- **Feature-major buffers with a row of ones.** Activations are stored ``(width + 1, R)`` with a
  last row of ones and weights as ``[W, b]``, so a layer is one matrix product written into the
  first rows of the next buffer: contiguous, in place, no separate bias pass. Points are kept as
  three coordinate rows: a coupling reads its fixed coordinates and replaces its free ones without
  gathering or re-stacking.
- **Spline couplings in one pass of C** (:mod:`invskin.native`, ``spline.c``, compiled on first
  use): the rational-quadratic spline of :func:`invskin.nets.pin.rational_quadratic` on the
  feature-major parameters, a block of 64 points at a time kept in cache from the logits to the
  moved coordinate, vectorised across points. Where no C compiler is found, or with
  ``native=False``, the same in PyTorch (:func:`_spline`): on ``(K, R)`` rows, a coupling's free
  coordinates together; the knot positions' cumulative sum is one small product, the bin is found
  by counting knots, and the knot slopes' softplus is taken at the two knots of each point's bin
  only.
- **Chunks through every frame, on worker threads.** Vertices go in chunks of ``chunk_rows``;
  each chunk is pushed through every frame in turn (its buffers allocated once). On CPU, one
  worker thread per core takes whole chunks with single-threaded kernels (torch releases the
  interpreter lock inside them): no fork-join barrier per small operation, which on a shared,
  oversubscribed machine costs more than the operation.

Under :mod:`torch.profiler`, each coupling (``PIN_c coupling i``, ``PIN_d coupling i``, and
``PIN_c coupling 0, pose-free part``) and the ``skinning grid lookup`` show as named ranges
(``python -m benchmarks profile-repose --per-coupling`` reads them).

Conventions as :mod:`invskin.models.animatable`: vertices ``(V, 3)`` canonical, transforms
``(B, J, 4, 4)`` canonical-to-posed, output ``(B, V, 3)`` posed. Shape legend: ``B`` frames, ``V``
vertices, ``J`` bones, ``R`` rows (vertices of a chunk), ``H`` conditioner width, ``P`` projection
width, ``f`` Fourier features.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.profiler import record_function

from invskin.geometry import invert_rigid
from invskin.models.animatable import AnimatableModel
from invskin.native import RqSpline, kernel_or_fallback
from invskin.nets.mlp import Mlp
from invskin.nets.pin import (
    PIN,
    SPLINE_MIN_BIN,
    SPLINE_UNIT_SLOPE,
    AffineCoupling,
    PoseAwareCoupling,
    SplineCoupling,
)
from invskin.nets.skinning_field import blended_transform_grids

DEFAULT_CHUNK_ROWS = 4_096
"""Vertices per chunk; ``benchmarks/bench_repose_fast.py --sweep`` measures others on a machine."""


def _activation_(x: Tensor, name: str, softplus_beta: float) -> None:
    """The activation of :mod:`invskin.nets.mlp`, in place."""
    if name == "silu":
        nn.functional.silu(x, inplace=True)
    elif name == "relu":
        x.relu_()
    elif name == "softplus":
        x.copy_(nn.functional.softplus(x * softplus_beta) / softplus_beta)
    else:
        raise ValueError(f"unknown activation {name!r}")


def _spline(x: Tensor, raw: Tensor, knots: Tensor, bound: float, work: _Workspace) -> Tensor:
    """:func:`invskin.nets.pin.rational_quadratic` (forward, no log-det) for the ``F`` free
    coordinates ``(F, R)`` of a coupling, their parameters feature-major ``(F, 3 K - 1, R)``: every
    step runs along contiguous rows of ``R`` values, all coordinates in one operation. ``knots``
    is :func:`_knot_matrix`'s ``(K + 1, K + 1)``: the cumulative sum and the interval's scale and
    offset of the knot positions in one product, on ``[-bound, bound]``. The bin is found by
    counting the interior knots below each point (what the reference's ``searchsorted`` returns);
    the knots and slopes at both ends of each point's bin are gathered at once, and the softplus of
    the slopes is taken there only."""
    bins = knots.shape[0] - 1
    nfree = x.shape[0]

    def positions(logits: Tensor, key: str) -> Tensor:  # (F, K, R) -> (F, K + 1, R)
        e = work.get(("spline_exp", key, nfree), nfree * bins, ones=False).view(nfree, bins, -1)
        torch.sub(logits, logits.amax(1, keepdim=True), out=e).exp_()
        total = e.sum(1, keepdim=True)
        c = torch.matmul(knots[:, :bins], e)
        return c.div_(total).add_(knots[:, bins : bins + 1])

    xs, ys = positions(raw[:, :bins], "x"), positions(raw[:, bins : 2 * bins], "y")
    value = x.clamp(-bound, bound)
    k = (xs[:, 1:bins] < value[:, None]).sum(1, keepdim=True)  # (F, 1, R)
    ends = torch.cat([k, k + 1], dim=1)  # (F, 2, R): the bin's two knots
    xk, yk = xs.gather(1, ends), ys.gather(1, ends)
    slopes = raw[:, 2 * bins :].gather(1, (ends - 1).clamp_(0, bins - 2))
    slopes = nn.functional.softplus(slopes.add_(SPLINE_UNIT_SLOPE)).add_(SPLINE_MIN_BIN)
    slopes = torch.where((ends == 0) | (ends == bins), 1.0, slopes)  # slope 1 at both ends
    x0, y0, d0, d1 = xk[:, 0], yk[:, 0], slopes[:, 0], slopes[:, 1]
    w, h = xk[:, 1] - x0, yk[:, 1] - y0
    s = h / w
    xi = (value - x0) / w
    both = xi * (1.0 - xi)
    out = y0 + h * (s * xi * xi + d0 * both) / (s + (d0 + d1 - 2.0 * s) * both)
    return torch.where((x > -bound) & (x < bound), out, x)


def _knot_matrix(bins: int, bound: float, like: Tensor) -> Tensor:
    """``(K + 1, K + 1)``: knot ``j`` at ``-bound + 2 bound (m j + (1 - m K) sum_{i<j} p_i)`` for
    the soft-max ``p`` of ``K`` logits (``m`` the smallest bin, as a fraction), as ``[S, o]``: ``S``
    times the exponentials, divided by their sum, plus the column ``o``."""
    width = 2.0 * bound
    out = torch.zeros(bins + 1, bins + 1, dtype=like.dtype)
    out[:, :bins] = width * (1.0 - SPLINE_MIN_BIN * bins) * torch.ones(bins + 1, bins).tril(-1)
    out[:, bins] = -bound + width * SPLINE_MIN_BIN * torch.arange(bins + 1, dtype=like.dtype)
    return out.to(like.device)


def pytorch_spline(bins: int, bound: float, like: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """The fast path's PyTorch spline (:func:`_spline`, what reposing runs where the C kernel is not
    available) as a function ``(x, raw) -> y`` on feature-major inputs like ``like``: ``x`` the
    ``F`` free coordinates ``(F, R)``, ``raw`` their ``bins``-bin parameters ``(F, 3 bins - 1,
    R)``, on ``[-bound, bound]``; its knot matrix and buffers are made once, here. The same as
    :func:`invskin.nets.pin.rational_quadratic` (forward, no log-det) to float32 rounding."""
    knots = _knot_matrix(bins, bound, like)
    work = _Workspace(like.shape[-1], like)
    return lambda x, raw: _spline(x, raw, knots, bound, work)


def _augmented(weight: Tensor, bias: Tensor) -> Tensor:
    """``(out, in + 1)``: ``[W, b]``, applied to a feature-major input whose last row is ones."""
    return torch.cat([weight.detach(), bias.detach()[:, None]], dim=1).contiguous()


@dataclass(frozen=True)
class _FastCoupling:
    """One :class:`PoseAwareCoupling` with its weights rearranged (see the module docstring).

    Activations are feature-major, ``(width + 1, R)``, with a last row of ones, so a layer is one
    ``W_aug @ h`` written into the first rows of the next buffer (contiguous; no bias pass).
    """

    free: tuple[int, ...]
    fixed: tuple[int, ...]
    freqs: Tensor | None
    """``(K,)`` Fourier frequencies, or None."""
    freq_values: tuple[float, ...]
    """The same, as Python numbers."""
    projection: tuple[Tensor, ...]
    """The projection MLP's hidden layers (augmented), each followed by the activation."""
    features: Tensor
    """``(H, P + 1)``: the projection's output layer fused with the conditioner's first layer."""
    attention: Tensor | None
    """``(J, P + 1)``: the projection's output layer fused with the attention logits."""
    bone_weight: Tensor | None
    """``(H, E)``: the conditioner's first-layer columns that read the attended bone embedding."""
    pooled_weight: Tensor | None
    """``(H, C)``: the columns that read the pooled pose code."""
    hidden: tuple[Tensor, ...]
    """The conditioner's further hidden layers (augmented)."""
    out: Tensor
    """``(2 f, H + 1)``: the last layer (augmented); ``s`` and ``t`` come out as rows."""
    clamp: float
    activation: str
    softplus_beta: float
    spline_knots: Tensor | None
    """None for an affine coupling; else its spline's :func:`_knot_matrix`."""
    spline_bound: float

    @classmethod
    def of(cls, coupling: PoseAwareCoupling) -> _FastCoupling:
        if not isinstance(coupling, FAST_COUPLINGS):
            raise ValueError(f"the fast path has no {coupling.kind} couplings")
        cfg = coupling.config
        projection: Mlp = coupling.projection
        conditioner: Mlp = coupling.conditioner
        if projection.activation != conditioner.activation or (
            projection.softplus_beta != conditioner.softplus_beta
        ):
            raise ValueError("the fast path assumes one activation per coupling")
        w_p = projection.layers[-1].weight.detach()  # (p, hp)
        b_p = projection.layers[-1].bias.detach()
        first = conditioner.layers[0]
        p = w_p.shape[0]
        w_f = first.weight.detach()[:, :p]  # (H, p)
        features = _augmented(w_f @ w_p, w_f @ b_p + first.bias.detach())
        attention = bone_weight = pooled_weight = None
        if coupling.attention is not None:
            w_a, b_a = coupling.attention.weight.detach(), coupling.attention.bias.detach()
            attention = _augmented(w_a @ w_p, w_a @ b_p + b_a)
            e = cfg.pose_embed_dim
            bone_weight = first.weight.detach()[:, p : p + e].contiguous()
            pooled_weight = first.weight.detach()[:, p + e :].contiguous()
        freqs = None
        if cfg.fourier_frequencies > 0:
            freqs = (2.0 ** torch.arange(cfg.fourier_frequencies, dtype=w_p.dtype)) * (math.pi / 2)
            freqs = freqs.to(w_p.device)
        last = conditioner.layers[-1]
        return cls(
            free=coupling.free,
            fixed=coupling.fixed,
            freqs=freqs,
            freq_values=() if freqs is None else tuple(freqs.tolist()),
            projection=tuple(_augmented(x.weight, x.bias) for x in projection.layers[:-1]),
            features=features,
            attention=attention,
            bone_weight=bone_weight,
            pooled_weight=pooled_weight,
            hidden=tuple(_augmented(x.weight, x.bias) for x in conditioner.layers[1:-1]),
            out=_augmented(last.weight, last.bias),
            clamp=cfg.scale_clamp,
            activation=conditioner.activation,
            softplus_beta=conditioner.softplus_beta,
            spline_knots=(
                _knot_matrix(cfg.spline_bins, cfg.spline_bound, w_p)
                if isinstance(coupling, SplineCoupling)
                else None
            ),
            spline_bound=cfg.spline_bound,
        )

    def frame_table(self, bones: Tensor, pooled: Tensor) -> Tensor | None:
        """``(B, H, J)``: each bone's embedding through the first layer plus the pooled term."""
        if self.bone_weight is None:
            return None
        table = self.bone_weight @ bones.transpose(-1, -2)  # (B, H, J)
        if pooled.shape[-1] > 0:
            table = table + (pooled @ self.pooled_weight.T)[..., :, None]
        return table.contiguous()

    def front_(self, cols: list[Tensor], work: _Workspace) -> tuple[Tensor, Tensor | None]:
        """The pose-independent part: ``(H + 1, R)`` pre-activations and ``(J, R)`` attention."""
        nfixed = len(self.fixed)
        k = 0 if self.freqs is None else self.freqs.shape[0]
        fourier = work.get(("fourier", nfixed), nfixed * (1 + 2 * k))
        for i, axis in enumerate(self.fixed):
            fourier[i].copy_(cols[axis])
        if self.freqs is not None:
            angles = work.get(("angles", nfixed), nfixed * k, ones=False)
            for i in range(nfixed):  # the reference's order: axis-major, then frequency
                for j, freq in enumerate(self.freq_values):
                    torch.mul(fourier[i], freq, out=angles[i * k + j])
            torch.sin(angles, out=fourier[nfixed : nfixed * (1 + k)])
            torch.cos(angles, out=fourier[nfixed * (1 + k) : -1])
        h = fourier
        for i, layer in enumerate(self.projection):
            nxt = work.get(("projection", i), layer.shape[0])
            torch.mm(layer, h, out=nxt[:-1])
            _activation_(nxt[:-1], self.activation, self.softplus_beta)
            h = nxt
        pre = work.get("pre", self.features.shape[0])
        torch.mm(self.features, h, out=pre[:-1])
        if self.attention is None:
            return pre, None
        logits = work.get("logits", self.attention.shape[0], ones=False)
        torch.mm(self.attention, h, out=logits)
        attention = work.get("attention", self.attention.shape[0], ones=False)
        torch.ops.aten._softmax.out(logits, 0, False, out=attention)
        return pre, attention

    def back_(
        self,
        cols: list[Tensor],
        pre: Tensor,
        attention: Tensor | None,
        table: Tensor | None,
        work: _Workspace,
    ) -> None:
        """Finish the coupling from the pose-independent part for one frame; updates ``cols``."""
        act, beta = self.activation, self.softplus_beta
        head = pre[:-1]
        if attention is not None:
            torch.addmm(head, table, attention, out=head)  # in place (and seen by FLOP counters)
        _activation_(head, act, beta)
        h = pre
        for i, layer in enumerate(self.hidden):
            nxt = work.get(("hidden", i % 2), layer.shape[0])
            torch.mm(layer, h, out=nxt[:-1])
            _activation_(nxt[:-1], act, beta)
            h = nxt
        raw = work.get("raw", self.out.shape[0], ones=False)
        torch.mm(self.out, h, out=raw)  # (2 f, R), or (f (3 K - 1), R) for a spline
        if self.spline_knots is not None:
            free = torch.stack([cols[axis] for axis in self.free])
            params = raw.view(len(self.free), -1, raw.shape[-1])  # (F, 3 K - 1, R)
            if work.spline is not None:  # the C kernel (fresh output: cols may hold old ones)
                moved = work.spline(
                    free,
                    params,
                    torch.empty_like(free),
                    self.spline_bound,
                    SPLINE_MIN_BIN,
                    SPLINE_UNIT_SLOPE,
                )
            else:
                moved = _spline(free, params, self.spline_knots, self.spline_bound, work)
            for k, axis in enumerate(self.free):
                cols[axis] = moved[k]
            return
        nfree = len(self.free)
        scale = raw[:nfree].div_(self.clamp).tanh_().mul_(self.clamp).exp_()
        for k, axis in enumerate(self.free):
            cols[axis] = torch.addcmul(raw[nfree + k], cols[axis], scale[k])

    def apply_(self, cols: list[Tensor], table: Tensor | None, work: _Workspace) -> None:
        pre, attention = self.front_(cols, work)
        self.back_(cols, pre, attention, table, work)


class _Workspace:
    """Feature-major buffers reused across the chunks and frames of one call."""

    def __init__(self, rows: int, like: Tensor, spline: RqSpline | None = None) -> None:
        self.rows = rows
        self.like = like
        self.buffers: dict = {}
        self.spline = spline
        """The C spline kernel for spline couplings, or None for :func:`_spline`."""

    def get(self, key, width: int, ones: bool = True) -> Tensor:
        """A contiguous ``(width + 1, R)`` buffer whose last row is ones (set once, never written
        by the products, which fill the first ``width`` rows), or ``(width, R)`` without ones."""
        shape = (width + 1 if ones else width, self.rows)
        full = self.buffers.get((key, shape))
        if full is None:
            full = self.like.new_ones(shape)
            self.buffers[(key, shape)] = full
        return full

    def resize(self, rows: int) -> None:
        """Buffers for chunks of ``rows`` points (the last chunk is shorter)."""
        if rows != self.rows:
            self.buffers = {}
            self.rows = rows


class _FastPIN:
    def __init__(self, pin: PIN) -> None:
        self.pin = pin
        self.couplings = [_FastCoupling.of(c) for c in pin.couplings]

    def frame_tables(self, rel: Tensor) -> list[Tensor | None]:
        """Per coupling, ``(B, J, H)`` tables (None without pose conditioning)."""
        code = self.pin.encode_pose(rel)
        if code is None:
            return [None] * len(self.couplings)
        return [c.frame_table(code.bones, code.pooled) for c in self.couplings]


FAST_COUPLINGS = (AffineCoupling, SplineCoupling)
"""The coupling classes the fast path has: affine and spline."""


def fast_path_supports(model: AnimatableModel) -> bool:
    """Whether :class:`FastReposer` can repose ``model``: every PIN of affine or spline couplings
    (body-anchored ones take the reference ``model.repose``)."""
    return all(
        isinstance(coupling, FAST_COUPLINGS)
        for pin in (model.pin_c, model.pin_d)
        if pin is not None
        for coupling in pin.couplings
    )


class FastReposer:
    """Reposes canonical vertices like ``model.repose``, faster on CPU (see the module docstring).

    The model's parameters are read once, at construction: build a new reposer after changing them.
    ``chunk_rows`` vertices go through all frames at a time; on CPU, ``workers`` threads (default:
    torch's thread count) each take whole chunks with single-threaded kernels: for the duration of
    such a call torch's (process-wide) thread count is set to 1, and restored afterwards.

    ``native``: spline couplings on CPU run the C kernel of :mod:`invskin.native` (compiled on
    first use) when True, :func:`_spline` (PyTorch) when False; None (default) takes the kernel
    where it can be built and PyTorch otherwise. ``self.native`` says which one runs.
    """

    def __init__(
        self,
        model: AnimatableModel,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        workers: int | None = None,
        native: bool | None = None,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not fast_path_supports(model):
            raise ValueError(
                "the fast reposing path has no body-anchored couplings; repose this model with "
                "model.repose (invskin.runs.pipeline.reposer_for picks it)"
            )
        self.model = model
        self.chunk_rows = chunk_rows
        self.workers = workers or torch.get_num_threads()
        with torch.no_grad():
            self.field = model.weight_field()
            self.grid = self.field.grid.detach()[None]  # (1, J, Rz, Ry, Rx)
            lo, hi = self.field.bounds.detach()
            self.grid_lo = lo
            self.grid_scale = 2.0 / (hi - lo)
            self.pin_c = _FastPIN(model.pin_c) if model.pin_c is not None else None
            self.pin_d = _FastPIN(model.pin_d) if model.pin_d is not None else None
        couplings = [c for p in (self.pin_c, self.pin_d) if p is not None for c in p.couplings]
        self.spline = None
        if self.grid.device.type == "cpu" and any(c.spline_knots is not None for c in couplings):
            self.spline = kernel_or_fallback(
                "spline", native, "spline kernel", "reposing runs the slower PyTorch spline"
            )
        self.native = self.spline is not None

    def _blended_transforms(self, cols: list[Tensor], grid: Tensor) -> Tensor:
        """``(12, R)``: the top rows of ``sum_b w_b(x) T_b`` at the points, by one trilinear lookup
        in ``grid`` ``(1, 12, Rz, Ry, Rx)``, the frame's bone transforms blended at every node of
        the skinning grid (interpolation and blending are both linear, so the order is free)."""
        coords = torch.stack(cols, dim=1)  # (R, 3)
        coords.sub_(self.grid_lo).mul_(self.grid_scale).sub_(1.0)
        out = nn.functional.grid_sample(
            grid,
            coords[None, None, None],
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        return out[0, :, 0, 0]

    @torch.no_grad()
    def repose(
        self, vertices: Float[Tensor, "v 3"], transforms: Float[Tensor, "b j 4 4"]
    ) -> Float[Tensor, "b v 3"]:
        """Push canonical vertices through ``PIN_c -> LBS -> PIN_d`` for every frame."""
        model = self.model
        if vertices.ndim != 2 or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {tuple(vertices.shape)}")
        if transforms.ndim != 4 or transforms.shape[-3:] != (model.skeleton.num_bones, 4, 4):
            raise ValueError(
                f"transforms must be (B, {model.skeleton.num_bones}, 4, 4), got "
                f"{tuple(transforms.shape)}"
            )
        frames = transforms.shape[0]
        vertices = vertices.to(self.grid)
        transforms = transforms.to(self.grid)
        rel = model.pin_pose(transforms)
        tables_c = self.pin_c.frame_tables(rel) if self.pin_c is not None else []
        tables_d = self.pin_d.frame_tables(rel) if self.pin_d is not None else []
        bones = transforms
        if self.pin_d is not None:
            frame = model.body_frame(transforms)
            bones = invert_rigid(frame)[:, None] @ transforms  # PIN_d's frame folded into LBS
            root_rows = frame[:, :3, :].contiguous()  # (B, 3, 4)
        # (B, 1, 12, Rz, Ry, Rx): each frame's transforms blended at every node of the grid.
        blended_grids = blended_transform_grids(self.grid[0], bones)[:, None]
        out = vertices.new_empty(frames, vertices.shape[0], 3)
        plan = _FramePlan(
            blended_grids, root_rows if self.pin_d is not None else None, tables_c, tables_d
        )
        starts = list(range(0, vertices.shape[0], self.chunk_rows))
        workers = min(self.workers, len(starts)) if vertices.device.type == "cpu" else 1
        if workers <= 1:
            work = _Workspace(min(self.chunk_rows, vertices.shape[0]), vertices, self.spline)
            for start in starts:
                self._chunk(vertices, start, plan, out, work)
            return out
        # One worker thread per core, each on whole chunks with single-threaded kernels: torch
        # releases the GIL inside its kernels, and no fork-join barrier is paid per (small) op.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                jobs = [
                    pool.submit(self._chunks, vertices, starts[w::workers], plan, out)
                    for w in range(workers)
                ]
                for job in jobs:
                    job.result()
        finally:
            torch.set_num_threads(threads)
        return out

    def _chunks(self, vertices: Tensor, starts: list[int], plan: _FramePlan, out: Tensor) -> None:
        work = _Workspace(min(self.chunk_rows, vertices.shape[0]), vertices, self.spline)
        for start in starts:
            self._chunk(vertices, start, plan, out, work)

    def _chunk(
        self, vertices: Tensor, start: int, plan: _FramePlan, out: Tensor, work: _Workspace
    ) -> None:
        """Every frame of the vertices ``start : start + chunk_rows``, written into ``out``."""
        part = vertices[start : start + self.chunk_rows]
        n = part.shape[0]
        work.resize(n)
        canonical = [part[:, k].contiguous() for k in range(3)]
        if self.pin_c is not None:  # its first coupling does not depend on the pose
            first_coupling = self.pin_c.couplings[0]
            with record_function("PIN_c coupling 0, pose-free part"):
                pre0, attention0 = first_coupling.front_(canonical, work)
            pre0 = pre0.clone()
            attention0 = None if attention0 is None else attention0.clone()
        for b in range(plan.blended_grids.shape[0]):
            cols = list(canonical)
            if self.pin_c is not None:
                pre = work.get("pre", pre0.shape[0] - 1)
                pre.copy_(pre0)
                tables = [None if t is None else t[b] for t in plan.tables_c]
                with record_function("PIN_c coupling 0"):
                    first_coupling.back_(cols, pre, attention0, tables[0], work)
                for i, (coupling, table) in enumerate(zip(self.pin_c.couplings[1:], tables[1:])):
                    with record_function(f"PIN_c coupling {i + 1}"):
                        coupling.apply_(cols, table, work)
            with record_function("skinning grid lookup"):
                blended = self._blended_transforms(cols, plan.blended_grids[b])  # (12, R)
            cols = [
                torch.addcmul(blended[4 * k + 3], blended[4 * k], cols[0])
                .addcmul_(blended[4 * k + 1], cols[1])
                .addcmul_(blended[4 * k + 2], cols[2])
                for k in range(3)
            ]
            if self.pin_d is not None:
                assert plan.root_rows is not None
                for i, (coupling, table) in enumerate(zip(self.pin_d.couplings, plan.tables_d)):
                    with record_function(f"PIN_d coupling {i}"):
                        coupling.apply_(cols, None if table is None else table[b], work)
                root = plan.root_rows[b]
                out[b, start : start + n] = torch.addmm(
                    root[:, 3:], root[:, :3], torch.stack(cols)
                ).T
            else:
                for k in range(3):
                    out[b, start : start + n, k] = cols[k]


@dataclass(frozen=True)
class _FramePlan:
    """What every chunk needs of the frames, computed once per call."""

    blended_grids: Tensor
    """``(B, 1, 12, Rz, Ry, Rx)``: per frame, the top rows of the bone transforms (PIN_d's root
    frame folded in) blended by the skinning weights at every grid node."""
    root_rows: Tensor | None
    """``(B, 3, 4)``: the root bone's transform, applied after PIN_d."""
    tables_c: list[Tensor | None]
    tables_d: list[Tensor | None]
