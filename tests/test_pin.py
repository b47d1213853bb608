"""PIN and pose encoder: exact round trips (hypothesis), identity at init, gradcheck, log-det,
the invertibility rule of every coupling, pose conditioning and its ablation, bone counts, batches."""

from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from invskin.geometry import axis_angle_to_matrix, identity_transforms, make_transform
from invskin.nets import PIN, PINConfig, PoseCode, PoseEncoder, bone_features


def small_config(**overrides: object) -> PINConfig:
    base = dict(
        num_blocks=3,
        hidden_width=32,
        hidden_layers=2,
        projection_dim=16,
        fourier_frequencies=2,
        pose_embed_dim=8,
        pose_hidden_width=16,
        pooled_dim=8,
    )
    base.update(overrides)
    return PINConfig(**base)


def random_pose(batch: int, bones: int, generator: torch.Generator | None = None) -> torch.Tensor:
    aa = 0.6 * torch.randn(batch, bones, 3, generator=generator)
    trans = 0.2 * torch.randn(batch, bones, 3, generator=generator)
    return make_transform(axis_angle_to_matrix(aa), trans)


@torch.no_grad()
def perturb(module: torch.nn.Module, scale: float, seed: int) -> None:
    """Move every parameter away from its (zero) initialisation so the PIN is not the identity."""
    generator = torch.Generator().manual_seed(seed)
    for param in module.parameters():
        param.add_(scale * torch.randn(param.shape, generator=generator, dtype=param.dtype))


def test_identity_at_init() -> None:
    pin = PIN(4, small_config())
    x = torch.randn(2, 50, 3)
    pose = random_pose(2, 4)
    out = pin.forward_with_log_det(x, pose)
    assert torch.equal(out.points, x)
    assert torch.equal(out.log_det, torch.zeros(2, 50))
    assert torch.equal(pin.inverse(x, pose), x)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 3),
    points=st.integers(1, 40),
    bones=st.sampled_from([1, 3, 25]),
    scale=st.floats(0.02, 0.15),  # displacements of 0.1 m to 1.5 m, already far beyond clothing
    conditioned=st.booleans(),
)
def test_round_trip_is_exact(
    seed: int, batch: int, points: int, bones: int, scale: float, conditioned: bool
) -> None:
    torch.manual_seed(seed)
    pin = PIN(bones, small_config(pose_conditioned=conditioned))
    perturb(pin, scale, seed)
    x = torch.randn(batch, points, 3)
    pose = random_pose(batch, bones)
    with torch.no_grad():
        y = pin(x, pose)
        assert (y - x).abs().max() > 1e-4  # really not the identity
        back = pin.inverse(y, pose)
        # float32 rounding: a few ulps of the largest coordinate involved
        tol = 2e-6 * max(1.0, float(y.abs().max()), float(x.abs().max()))
        assert (back - x).abs().max() <= tol
        assert (pin(pin.inverse(x, pose), pose) - x).abs().max() <= tol


@pytest.mark.parametrize("bones", [3, 25])
def test_gradcheck_forward_and_inverse(bones: int) -> None:
    pin = PIN(bones, small_config(num_blocks=2, hidden_width=8, projection_dim=8)).double()
    perturb(pin, 0.2, 1)
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    # With many bones, check the pose gradients on a few bones only (each entry costs two passes).
    pose = random_pose(2, bones).double()
    part = pose[:, :2].clone().requires_grad_(True)

    def with_part(fn: Callable) -> Callable:
        return lambda x, part: fn(x, torch.cat([part, pose[:, 2:]], dim=1))

    assert torch.autograd.gradcheck(with_part(pin.forward), (x, part))
    assert torch.autograd.gradcheck(with_part(pin.inverse), (x, part))


def assert_log_det_matches_autograd(pin: PIN, x: torch.Tensor, pose: torch.Tensor, atol: float):
    """``forward_with_log_det``'s log-det is autograd's per point of ``x`` (1, N, 3), and the
    inverse's is its negative."""
    out = pin.forward_with_log_det(x, pose)
    for n in range(x.shape[1]):
        jac = torch.autograd.functional.jacobian(lambda p: pin(p[None, None], pose)[0, 0], x[0, n])
        assert torch.allclose(out.log_det[0, n], torch.linalg.slogdet(jac).logabsdet, atol=atol)
    inv = pin.inverse_with_log_det(out.points, pose)
    assert torch.allclose(inv.log_det, -out.log_det, atol=atol)


def test_log_det_matches_autograd_jacobian() -> None:
    pin = PIN(3, small_config()).double()
    perturb(pin, 0.2, 2)
    x = torch.randn(1, 5, 3, dtype=torch.float64)
    assert_log_det_matches_autograd(pin, x, random_pose(1, 3).double(), atol=1e-10)


