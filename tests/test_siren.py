"""Occupancy networks: shapes, SIREN initialisation, the blob prior, determinism, gradients, the
plain-MLP ablation and the pose-conditioned variant."""

import math

import pytest
import torch

from invskin.nets import Siren, SirenConfig

SMALL = dict(hidden_width=32, hidden_layers=3)


@pytest.mark.parametrize("shape", [(3,), (7, 3), (2, 5, 3), (2, 1, 4, 3)])
def test_shapes(shape: tuple[int, ...]) -> None:
    net = Siren(SirenConfig(**SMALL))
    assert net(torch.randn(shape)).shape == shape[:-1]


def test_siren_initialisation_bounds() -> None:
    cfg = SirenConfig(hidden_width=64, hidden_layers=3)
    net = Siren(cfg)
    first, *rest = net.layers
    assert first.weight.abs().max() <= 1.0 / 3
    assert first.weight.abs().max() > 0.9 / 3  # uniform over the full range, not a smaller one
    for layer in rest:
        bound = math.sqrt(6.0 / layer.in_features) / cfg.hidden_omega
        assert bound * 0.9 < layer.weight.abs().max() <= bound


def test_initial_field_is_a_blob_around_the_origin() -> None:
    net = Siren()
    directions = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    with torch.no_grad():
        assert (net(0.1 * directions) > 0).all()
        assert (net(1.5 * directions) < 0).all()
        plain = Siren(SirenConfig(blob_radius=None))
        assert plain(0.1 * directions).abs().max() < 1.0


def test_input_scaling_maps_the_body_range_to_the_unit_cube() -> None:
    """Scaling the points and ``input_radius`` together leaves the network's part unchanged."""
    torch.manual_seed(0)
    a = Siren(SirenConfig(**SMALL, blob_radius=None, input_radius=1.0))
    torch.manual_seed(0)
    b = Siren(SirenConfig(**SMALL, blob_radius=None, input_radius=2.0))
    x = torch.rand(50, 3) * 2 - 1
    assert torch.allclose(a(x), b(2 * x), atol=1e-6)


def test_deterministic() -> None:
    torch.manual_seed(3)
    a = Siren(SirenConfig(**SMALL))
    torch.manual_seed(3)
    b = Siren(SirenConfig(**SMALL))
    x = torch.randn(4, 10, 3)
    assert torch.equal(a(x), b(x))
    assert torch.equal(a(x), a(x))


@pytest.mark.parametrize("activation", ["sine", "softplus", "relu"])
def test_gradients_reach_every_parameter_and_the_input(activation: str) -> None:
    net = Siren(SirenConfig(**SMALL, activation=activation))
    x = (0.5 * torch.randn(64, 3)).requires_grad_(True)
    net(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_plain_mlp_ablation_is_piecewise_linear_and_siren_is_not() -> None:
    """Second differences along a line vanish (almost everywhere) for ReLU, not for sines."""
    d = torch.float64
    line = torch.linspace(-0.5, 0.5, 401, dtype=d)[:, None] * torch.tensor(
        [1.0, 0.3, -0.2], dtype=d
    )
    second = {}
    for activation in ("relu", "sine"):
        torch.manual_seed(0)
        net = Siren(SirenConfig(**SMALL, activation=activation, blob_radius=None)).double()
        with torch.no_grad():
            values = net(line)
        second[activation] = (values[2:] - 2 * values[1:-1] + values[:-2]).abs()
    assert (second["relu"] < 1e-12).float().mean() > 0.8
    assert (second["sine"] > 1e-9).float().mean() > 0.95


def test_conditioned_variant_uses_the_condition() -> None:
    net = Siren(SirenConfig(**SMALL, cond_dim=5))
    x = torch.randn(2, 30, 3)
    cond = torch.randn(2, 5)
    out = net(x, cond)
    assert out.shape == (2, 30)
    assert (out - net(x, cond + 0.5)).abs().max() > 1e-3
    # Frames only see their own condition.
    assert torch.allclose(net(x[:1], cond[:1]), out[:1], atol=1e-6)
    with pytest.raises(ValueError, match="condition"):
        net(x)
    with pytest.raises(ValueError, match="condition"):
        net(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match="not conditioned"):
        Siren(SirenConfig(**SMALL))(x, cond)


def test_condition_does_not_dilute_the_spatial_frequencies() -> None:
    """A large condition must not shrink the first layer's weights on the points (regression: a
    114-D pose code concatenated to the input made SIREN's first layer 1/117 and the shape a blob)."""
    torch.manual_seed(0)
    plain = Siren(SirenConfig(**SMALL))
    torch.manual_seed(0)
    conditioned = Siren(SirenConfig(**SMALL, cond_dim=114))
    assert conditioned.layers[0].in_features == 3
    line = torch.linspace(-1.0, 1.0, 2001)[:, None] * torch.tensor([1.0, 0.3, -0.2])
    cond = torch.zeros(1, 114)

    def roughness(values: torch.Tensor) -> float:
        return float((values[2:] - 2 * values[1:-1] + values[:-2]).abs().mean())

    with torch.no_grad():
        rough_plain = roughness(plain(line))
        rough_cond = roughness(conditioned(line[None], cond)[0])
    assert rough_cond > 0.5 * rough_plain
