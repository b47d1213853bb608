"""The animatable model: INS and, by configuration, every baseline and ablation.

Spaces (docs/method.md): ``x_d`` posed, ``x_dl`` posed before PIN_d, ``x_cp`` pose-dependent
canonical, ``x_c`` pose-free canonical. Reposing (canonical to posed), on mesh vertices::

    x_c --PIN_c--> x_cp --LBS--> x_dl --PIN_d--> x_d

Queries in training (posed to canonical)::

    x_d --PIN_d^-1--> x_dl --LBS^-1 (Broyden, K candidates)--> x_cp^k --PIN_c^-1--> x_c^k --> O(x_c^k)

Choices made here (written down in docs/method.md):

- **Root-relative pose for the PINs.** The PINs see the bone transforms relative to the root bone,
  and PIN_d works in the root's frame (``x -> T_root^-1 x``, PIN_d, ``-> T_root x``), so a global
  translation or turn of the whole body changes nothing they compute. Still an exact bijection.
- **Skinning weights on a grid (FastSNARF).** Every step the MLP field is baked onto a coarse voxel
  grid (differentiably, so its gradients reach the MLP), and the root finder, the implicit gradient
  and reposing all use the trilinear grid: one consistent, cheap ``w(x)``. ``lbs-body`` uses a fixed
  grid of the body model's nearest-vertex weights instead.
- **Candidate aggregation.** Max logit over valid candidates at evaluation; a soft-max blend
  (``softmax(soft_blend * logit)``-weighted mean) in training; a point with no valid candidate is
  outside (logit ``OUTSIDE``).

Shape legend: ``B`` frames, ``N`` points, ``J`` bones, ``K`` root candidates, ``V`` vertices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from invskin.body import Skeleton
from invskin.geometry import (
    apply_transform,
    axis_angle_to_matrix,
    invert_rigid,
    lbs,
    lbs_jacobian,
    make_transform,
    rotation_6d_offset,
)
from invskin.models.config import ModelConfig
from invskin.models.signals import ColourBatch, CorrespondenceBatch
from invskin.nets.anchored import ANCHOR_SPACING, BodyTable
from invskin.nets.colour_field import ColourField, brightness_gain
from invskin.nets.pin import PIN, PINConfig, coupling_class
from invskin.nets.pose_encoder import PoseCode
from invskin.nets.siren import Siren, SirenConfig
from invskin.nets.skinning_field import (
    NearestVertexWeights,
    PriorFitConfig,
    SkinningField,
    SkinningFieldConfig,
    SkinningGrid,
    diffused_grid_weights,
    grid_nodes,
)
from invskin.solvers.inverse_skinning import (
    InverseSkinningResult,
    default_init_bones,
    implicit_points,
    implicit_roots,
    inverse_lbs,
)

ANCHOR_MARGIN = 0.02
"""Metres around the body prior's bounding box covered by a body-anchored PIN_c's table."""
OUTSIDE = -20.0
"""Logit given to posed points with no valid canonical candidate."""
FOLD_MARGIN = 0.2
"""The skinning Jacobian's determinant is pushed above this at the canonical roots of samples."""
FOLD_POINTS = 256
"""Samples per frame whose canonical roots are checked for folds each step."""
PRIOR_LOGIT_EPS = 1e-4
"""Residual skinning starts from ``log(w_prior + eps)``: a bone absent from the prior at a node
starts about 9 logits below the prior's bones."""
DUPLICATE_ROOT_TOLERANCE = 1e-4
"""Valid root candidates of one posed point closer than this (metres) are the same root: Broyden
stops at a residual of 1e-5 m, while distinct roots of a fold lie millimetres apart."""


@dataclass(frozen=True)
class PosedQuery:
    """Occupancy logits of posed points at each of their K canonical candidates."""

    logits: Float[Tensor, "b n k"]
    valid: Bool[Tensor, "b n k"]
    pin_c_displacement: Float[Tensor, "b n k"]
    pin_d_displacement: Float[Tensor, "b n"]
    candidates: Float[Tensor, "b n k 3"]
    """The canonical candidates ``x_cp`` (pose-dependent canonical space), without gradient."""
    multiplicity: Float[Tensor, "b n k"]
    """How many valid candidates each candidate stands for: 1 per valid candidate (reference
    path); on the fast path a distinct root counts its duplicates and a duplicate counts 0."""


