"""Reposing speed on this machine against what its matrix unit allows, measured in one run.

Measures, in this order: the float32 matrix-product rate of a 2048^2 product (the practical
ceiling), the FLOPs per vertex per frame of the network (torch's FLOP counter on the reference
``AnimatableModel.repose``, and on the fast path, which does slightly less work), frames per second
of the fast path (:class:`invskin.models.fast_repose.FastReposer`) and of the reference path on the
same mesh and poses, the agreement of the two, and the matrix-product rate again (the machine is
shared: a change between the two shows load). Writes one JSON.

The model is the ``cpu-quick`` network of ``ins``: from a trained run (``--run``, its canonical mesh
subdivided to at least ``--vertices``), or, without one, a fresh model of that size for a dataset's
skeleton and body prior (``--data``) with every parameter perturbed away from the initialisation
(the PINs start as the identity; the time does not depend on the values) and ``--vertices`` points
drawn on and around the prior body. Poses are the dataset's ``test-out`` frames.

    flock /tmp/invskin-cpu.lock python benchmarks/bench_repose_fast.py --data DATA \\
        [--run RUN] [--sweep] [--out benchmarks/results/repose-fast-cpu.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from invskin.bench import count_flops, hardware, matmul_gflops, subdivide_to, write_json
from invskin.data.format import load_dataset
from invskin.models.animatable import AnimatableModel
from invskin.models.build import build_model
from invskin.models.fast_repose import DEFAULT_CHUNK_ROWS, FastReposer
from invskin.runs.folder import load_run
from invskin.training.presets import make_preset


def fresh_model(
    data: Path,
    vertices: int,
    seed: int,
    pin_coupling: str | None = None,
    preset: str = "cpu-quick",
) -> tuple[AnimatableModel, torch.Tensor]:
    """The ``preset`` ins network for the dataset's skeleton, parameters perturbed; its PINs'
    couplings ``pin_coupling`` (None: the preset's)."""
    dataset = load_dataset(data)
    torch.manual_seed(seed)
    config = make_preset(preset, "ins").model
    if pin_coupling is not None:
        config = replace(config, pin_coupling=pin_coupling)
    model = build_model(config, dataset.skeleton, dataset.prior)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    prior = dataset.prior.vertices.float()
    picks = torch.randint(prior.shape[0], (vertices,))
    return model.eval(), prior[picks] + 0.01 * torch.randn(vertices, 3)


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (skeleton, poses)")
    parser.add_argument("--run", type=Path, default=None, help="trained ins run (optional)")
    parser.add_argument("--vertices", type=int, default=104_828)
    parser.add_argument("--frames", type=int, default=32, help="frames per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-frames", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--sweep", action="store_true", help="time several chunk sizes first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pin-coupling", choices=("affine", "spline"), default=None, help="without --run"
    )
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="spline couplings with the PyTorch spline instead of the C kernel of invskin.native",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/repose-fast-cpu.json"))
    args = parser.parse_args()

    device = torch.device("cpu")
    load_before = os.getloadavg()
    peak_before = matmul_gflops(device)
    if args.run is not None:
        from invskin.runs.pipeline import canonical_mesh

        loaded = load_run(args.run)
        model = loaded.model
        mesh, _ = canonical_mesh(args.run, model, None, loaded.state)
        mesh = subdivide_to(mesh, args.vertices)
        vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
        source = {"run": str(args.run)}
    else:
        model, vertices = fresh_model(args.data, args.vertices, args.seed, args.pin_coupling)
        source = {"fresh_cpu_quick_ins_for": str(args.data), "seed": args.seed}
    num_vertices = vertices.shape[0]
    test = load_dataset(args.data).split("test-out")
    poses = test.transforms[torch.arange(args.frames) % len(test)].float()

    native = False if args.no_native else None
    sweep = {}
    chunk_rows, workers = args.chunk_rows, None
    if args.sweep:  # chunk sizes x (worker threads, or one caller with torch's intra-op threads)
        for rows in (4096, 8192, 16384, 32768):
            for threads in (1, torch.get_num_threads()):
                fast = FastReposer(model, rows, threads, native=native)
                seconds = min(timed(lambda f=fast: f.repose(vertices, poses[:8]), 2)) / 8
                sweep[f"chunk_rows={rows},workers={threads}"] = seconds
                print(f"chunk_rows {rows}, workers {threads}: {seconds * 1000:.1f} ms per frame")
        best = min(sweep, key=sweep.get)
        chunk_rows, workers = (int(part.split("=")[1]) for part in best.split(","))

    fast = FastReposer(model, chunk_rows, workers, native=native)
    fast_times = timed(lambda: fast.repose(vertices, poses), args.repeats)
    per_frame = statistics.median(fast_times) / args.frames
    torch_spline = {}
    if fast.native:  # the same fast path with the PyTorch spline, for the kernel's share
        plain = FastReposer(model, chunk_rows, workers, native=False)
        plain_times = timed(lambda: plain.repose(vertices, poses), args.repeats)
        torch_spline = {
            "times_s": plain_times,
            "seconds_per_frame": statistics.median(plain_times) / args.frames,
        }
    ref_poses = poses[: args.reference_frames]
    ref_times = timed(lambda: model.repose(vertices, ref_poses), 1)
    ref_per_frame = statistics.median(ref_times) / len(ref_poses)
    agreement = (fast.repose(vertices, poses[:2]) - model.repose(vertices, poses[:2])).abs().max()

    flops_reference = count_flops(lambda: model.repose(vertices, poses[:1]))
    one_thread = FastReposer(
        model, chunk_rows, workers=1, native=native
    )  # the counter sees this thread only
    flops_fast = count_flops(lambda: one_thread.repose(vertices, poses[:1]))
    # Load-robust view: CPU time of one thread (the machine may be shared), for the fast path with
    # one worker and one kernel thread, against one thread's matmul rate in CPU time.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = FastReposer(model, chunk_rows, workers=1, native=native)
        one.repose(vertices, poses[:1])
        tic = time.thread_time()
        one.repose(vertices, poses[:4])
        cpu_per_frame = (time.thread_time() - tic) / 4
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        a @ b
        tic = time.thread_time()
        for _ in range(3):
            a @ b
        matmul_cpu = 3 * 2 * 2048**3 / (time.thread_time() - tic) / 1e9
    finally:
        torch.set_num_threads(threads)
    peak_after = matmul_gflops(device)
    peak = max(peak_before, peak_after)
    achieved = flops_reference / per_frame / 1e9
    result = {
        "benchmark": "reposing, fast path vs the float32 matmul rate (one run)",
        "hardware": hardware(device),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "model": source,
        "network": "cpu-quick ins",
        "pin_coupling": model.config.pin_coupling,
        "vertices": num_vertices,
        "frames_per_call": args.frames,
        "chunk_rows": chunk_rows,
        "workers": fast.workers,
        "native_spline_kernel": fast.native,
        "fast_path_with_pytorch_spline": torch_spline,
        "sweep_seconds_per_frame": sweep,
        "fast_times_s": fast_times,
        "fast_seconds_per_frame": per_frame,
        "fast_frames_per_second": 1.0 / per_frame,
        "reference_seconds_per_frame": ref_per_frame,
        "reference_frames": len(ref_poses),
        "speedup_over_reference": ref_per_frame / per_frame,
        "max_abs_difference_m": float(agreement),
        "flops_per_vertex_reference": flops_reference / num_vertices,
        "flops_per_vertex_fast_path": flops_fast / num_vertices,
        "achieved_gflops": achieved,
        "achieved_gflops_fast_path_flops": flops_fast / per_frame / 1e9,
        "matmul_gflops_before": peak_before,
        "matmul_gflops_after": peak_after,
        "fraction_of_matmul_rate": achieved / peak,
        "single_thread_cpu_time": {
            "fast_cpu_seconds_per_frame": cpu_per_frame,
            "achieved_gflops": flops_reference / cpu_per_frame / 1e9,
            "matmul_gflops": matmul_cpu,
            "fraction_of_matmul_rate": flops_reference / cpu_per_frame / 1e9 / matmul_cpu,
            "note": "one worker, torch.set_num_threads(1), time.thread_time(): CPU time of the "
            "calling thread, which other processes on a shared machine inflate far less than "
            "wall time (caches and memory bandwidth are still shared)",
        },
        "note": "achieved_gflops counts the reference network's FLOPs (the work a frame needs); "
        "the fast path skips some of it (pose-independent first coupling, fused layers), so its "
        "own count is lower (and does not see the C spline kernel's arithmetic). The fraction is "
        "against the higher of the two matmul rates.",
    }
    write_json(args.out, result)
    print(
        f"{1 / per_frame:.2f} frames/s ({per_frame * 1000:.1f} ms per frame, reference "
        f"{ref_per_frame * 1000:.0f} ms), {achieved:.1f} GFLOP/s = "
        f"{100 * achieved / peak:.0f}% of the {peak:.0f} GFLOP/s matmul rate -> {args.out}"
    )


if __name__ == "__main__":
    main()
