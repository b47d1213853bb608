"""The GPU measurements in one run (``scripts/gpu_checks.sh`` calls it on a lent GPU).

Each part is timed with the device synchronised, after a warm-up, median of ``--repeats``; a part
that fails records its error and the others still run. Parts:

- ``matmul``: the float32 matrix-product rate of the device, with TF32 off and on (8192^2 on CUDA);
- ``repose``: ``model.repose`` (the reference path, batched over frames: what ``invskin repose``
  runs on a GPU) of a fresh ``ins`` network (``cpu-quick`` and ``gpu`` presets, every parameter
  perturbed) on ``--vertices`` points around the body prior, for several frames per call: frames
  per second and peak memory; the largest difference from the same network on the CPU (2 frames),
  in float32 and with TF32;
- ``train``: a stretch of the ``gpu`` preset's training steps on ``--data`` (``model.losses``,
  backward, Adam): steps per second after a warm-up and peak memory, in float32 and with TF32, and
  the losses of the first batch in both.

    python benchmarks/bench_gpu.py --data DATA [--device cuda] [--out benchmarks/results/gpu.json]

``--device cpu --quick`` runs every part small on the CPU: a check that the script works, not a
measurement.
"""

from __future__ import annotations

import argparse
import statistics
import time
import traceback
from pathlib import Path

import torch
from bench_repose_fast import fresh_model

from invskin.bench import hardware, median_seconds, synchronise, write_json
from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.models.build import build_model
from invskin.training.presets import make_preset
from invskin.training.run import training_data


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call, the device synchronised."""
    return statistics.median(median_seconds(fn, repeats, device))


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def part_matmul(device: torch.device, quick: bool, repeats: int) -> dict:
    size = 1024 if quick else 8192
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    out = {"size": size}
    for tf32 in (False, True):
        set_tf32(tf32)
        seconds = timed(lambda: a @ b, device, repeats)
        out["tf32" if tf32 else "float32"] = {"tflops": 2 * size**3 / seconds / 1e12}
    set_tf32(False)
    return out


def part_repose(data: Path, device: torch.device, args) -> dict:
    poses = load_dataset(data).split("test-out").transforms.float()
    return {
        preset: _repose_one(data, preset, poses, device, args) for preset in ("cpu-quick", "gpu")
    }


def _repose_one(data: Path, preset: str, poses_all: torch.Tensor, device: torch.device, args):
    model, vertices = fresh_model(data, args.vertices, 0, None, preset=preset)
    with torch.no_grad():
        reference = model.repose(vertices, poses_all[:2])
    model = model.to(device)
    vertices = vertices.to(device)
    rows = {}
    for frames in args.frames:
        poses = poses_all[torch.arange(frames) % len(poses_all)].to(device)
        reset_peak(device)
        with torch.no_grad():
            seconds = timed(lambda p=poses: model.repose(vertices, p), device, args.repeats)
        rows[str(frames)] = {
            "seconds_per_call": seconds,
            "frames_per_second": frames / seconds,
            "peak_memory_gib": peak_memory_gib(device),
        }
        print(f"repose {preset} {frames} frames/call: {frames / seconds:.0f} frames/s")
    agreement = {}
    for tf32 in (False, True):
        set_tf32(tf32)
        with torch.no_grad():
            got = model.repose(vertices, poses_all[:2].to(device)).cpu()
        agreement["tf32" if tf32 else "float32"] = float((got - reference).abs().max())
    set_tf32(False)
    return {
        "vertices": int(vertices.shape[0]),
        "by_frames_per_call": rows,
        "max_abs_difference_from_cpu_m": agreement,
    }


def part_train(data: Path, device: torch.device, args) -> dict:
    dataset = load_dataset(data)
    batches = training_data(dataset.split("train"), SampleConfig(), progress=False)
    train = make_preset("gpu", "ins").train
    frames, points = (2, 256) if args.quick else (train.batch_frames, train.points_per_frame)
    out: dict = {"batch_frames": frames, "points_per_frame": points}
    for tf32 in (False, True):
        set_tf32(tf32)
        out["tf32" if tf32 else "float32"] = _train_stretch(
            dataset, batches, frames, points, device, args
        )
        print(f"train gpu preset, tf32={tf32}: {out['tf32' if tf32 else 'float32']}")
    set_tf32(False)
    return out


def _train_stretch(dataset, batches, frames: int, points: int, device: torch.device, args) -> dict:
    preset = make_preset("gpu", "ins")
    train = preset.train
    torch.manual_seed(0)
    model = build_model(preset.model, dataset.skeleton, dataset.prior)
    model.fit_skinning_to_prior(20 if args.quick else preset.prior_fit_steps)
    model = model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=train.lr)
    generator = torch.Generator().manual_seed(0)

    def step(number: int) -> dict[str, float]:
        batch = batches.batch(generator, frames, points, device)
        losses = model.losses(*batch, number)
        total = sum(train.loss_weights.weight(k, number) * v for k, v in losses.items())
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    first = step(0)
    for number in range(1, args.warmup_steps):
        step(number)
    synchronise(device)
    reset_peak(device)
    tic = time.perf_counter()
    for number in range(args.warmup_steps, args.warmup_steps + args.train_steps):
        last = step(number)
    synchronise(device)
    seconds = time.perf_counter() - tic
    return {
        "steps": args.train_steps,
        "steps_per_second": args.train_steps / seconds,
        "posed_samples_per_second": args.train_steps * frames * points / seconds,
        "peak_memory_gib": peak_memory_gib(device),
        "losses_first_batch": first,
        "losses_last_step": last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--vertices", type=int, default=50_000)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--parts", nargs="+", default=["matmul", "repose", "train"])
    parser.add_argument("--quick", action="store_true", help="small sizes: a dry run on CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
    args = parser.parse_args()
    if args.quick:
        args.vertices, args.frames, args.repeats = 2_000, [2], 1
        args.warmup_steps, args.train_steps = 1, 2
    device = torch.device(args.device)
    result: dict = {
        "benchmark": "GPU checks: matmul, reposing, training",
        "hardware": hardware(device),
        "quick_dry_run": args.quick,
    }
    if device.type == "cuda":
        result["device_name"] = torch.cuda.get_device_name(device)
    for part in args.parts:
        tic = time.perf_counter()
        try:
            if part == "matmul":
                result[part] = part_matmul(device, args.quick, args.repeats)
            elif part == "repose":
                result[part] = part_repose(args.data, device, args)
            elif part == "train":
                result[part] = part_train(args.data, device, args)
            else:
                raise ValueError(f"unknown part {part!r}")
        except Exception:  # noqa: BLE001 - record it, run the other parts
            result[part] = {"error": traceback.format_exc()}
            print(f"{part} failed:\n{result[part]['error']}")
        result.setdefault("seconds", {})[part] = time.perf_counter() - tic
        write_json(args.out, result)  # after every part: a timeout keeps what is done
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
