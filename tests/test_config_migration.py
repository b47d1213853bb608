"""Saved model configurations from versions that still had settings since removed."""

from __future__ import annotations

import pytest

from invskin.models.config import RETIRED_SETTINGS, ModelConfig
from invskin.training.presets import make_preset

SURFACE_STRETCH_OFF = {
    "surface_stretch": None,
    "surface_stretch_tangential": False,
    "surface_stretch_body_margin": 0.0,
}


def test_a_saved_config_with_the_surface_stretch_loss_off_loads() -> None:
    saved = make_preset("cpu-quick", "ins").model.to_json()
    assert not set(SURFACE_STRETCH_OFF) & set(saved)
    assert SURFACE_STRETCH_OFF.items() <= RETIRED_SETTINGS.items()
    assert ModelConfig.from_json({**saved, **SURFACE_STRETCH_OFF}) == ModelConfig.from_json(saved)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("surface_stretch", 0.1),
        ("surface_stretch_tangential", True),
        ("surface_stretch_body_margin", 0.02),
    ],
)
def test_a_saved_config_that_switched_a_removed_setting_on_is_refused_by_name(
    setting: str, value: object
) -> None:
    saved = {**make_preset("cpu-quick", "ins").model.to_json(), **SURFACE_STRETCH_OFF}
    with pytest.raises(ValueError) as refused:
        ModelConfig.from_json({**saved, setting: value})
    message = str(refused.value)
    assert f"{setting} = {value!r}" in message
    assert "train the model again with this version" in message
    assert "an invskin version that still has" in message
