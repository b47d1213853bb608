"""invskin's benchmarks, one entry point: ``python -m benchmarks NAME [ARGS ...]`` (from the
repository root; ``python -m benchmarks --list`` describes each, ``python -m benchmarks NAME --help``
gives its options). Each benchmark is a module of this folder with a ``main()`` that reads its
command line; most write one JSON to ``benchmarks/results/`` named by what it measures, with the
hardware recorded. docs/results.md quotes the command behind every figure; a module can also be run
as a file (``python benchmarks/MODULE.py``), which is the same command.

Benchmarks use invskin's public API only.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    """The module of this folder that holds ``main()``; ``invskin bench`` where it is ``""``."""
    group: str
    description: str
    invskin_bench: str = ""
    """``invskin bench --kind KIND`` that runs it (no module of its own)."""


SUITE: tuple[Benchmark, ...] = (
    Benchmark(
        "quality-table",
        "quality_table",
        "quality",
        "collect `invskin eval` reports of many runs and seeds into the quality table (Markdown "
        "on stdout) and its JSON (benchmarks/results/quality-cpu*.json)",
    ),
    Benchmark(
        "colour-figure",
        "colour_figure",
        "quality",
        "renders of coloured avatars (runs trained with --signal colour) beside the scans they "
        "were learned from, front and side (docs/img/colour-avatar.png)",
    ),
    Benchmark(
        "train-variant",
        "ablation",
        "quality",
        "train and evaluate one method under a named variant of a preset "
        "(RUNS/VARIANT/METHOD-sSEED), the runs behind the quality table and the ablations",
    ),
    Benchmark(
        "repose-speed",
        "bench_repose_fast",
        "speed",
        "reposing frames per second on CPU: the fast path against the reference path and the "
        "matrix-product rate (repose-fast-cpu*.json)",
    ),
    Benchmark(
        "repose-cost",
        "repose_cost",
        "speed",
        "reposing cost of trained runs per frame and 100,000 vertices on the path `invskin "
        "repose` takes (repose-cost.json)",
    ),
    Benchmark(
        "repose-vs-extraction",
        "",
        "speed",
        "ins reposing against snarf's per-frame extraction at the same resolution "
        "(repose-cpu.json); runs `invskin bench --kind repose`",
        invskin_bench="repose",
    ),
    Benchmark(
        "train-throughput",
        "bench_train_step",
        "speed",
        "training steps: posed samples per second per core, reference against fast query path "
        "(train-throughput*.json)",
    ),
    Benchmark(
        "root-finder",
        "bench_root_finder",
        "speed",
        "the training root finder on one thread: C search against PyTorch (root-finder-cpu.json)",
    ),
    Benchmark(
        "spline-step",
        "bench_spline_step",
        "speed",
        "one spline coupling step on one thread: reference, fast-path PyTorch and C "
        "(spline-step-cpu-native.json)",
    ),
    Benchmark(
        "profile-repose",
        "profile_repose_fast",
        "speed",
        "where the fast reposing path spends its time: torch's profiler, per operator and "
        "(--per-coupling) per coupling; prints, writes nothing",
    ),
    Benchmark(
        "winding",
        "bench_winding",
        "speed",
        "winding-number occupancy throughput, 1M queries against a ~20k-face mesh (winding.json)",
    ),
    Benchmark(
        "gpu",
        "bench_gpu",
        "speed",
        "the GPU measurements in one run: matmul rate, batched reposing, training steps "
        "(scripts/gpu_checks.sh runs it on a GPU)",
    ),
    Benchmark(
        "memory",
        "",
        "memory",
        "peak memory of reposing a 1M-vertex mesh and of a 512^3 extraction (memory-cpu.json); "
        "runs `invskin bench --kind memory`",
        invskin_bench="memory",
    ),
    Benchmark(
        "export",
        "export_skinned",
        "export",
        "skinned glTF export of a run against the model's output and the per-frame morph GLB "
        "(export-skinned-*.json)",
    ),
    Benchmark(
        "characters",
        "characters",
        "export",
        "rigged glTF characters through the whole pipeline: import, train, export, render "
        "(characters.json)",
    ),
    Benchmark(
        "round-trip",
        "round_trip",
        "checks",
        "round-trip error of the whole reposing chain on a run's canonical mesh "
        "(round-trip-*.json)",
    ),
    Benchmark(
        "lbs-gap",
        "lbs_gap",
        "checks",
        "how far the synthetic outfits are from linear blend skinning: best per-vertex weights "
        "fitted to the ground truth (lbs_gap.json)",
    ),
    Benchmark(
        "prior-check",
        "prior_check",
        "checks",
        "skinning-weight prior grids before any learning, applied to the ground truth "
        "(prior-check.json)",
    ),
    Benchmark(
        "deformation-check",
        "deformation_check",
        "checks",
        "trained deformations applied to the ground-truth surface, per part, normal and "
        "tangential error (deformation-check*.json)",
    ),
    Benchmark(
        "pin-pose-dependence",
        "pin_pose_dependence",
        "checks",
        "how much of what a trained run's PINs do depends on the pose, and whether it is what "
        "skinning misses (pin-pose-dependence*.json)",
    ),
    Benchmark(
        "pin-capacity",
        "pin_capacity",
        "checks",
        "what the deformation networks can express when fitted to known correspondences, beside "
        "their reposing cost (pin-capacity*.json)",
    ),
)

BY_NAME = {benchmark.name: benchmark for benchmark in SUITE}


def available() -> list[Benchmark]:
    """The benchmarks of :data:`SUITE` whose module is in this folder."""
    return [b for b in SUITE if not b.module or (HERE / f"{b.module}.py").is_file()]


def load(name: str) -> ModuleType:
    """The module of benchmark ``name`` (its siblings importable as top-level modules, as when it
    runs as a file)."""
    benchmark = BY_NAME.get(name)
    if benchmark is None or not benchmark.module:
        raise KeyError(f"no benchmark module named {name!r}")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(benchmark.module)


def describe() -> str:
    """What ``python -m benchmarks --list`` prints: each benchmark by group, one line each."""
    lines = []
    for group in dict.fromkeys(b.group for b in SUITE):
        lines.append(f"{group}:")
        for b in available():
            if b.group == group:
                lines.append(f"  {b.name:22s} {b.description}")
    return "\n".join(lines)


def run(argv: list[str]) -> None:
    """``python -m benchmarks NAME ARGS ...``: run benchmark NAME with its own command line."""
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__.split("\n\n")[0] + "\n\n" + describe())
        return
    name, args = argv[0], argv[1:]
    if name not in {b.name for b in available()}:
        known = ", ".join(b.name for b in available())
        raise SystemExit(f"unknown benchmark {name!r}; one of: {known}")
    benchmark = BY_NAME[name]
    if benchmark.invskin_bench:
        from invskin.cli.main import main as invskin

        invskin(["bench", "--kind", benchmark.invskin_bench, *args])
        return
    module = load(name)
    saved = sys.argv
    sys.argv = [f"python -m benchmarks {name}", *args]
    try:
        module.main()
    finally:
        sys.argv = saved
