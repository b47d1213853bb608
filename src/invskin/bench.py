"""Benchmarks that measure and record: reposing speed, per-frame extraction, memory, hardware.

Each benchmark writes a JSON with the hardware named (CPU model and cores, or the GPU), the torch
version, the exact settings and every timing, and returns it. Times are medians over repeats.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from invskin.fileio import write_bytes_atomic
from invskin.mesh.io import TriMesh


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> dict[str, Any]:
    """What ran the benchmark."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "cpu": cpu_name(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, repeats: int, device: torch.device, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronise(device)
        tic = time.perf_counter()
        fn()
        synchronise(device)
        times.append(time.perf_counter() - tic)
    return times


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply throughput: the practical ceiling of this hardware."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    times = median_seconds(lambda: a @ b, repeats, device)
    return 2 * size**3 / statistics.median(times) / 1e9


def count_flops(fn) -> int:
    """Floating-point operations of ``fn()`` counted by torch's FlopCounterMode (matmuls etc.)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def subdivide_to(mesh: TriMesh, min_vertices: int) -> TriMesh:
    """Midpoint-subdivide until the mesh has at least ``min_vertices`` vertices."""

    tm = mesh.to_trimesh()
    while len(tm.vertices) < min_vertices:
        tm = tm.subdivide()
    return TriMesh(tm.vertices.astype("float64"), tm.faces.astype("int64"))


def bench_repose(
    ins_run: Path,
    snarf_run: Path | None,
    data: Path | None = None,
    frames: int = 64,
    batch: int = 16,
    min_vertices: int = 50_000,
    snarf_frames: int = 2,
    resolution: int | None = None,
    repeats: int = 5,
    device: str = "cpu",
) -> dict[str, Any]:
    """``ins`` reposing (frames per second, canonical mesh >= ``min_vertices``) against ``snarf``'s
    per-frame extraction at the same grid resolution, in one run. ``ins`` is timed on the reference
    ``model.repose`` (the FLOP rate is computed for it) and, on CPU, also on the fast path
    ``invskin repose`` uses (``fast_path_*``; ``benchmarks/bench_repose_fast.py`` studies it)."""
    from invskin.data.format import load_dataset
    from invskin.runs.folder import load_run
    from invskin.runs.pipeline import extract_canonical, extract_posed

    dev = torch.device(device)
    ins = load_run(ins_run, dev)
    res = resolution or int(ins.state.get("extract_resolution", 256))
    tic = time.perf_counter()
    mesh = extract_canonical(ins.model, res)  # timed, and not saved over the run's own mesh
    extraction_seconds = time.perf_counter() - tic
    mesh = subdivide_to(mesh, min_vertices)
    dataset = load_dataset(Path(data) if data else Path(ins.state["dataset"]))
    test = dataset.split("test-out")
    poses = test.transforms[torch.arange(frames) % len(test)].to(dev)
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=dev)

    def repose_all() -> None:
        for start in range(0, frames, batch):
            ins.model.repose(vertices, poses[start : start + batch])

    times = median_seconds(repose_all, repeats, dev)
    per_frame = statistics.median(times) / frames
    fast_per_frame = None
    if dev.type == "cpu":  # what 'invskin repose' runs on CPU (models/fast_repose.py)
        from invskin.models.fast_repose import FastReposer

        fast = FastReposer(ins.model)

        def repose_all_fast() -> None:
            for start in range(0, frames, batch):
                fast.repose(vertices, poses[start : start + batch])

        fast_per_frame = statistics.median(median_seconds(repose_all_fast, repeats, dev)) / frames
    flops_per_frame = count_flops(lambda: ins.model.repose(vertices, poses[:1]))
    peak = matmul_gflops(dev)
    result: dict[str, Any] = {
        "benchmark": "reposing",
        "hardware": hardware(dev),
        "ins": {
            "run": str(ins_run),
            "canonical_vertices": mesh.num_vertices,
            "canonical_faces": mesh.num_faces,
            "extraction_resolution": res,
            "extraction_seconds_once": extraction_seconds,
            "frames": frames,
            "batch": batch,
            "times_s": times,
            "seconds_per_frame": per_frame,
            "frames_per_second": 1.0 / per_frame,
            "flops_per_frame": flops_per_frame,
            "flops_per_vertex": flops_per_frame / mesh.num_vertices,
            "achieved_gflops": flops_per_frame / per_frame / 1e9,
            "matmul_gflops_measured": peak,
            "fraction_of_matmul_peak": flops_per_frame / per_frame / 1e9 / peak,
            "fast_path_seconds_per_frame": fast_per_frame,
            "fast_path_frames_per_second": None if fast_per_frame is None else 1 / fast_per_frame,
        },
    }
    if snarf_run is not None:
        snarf = load_run(snarf_run, dev)
        snarf_times, evaluations = [], []
        for k in range(snarf_frames):
            synchronise(dev)
            tic = time.perf_counter()
            _, count = extract_posed(snarf.model, poses[k], res)
            synchronise(dev)
            snarf_times.append(time.perf_counter() - tic)
            evaluations.append(count)
        snarf_per_frame = statistics.median(snarf_times)
        result["snarf"] = {
            "run": str(snarf_run),
            "resolution": res,
            "frames": snarf_frames,
            "times_s": snarf_times,
            "seconds_per_frame": snarf_per_frame,
            "field_evaluations_per_frame": evaluations,
        }
        result["speedup_ins_over_snarf"] = snarf_per_frame / per_frame
    return result


def peak_memory_of(code: str) -> float:
    """Peak resident memory (GiB) of a fresh Python process running ``code``."""
    wrapper = (
        code + "\nimport resource, json; print(json.dumps(resource.getrusage("
        "resource.RUSAGE_SELF).ru_maxrss))"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 2**20  # ru_maxrss is in KiB on Linux


def bench_memory(ins_run: Path, vertices: int = 1_000_000, resolution: int = 512) -> dict[str, Any]:
    """Peak memory of reposing a ``vertices``-vertex mesh and of a ``resolution``^3 extraction."""
    repose_code = f"""
import torch
from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh
from invskin.bench import subdivide_to
run = load_run({str(ins_run)!r})
mesh, _ = canonical_mesh({str(ins_run)!r}, run.model, None, run.state)
mesh = subdivide_to(mesh, {vertices})
v = torch.as_tensor(mesh.vertices, dtype=torch.float32)
print(mesh.num_vertices)
poses = torch.eye(4).expand(4, run.model.skeleton.num_bones, 4, 4)
run.model.repose(v, poses)
"""
    extract_code = f"""
from invskin.runs.folder import load_run
from invskin.runs.pipeline import extract_canonical
run = load_run({str(ins_run)!r})
mesh = extract_canonical(run.model, {resolution})
"""
    baseline_code = "import torch, invskin.runs.folder"
    return {
        "benchmark": "memory",
        "hardware": hardware(torch.device("cpu")),
        "baseline_import_gib": peak_memory_of(baseline_code),
        "repose_vertices": vertices,
        "repose_frames_per_batch": 4,
        "repose_peak_gib": peak_memory_of(repose_code),
        "extraction_resolution": resolution,
        "extraction_peak_gib": peak_memory_of(extract_code),
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, json.dumps(data, indent=1).encode())
