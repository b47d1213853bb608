"""Model configurations: INS, its baselines and ablations are presets of one :class:`ModelConfig`.

| method          | skinning weights | PIN_c | PIN_d | canonical shape          | a new pose            |
|-----------------|------------------|-------|-------|--------------------------|-----------------------|
| ``lbs-body``    | body model, fixed| no    | no    | pose-free                | extract once, skin    |
| ``snarf-nc``    | learned          | no    | no    | pose-free                | extract once, skin    |
| ``snarf``       | learned          | no    | no    | pose-conditioned         | marching cubes / frame|
| ``ins``         | learned          | yes   | yes   | pose-free (SIREN)        | extract once, PINs+LBS|
| ``ins-no-pin-c``, ``ins-no-pin-d``, ``ins-no-pose`` (PINs ignore the pose), ``ins-no-siren``  |

Every method uses the same occupancy network family (SIREN unless ``ins-no-siren``), the same
skinning field, root finder, samples and losses, so the comparison isolates what each removes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from invskin.nets.pin import CouplingKind

Method = Literal[
    "ins",
    "snarf-nc",
    "snarf",
    "lbs-body",
    "ins-no-pin-c",
    "ins-no-pin-d",
    "ins-no-pose",
    "ins-no-siren",
]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model's architecture (not its training)."""

    method: str = "ins"
    use_pin_c: bool = True
    use_pin_d: bool = True
    pin_pose_conditioned: bool = True
    pin_blocks: int = 3
    pin_width: int = 64
    pin_pose_dim: int = 16
    learn_skinning: bool = True
    skinning_width: int = 64
    skinning_grid: tuple[int, int, int] = (32, 32, 32)
    """Resolution of the voxel grid the skinning field is baked onto at every step (FastSNARF)."""
    siren: bool = True
    shape_width: int = 128
    shape_layers: int = 4
    shape_pose_conditioned: bool = False
    init_bones: tuple[int, ...] = ()
    """Root-finding initial bones; empty means the skeleton-derived default."""
    broyden_steps: int = 30
    soft_blend: float = 10.0
    """Sharpness of the soft-max blend over root candidates during training."""
    skinning_residual: bool = False
    """Learned skinning logits are a residual on the body prior's: ``softmax(log(w_prior + eps) +
    MLP(x))`` with the MLP's last layer zero-initialised, so the field starts exactly at the prior
    (``lbs-body``'s weights) instead of a fit of it. False: the MLP alone (fitted to the prior)."""
    prior: str = "nearest"
    """How the body prior's weights fill space: ``nearest`` (the nearest body vertex's) or
    ``diffused`` (nearest within ``prior_radius`` of the body, harmonic extension elsewhere: smooth
    between the legs, see :func:`invskin.nets.skinning_field.diffused_grid_weights`)."""
    prior_radius: float = 0.05
    """Metres from the body within which the diffused prior keeps the nearest vertex's weights."""
    prior_grid: tuple[int, ...] = ()
    """Resolution (x, y, z) of the prior's grid, which ``lbs-body`` and a residual field use;
    empty means ``skinning_grid``. A residual field's MLP is baked on ``skinning_grid`` and
    upsampled trilinearly to this grid."""
    pin_frame: str = "root"
    """The body frame the PINs work in: ``root`` (the root bone's transform: position and the whole
    rotation factored out) or ``heading`` (position and the yaw about the vertical axis only, so
    the PINs see the root's tilt, and PIN_d keeps gravity's direction)."""
    pin_coupling: CouplingKind = "affine"
    """The PINs' couplings: ``affine`` (INS's) or ``spline`` (monotone rational-quadratic splines of
    the free coordinate, local along it; :func:`invskin.nets.pin.rational_quadratic`)."""
    pin_c_coupling: CouplingKind | Literal[""] = ""
    """PIN_c's couplings if not ``pin_coupling``'s (empty: the same): ``anchored`` makes them
    body-anchored (:mod:`invskin.nets.anchored`): the identity on the body prior's canonical body
    and splines in the gaps beside it, so PIN_c moves cloth and leaves the skin where it is."""
    pin_spline_bins: int = 16
    """Bins of a ``spline`` coupling over [-1.5, 1.5] m."""
    colour_field: bool = False
    """Learn a canonical colour field beside the shape (:class:`invskin.nets.colour_field.ColourField`),
    trained by the photometric loss on coloured scans (``AnimatableModel.losses``, ``colour=``) and
    painted on the extracted mesh."""
    colour_moves_skinning: bool = True
    """The photometric loss moves the skinning field too (through the implicit correction of the
    canonical roots); False: with PIN_c, only PIN_c (and the colour field) learn from colour, so
    colour cannot pull the skin."""
    pin_d_body_margin: float = 0.0
    """With a positive margin (metres), the loss ``pin_d_body_displacement`` is computed: PIN_d's
    squared displacement at the posed samples that have a valid canonical candidate within the
    margin of the body prior's nearest vertex (the skin), so a schedule can keep PIN_d off the body
    (0: not computed)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        """A configuration saved by :meth:`to_json`.

        Settings that no longer exist (:data:`RETIRED_SETTINGS`) are dropped where they hold the
        one value the model of today still means (the setting off); a saved configuration that
        switched one on is refused with its name, since this invskin cannot build that model. Any
        other unknown setting is refused with its name too.
        """
        data = dict(data)
        for key, value in RETIRED_SETTINGS.items():
            if key not in data:
                continue
            if data[key] != value:
                raise ValueError(
                    f"the saved model configuration sets {key} = {data[key]!r}, a setting this "
                    f"invskin no longer has (only {key} = {value!r} still loads): train the model "
                    "again with this version, or load the run with an invskin version that still "
                    f"has {key}"
                )
            del data[key]
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"the saved model configuration has settings this invskin does not know: "
                f"{', '.join(unknown)}; it was written by another version of invskin: load it "
                "with that version"
            )
        data["skinning_grid"] = tuple(data["skinning_grid"])
        data["init_bones"] = tuple(data["init_bones"])
        data["prior_grid"] = tuple(data.get("prior_grid", ()))
        return cls(**data)


RETIRED_SETTINGS: dict[str, Any] = {
    "pin_fourier_frequencies": 4,
    "pin_pooled_pose": True,
    "surface_stretch": None,
    "surface_stretch_tangential": False,
    "surface_stretch_body_margin": 0.0,
}
"""Settings a saved configuration may still hold, with the one value they could have and still
mean the model of today: four Fourier frequencies of the PINs' fixed coordinates, and the pooled
whole-pose code in their conditioners (docs/method.md); the surface-stretch loss off (its
tolerance None, not tangential, no body margin: docs/experiments.md, "The surface-stretch loss")."""


def method_config(method: str, base: ModelConfig | None = None) -> ModelConfig:
    """The configuration of a named method, built on ``base`` (sizes) or the defaults."""
    base = base or ModelConfig()
    presets: dict[str, dict[str, Any]] = {
        "ins": {},
        "lbs-body": {"use_pin_c": False, "use_pin_d": False, "learn_skinning": False},
        "snarf-nc": {"use_pin_c": False, "use_pin_d": False},
        "snarf": {"use_pin_c": False, "use_pin_d": False, "shape_pose_conditioned": True},
        "ins-no-pin-c": {"use_pin_c": False},
        "ins-no-pin-d": {"use_pin_d": False},
        "ins-no-pose": {"pin_pose_conditioned": False},
        "ins-no-siren": {"siren": False},
    }
    if method not in presets:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(presets)}")
    return replace(base, method=method, **presets[method])
