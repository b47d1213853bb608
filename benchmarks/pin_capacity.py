"""What the deformation networks can express at all: fit them to ground-truth correspondences.

Occupancy, the only signal raw scans give, sees a deformation's error only across the surface. This
benchmark removes that limit: it trains the deformation of a model directly on the synthetic
dataset's ground-truth correspondences (canonical vertex -> posed vertex, squared distance, on the
``train`` frames) and measures the vertex error on every split, per labelled part. It starts from a
trained skinning-only run (``--start``, e.g. a ``snarf-nc`` run: its skinning field; the PINs are
fresh, i.e. the identity) and trains, for each ``--fit``:

- ``skinning``: the skinning field alone (what a skinning-only method could reach);
- ``pins``: PIN_c and PIN_d alone, the skinning field frozen;
- ``skinning+pins``: all of them;
- ``pins-occupancy``: PIN_c and PIN_d alone, skinning and shape frozen, trained not on the ground
  truth but on what training sees (the ``cpu-quick`` preset's losses and batches of posed points and
  occupancy): whether occupancy, with nothing else left to adapt, teaches the PINs what skinning
  misses.

The PINs have the sizes of the ``--start`` run's configuration (the ``cpu-quick`` preset's for a
``cpu-quick`` run), with affine couplings unless ``--pin-coupling spline``. ``--steps`` Adam steps at ``--lr``, 2 training frames x 2048 ground-truth
vertices per step, each ``--seeds`` seed drawing its own PIN initialisation and batches. Errors in
cm: mean over all (vertex, frame) pairs of ``all``, ``body`` and ``skirt`` vertices; ``train`` is
every 8th training frame, the test splits every 2nd frame.

    python benchmarks/pin_capacity.py --data DATA --start RUN [--fit skinning pins skinning+pins] \\
        [--steps 1200] [--lr 1e-3] [--seeds 0 1 2] [--out benchmarks/results/pin-capacity.json]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from pin_pose_dependence import check_model
from repose_cost import repose_ms

from invskin.bench import hardware, write_json
from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.models.build import build_model
from invskin.models.config import method_config
from invskin.runs.folder import load_run
from invskin.training.presets import make_preset
from invskin.training.run import training_data

FITS = ("skinning", "pins", "skinning+pins", "pins-occupancy")
BATCH_FRAMES, BATCH_VERTICES = 2, 2048
STRIDES = {"train": 8, "test-within": 2, "test-out": 2}


def errors(model, dataset, parts: dict[str, slice]) -> dict:
    """Mean vertex error (cm) per split and part of the ground-truth canonical surface deformed."""
    truth = dataset.correspondence
    canonical = truth.canonical_vertices.float()[None]
    result = {}
    with torch.no_grad():
        field = model.weight_field()
        for split, stride in STRIDES.items():
            indices = list(dataset.splits[split])[::stride]
            error = torch.stack(
                [
                    (
                        model.deform(canonical, dataset.transforms[[i]].float(), field)[0]
                        - truth.posed_vertices[i].float()
                    ).norm(dim=-1)
                    for i in indices
                ]
            )
            result[split] = {
                name: round(float(error[:, part].mean() * 100), 3) for name, part in parts.items()
            }
    return result


def pin_parameters(model) -> list:
    """The parameters of the model's PINs."""
    return [p for pin in (model.pin_c, model.pin_d) if pin is not None for p in pin.parameters()]


def repose_cost(model, dataset) -> float:
    """Milliseconds per frame to repose 100,000 vertices on the path ``invskin repose`` takes
    (:func:`repose_cost.repose_ms`, 8 test-out frames, the best of 3)."""
    return round(repose_ms(model, dataset, frames=8, repeats=3), 1)


