"""The ``demo`` and ``bench`` subcommands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass
class Demo:
    """From nothing to a trained, reposed, textured and evaluated avatar, on CPU.

    Makes the synthetic 'dress' data (cached), trains ins and snarf-nc (cpu-quick) side by side,
    extracts each canonical mesh once, paints a texture on it and reposes it through the held-out
    'run' motion (PLYs with vertex colours, a GLB with COLOR_0), evaluates both, and draws
    renders.png (error colours against the scan, front and side) and textured.gif."""

    out: Path = Path("demo-out")
    """Folder for the demo's outputs (runs, meshes, metrics.md, renders.png, textured.gif)."""
    outfit: Literal["dress", "fitted"] = "dress"
    data_preset: Literal["demo", "small", "default"] = "demo"
    """Synthetic dataset: demo (default's training frames + the held-out run motion), small, default."""
    steps: int | None = None
    """Override the cpu-quick preset's number of training steps."""
    eval_frames: int | None = None
    """Frames of the held-out motion evaluated per method (default: all)."""
    num_points: int = 30_000
    """Points per evaluation set (IoU and Chamfer); invskin eval uses 100,000."""
    parallel: bool = True
    """Train the two methods side by side, one process each."""
    seed: int = 0

    def main(self) -> None:
        from invskin.cli.common import OUT_IN_USE
        from invskin.demo import run_demo
        from invskin.folder_lock import hold_folder

        with hold_folder(self.out, hint=OUT_IN_USE):  # its trainings lock their runs inside it
            run_demo(
                self.out,
                outfit=self.outfit,
                data_preset=self.data_preset,
                steps=self.steps,
                seed=self.seed,
                eval_frames=self.eval_frames,
                num_points=self.num_points,
                parallel=self.parallel,
            )


@dataclass
class Bench:
    """Benchmarks that measure and record (a JSON with the hardware named).

    repose: ins frames per second (canonical mesh >= 50k vertices) vs snarf per-frame extraction at
    the same resolution, in one run. memory: peak memory of reposing a 1M-vertex mesh and of a
    512^3 extraction."""

    kind: Literal["repose", "memory"]
    """Which benchmark."""
    ins_run: Path
    """A trained ins run folder."""
    snarf_run: Path | None = None
    """A trained snarf run folder (repose benchmark)."""
    out: Path | None = None
    """JSON to write (default: benchmarks/results/<kind>-<device>.json)."""
    device: str = "cpu"
    frames: int = 64
    """Frames reposed by ins."""
    snarf_frames: int = 2
    """Frames extracted by snarf (slow)."""
    resolution: int | None = None
    """Grid resolution for both (default: the ins run's extraction resolution)."""

    def main(self) -> None:
        from invskin.bench import bench_memory, bench_repose, write_json

        if self.kind == "repose":
            result = bench_repose(
                self.ins_run,
                self.snarf_run,
                frames=self.frames,
                snarf_frames=self.snarf_frames,
                resolution=self.resolution,
                device=self.device,
            )
        else:
            result = bench_memory(self.ins_run)
        out = self.out or Path("benchmarks/results") / f"{self.kind}-{self.device}.json"
        write_json(out, result)
        print(f"written {out}")
