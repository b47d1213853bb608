"""Throughput of winding-number occupancy: 1M query points against a ~20k-face mesh.

Measures ``invskin.mesh.occupancy`` (point-cloud-utils, queries in Z-order) and, for comparison,
pcu in input order and libigl's ``fast_winding_number`` in both orders, on the two point sets of
``invskin eval``'s IoU (``invskin.metrics.occupancy``): uniform in the bounding box enlarged by 10%, and
surface samples plus N(0, 1 cm) noise (harder: every query is near the surface). Cases are
interleaved within each repeat; the median wall and CPU time over repeats is reported, and the JSON
records the hardware, library versions and the load average (the machine may be shared).

    .venv/bin/python benchmarks/bench_winding.py            # writes benchmarks/results/winding.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import point_cloud_utils as pcu
import trimesh

from invskin.bench import cpu_name
from invskin.mesh import TriMesh, occupancy
from invskin.mesh.winding import spatial_order
from invskin.metrics import evaluation_points

RESULTS = Path(__file__).resolve().parent / "results" / "winding.json"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="query points per call")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median reported)")
    parser.add_argument(
        "--subdivisions", type=int, default=5, help="icosphere subdivisions (5 = 20,480 faces)"
    )
    parser.add_argument("--radius", type=float, default=0.5, help="sphere radius in metres")
    parser.add_argument("--no-igl", action="store_true", help="skip the libigl comparison")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args()

    sphere = trimesh.creation.icosphere(subdivisions=args.subdivisions, radius=args.radius)
    mesh = TriMesh(sphere.vertices, sphere.faces)
    point_sets = evaluation_points(mesh, n=args.points, seed=0)

    def in_z_order(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        def run(queries: np.ndarray) -> np.ndarray:
            order = spatial_order(queries)
            out = np.empty(len(queries))
            out[order] = fn(queries[order])
            return out > 0.5

        return run

    backends: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "invskin.occupancy (pcu, Z-order)": lambda q: occupancy(mesh, q),
        "pcu, input order": lambda q: (
            pcu.triangle_soup_fast_winding_number(mesh.vertices, mesh.faces, q) > 0.5
        ),
    }
    if not args.no_igl:
        import igl

        backends["libigl, Z-order"] = in_z_order(
            lambda q: igl.fast_winding_number(mesh.vertices, mesh.faces, q)
        )
        backends["libigl, input order"] = lambda q: (
            igl.fast_winding_number(mesh.vertices, mesh.faces, q) > 0.5
        )

    # Interleave the cases inside each repeat so that load from other processes on a shared
    # machine hits every case alike; the median over repeats is reported.
    cases = [(name, set_name) for name in backends for set_name in ("bbox", "surface")]
    times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    cpu_times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    load_before = os.getloadavg()
    for repeat in range(args.repeats + 1):  # repeat 0 is a warm-up
        for name, set_name in cases:
            queries = getattr(point_sets, set_name)
            start, cpu_start = time.perf_counter(), time.process_time()
            backends[name](queries)
            if repeat > 0:
                times[(name, set_name)].append(time.perf_counter() - start)
                cpu_times[(name, set_name)].append(time.process_time() - cpu_start)
    load_after = os.getloadavg()

    results = []
    for name, set_name in cases:
        queries = getattr(point_sets, set_name)
        median = statistics.median(times[(name, set_name)])
        radius = np.linalg.norm(queries, axis=1)
        accuracy = float(np.mean(backends[name](queries) == (radius < args.radius)))
        results.append(
            {
                "backend": name,
                "points": set_name,
                "median_s": median,
                "times_s": times[(name, set_name)],
                "median_cpu_s": statistics.median(cpu_times[(name, set_name)]),
                "points_per_s": args.points / median,
                "accuracy_vs_analytic_sphere": accuracy,
            }
        )
        print(
            f"{name:34s} {set_name:8s} {median:7.3f} s  "
            f"{args.points / median / 1e6:6.2f} M points/s  "
            f"cpu {statistics.median(cpu_times[(name, set_name)]):6.3f} s  accuracy {accuracy:.5f}"
        )

    report = {
        "benchmark": "winding-number occupancy",
        "mesh": f"icosphere radius {args.radius} m, {mesh.num_faces} faces",
        "num_points": args.points,
        "repeats": args.repeats,
        "results": results,
        "hardware": {
            "cpu": cpu_name(),
            "usable_cores": usable_cores(),
            "machine": platform.machine(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            # The machine may be shared: a 1-minute load above the core count means contention.
            "loadavg_1m_before": load_before[0],
            "loadavg_1m_after": load_after[0],
        },
        "versions": {
            "python": platform.python_version(),
            **{
                pkg: version(pkg)
                for pkg in ("torch", "numpy", "point-cloud-utils", "libigl", "trimesh")
            },
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
