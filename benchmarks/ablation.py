"""Train and evaluate one method under a named variant of a preset.

The ablations of docs/results.md and the variants of docs/experiments.md (the surface-stretch
variants, ``stretch*``, are no longer here: the loss was removed from the model, and
docs/experiments.md keeps what they measured):

    python benchmarks/ablation.py --data DATA --runs RUNS --variant NAME --method ins --seed 0

A variant is the preset (``--preset``, default ``cpu-quick``) with some model or loss settings
changed (``VARIANTS`` below). The run goes to ``RUNS/VARIANT/METHOD-sSEED`` (a finished run there is
reused), and is evaluated on ``test-within`` and ``test-out`` with ``invskin eval``'s protocol.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from invskin.evaluation.evaluate import evaluate_run
from invskin.training.checkpoint import load_checkpoint
from invskin.training.presets import Preset, make_preset
from invskin.training.run import train_run
from invskin.training.schedule import LossWeights, Ramp


def _fold_after_warmup(total: int) -> Ramp:
    """The LBS fold hinge off while the shape settles (first 30%), then up to 10."""
    return Ramp(0.0, 10.0, begin=int(0.3 * total), finish=total)


V2: dict[str, Any] = {
    "skinning_residual": True,
    "pin_frame": "heading",
    "pin_blocks": 3,
    "losses": {
        "pin_c_displacement": Ramp(1.0, 1.0),
        "pin_d_displacement": Ramp(1.0, 1.0),
        "lbs_fold": _fold_after_warmup,
    },
}

DIFFUSED: dict[str, Any] = {"prior": "diffused", "prior_grid": (36, 48, 24), "prior_radius": 0.05}

# The first cpu-quick preset (nearest-vertex prior, PINs in the root frame, 2 PIN blocks).
OLD: dict[str, Any] = {
    "pin_coupling": "affine",
    "skinning_residual": False,
    "prior": "nearest",
    "prior_grid": (),
    "pin_frame": "root",
    "pin_blocks": 2,
    "losses": {"lbs_fold": Ramp(10.0, 10.0)},
}


def _pins_after_warmup(total: int, scale: float = 1.0) -> dict[str, Ramp]:
    """The PINs' learning-rate scale: 0.1 over the warm-up (30%), then up to ``scale`` by 40%."""
    return {"pin": Ramp(0.1, scale, begin=int(0.3 * total), finish=int(0.4 * total))}


def _prior_fading(total: int, end: float = 0.01) -> Ramp:
    """The skinning-prior loss fading from 1 to ``end`` over the warm-up (30%); with 0.01, that of
    the presets before the prior was held (variant ``prior-held``)."""
    return Ramp(1.0, end, begin=0, finish=max(1, int(0.3 * total)))


# Variants built from these pieces on `v3` (affine couplings; the preset has had spline couplings
# since the `spline` variant, docs/experiments.md).
# The PINs at the full learning rate once the warm-up (30%) is over, ramping up over 10%.
PIN_LATE: dict[str, Any] = {
    "pin_coupling": "affine",
    "train": {"lr_scale_ramps": _pins_after_warmup},
}


# The preset before spline couplings (affine couplings).
V3: dict[str, Any] = {**OLD, **V2, **DIFFUSED, "losses": {"lbs_fold": _fold_after_warmup}}