def test_couplings_read_only_fixed_coordinates() -> None:
    """The invertibility rule: (s, t) do not change, at all, when the transformed coordinates do."""
    pin = PIN(5, small_config())
    perturb(pin, 0.3, 3)
    x = torch.randn(2, 30, 3)
    code = pin.encode_pose(random_pose(2, 5))
    axes_seen = []
    for coupling in pin.couplings:
        axes_seen.append(coupling.free)
        s, t = coupling.scale_shift(x, code)
        moved = x.clone()
        moved[..., list(coupling.free)] += torch.randn(2, 30, len(coupling.free))
        s2, t2 = coupling.scale_shift(moved, code)
        assert torch.equal(s, s2) and torch.equal(t, t2)
        assert s.abs().max() > 1e-3  # the conditioner is active, so the check means something
        # Triangular Jacobian: the fixed outputs equal the fixed inputs.
        y = coupling(x, code).points
        assert torch.equal(y[..., list(coupling.fixed)], x[..., list(coupling.fixed)])
    assert axes_seen == [(0,), (1, 2), (1,), (0, 2), (2,), (0, 1)]


def test_pose_code_can_be_precomputed_and_reused() -> None:
    pin = PIN(4, small_config())
    perturb(pin, 0.2, 4)
    x = torch.randn(3, 20, 3)
    pose = random_pose(3, 4)
    code = pin.encode_pose(pose)
    assert isinstance(code, PoseCode)
    assert torch.equal(pin(x, pose), pin(x, code))
    chunks = torch.cat([pin(part, code) for part in x.split(7, dim=1)], dim=1)
    assert torch.allclose(chunks, pin(x, pose), atol=1e-6)


def test_pose_conditioning_and_its_ablation() -> None:
    x = torch.randn(1, 40, 3)
    pose_a, pose_b = random_pose(1, 6), random_pose(1, 6)
    pin = PIN(6, small_config())
    perturb(pin, 0.2, 5)
    assert (pin(x, pose_a) - pin(x, pose_b)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="pose"):
        pin(x, None)
    free = PIN(6, small_config(pose_conditioned=False))
    perturb(free, 0.2, 5)
    assert free.encode_pose(pose_a) is None
    assert torch.equal(free(x, pose_a), free(x, pose_b))
    assert torch.equal(free(x, None), free(x, pose_a))
    assert (free(x, None) - x).abs().max() > 1e-3


