"""The ``demo`` and ``bench`` subcommands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass
class Demo:
    """From nothing to a trained, reposed and evaluated avatar, on CPU (about 15 minutes on 2 cores).

    Makes the synthetic 'dress' data (cached), trains ins and snarf-nc (cpu-quick), extracts each
    canonical mesh once, reposes a test-out motion, evaluates both, renders PNGs, a GIF and a GLB."""

    out: Path = Path("demo-out")
    """Folder for the demo's outputs (runs, meshes, metrics.md, renders.png, ins.gif)."""
    outfit: Literal["dress", "fitted"] = "dress"
    data_preset: Literal["small", "default"] = "default"
    """Size of the synthetic dataset."""
    steps: int | None = None
    """Override the cpu-quick preset's number of training steps."""
    eval_frames: int = 12
    """Test-out frames evaluated per method."""
    seed: int = 0

    def main(self) -> None:
        from invskin.demo import run_demo

        run_demo(
            self.out,
            outfit=self.outfit,
            data_preset=self.data_preset,
            steps=self.steps,
            seed=self.seed,
            eval_frames=self.eval_frames,
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