@dataclass(frozen=True)
class LossInputs:
    """One training batch and what every loss term reads of it, computed once
    (:meth:`AnimatableModel.losses`)."""

    points: Float[Tensor, "b n 3"]
    occupancy: Float[Tensor, "b n"]
    transforms: Float[Tensor, "b j 4 4"]
    step: int
    correspondence: CorrespondenceBatch | None
    colour: ColourBatch | None
    field: SkinningGrid
    """The skinning weights of this step."""
    query: PosedQuery
    """The batch's posed points carried to their canonical candidates."""


def bone_segment_points(skeleton: Skeleton, per_bone: int = 16) -> Tensor:
    """Points along every bone (parent joint to child joint) in the canonical pose: inside the body."""
    joints = skeleton.joints()
    t = torch.linspace(0.0, 1.0, per_bone + 2)[1:-1, None]
    segments = [
        joints[p] + t * (joints[j] - joints[p]) for j, p in enumerate(skeleton.parents) if p >= 0
    ]
    return torch.cat(segments) if segments else joints.clone()


def pose_condition(transforms: Float[Tensor, "*b j 4 4"], parents: tuple[int, ...]) -> Tensor:
    """Per-frame pose code for the pose-conditioned shape (``snarf``): each non-root bone's rotation
    relative to its parent, 6D, minus the identity's (zero in the canonical pose)."""
    child = [j for j, p in enumerate(parents) if p >= 0]
    parent = [parents[j] for j in child]
    rel = invert_rigid(transforms[..., parent, :, :]) @ transforms[..., child, :, :]
    return rotation_6d_offset(rel[..., :3, :3]).flatten(-2)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` holds (0 where it holds nowhere)."""
    mask = mask.float()
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


class AnimatableModel(nn.Module):
    """Canonical occupancy + skinning field + optional PINs; see the module docstring."""

    def __init__(
        self,
        config: ModelConfig,
        skeleton: Skeleton,
        prior_vertices: Float[Tensor, "v 3"],
        prior_weights: Float[Tensor, "v j"],
        padding: float = 0.25,
        prior_faces: Tensor | None = None,
    ) -> None:
        """``prior_faces`` (the body prior's triangles) are needed to build a fresh model whose PIN_c
        is body-anchored (``config.pin_c_coupling``); a model whose weights are loaded next (a
        saved run) reads the body table from them instead."""
        super().__init__()
        self.config = config
        self.skeleton = skeleton
        num_bones = skeleton.num_bones
        self.parents = tuple(skeleton.parents)
        self.root = self.parents.index(-1)
        lo = prior_vertices.min(0).values - padding
        hi = prior_vertices.max(0).values + padding
        self.register_buffer("bounds", torch.stack([lo, hi]).float())
        self.register_buffer("prior_vertices", prior_vertices.float())
        self.register_buffer("prior_weights", prior_weights.float())
        self.register_buffer("bone_points", bone_segment_points(skeleton).float())
        self.register_buffer("root_joint", skeleton.joints()[self.root].float(), persistent=False)
        self.init_bones = list(config.init_bones) or default_init_bones(skeleton)
        center = ((lo + hi) / 2).tolist()
        pose_cond_dim = 6 * (num_bones - 1) if config.shape_pose_conditioned else 0
        self.shape = Siren(
            SirenConfig(
                hidden_width=config.shape_width,
                hidden_layers=config.shape_layers,
                activation="sine" if config.siren else "softplus",
                cond_dim=pose_cond_dim,
                blob_center=(center[0], center[1], center[2]),
            )
        )
        self.skinning = (
            SkinningField(
                num_bones,
                SkinningFieldConfig(
                    hidden_width=config.skinning_width,
                    hidden_layers=3,
                    zero_last=config.skinning_residual,
                ),
            )
            if config.learn_skinning
            else None
        )
        prior_nodes = grid_nodes(self.bounds, tuple(config.prior_grid) or config.skinning_grid)
        if config.prior == "nearest":
            prior = self._nearest_prior_weights(prior_nodes)
        elif config.prior == "diffused":
            prior = diffused_grid_weights(
                prior_nodes, self.prior_vertices, self.prior_weights, config.prior_radius
            )
        else:
            raise ValueError(f"unknown prior {config.prior!r}; use nearest or diffused")
        self.register_buffer("prior_grid", prior.permute(3, 0, 1, 2).contiguous())
        # Residual skinning: the prior's log-weights at the grid nodes, (J, Rz, Ry, Rx).
        self.register_buffer(
            "prior_logits", torch.log(self.prior_grid + PRIOR_LOGIT_EPS), persistent=False
        )
        self.fast_query = True
        """Training queries run on distinct roots with pre-blended transforms (:meth:`query`);
        False runs the reference path, which evaluates every candidate."""
        pin_config = PINConfig(
            num_blocks=config.pin_blocks,
            hidden_width=config.pin_width,
            projection_dim=config.pin_width // 2,
            pose_embed_dim=config.pin_pose_dim,
            pose_hidden_width=config.pin_width // 2,
            pooled_dim=config.pin_width // 2,
            pose_conditioned=config.pin_pose_conditioned,
            coupling=config.pin_coupling,
            spline_bins=config.pin_spline_bins,
        )
        self.pin_c = None
        if config.use_pin_c:
            pin_c_config = replace(
                pin_config, coupling=config.pin_c_coupling or config.pin_coupling
            )
            table = None
            if coupling_class(pin_c_config.coupling).needs_body_table:
                body_lo = prior_vertices.min(0).values - ANCHOR_MARGIN
                body_hi = prior_vertices.max(0).values + ANCHOR_MARGIN
                table = BodyTable(body_lo, body_hi, ANCHOR_SPACING)
                if prior_faces is not None:
                    table.fill(prior_vertices, prior_faces)
            self.pin_c = PIN(num_bones, pin_c_config, table)
        self.pin_d = PIN(num_bones, pin_config) if config.use_pin_d else None
        self.colour = ColourField(self.bounds) if config.colour_field else None

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by part, so the trainer can give each its own learning-rate scale."""
        pins = [p for pin in (self.pin_c, self.pin_d) if pin is not None for p in pin.parameters()]
        colour = list(self.colour.parameters()) if self.colour is not None else []
        taken = {id(p) for p in pins + colour}
        return {
            "pin": pins,
            "colour": colour,
            "other": [p for p in self.parameters() if id(p) not in taken],
        }

    # ----------------------------------------------------------------------------- skinning
    def _prior_vertex_lookup(self) -> NearestVertexWeights:
        """The body prior's nearest-vertex lookup (a k-d tree, built on first use)."""
        if getattr(self, "_prior_lookup", None) is None:
            self._prior_lookup = NearestVertexWeights(self.prior_vertices, self.prior_weights)
        return self._prior_lookup

    def _nearest_prior_weights(self, points: Float[Tensor, "*p 3"]) -> Float[Tensor, "*p j"]:
        return self._prior_vertex_lookup()(points)

    def weight_field(self) -> SkinningGrid:
        """The skinning weights used everywhere: the learned MLP (or the body prior) on a grid.

        Built differentiably when gradients are enabled, so the grid's gradients reach the MLP.
        """
        if self.skinning is None:
            return SkinningGrid(self.prior_grid, self.bounds)
        nodes = grid_nodes(self.bounds, self.config.skinning_grid)
        if self.config.skinning_residual:
            residual = self.skinning.logits(nodes).permute(3, 0, 1, 2)
            if residual.shape != self.prior_logits.shape:
                residual = nn.functional.interpolate(
                    residual[None],
                    size=self.prior_logits.shape[1:],
                    mode="trilinear",
                    align_corners=True,
                )[0]
            grid = torch.softmax(self.prior_logits + residual, dim=0)
            return SkinningGrid(grid, self.bounds)
        weights = self.skinning(nodes.reshape(-1, 3)).reshape(*nodes.shape[:-1], -1)
        return SkinningGrid(weights.permute(3, 0, 1, 2).contiguous(), self.bounds)

    def fit_skinning_to_prior(self, steps: int) -> list[float]:
        """Initialise the learned skinning field from the body prior (no-op for ``lbs-body`` and
        for a residual field, which starts at the prior)."""
        if self.skinning is None or steps <= 0 or self.config.skinning_residual:
            return []
        return self.skinning.fit_to_prior(
            self.prior_vertices, self.prior_weights, PriorFitConfig(steps=steps, batch_points=2048)
        )

    # ----------------------------------------------------------------------------- PINs
    def body_frame(self, transforms: Float[Tensor, "*b j 4 4"]) -> Float[Tensor, "*b 4 4"]:
        """The frame the PINs work in (``config.pin_frame``), canonical to posed.

        ``root``: the root bone's transform. ``heading``: the root joint's posed position and the
        yaw part of the root's rotation (the heading of its x axis in the horizontal plane), about
        the root joint; pitch and roll stay in the pose the PINs see.
        """
        root = transforms[..., self.root, :, :]
        if self.config.pin_frame == "root":
            return root
        if self.config.pin_frame != "heading":
            raise ValueError(f"unknown pin_frame {self.config.pin_frame!r}; use root or heading")
        right = root[..., :3, 0]
        angle = torch.atan2(-right[..., 2], right[..., 0])  # about +y, x towards -z
        yaw = axis_angle_to_matrix(angle[..., None] * angle.new_tensor([0.0, 1.0, 0.0]))
        joint = self.root_joint.to(root)
        posed_joint = (root[..., :3, :3] @ joint[:, None])[..., 0] + root[..., :3, 3]
        return make_transform(yaw, posed_joint - (yaw @ joint[:, None])[..., 0])

    def pin_pose(
        self, transforms: Float[Tensor, "*b j 4 4"], frame: Float[Tensor, "*b 4 4"] | None = None
    ) -> Float[Tensor, "*b j 4 4"]:
        """The bone transforms relative to the body frame (``frame``, or :meth:`body_frame` of
        ``transforms``): the pose both PINs are conditioned on (``pin_c(x, model.pin_pose(T))``)."""
        frame = self.body_frame(transforms) if frame is None else frame
        return invert_rigid(frame)[..., None, :, :] @ transforms

    def apply_pin_d(
        self, x: Float[Tensor, "b n 3"], transforms: Float[Tensor, "b j 4 4"], inverse: bool = False
    ) -> Float[Tensor, "b n 3"]:
        """PIN_d (``inverse=False``: ``x_dl -> x_d``) or its inverse, applied in the body frame: the
        last step of :meth:`deform` and :meth:`repose`, the first of the posed-to-canonical query."""
        assert self.pin_d is not None
        frame = self.body_frame(transforms)
        local = apply_transform(invert_rigid(frame), x)
        rel = self.pin_pose(transforms, frame)
        local = self.pin_d.inverse(local, rel) if inverse else self.pin_d(local, rel)
        return apply_transform(frame, local)

    def deform(
        self,
        x_c: Float[Tensor, "b n 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid,
        code_c: PoseCode | None = None,
    ) -> Float[Tensor, "b n 3"]:
        """Canonical to posed: ``PIN_c -> LBS -> PIN_d`` (differentiable); ``code_c`` is PIN_c's
        pose code if already computed."""
        x = x_c
        if self.pin_c is not None:
            code = (
                code_c if code_c is not None else self.pin_c.encode_pose(self.pin_pose(transforms))
            )
            x = self.pin_c(x, code)
        x = lbs(x, field(x), transforms)
        if self.pin_d is not None:
            x = self.apply_pin_d(x, transforms, inverse=False)
        return x

    # ----------------------------------------------------------------------------- shape
    def shape_logits(
        self, x_c: Float[Tensor, "b n 3"], transforms: Float[Tensor, "b j 4 4"] | None = None
    ) -> Float[Tensor, "b n"]:
        """Canonical occupancy logits; pose-conditioned methods need the frames' transforms."""
        if self.config.shape_pose_conditioned:
            if transforms is None:
                raise ValueError(f"method {self.config.method} has a pose-conditioned shape")
            return self.shape(x_c, pose_condition(transforms, self.parents))
        return self.shape(x_c)

    @property
    def pose_free(self) -> bool:
        """Whether the canonical shape is pose-free (its mesh can be extracted once)."""
        return not self.config.shape_pose_conditioned

    # ----------------------------------------------------------------------------- queries
    def query(
        self,
        points: Float[Tensor, "b n 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid | None = None,
    ) -> PosedQuery:
        """Posed points to canonical candidates to occupancy logits (differentiable).

        With ``fast_query`` (the default) root finding reads pre-blended transform grids, and only
        the distinct valid roots of each point go through the implicit correction, PIN_c^-1 and the
        shape network; duplicates (closer than ``DUPLICATE_ROOT_TOLERANCE``) get the logit of the
        root they repeat. Otherwise every candidate is evaluated (the reference path; test:
        ``tests/test_model.py::test_fast_query_matches_the_reference``).
        """
        field = field if field is not None else self.weight_field()
        b, n, _ = points.shape
        x_dl, roots = self._lbs_roots(points, transforms, field, pre_blend=self.fast_query)
        if self.fast_query:
            return self._query_distinct(roots, points, x_dl, transforms, field)
        x_cp = implicit_roots(roots, x_dl, field, transforms)  # (B, N, K, 3)
        k = x_cp.shape[2]
        flat = x_cp.reshape(b, n * k, 3)
        x_c = self.pin_c.inverse(flat, self.pin_pose(transforms)) if self.pin_c else flat
        logits = self.shape_logits(x_c, transforms).reshape(b, n, k)
        return PosedQuery(
            logits=logits,
            valid=roots.valid,
            pin_c_displacement=(x_c - flat).square().sum(-1).reshape(b, n, k),
            pin_d_displacement=(x_dl - points).square().sum(-1),
            candidates=x_cp.detach(),
            multiplicity=roots.valid.float(),
        )

    def _query_distinct(
        self,
        roots: InverseSkinningResult,
        points: Float[Tensor, "b n 3"],
        x_dl: Float[Tensor, "b n 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid,
    ) -> PosedQuery:
        """:meth:`query` after root finding, on each point's distinct valid roots only.

        The kept roots of each frame are packed into ``(B, M, 3)`` (padded to the largest frame's
        count ``M``), evaluated once, and their logits and PIN_c displacements copied back to every
        candidate that repeats them.
        """
        b, n, k, _ = roots.points.shape
        valid = roots.valid
        close = torch.cdist(roots.points.reshape(b * n, k, 3), roots.points.reshape(b * n, k, 3))
        close = close.reshape(b, n, k, k) < DUPLICATE_ROOT_TOLERANCE
        same = close & valid[:, :, :, None] & valid[:, :, None, :]
        # The representative of candidate k: the first valid candidate at its place (k itself if new).
        first = torch.where(same, torch.arange(k, device=points.device), k).min(-1).values
        keep = valid & (first == torch.arange(k, device=points.device))
        flat_keep = keep.reshape(b, n * k)
        slot = flat_keep.long().cumsum(1) - 1  # (B, N*K): packed position of each kept candidate
        m = max(int(flat_keep.sum(1).max()), 1)
        frame_idx, cand_idx = flat_keep.nonzero(as_tuple=True)
        packed_idx = (frame_idx, slot[frame_idx, cand_idx])
        x_star = points.new_zeros(b, m, 3)
        x_star[packed_idx] = roots.points.reshape(b, n * k, 3)[frame_idx, cand_idx]
        target = points.new_zeros(b, m, 3)
        target = target.index_put(packed_idx, x_dl[frame_idx, cand_idx // k])
        in_use = torch.zeros(b, m, dtype=torch.bool, device=points.device)
        in_use[packed_idx] = True
        x_cp = implicit_points(x_star, target, in_use, field, transforms)
        x_c = self.pin_c.inverse(x_cp, self.pin_pose(transforms)) if self.pin_c else x_cp
        logits = self.shape_logits(x_c, transforms)  # (B, M)
        pin_c_disp = (x_c - x_cp).square().sum(-1)
        # Every valid candidate reads its representative's packed slot; invalid ones read slot 0.
        rep = first.clamp(max=k - 1) + torch.arange(n, device=points.device)[None, :, None] * k
        gather = torch.where(
            valid, torch.gather(slot, 1, rep.reshape(b, n * k)).reshape(b, n, k), 0
        )
        gather = gather.reshape(b, n * k)
        return PosedQuery(
            logits=torch.gather(logits, 1, gather).reshape(b, n, k),
            valid=valid,
            pin_c_displacement=torch.gather(pin_c_disp, 1, gather).reshape(b, n, k),
            pin_d_displacement=(x_dl - points).square().sum(-1),
            candidates=roots.points,
            multiplicity=torch.zeros_like(valid, dtype=points.dtype).scatter_add_(
                2, first.clamp(max=k - 1), valid.to(points.dtype)
            )
            * keep,
        )

    def _lbs_roots(
        self,
        points: Float[Tensor, "b m 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid,
        pre_blend: bool,
    ) -> tuple[Float[Tensor, "b m 3"], InverseSkinningResult]:
        """Posed points through PIN_d^-1 (when there is one) to ``x_dl``, and LBS^-1's candidate
        roots of those (:func:`invskin.solvers.inverse_lbs`)."""
        x_dl = (
            self.apply_pin_d(points, transforms, inverse=True) if self.pin_d is not None else points
        )
        roots = inverse_lbs(
            x_dl,
            field,
            transforms,
            self.init_bones,
            max_steps=self.config.broyden_steps,
            pre_blend=pre_blend,
        )
        return x_dl, roots

    def canonical_surface(
        self,
        points: Float[Tensor, "b m 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid,
    ) -> tuple[Float[Tensor, "b m 3"], Bool[Tensor, "b m"]]:
        """Posed surface points carried back to ``x_c`` (differentiable), and whether they have a
        valid canonical root.

        Of a point's valid LBS^-1 candidates, the one whose occupancy logit (read at ``x_cp``,
        before PIN_c^-1, without gradient) is closest to 0 is taken: a point of the scan's surface
        comes from the canonical surface. Only that root goes through the implicit correction and
        PIN_c^-1.
        """
        x_dl, roots = self._lbs_roots(points, transforms, field, pre_blend=True)
        b, m, k, _ = roots.points.shape
        with torch.no_grad():
            logits = self.shape_logits(roots.points.reshape(b, m * k, 3), transforms)
            distance = logits.reshape(b, m, k).abs().masked_fill(~roots.valid, float("inf"))
            best = distance.argmin(-1)
        x_star = torch.gather(roots.points, 2, best[..., None, None].expand(b, m, 1, 3))[:, :, 0]
        valid = roots.valid.any(-1)
        if self.config.colour_moves_skinning or self.pin_c is None:
            x_cp = implicit_points(x_star, x_dl, valid, field, transforms)
        else:  # the root as a constant: the photometric gradient reaches PIN_c, not the skinning
            x_cp = x_star.detach()
        x_c = self.pin_c.inverse(x_cp, self.pin_pose(transforms)) if self.pin_c else x_cp
        return x_c, valid

    def photometric(
        self, colour: ColourBatch, transforms: Float[Tensor, "b j 4 4"], field: SkinningGrid
    ) -> dict[str, Tensor]:
        """The photometric losses of coloured scan points (see :meth:`losses`)."""
        assert self.colour is not None
        x_c, valid = self.canonical_surface(colour.points, transforms, field)
        predicted = self.colour(x_c)
        gain = brightness_gain(predicted, colour.colours, valid)
        error = (gain[:, None, None] * predicted - colour.colours).square().sum(-1)
        return {
            "colour": _masked_mean(error, valid),
            "colour_level": torch.log(gain.clamp(min=1e-3)).mean().square(),
        }

    @staticmethod
    def aggregate(query: PosedQuery, soft_blend: float | None) -> Float[Tensor, "b n"]:
        """One logit per posed point: max over valid candidates, or a soft-max blend."""
        masked = query.logits.masked_fill(~query.valid, -1e4)
        any_valid = query.valid.any(-1)
        if soft_blend is None:
            best = masked.max(-1).values
        else:
            blend = torch.softmax(soft_blend * masked, dim=-1)
            best = (blend * query.logits.masked_fill(~query.valid, 0.0)).sum(-1)
        return torch.where(any_valid, best, torch.full_like(best, OUTSIDE))

    @torch.no_grad()
    def posed_logits(
        self,
        points: Float[Tensor, "b n 3"],
        transforms: Float[Tensor, "b j 4 4"],
        field: SkinningGrid | None = None,
    ) -> Float[Tensor, "b n"]:
        """Evaluation-time occupancy logits of posed points (max over candidates)."""
        return self.aggregate(self.query(points, transforms, field), soft_blend=None)

    # ----------------------------------------------------------------------------- training
    def losses(
        self,
        points: Float[Tensor, "b n 3"],
        occupancy: Float[Tensor, "b n"],
        transforms: Float[Tensor, "b j 4 4"],
        step: int,
        correspondence: CorrespondenceBatch | None = None,
        colour: ColourBatch | None = None,
    ) -> dict[str, Tensor]:
        """Named, unweighted losses for one batch (weights and warm-ups: the trainer's schedule).

        Each loss is a term of :data:`LOSS_TERMS`, run in that order on one :class:`LossInputs`
        (the batch, the skinning grid and the query of its points, computed once). A term gives its
        losses where the model and the batch have what it needs, nothing otherwise; the names are
        those of log.jsonl and ``--no-loss``:

        | loss (term)                   | computed when          | what it is                    |
        |-------------------------------|------------------------|-------------------------------|
        | ``occupancy``                 | always                 | BCE of the blended logit      |
        | ``bone_occupancy``            | always                 | points on the bones inside    |
        | ``skinning_prior``            | skinning learned       | weights against the prior's   |
        | ``lbs_fold``                  | skinning learned       | ``relu(0.2 - det J_LBS)``     |
        | ``pin_d_body_displacement``   | PIN_d, a body margin   | PIN_d's motion on the skin    |
        | ``pin_c_displacement``        | PIN_c                  | its mean squared displacement |
        | ``pin_d_displacement``        | PIN_d                  | its mean squared displacement |
        | ``correspondence``, ``_rest`` | correspondences given  | chain error, posed and at rest|
        | ``colour``, ``colour_level``  | colours, colour field  | photometric error; log gain   |
        | ``valid_fraction``            | always (logged only)   | samples with a valid root     |

        With ``correspondence`` (known correspondences of the batch's frames), ``correspondence``
        is the mean squared distance (m^2) between each canonical truth point carried through the
        chain (PIN_c, LBS, PIN_d) and where it is in its frame, and ``correspondence_rest`` the
        same in the canonical pose (identity bone transforms), where each point is itself.

        With ``colour`` (coloured points of the batch's scans) and a colour field, each point is
        carried back to ``x_c`` (:meth:`canonical_surface`) and the field read there; per frame the
        brightness gain ``g`` that best matches the scan's colours is solved in closed form, and
        ``colour`` is the mean squared RGB error ``|g * rgb(x_c) - c|^2`` (a frame's lighting costs
        nothing; the gradient reaches the colour field and, through ``x_c``, the skinning field and
        the PINs: a point that slid reads another part of the print). ``colour_level`` is the
        squared mean log gain of the batch's frames: it sets the field's overall brightness to the
        scans' average lighting.
        """
        field = self.weight_field()
        inputs = LossInputs(
            points=points,
            occupancy=occupancy,
            transforms=transforms,
            step=step,
            correspondence=correspondence,
            colour=colour,
            field=field,
            query=self.query(points, transforms, field),
        )
        losses: dict[str, Tensor] = {}
        for term in LOSS_TERMS.values():
            losses.update(term(self, inputs))
        return losses

    def occupancy_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        logits = self.aggregate(inputs.query, soft_blend=self.config.soft_blend)
        return {
            "occupancy": nn.functional.binary_cross_entropy_with_logits(
                logits, inputs.occupancy.float()
            )
        }

    def bone_occupancy_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Bones are inside the body in every pose (SNARF's bootstrapping)."""
        bones = self.bone_points.expand(inputs.points.shape[0], -1, -1)
        bone_logits = self.shape_logits(bones, inputs.transforms)
        return {
            "bone_occupancy": nn.functional.binary_cross_entropy_with_logits(
                bone_logits, torch.ones_like(bone_logits)
            )
        }

    def skinning_prior_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """The learned weights against the body prior's at 2,048 points near the body."""
        if self.skinning is None:
            return {}
        device = inputs.points.device
        picks = torch.randint(self.prior_vertices.shape[0], (2048,), device=device)
        near = self.prior_vertices[picks] + 0.03 * torch.randn(2048, 3, device=device)
        prior = self._nearest_prior_weights(near).to(near)
        return {"skinning_prior": (inputs.field(near) - prior).square().sum(-1).mean()}

    def lbs_fold_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Folds: where det(d LBS / d x) <= 0, skinning maps several canonical points to one posed
        point (self-intersection; LBS^-1 is ambiguous there). Checked at the valid canonical roots
        of the batch's samples, which lie where the surface is: the mean over all candidates of the
        first FOLD_POINTS samples, each distinct root evaluated once and counted as many times as
        it was found."""
        if self.skinning is None:
            return {}
        query = inputs.query
        count = query.multiplicity[:, :FOLD_POINTS]
        frame, point, cand = (count > 0).nonzero(as_tuple=True)
        roots = query.candidates[frame, point, cand][:, None]  # (M, 1, 3)
        skin = inputs.field.weights_and_gradients(roots)
        jac = lbs_jacobian(roots, skin.weights, skin.gradients, inputs.transforms[frame])[:, 0]
        fold = torch.relu(FOLD_MARGIN - torch.linalg.det(jac)) * count[frame, point, cand]
        return {"lbs_fold": fold.sum() / count.numel()}

    def pin_d_body_displacement_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """PIN_d's displacement at posed samples one of whose valid roots is within
        ``pin_d_body_margin`` of the body prior's nearest vertex (on the skin)."""
        margin = self.config.pin_d_body_margin
        if self.pin_d is None or margin <= 0:
            return {}
        query = inputs.query
        skin = self._prior_vertex_lookup().query(query.candidates)[0]
        near = (skin <= margin) & query.valid
        return {"pin_d_body_displacement": _masked_mean(query.pin_d_displacement, near.any(-1))}

    def pin_c_displacement_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        if self.pin_c is None:
            return {}
        query = inputs.query
        return {"pin_c_displacement": _masked_mean(query.pin_c_displacement, query.valid)}

    def pin_d_displacement_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        if self.pin_d is None:
            return {}
        return {"pin_d_displacement": inputs.query.pin_d_displacement.mean()}

    def correspondence_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Known correspondences carried through the chain, in the batch's frames and at rest."""
        correspondence = inputs.correspondence
        if correspondence is None:
            return {}
        posed = self.deform(correspondence.canonical, inputs.transforms, inputs.field)
        # The canonical pose is where the canonical truth is, by definition: there the chain must
        # leave it (PIN_c is pose-conditioned, and nothing else ties it to the identity at rest,
        # where the extracted mesh is attached to the truth).
        canonical = correspondence.canonical[:1]
        rest = torch.eye(4, dtype=canonical.dtype, device=canonical.device)
        at_rest = self.deform(
            canonical, rest.expand(1, self.skeleton.num_bones, 4, 4), inputs.field
        )
        return {
            "correspondence": (posed - correspondence.posed).square().sum(-1).mean(),
            "correspondence_rest": (at_rest - canonical).square().sum(-1).mean(),
        }

    def colour_loss(self, inputs: LossInputs) -> dict[str, Tensor]:
        """The photometric losses (:meth:`photometric`) of the batch's coloured points."""
        if inputs.colour is None or self.colour is None:
            return {}
        return self.photometric(inputs.colour, inputs.transforms, inputs.field)

    def valid_fraction(self, inputs: LossInputs) -> dict[str, Tensor]:
        """Not a loss: the share of samples with a valid canonical root, logged."""
        return {"valid_fraction": inputs.query.valid.any(-1).float().mean().detach()}

    # ----------------------------------------------------------------------------- reposing
    @torch.no_grad()
    def repose(
        self,
        vertices: Float[Tensor, "v 3"],
        transforms: Float[Tensor, "b j 4 4"],
        chunk: int = 262_144,
    ) -> Float[Tensor, "b v 3"]:
        """Push canonical vertices through ``PIN_c -> LBS -> PIN_d`` for every frame."""
        field = self.weight_field()
        b = transforms.shape[0]
        code_c = None
        if self.pin_c is not None:
            code_c = self.pin_c.encode_pose(self.pin_pose(transforms))
        out = []
        for part in vertices.split(max(1, chunk // max(b, 1))):
            out.append(self.deform(part.expand(b, -1, -1), transforms, field, code_c))
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def canonicalise(
        self,
        posed: Float[Tensor, "b v 3"],
        transforms: Float[Tensor, "b j 4 4"],
        reference: Float[Tensor, "v 3"],
    ) -> tuple[Float[Tensor, "b v 3"], Bool[Tensor, "b v"]]:
        """Inverse chain ``PIN_d^-1 -> LBS^-1 -> PIN_c^-1`` of posed points.

        LBS^-1 may have several roots; root finding starts from **every** bone here (not only the
        training subset) so the root the forward pass came from is among the candidates, and the
        valid candidate closest (in ``x_c``) to ``reference`` is returned, with whether any
        candidate was valid. Used to measure round-trip error.
        """
        field = self.weight_field()
        b, v, _ = posed.shape
        x_dl = (
            self.apply_pin_d(posed, transforms, inverse=True) if self.pin_d is not None else posed
        )
        every_bone = list(range(self.skeleton.num_bones))
        roots = inverse_lbs(x_dl, field, transforms, every_bone, max_steps=100, cvg_thresh=1e-6)
        k = roots.points.shape[2]
        flat = roots.points.reshape(b, v * k, 3)
        x_c = self.pin_c.inverse(flat, self.pin_pose(transforms)) if self.pin_c else flat
        x_c = x_c.reshape(b, v, k, 3)
        dist = (x_c - reference[None, :, None]).norm(dim=-1).masked_fill(~roots.valid, float("inf"))
        best = dist.argmin(-1)
        chosen = torch.gather(x_c, 2, best[..., None, None].expand(b, v, 1, 3))[:, :, 0]
        return chosen, roots.valid.any(-1)


LossTerm = Callable[[AnimatableModel, LossInputs], dict[str, Tensor]]
LOSS_TERMS: dict[str, LossTerm] = {
    "occupancy": AnimatableModel.occupancy_loss,
    "bone_occupancy": AnimatableModel.bone_occupancy_loss,
    "skinning_prior": AnimatableModel.skinning_prior_loss,
    "lbs_fold": AnimatableModel.lbs_fold_loss,
    "pin_d_body_displacement": AnimatableModel.pin_d_body_displacement_loss,
    "pin_c_displacement": AnimatableModel.pin_c_displacement_loss,
    "pin_d_displacement": AnimatableModel.pin_d_displacement_loss,
    "correspondence": AnimatableModel.correspondence_loss,
    "colour": AnimatableModel.colour_loss,
    "valid_fraction": AnimatableModel.valid_fraction,
}
"""The model's loss terms, in the order :meth:`AnimatableModel.losses` runs them (the order of the
random draws and of log.jsonl's columns). Each gives the losses of its name (``correspondence``
also ``correspondence_rest``, ``colour`` also ``colour_level``: each pair shares its work), or
nothing where the model or the batch lacks what it needs (:data:`LOSS_NAMES`)."""

LOSS_NAMES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in LOSS_TERMS},
    "correspondence": ("correspondence", "correspondence_rest"),
    "colour": ("colour", "colour_level"),
}
"""The losses each term of :data:`LOSS_TERMS` gives."""