def test_frames_are_independent() -> None:
    pin = PIN(3, small_config())
    perturb(pin, 0.2, 6)
    x = torch.randn(3, 10, 3)
    pose = random_pose(3, 3)
    batched = pin(x, pose)
    single = torch.cat([pin(x[i : i + 1], pose[i : i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-6)


@pytest.mark.parametrize("bones", [3, 25])
def test_pose_encoder_shapes_and_canonical_features(bones: int) -> None:
    encoder = PoseEncoder(bones, embed_dim=8, hidden_width=16, pooled_dim=12)
    code = encoder(random_pose(2, bones))
    assert code.bones.shape == (2, bones, 8) and code.pooled.shape == (2, 12)
    assert torch.equal(bone_features(identity_transforms(2, bones)), torch.zeros(2, bones, 9))
    no_pool = PoseEncoder(bones, embed_dim=8, pooled_dim=0)(random_pose(2, bones))
    assert no_pool.pooled.shape == (2, 0)
    with pytest.raises(ValueError, match="bones"):
        encoder(random_pose(2, bones + 1))


def test_pose_encoder_bones_have_their_own_weights() -> None:
    encoder = PoseEncoder(3, embed_dim=8)
    pose = random_pose(1, 1).expand(1, 3, 4, 4)  # the same transform on every bone
    code = encoder(pose)
    assert not torch.allclose(code.bones[0, 0], code.bones[0, 1])


def test_split_first_layer_matches_the_concatenated_reference() -> None:
    """The fused conditioner (first layer applied term by term) equals the plain concatenation."""
    from invskin.nets.pin import fourier_features

    torch.manual_seed(3)
    pin = PIN(5, PINConfig(num_blocks=1, hidden_width=16, projection_dim=8, pose_embed_dim=4))
    with torch.no_grad():
        for p in pin.parameters():
            p.add_(0.1 * torch.randn_like(p))
    coupling = pin.couplings[0]
    x = torch.randn(2, 7, 3, dtype=torch.float32)
    pose = torch.eye(4).repeat(2, 5, 1, 1)
    pose[..., :3, 3] = torch.randn(2, 5, 3)
    code = pin.encode_pose(pose)
    s, t = coupling.scale_shift(x, code)
    features = coupling.projection(
        fourier_features(x[..., list(coupling.fixed)], coupling.config.fourier_frequencies)
    )
    attention = torch.softmax(coupling.attention(features), dim=-1)
    inputs = torch.cat(
        [
            features,
            torch.einsum("...nj,...je->...ne", attention, code.bones),
            code.pooled[..., None, :].expand(2, 7, -1),
        ],
        dim=-1,
    )
    s_raw, t_ref = coupling.conditioner(inputs).split(len(coupling.free), dim=-1)
    c = coupling.config.scale_clamp
    assert torch.allclose(s, c * torch.tanh(s_raw / c), atol=1e-6)
    assert torch.allclose(t, t_ref, atol=1e-6)


def spline_config(**overrides: object) -> PINConfig:
    return small_config(coupling="spline", spline_bins=8, spline_bound=1.0, **overrides)


def test_spline_couplings_start_as_the_identity_and_invert_exactly() -> None:
    pin = PIN(4, spline_config())
    x = torch.randn(2, 60, 3)
    pose = random_pose(2, 4)
    out = pin.forward_with_log_det(x, pose)
    assert (out.points - x).abs().max() < 1e-6
    assert out.log_det.abs().max() < 1e-5
    perturb(pin, 0.1, 3)  # displacements up to about 0.2 m; far larger ones lose float32 precision
    x[:, :10] = 1.2 * torch.sign(x[:, :10])  # every coordinate beyond the interval [-1, 1]
    with torch.no_grad():
        y = pin(x, pose)
        moved = (y - x).abs().amax(-1)
        inside = (x.abs() < 1.0).all(-1)
        assert moved[inside].max() > 1e-2  # really not the identity inside the interval
        assert moved[:, :10].max() == 0.0  # the identity outside it
        assert (pin.inverse(y, pose) - x).abs().max() < 1e-5
        assert (pin(pin.inverse(x, pose), pose) - x).abs().max() < 1e-5


def test_spline_log_det_matches_autograd_and_gradients_check() -> None:
    pin = PIN(3, spline_config(num_blocks=2)).double()
    perturb(pin, 0.3, 4)
    x = 0.5 * torch.randn(1, 6, 3, dtype=torch.float64)
    pose = random_pose(1, 3).double()
    assert_log_det_matches_autograd(pin, x, pose, atol=1e-9)
    xs = x[:, :3].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: pin(p, pose), (xs,))
    assert torch.autograd.gradcheck(lambda p: pin.inverse(p, pose), (xs,))


def test_a_spline_coupling_moves_one_stretch_of_a_line_and_not_the_rest() -> None:
    """What an affine coupling cannot do: shift points near x = 0.3 by 2 cm, leave x = 0.25 still."""
    from invskin.nets.pin import rational_quadratic

    bins = 40
    raw = torch.zeros(1, 1, 3 * bins - 1, requires_grad=True)
    optimiser = torch.optim.Adam([raw], lr=0.05)
    x = torch.tensor([[0.25], [0.30], [-0.5]])
    target = torch.tensor([[0.25], [0.32], [-0.5]])
    for _ in range(400):
        optimiser.zero_grad()
        out, _ = rational_quadratic(x, raw.expand(3, 1, -1), 1.0)
        loss = (out - target).square().sum()
        loss.backward()
        optimiser.step()
    out, _ = rational_quadratic(x, raw.detach().expand(3, 1, -1), 1.0)
    assert (out - target).abs().max() < 2e-3


def test_each_coupling_kind_is_its_own_class_built_by_the_factory() -> None:
    from invskin.nets import AffineCoupling, AnchoredCoupling, SplineCoupling, make_coupling
    from invskin.nets.anchored import BodyTable
    from invskin.nets.pin import COUPLINGS, coupling_class

    assert COUPLINGS == ("affine", "spline", "anchored")
    table = BodyTable(torch.full((3,), -0.5), torch.full((3,), 0.5), 0.1)
    expected = {"affine": AffineCoupling, "spline": SplineCoupling, "anchored": AnchoredCoupling}
    for kind, cls in expected.items():
        config = small_config(coupling=kind, spline_bins=4)
        assert coupling_class(kind) is cls and cls.kind == kind
        assert type(make_coupling(kind, (1,), 3, config, table)) is cls
        pin = PIN(3, config, table if cls.needs_body_table else None)
        assert all(type(c) is cls for c in pin.couplings)
        per_block = 3 if kind == "anchored" else 2
        assert len(pin.couplings) == per_block * config.num_blocks
    # Any other kind is refused (ValueError; in the tests, by the run-time type check first).
    with pytest.raises((ValueError, TypeError), match="coupling must be one of|Literal"):
        coupling_class("quadratic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="BodyTable"):
        make_coupling("anchored", (0,), 3, small_config(coupling="anchored"))
    with pytest.raises(ValueError, match="BodyTable"):
        PIN(3, small_config(coupling="anchored"))
