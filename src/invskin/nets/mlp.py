"""A plain multilayer perceptron that can also return its input Jacobian in the same pass.

Conventions: inputs ``(..., D_in)`` to outputs ``(..., D_out)`` with any leading shape; Jacobians
``(..., D_out, D_in)`` with ``jac[..., o, i] = d y_o / d x_i``. The Jacobian is propagated forward
alongside the activations (``D_in`` tangents per point), which for the 3D inputs used here costs
about three forward passes and, unlike autograd, needs no backward pass per output (``J`` outputs
for a skinning field). Everything stays differentiable by autograd.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

Activation = Literal["softplus", "silu", "relu"]


def activation(pre: Float[Tensor, "..."], name: Activation, softplus_beta: float) -> Tensor:
    """The activation alone (cheaper than :func:`activation_and_slope` when no slope is needed)."""
    if name == "softplus":  # softplus(beta z) / beta: on CPU about twice as fast as beta=beta
        return nn.functional.softplus(pre * softplus_beta) / softplus_beta
    if name == "silu":
        return nn.functional.silu(pre)
    if name == "relu":
        return torch.relu(pre)
    raise ValueError(f"unknown activation {name!r}; use softplus, silu or relu")


def activation_and_slope(
    pre: Float[Tensor, "..."], name: Activation, softplus_beta: float
) -> tuple[Float[Tensor, "..."], Float[Tensor, "..."]]:
    """Value and derivative of the activation at the pre-activations ``pre``."""
    if name == "softplus":
        scaled = softplus_beta * pre
        return nn.functional.softplus(scaled) / softplus_beta, torch.sigmoid(scaled)
    if name == "silu":
        sig = torch.sigmoid(pre)
        return pre * sig, sig * (1.0 + pre * (1.0 - sig))
    if name == "relu":
        return torch.relu(pre), (pre > 0).to(pre.dtype)
    raise ValueError(f"unknown activation {name!r}; use softplus, silu or relu")


class Mlp(nn.Module):
    """``hidden_layers`` hidden layers of ``hidden_width`` units, then a linear output layer.

    ``zero_last=True`` zero-initialises the output layer (weights and bias) so the network starts at
    exactly 0, which makes a coupling layer start as the identity.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_width: int,
        hidden_layers: int,
        activation: Activation = "softplus",
        softplus_beta: float = 100.0,
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        if hidden_layers < 0:
            raise ValueError(f"hidden_layers must be >= 0, got {hidden_layers}")
        activation_and_slope(torch.zeros(1), activation, softplus_beta)  # validates the name
        self.activation: Activation = activation
        self.softplus_beta = softplus_beta
        dims = [in_dim] + [hidden_width] * hidden_layers + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        if zero_last:
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: Float[Tensor, "*b i"]) -> Float[Tensor, "*b o"]:
        for layer in self.layers[:-1]:
            x = activation(layer(x), self.activation, self.softplus_beta)
        return self.layers[-1](x)

    def forward_from_first(self, pre: Float[Tensor, "*b h"]) -> Float[Tensor, "*b o"]:
        """The rest of :meth:`forward` given the first layer's output ``layers[0](x)``."""
        if len(self.layers) == 1:
            return pre
        x = activation(pre, self.activation, self.softplus_beta)
        for layer in self.layers[1:-1]:
            x = activation(layer(x), self.activation, self.softplus_beta)
        return self.layers[-1](x)

    def forward_with_jacobian(
        self, x: Float[Tensor, "*b i"]
    ) -> tuple[Float[Tensor, "*b o"], Float[Tensor, "*b o i"]]:
        """Outputs and their Jacobian with respect to the inputs, by forward propagation."""
        first = self.layers[0]
        pre = first(x)
        # Tangents as rows, (*b, i, h): each layer is then one large matrix product.
        tangents = first.weight.T.expand(*x.shape[:-1], *first.weight.T.shape)
        for layer in self.layers[1:]:
            h, slope = activation_and_slope(pre, self.activation, self.softplus_beta)
            tangents = (tangents * slope[..., None, :]) @ layer.weight.T
            pre = layer(h)
        return pre, tangents.transpose(-1, -2)