# Settings that differ from the preset, per variant: model fields, and loss schedules to replace.
VARIANTS: dict[str, dict[str, Any]] = {
    "preset": {},
    "old": OLD,
    # The steps from the first preset to `v3`, each run as its own variant:
    "v2": {**OLD, **V2},
    "diffused": {**OLD, **DIFFUSED},
    "v3": V3,
    "v3-disp1": {**OLD, **V2, **DIFFUSED},
    "pin-late": PIN_LATE,
    # The PINs' couplings as monotone splines of the free coordinate (`v3` with spline couplings,
    # which the cpu-quick preset then took).
    "spline": {**V3, "pin_coupling": "spline"},
    # Twice the bins (about 9 cm wide on average over the 3 m interval).
    "spline-32": {"pin_coupling": "spline", "pin_spline_bins": 32},
    # `v3` (affine couplings) with the learned skinning residual baked on the prior's grid (36 x 48
    # x 24, 4-5 cm cells), not on the coarser 24 x 32 x 16 (6-7 cm) one: the skirt hangs 1-3.5 cm
    # from the thigh.
    "fine-skinning": {"pin_coupling": "affine", "skinning_grid": (36, 48, 24)},
    # Today's preset with the skinning-prior loss (the field against the body prior's weights within
    # about 3 cm of the body) held at 1 or 0.1 throughout instead of fading to 0.01 over the warm-up.
    "prior-held": {"losses": {"skinning_prior": Ramp(1.0, 1.0)}},
    "prior-held-0.1": {"losses": {"skinning_prior": lambda total: _prior_fading(total, 0.1)}},
    # Today's preset with 8 frames of 256 points per step instead of 2 of 1,024
    # (the same posed samples per step): more poses to contrast in each gradient.
    "frames-8": {"train": {"batch_frames": 8, "points_per_frame": 256}},
    # PIN_d's displacement charged 1000 at posed samples with a root within 2 cm
    # of the body prior (a 3 mm shift costs about 0.01): PIN_d kept off the skin.
    "pin-d-body": {
        "pin_d_body_margin": 0.02,
        "losses": {"pin_d_body_displacement": Ramp(1000.0, 1000.0)},
    },
}


# Variants defined before the prior was held, which ran with the prior fading (``_prior_fading``):
# they keep it, whatever today's preset does.
FADING_PRIOR_VARIANTS = (
    "old", "v2", "diffused", "v3", "v3-disp1", "pin-late", "spline", "spline-32", "fine-skinning",
)  # fmt: skip


def variant_preset(preset: str, variant: str, method: str, seed: int, steps: int | None) -> Preset:
    """The preset ``preset`` for ``method`` with variant ``variant`` applied."""
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    chosen = make_preset(preset, method, steps=steps, seed=seed)
    changes = dict(VARIANTS[variant])
    losses = changes.pop("losses", {})
    train_changes = changes.pop("train", {})
    model = replace(chosen.model, **changes)
    schedules = dict(chosen.train.loss_weights.schedules)
    total = chosen.train.steps
    if variant in FADING_PRIOR_VARIANTS:
        schedules["skinning_prior"] = _prior_fading(total)
    for name, ramp in losses.items():
        schedules[name] = ramp if isinstance(ramp, Ramp) else ramp(total)
    train_changes = {k: v(total) if callable(v) else v for k, v in train_changes.items()}
    train = replace(chosen.train, loss_weights=LossWeights(schedules), **train_changes)
    return replace(chosen, name=f"{preset}+{variant}", model=model, train=train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--variant", default="preset")
    parser.add_argument("--method", default="ins")
    parser.add_argument("--preset", default="cpu-quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-points", type=int, default=100_000)
    parser.add_argument("--eval-frames", type=int, default=None)
    args = parser.parse_args()
    run = args.runs / args.variant / f"{args.method}-s{args.seed}"
    try:
        finished = load_checkpoint(run, with_optimizer=False).state.get("finished", False)
    except (FileNotFoundError, ValueError):
        finished = False
    if not finished:
        chosen = variant_preset(args.preset, args.variant, args.method, args.seed, args.steps)
        train_run(args.data, run, preset=chosen, device="cpu", progress=False)
    for split in ("test-within", "test-out"):
        report = evaluate_run(
            run,
            args.data,
            split=split,
            num_points=args.eval_points,
            max_frames=args.eval_frames,
            progress=False,
        )
        summary = " ".join(f"{k}={v:.4f}" for k, v in report["summary"].items())
        corr = report.get("correspondence") or {}
        print(f"{args.variant} {args.method} s{args.seed} {split}: {summary} corr={corr}")


if __name__ == "__main__":
    main()
