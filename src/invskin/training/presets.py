"""Named presets: fresh (model, training) configurations for a method.

- ``cpu-quick``: small networks and few steps, minutes on 2 CPU cores; what the demo and CI use.
- ``gpu``: full-size networks and long training, for a GPU (affine PIN couplings: spline ones,
  ``cpu-quick``'s, were measured at ``cpu-quick``'s size only).
- ``tiny``: a handful of steps, for the end-to-end tests only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from invskin.models.config import ModelConfig, method_config
from invskin.models.signals import SIGNALS
from invskin.training.schedule import LossWeights, Ramp
from invskin.training.trainer import TrainConfig

PRESETS = ("cpu-quick", "gpu", "tiny")


@dataclass(frozen=True)
class Preset:
    """Everything a preset fixes for one method."""

    name: str
    model: ModelConfig
    train: TrainConfig
    prior_fit_steps: int
    """Steps fitting the skinning field to the body prior before training."""
    extract_resolution: int
    """Default marching-cubes resolution of ``invskin extract``."""


SKINNING_AND_PINS = {
    "skinning_residual": True,
    "prior": "diffused",
    "prior_radius": 0.05,
    "pin_frame": "heading",
}
"""What the presets share (docs/method.md, "The body prior, diffused", "Learned weights as a residual
on the prior", "The PINs' frame"): a learned residual on the diffused body prior's logits, and PINs
in the heading frame; ``tiny`` keeps the nearest-vertex prior."""


def loss_weights(steps: int) -> LossWeights:
    """Occupancy throughout; the skinning prior at 1 throughout (docs/method.md, "The skinning prior
    held"); bone occupancy fades out over the first 30%; the LBS fold hinge is off over those 30%
    (while the shape settles) and rises to 10 by the end."""
    warm = max(1, int(0.3 * steps))
    return LossWeights(
        {
            "occupancy": Ramp(1.0, 1.0),
            "skinning_prior": Ramp(1.0, 1.0),
            "lbs_fold": Ramp(0.0, 10.0, begin=warm, finish=steps),
            "bone_occupancy": Ramp(1.0, 0.0, begin=0, finish=warm),
            # Mean squared displacement in m^2: weight 10 makes a 3 cm shift cost ~0.01.
            "pin_c_displacement": Ramp(10.0, 10.0),
            "pin_d_displacement": Ramp(10.0, 10.0),
        }
    )


CORRESPONDENCE_WEIGHT = 1000.0
"""Weight of the ``correspondence`` loss (mean squared distance in m^2): a 1 cm error costs 0.1,
about twice a settled occupancy loss."""
CORRESPONDENCES_PER_FRAME = 1024
"""Known correspondences per frame per step with the ``correspondence`` signal."""


COLOUR_WEIGHT = 100.0
"""Weight of the ``colour`` loss (mean squared RGB error after the per-frame gain): a print read
0.1 off in every channel costs 3, a settled occupancy loss about 0.05; ``colour_level`` gets
:data:`COLOUR_LEVEL_WEIGHT`."""
COLOUR_LEVEL_WEIGHT = 1.0
COLOUR_POINTS_PER_FRAME = 512
"""Coloured scan points per frame per step with the ``colour`` signal."""
COLOUR_LR_SCALE = 10.0
"""Learning-rate scale of the colour field's grids: each step reaches few of their cells."""


def with_signal(train: TrainConfig, signal: str) -> TrainConfig:
    """``train`` for a training signal (:data:`invskin.models.signals.SIGNALS`).

    ``correspondence`` adds the correspondence losses (the batch's frames and the canonical pose)
    at :data:`CORRESPONDENCE_WEIGHT` throughout,
    :data:`CORRESPONDENCES_PER_FRAME` per frame, and trains the PINs at the full learning rate: told
    where the surface went, they need not wait for the shape and skinning to settle (with occupancy
    alone they learn at a tenth of it).
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown training signal {signal!r}; choose one of {', '.join(SIGNALS)}")
    if signal == "occupancy":
        return train
    schedules = dict(train.loss_weights.schedules)
    if signal == "colour":
        schedules["colour"] = Ramp(COLOUR_WEIGHT, COLOUR_WEIGHT)
        schedules["colour_level"] = Ramp(COLOUR_LEVEL_WEIGHT, COLOUR_LEVEL_WEIGHT)
        return replace(
            train,
            colour_points=COLOUR_POINTS_PER_FRAME,
            loss_weights=LossWeights(schedules),
            lr_scales={**train.lr_scales, "pin": 1.0, "colour": COLOUR_LR_SCALE},
        )
    for name in ("correspondence", "correspondence_rest"):
        schedules[name] = Ramp(CORRESPONDENCE_WEIGHT, CORRESPONDENCE_WEIGHT)
    return replace(
        train,
        correspondences=CORRESPONDENCES_PER_FRAME,
        loss_weights=LossWeights(schedules),
        lr_scales={**train.lr_scales, "pin": 1.0},
    )


ANCHORED_PIN_BLOCKS = 4
"""Blocks (of three body-anchored couplings, x, y, z) of PIN_c with the ``correspondence`` signal."""


def model_for_signal(model: ModelConfig, signal: str) -> ModelConfig:
    """The architecture a signal trains (docs/method.md, "Training signals").

    Occupancy: ``model`` unchanged. Colour: a colour field, and the PINs of correspondence.
    Correspondence (and colour), for a method with PIN_c: PIN_c made of
    body-anchored couplings (:data:`ANCHORED_PIN_BLOCKS` blocks), which move cloth and hold the skin
    still, and no PIN_d, whose smooth couplings, told the answer, drag the body by 2 to 4 mm for
    no gain on the skirt (``benchmarks/pin_capacity.py``).
    """
    if signal == "colour":
        model = replace(model, colour_field=True)
    if signal == "occupancy" or not model.use_pin_c:
        return model
    return replace(
        model, pin_c_coupling="anchored", pin_blocks=ANCHORED_PIN_BLOCKS, use_pin_d=False
    )


def without_losses(train: TrainConfig, names: tuple[str, ...]) -> TrainConfig:
    """``train`` with the losses ``names`` switched off (no schedule: weight 0). A signal whose
    losses are all off draws no samples for them (no correspondences, no coloured points)."""
    schedules = dict(train.loss_weights.schedules)
    unknown = sorted(set(names) - set(schedules))
    if unknown:
        raise ValueError(
            f"no loss named {', '.join(unknown)} is weighted in this training; the weighted ones "
            f"are {', '.join(sorted(schedules))}"
        )
    for name in names:
        del schedules[name]
    changes: dict = {"loss_weights": LossWeights(schedules)}
    if not {"correspondence", "correspondence_rest"} & set(schedules):
        changes["correspondences"] = 0
    if not {"colour", "colour_level"} & set(schedules):
        changes["colour_points"] = 0
    return replace(train, **changes)


def make_preset(
    name: str,
    method: str,
    steps: int | None = None,
    seed: int = 0,
    signal: str = "occupancy",
    no_loss: tuple[str, ...] = (),
) -> Preset:
    """The preset ``name`` for ``method``; ``steps`` overrides the preset's step count; ``signal``
    says what the run learns from (:func:`with_signal`, :func:`model_for_signal`); ``no_loss``
    switches losses off by name (:func:`without_losses`)."""
    if name == "cpu-quick":
        model = ModelConfig(
            **SKINNING_AND_PINS,
            prior_grid=(36, 48, 24),
            pin_blocks=3,
            pin_width=48,
            pin_pose_dim=8,
            pin_coupling="spline",  # docs/experiments.md, spline couplings
            skinning_width=48,
            skinning_grid=(24, 32, 16),
            shape_width=96,
            shape_layers=3,
            broyden_steps=20,
        )
        train = TrainConfig(steps=1200, batch_frames=2, points_per_frame=1024, lr=1e-3)
        prior_fit, resolution = 200, 160
    elif name == "gpu":
        model = ModelConfig(
            **SKINNING_AND_PINS,
            pin_blocks=4,
            pin_width=128,
            pin_pose_dim=16,
            skinning_width=128,
            skinning_grid=(48, 64, 32),
            shape_width=256,
            shape_layers=5,
            broyden_steps=50,
        )
        train = TrainConfig(steps=20000, batch_frames=8, points_per_frame=4096, lr=5e-4)
        prior_fit, resolution = 2000, 256
    elif name == "tiny":
        # The nearest-vertex prior: on an 8^3 grid almost no node lies within prior_radius of the
        # body and diffusion would blur the limbs (docs/method.md, "The body prior, diffused").
        model = ModelConfig(
            **{**SKINNING_AND_PINS, "prior": "nearest"},
            pin_blocks=1,
            pin_width=16,
            pin_pose_dim=4,
            skinning_width=16,
            skinning_grid=(8, 8, 8),
            shape_width=32,
            shape_layers=2,
            broyden_steps=10,
        )
        train = TrainConfig(
            steps=3, batch_frames=1, points_per_frame=128, checkpoint_every=2, log_every=1
        )
        prior_fit, resolution = 5, 32
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    steps = steps if steps is not None else train.steps
    train = replace(train, steps=steps, seed=seed, loss_weights=loss_weights(steps))
    train = without_losses(with_signal(train, signal), tuple(no_loss))
    model = model_for_signal(method_config(method, model), signal)
    return Preset(name, model, train, prior_fit, resolution)