def _train_only(model, params: list) -> list:
    """Freeze every parameter of ``model`` but ``params``; returns ``params``."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params


def fit_occupancy(model, dataset, steps: int, lr: float, seed: int) -> float:
    """Train PIN_c and PIN_d alone (skinning and shape frozen) on what training sees: the
    ``cpu-quick`` preset's losses (its weights at the last step) on its batches of posed points and
    occupancy from the ``train`` scans. Returns seconds."""
    preset = make_preset("cpu-quick", "ins")
    weights, train = preset.train.loss_weights, preset.train
    params = _train_only(model, pin_parameters(model))
    data = training_data(dataset.split("train"), SampleConfig(), progress=False)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    tic = time.perf_counter()
    for _ in range(steps):
        batch = data.batch(
            generator, train.batch_frames, train.points_per_frame, torch.device("cpu")
        )
        losses = model.losses(*batch, train.steps - 1)
        total = sum(weights.weight(k, train.steps - 1) * v for k, v in losses.items())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    model.eval()
    return time.perf_counter() - tic


def fit(model, dataset, which: str, steps: int, lr: float, seed: int) -> float:
    """Train the named parts of ``model`` on ground-truth correspondences; returns seconds."""
    if which == "pins-occupancy":
        return fit_occupancy(model, dataset, steps, lr, seed)
    params = []
    if "skinning" in which:
        params += list(model.skinning.parameters())
    if "pins" in which:
        params += pin_parameters(model)
    _train_only(model, params)
    truth = dataset.correspondence
    canonical = truth.canonical_vertices.float()
    train = torch.tensor(dataset.splits["train"])
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    tic = time.perf_counter()
    for _ in range(steps):
        frames = train[torch.randint(len(train), (BATCH_FRAMES,), generator=generator)]
        picks = torch.randint(
            canonical.shape[0], (BATCH_FRAMES, BATCH_VERTICES), generator=generator
        )
        target = truth.posed_vertices[frames[:, None], picks].float()
        posed = model.deform(
            canonical[picks], dataset.transforms[frames].float(), model.weight_field()
        )
        loss = (posed - target).square().sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--start", type=Path, required=True, help="a trained skinning-only run")
    parser.add_argument("--fit", nargs="+", choices=FITS, default=list(FITS))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--pin-coupling", choices=["affine", "spline"], default=None, help="default: the run's"
    )
    parser.add_argument("--pin-spline-bins", type=int, default=None, help="default: the run's")
    parser.add_argument(
        "--pin-c-coupling",
        choices=["affine", "spline", "anchored"],
        default=None,
        help="PIN_c's couplings if not --pin-coupling's (anchored: body-anchored)",
    )
    parser.add_argument("--no-pin-d", action="store_true", help="fit PIN_c alone (no PIN_d)")
    parser.add_argument("--pin-blocks", type=int, default=None, help="default: the run's")
    parser.add_argument(
        "--pose-dependence",
        action="store_true",
        help="also report each fit's PIN pose dependence (benchmarks/pin_pose_dependence.py)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pin-capacity.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    dataset = load_dataset(args.data)
    if dataset.correspondence is None or not dataset.correspondence.parts:
        raise SystemExit(f"{args.data} has no labelled correspondence ground truth")
    ranges = dataset.info["correspondence_parts"]
    parts = {
        "all": slice(0, dataset.correspondence.canonical_vertices.shape[0]),
        "body": slice(*ranges["body"]),
        "skirt": slice(*ranges["skirt"]),
    }
    start = load_run(args.start)
    config = replace(method_config("ins", start.model.config), use_pin_c=True, use_pin_d=True)
    if args.pin_coupling is not None:
        config = replace(config, pin_coupling=args.pin_coupling)
    if args.pin_spline_bins is not None:
        config = replace(config, pin_spline_bins=args.pin_spline_bins)
    if args.pin_c_coupling is not None:
        config = replace(config, pin_c_coupling=args.pin_c_coupling)
    if args.no_pin_d:
        config = replace(config, use_pin_d=False)
    if args.pin_blocks is not None:
        config = replace(config, pin_blocks=args.pin_blocks)
    state = {k: v for k, v in start.model.state_dict().items() if not k.startswith("pin_")}

    def fresh(seed: int):
        torch.manual_seed(seed)
        model = build_model(config, start.model.skeleton, dataset.prior)
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(k.startswith("pin_") for k in missing), (missing, unexpected)
        return model.eval()

    report = {
        "command": f"python benchmarks/pin_capacity.py --data DATA --start {args.start} --fit "
        + " ".join(args.fit)
        + f" --steps {args.steps} --lr {args.lr} --seeds "
        + " ".join(map(str, args.seeds))
        + (f" --pin-coupling {args.pin_coupling}" if args.pin_coupling else "")
        + (f" --pin-spline-bins {args.pin_spline_bins}" if args.pin_spline_bins else "")
        + (f" --pin-c-coupling {args.pin_c_coupling}" if args.pin_c_coupling else "")
        + (" --no-pin-d" if args.no_pin_d else "")
        + (f" --pin-blocks {args.pin_blocks}" if args.pin_blocks else "")
        + (" --pose-dependence" if args.pose_dependence else ""),
        "pin_coupling": config.pin_coupling,
        "pin_spline_bins": config.pin_spline_bins,
        "pin_c_coupling": config.pin_c_coupling or config.pin_coupling,
        "pin_d": config.use_pin_d,
        "repose_ms_per_frame_100k": repose_cost(fresh(0), dataset),
        "start": str(args.start),
        "pin_blocks": config.pin_blocks,
        "pin_width": config.pin_width,
        "steps": args.steps,
        "lr": args.lr,
        "batch": [BATCH_FRAMES, BATCH_VERTICES],
        "before": errors(fresh(0), dataset, parts),
        "fits": {},
    }
    print("before", report["before"], flush=True)
    for which in args.fit:
        runs = []
        for seed in args.seeds:
            model = fresh(seed)
            seconds = fit(model, dataset, which, args.steps, args.lr, seed)
            runs.append(
                {"seed": seed, "seconds": round(seconds, 1), **errors(model, dataset, parts)}
            )
            if args.pose_dependence:
                runs[-1]["pose_dependence"] = {
                    split: check_model(model, dataset, split) for split in ("train", "test-out")
                }
            print(which, runs[-1], flush=True)
        summary = {
            split: {
                part: [
                    round(float(np.mean([r[split][part] for r in runs])), 3),
                    round(float(np.std([r[split][part] for r in runs], ddof=1)), 3)
                    if len(runs) > 1
                    else 0.0,
                ]
                for part in parts
            }
            for split in STRIDES
        }
        report["fits"][which] = {"runs": runs, "mean_std": summary}
    report["hardware"] = hardware(torch.device("cpu"))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
