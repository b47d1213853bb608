"""Occupancy network: SIREN (sine activations), a plain-MLP ablation, and a pose-conditioned variant.

Conventions: canonical points ``(*b, N, 3)`` in metres; the output is an occupancy **logit** per
point ``(*b, N)`` (inside where it is positive). Points are divided by ``input_radius`` first so a
body of about 2 m (within about +-1.2 m of the origin) lands in ``[-1, 1]^3``, the range SIREN's
initialisation assumes. An optional condition ``(*b, C)`` (one code per frame, for the ``snarf``
baseline whose shape depends on the pose) is concatenated to every point's input.

SIREN initialisation (Sitzmann et al. 2020): ``y = sin(omega (W x + b))``; first layer
``W ~ U(-1/in, 1/in)`` with ``omega = first_omega`` (30); later layers, the output layer included,
``W ~ U(-sqrt(6/in)/omega, sqrt(6/in)/omega)``; biases keep PyTorch's default.

Initial shape: the network output is added to a fixed **blob prior**
``sharpness * (radius - |x - center|)``, so the field starts as a ball around the canonical origin
(an occupied blob gives root finding and the occupancy loss something to start from) and keeps far
space empty (no floaters far from the body). The network learns the residual on top; the prior's
slope (``blob_sharpness`` logits per metre) is small next to what a SIREN readily outputs. Set
``blob_radius = None`` to disable it.

Shape legend: ``*b`` frames (any leading shape), ``N`` points, ``C`` condition size; without a
condition any point shape ``(..., 3)`` works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn


@dataclass
class SirenConfig:
    """Hyper-parameters of a :class:`Siren` occupancy network."""

    hidden_width: int = 256
    hidden_layers: int = 5
    """Number of hidden layers of ``hidden_width`` units (the first one reads the input)."""
    first_omega: float = 30.0
    hidden_omega: float = 30.0
    activation: Literal["sine", "softplus", "relu"] = "sine"
    """``softplus`` (beta 100) or ``relu``: the plain-MLP ablation "without SIREN"."""
    input_radius: float = 1.25
    """Points are divided by this (metres) before the first layer."""
    cond_dim: int = 0
    """Size of a per-frame condition concatenated to the input (0: pose-free)."""
    blob_radius: float | None = 0.5
    """Radius (metres) of the blob prior added to the output; None disables it."""
    blob_sharpness: float = 5.0
    """Slope of the blob prior, logits per metre."""
    blob_center: tuple[float, float, float] = (0.0, 0.0, 0.0)


class Siren(nn.Module):
    """Occupancy logit of canonical points, optionally conditioned on a per-frame code."""

    def __init__(self, config: SirenConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SirenConfig()
        if config.activation not in ("sine", "softplus", "relu"):
            raise ValueError(f"unknown activation {config.activation!r}")
        if config.hidden_layers < 1:
            raise ValueError(f"hidden_layers must be >= 1, got {config.hidden_layers}")
        dims = [3] + [config.hidden_width] * config.hidden_layers + [1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        # The condition enters the first layer as an additive term of its own, not by widening the
        # input: SIREN's first-layer bound 1/in would otherwise shrink with the condition's size
        # and the spatial frequencies with it (a 114-D pose code left only smooth blobs).
        self.cond_layer = (
            nn.Linear(config.cond_dim, config.hidden_width, bias=False)
            if config.cond_dim > 0
            else None
        )
        self.register_buffer(
            "blob_center", torch.tensor(config.blob_center, dtype=torch.float32), persistent=False
        )
        if config.activation == "sine":
            self._siren_init()

    @torch.no_grad()
    def _siren_init(self) -> None:
        first, *rest = self.layers
        bound = 1.0 / first.in_features
        first.weight.uniform_(-bound, bound)
        for layer in rest:
            bound = math.sqrt(6.0 / layer.in_features) / self.config.hidden_omega
            layer.weight.uniform_(-bound, bound)
        if self.cond_layer is not None:  # a phase shift of O(1) radians for a unit condition
            bound = math.sqrt(6.0 / self.cond_layer.in_features) / self.config.first_omega
            self.cond_layer.weight.uniform_(-bound, bound)

    def _activation(self, pre: Tensor, layer_index: int) -> Tensor:
        cfg = self.config
        if cfg.activation == "sine":
            omega = cfg.first_omega if layer_index == 0 else cfg.hidden_omega
            return torch.sin(omega * pre)
        if cfg.activation == "softplus":
            return nn.functional.softplus(pre, beta=100.0)
        return torch.relu(pre)

    def blob_prior(self, points: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b"]:
        """The fixed additive prior ``sharpness * (radius - |x - center|)`` (zero if disabled)."""
        cfg = self.config
        if cfg.blob_radius is None:
            return points.new_zeros(points.shape[:-1])
        dist = (points - self.blob_center.to(points.dtype)).norm(dim=-1)
        return cfg.blob_sharpness * (cfg.blob_radius - dist)

    def forward(
        self, points: Float[Tensor, "*p 3"], cond: Float[Tensor, "*c"] | None = None
    ) -> Float[Tensor, "*p"]:
        """Occupancy logits of points ``(..., 3)``.

        ``cond`` is required iff ``cond_dim > 0``: one code per frame, ``(*b, C)`` for points
        ``(*b, N, 3)``, shared by the frame's points.
        """
        cfg = self.config
        h = points / cfg.input_radius
        shift = None
        if cfg.cond_dim > 0:
            if cond is None or cond.shape[-1] != cfg.cond_dim:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"expected a condition of size {cfg.cond_dim}, got {got}")
            if points.ndim < 2 or cond.shape[:-1] != points.shape[:-2]:
                raise ValueError(
                    f"points {tuple(points.shape)} need a condition of shape "
                    f"(*b, {cfg.cond_dim}) matching their leading dims; got {tuple(cond.shape)}"
                )
            shift = self.cond_layer(cond)[..., None, :]
        elif cond is not None:
            raise ValueError("this network is not conditioned (cond_dim = 0) but got a condition")
        for i, layer in enumerate(self.layers[:-1]):
            pre = layer(h)
            if i == 0 and shift is not None:
                pre = pre + shift
            h = self._activation(pre, i)
        return self.layers[-1](h)[..., 0] + self.blob_prior(points)
