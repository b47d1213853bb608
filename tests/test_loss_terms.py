"""The model's losses as named terms: the values of a fixed toy model and batch, recorded from the
model before its losses were split into terms, guard the numbers; each term's name is what log.jsonl
and ``--no-loss`` show."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from invskin.models.animatable import AnimatableModel
from invskin.models.config import ModelConfig, method_config
from invskin.models.signals import ColourBatch, CorrespondenceBatch
from toy_data import toy_body, toy_skeleton, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2, broyden_steps=20,
)  # fmt: skip

SCENARIOS: dict[str, tuple[str, dict]] = {
    "ins-affine": ("ins", {}),
    "ins-spline-heading": (
        "ins",
        {
            "pin_coupling": "spline",
            "pin_spline_bins": 4,
            "pin_frame": "heading",
            "skinning_residual": True,
        },
    ),  # fmt: skip
    "ins-anchored-colour": (
        "ins",
        {
            "pin_c_coupling": "anchored",
            "pin_coupling": "spline",
            "pin_spline_bins": 4,
            "use_pin_d": False,
            "colour_field": True,
        },
    ),  # fmt: skip
    "ins-anchored-colour-still-skin": (
        "ins",
        {
            "pin_c_coupling": "anchored",
            "pin_coupling": "spline",
            "pin_spline_bins": 4,
            "use_pin_d": False,
            "colour_field": True,
            "colour_moves_skinning": False,
        },
    ),  # fmt: skip
    "ins-pin-d-body": ("ins", {"pin_d_body_margin": 0.02}),
    "snarf-nc-colour": ("snarf-nc", {"colour_field": True}),
    "lbs-body": ("lbs-body", {}),
    "snarf": ("snarf", {}),
}


def scenario(name: str) -> tuple[AnimatableModel, dict[str, torch.Tensor]]:
    """A seeded toy model of scenario ``name`` (every parameter perturbed, so that no network is the
    identity) and the losses of one fixed batch with correspondences and coloured points."""
    method, changes = SCENARIOS[name]
    torch.manual_seed(11)
    vertices, faces, weights = toy_body()
    model = AnimatableModel(
        replace(method_config(method, SMALL), **changes),
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
        prior_faces=torch.from_numpy(faces),
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    transforms = toy_transforms([0.6, 2.6])
    points = torch.randn(2, 96, 3) * 0.25 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = (points[..., [0, 2]].norm(dim=-1) < 0.12).float()
    canonical = torch.from_numpy(vertices).float()[None, ::7].expand(2, -1, -1).contiguous()
    correspondence = CorrespondenceBatch(canonical, canonical + 0.01 * torch.randn_like(canonical))
    surface = canonical + 0.003 * torch.randn_like(canonical)
    colour = ColourBatch(surface, torch.rand_like(surface))
    losses = model.losses(
        points, occupancy, transforms, 0, correspondence=correspondence, colour=colour
    )
    return model, losses


# Recorded from the model before its losses were named terms (float32, one thread).
EXPECTED: dict[str, dict[str, float]] = {
    "ins-affine": {
        "occupancy": 0.8004043698310852,
        "bone_occupancy": 0.24293307960033417,
        "skinning_prior": 1.736138105392456,
        "lbs_fold": 0.0,
        "pin_c_displacement": 0.004853262100368738,
        "pin_d_displacement": 0.0008966231835074723,
        "correspondence": 0.63593590259552,
        "correspondence_rest": 0.004138055257499218,
        "valid_fraction": 1.0,
    },
    "ins-spline-heading": {
        "occupancy": 0.9762834906578064,
        "bone_occupancy": 0.2492046058177948,
        "skinning_prior": 5.798385416255769e-08,
        "lbs_fold": 0.003038199618458748,
        "pin_c_displacement": 0.004643062595278025,
        "pin_d_displacement": 0.0036124654579907656,
        "correspondence": 0.45455557107925415,
        "correspondence_rest": 0.007570148911327124,
        "valid_fraction": 0.8697916865348816,
    },
    "ins-anchored-colour": {
        "occupancy": 0.8844569325447083,
        "bone_occupancy": 0.2516670227050781,
        "skinning_prior": 1.479102611541748,
        "lbs_fold": 0.0,
        "pin_c_displacement": 0.0020181271247565746,
        "correspondence": 0.603812038898468,
        "correspondence_rest": 2.3374695801441255e-15,
        "colour": 0.25912559032440186,
        "colour_level": 1.4914763596607372e-05,
        "valid_fraction": 1.0,
    },
    "ins-anchored-colour-still-skin": {
        "occupancy": 0.8844569325447083,
        "bone_occupancy": 0.2516670227050781,
        "skinning_prior": 1.479102611541748,
        "lbs_fold": 0.0,
        "pin_c_displacement": 0.0020181271247565746,
        "correspondence": 0.603812038898468,
        "correspondence_rest": 2.3374695801441255e-15,
        "colour": 0.25912559032440186,
        "colour_level": 1.4914763596607372e-05,
        "valid_fraction": 1.0,
    },
    "ins-pin-d-body": {
        "occupancy": 0.8004043698310852,
        "bone_occupancy": 0.24293307960033417,
        "skinning_prior": 1.736138105392456,
        "lbs_fold": 0.0,
        "pin_d_body_displacement": 0.0009361361735500395,
        "pin_c_displacement": 0.004853262100368738,
        "pin_d_displacement": 0.0008966231835074723,
        "correspondence": 0.63593590259552,
        "correspondence_rest": 0.004138055257499218,
        "valid_fraction": 1.0,
    },
    "snarf-nc-colour": {
        "occupancy": 0.8245505690574646,
        "bone_occupancy": 0.23986098170280457,
        "skinning_prior": 1.4170122146606445,
        "lbs_fold": 0.0,
        "correspondence": 0.6190768480300903,
        "correspondence_rest": 1.946453548944886e-15,
        "colour": 0.26551225781440735,
        "colour_level": 2.099433942248652e-07,
        "valid_fraction": 1.0,
    },
    "lbs-body": {
        "occupancy": 1.04472017288208,
        "bone_occupancy": 0.24130824208259583,
        "correspondence": 0.4165017008781433,
        "correspondence_rest": 1.5761837898436277e-15,
        "valid_fraction": 0.8802083134651184,
    },
    "snarf": {
        "occupancy": 0.6770088076591492,
        "bone_occupancy": 0.23439286649227142,
        "skinning_prior": 0.7656348347663879,
        "lbs_fold": 0.006192515138536692,
        "correspondence": 0.41954246163368225,
        "correspondence_rest": 3.0929651590963112e-15,
        "valid_fraction": 1.0,
    },
}
EXPECTED_GRADIENT_SUMS: dict[str, float] = {
    "ins-affine": 112.24809920485032,
    "ins-spline-heading": 61.870362929049364,
    "ins-anchored-colour": 143.93519894982902,
    "ins-anchored-colour-still-skin": 143.72175883187165,
    "ins-pin-d-body": 112.29250563078764,
    "snarf-nc-colour": 133.21622512176864,
    "lbs-body": 34.46023011811121,
    "snarf": 96.31844479332904,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_losses_of_a_fixed_model_and_batch_are_the_recorded_ones(name: str) -> None:
    model, losses = scenario(name)
    assert list(losses) == list(EXPECTED[name])  # the same names, in the same order
    for key, expected in EXPECTED[name].items():
        assert float(losses[key].detach()) == pytest.approx(expected, rel=1e-5, abs=1e-10), key
    total = sum(value for key, value in losses.items() if key != "valid_fraction")
    total.backward()
    gradient = sum(
        float(p.grad.double().abs().sum()) for p in model.parameters() if p.grad is not None
    )
    assert gradient == pytest.approx(EXPECTED_GRADIENT_SUMS[name], rel=1e-4)


def test_each_term_gives_the_losses_of_its_name_or_none() -> None:
    from invskin.models.animatable import LOSS_NAMES, LOSS_TERMS, LossInputs

    assert list(LOSS_NAMES) == list(LOSS_TERMS)
    given: set[str] = set()
    for name in SCENARIOS:
        model, losses = scenario(name)
        assert set(losses) <= {loss for names in LOSS_NAMES.values() for loss in names}
        given |= set(losses)
        field = model.weight_field()
        points = torch.randn(1, 16, 3) * 0.2
        transforms = toy_transforms([0.3])
        inputs = LossInputs(
            points, torch.zeros(1, 16), transforms, 0, None, None, field,
            model.query(points, transforms, field),
        )  # fmt: skip
        for term, function in LOSS_TERMS.items():
            assert set(function(model, inputs)) in (set(), set(LOSS_NAMES[term])), term
    # Every loss of the table is given by some configuration of the recorded ones.
    assert given == {loss for names in LOSS_NAMES.values() for loss in names}
