"""The fast reposing path agrees with the reference ``AnimatableModel.repose`` (float32 rounding)."""

from dataclasses import replace

import pytest
import torch

from invskin.geometry import axis_angle_to_matrix, make_transform
from invskin.models.animatable import AnimatableModel
from invskin.models.config import ModelConfig, method_config
from invskin.models.fast_repose import FastReposer
from invskin.nets.pin import PINConfig
from toy_data import toy_animatable, toy_body, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2,
)  # fmt: skip
# What the presets use: heading frame, a residual on the diffused prior on a finer grid.
PRESET_LIKE = replace(
    SMALL,
    pin_frame="heading",
    skinning_residual=True,
    prior="diffused",
    prior_radius=0.03,
    prior_grid=(12, 24, 12),
)


def perturbed_model(method: str, config: ModelConfig = SMALL) -> AnimatableModel:
    """A model whose every parameter is moved away from the initialisation (PINs not identity)."""
    model = toy_animatable(method_config(method, config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def posed_frames() -> torch.Tensor:
    """Bent limbs, with the whole body turned and moved (the root is not the identity)."""
    local = toy_transforms([0.3, -0.5, 0.9])
    turn = axis_angle_to_matrix(torch.tensor([[0.2, 1.0, -0.3], [0.0, -2.0, 0.5], [1.0, 0.0, 0.0]]))
    root = make_transform(turn, torch.tensor([[0.1, 0.0, -0.2], [0.0, 0.3, 0.0], [1.0, 2.0, 3.0]]))
    return root[:, None] @ local


@pytest.mark.parametrize(
    ("method", "config"),
    [
        (m, SMALL)
        for m in ["ins", "snarf-nc", "lbs-body", "ins-no-pin-c", "ins-no-pin-d", "ins-no-pose"]
    ]
    + [(m, PRESET_LIKE) for m in ["ins", "snarf-nc", "lbs-body"]],
)
def test_fast_repose_matches_reference(method: str, config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = perturbed_model(method, config)
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    reference = model.repose(vertices, transforms)
    if model.pin_c is not None:  # the PINs do move the points: the comparison is not vacuous
        lbs_only = perturbed_model("snarf-nc", config)
        lbs_only.skinning.load_state_dict(model.skinning.state_dict())
        assert (reference - lbs_only.repose(vertices, transforms)).abs().max() > 1e-2
    # Chunks that split the vertices unevenly (on two worker threads), and one chunk for all.
    for chunk_rows, workers in ((97, 2), (1 << 20, 1)):
        fast = FastReposer(model, chunk_rows, workers).repose(vertices, transforms)
        assert fast.shape == reference.shape
        torch.testing.assert_close(fast, reference, atol=2e-5, rtol=1e-5)


def test_fast_repose_matches_reference_with_wider_couplings() -> None:
    # Three hidden layers, no Fourier features, no pooled code, softplus: the general branches.
    torch.manual_seed(1)
    model = perturbed_model("ins")
    pin_config = PINConfig(
        num_blocks=3, hidden_width=12, hidden_layers=3, projection_dim=6, fourier_frequencies=0,
        pose_embed_dim=4, pose_hidden_width=8, pooled_dim=0,
    )  # fmt: skip
    from invskin.nets.pin import PIN

    model.pin_c = PIN(3, pin_config)
    model.pin_d = PIN(3, pin_config)
    for pin in (model.pin_c, model.pin_d):
        for coupling in pin.couplings:
            coupling.projection.activation = "softplus"
            coupling.conditioner.activation = "softplus"
            coupling.projection.softplus_beta = coupling.conditioner.softplus_beta = 5.0
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    torch.testing.assert_close(
        FastReposer(model, chunk_rows=500).repose(vertices, transforms),
        model.repose(vertices, transforms),
        atol=2e-5,
        rtol=1e-5,
    )


def test_fast_repose_rejects_bad_input() -> None:
    model = perturbed_model("ins")
    fast = FastReposer(model)
    vertices = torch.from_numpy(toy_body()[0]).float()
    with pytest.raises(ValueError, match="transforms must be"):
        fast.repose(vertices, torch.eye(4).expand(2, 5, 4, 4))
    with pytest.raises(ValueError, match="chunk_rows"):
        FastReposer(model, chunk_rows=0)
    with pytest.raises(ValueError, match="workers"):
        FastReposer(model, workers=0)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("bound", [1.5, 0.2])
def test_fast_repose_matches_reference_with_spline_couplings(bound: float, native: bool) -> None:
    # bound 0.2: part of the points lie outside the spline's interval (the identity there).
    from invskin.runs.pipeline import reposer_for

    torch.manual_seed(2)
    config = replace(PRESET_LIKE, pin_coupling="spline", pin_spline_bins=4)
    model = perturbed_model("ins", config)
    for pin in (model.pin_c, model.pin_d):
        for coupling in pin.couplings:
            coupling.config = replace(coupling.config, spline_bound=bound)
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    reference = model.repose(vertices, transforms)
    lbs_only = perturbed_model("snarf-nc", config)
    lbs_only.skinning.load_state_dict(model.skinning.state_dict())
    assert (reference - lbs_only.repose(vertices, transforms)).abs().max() > 1e-2
    for chunk_rows, workers in ((97, 2), (1 << 20, 1)):
        fast = FastReposer(model, chunk_rows, workers, native=native)
        assert fast.native is native  # True: the C kernel (this machine has a compiler)
        torch.testing.assert_close(
            fast.repose(vertices, transforms), reference, atol=2e-5, rtol=1e-5
        )
    assert reposer_for(model).__self__.__class__ is FastReposer  # what invskin repose runs


def test_fast_repose_without_the_c_kernel_warns_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    # No compiler: a warning that says why, and the PyTorch spline, still equal to the reference.
    from invskin import native

    monkeypatch.setitem(native._kernels, "spline", None)
    monkeypatch.setitem(native._reasons, "spline", "no C compiler found")
    torch.manual_seed(3)
    model = perturbed_model("ins", replace(PRESET_LIKE, pin_coupling="spline", pin_spline_bins=4))
    with pytest.warns(UserWarning, match="PyTorch spline.*no C compiler found"):
        fast = FastReposer(model)
    assert not fast.native
    with pytest.raises(RuntimeError, match="unavailable: no C compiler found"):
        FastReposer(model, native=True)
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    torch.testing.assert_close(
        fast.repose(vertices, transforms), model.repose(vertices, transforms), atol=2e-5, rtol=1e-5
    )
