"""Subcommands that are declared but not implemented yet.

Each is replaced by a real dataclass in ``invskin.cli.commands`` when its issue lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from invskin.cli.common import not_implemented


@dataclass
class Synth:
    """Generate the embedded synthetic clothed-human benchmark from the anny body model."""

    out: Path = Path("data/synth-dress")
    """Folder to write the dataset to."""

    def run(self) -> None:
        not_implemented("synth", "issue 3: data")


@dataclass
class Train:
    """Train a model (ins, snarf-nc, snarf, lbs-body) on a dataset folder."""

    data: Path = Path("data/synth-dress")
    """Dataset folder (invskin format)."""
    out: Path = Path("runs/ins")
    """Run folder for checkpoints and logs."""

    def run(self) -> None:
        not_implemented("train", "issue 4: the INS model")


@dataclass
class Extract:
    """Extract the canonical mesh of a trained run once (marching cubes)."""

    run_dir: Path = Path("runs/ins")
    """Run folder written by 'invskin train'."""

    def run(self) -> None:
        not_implemented("extract", "issue 4: the INS model")


@dataclass
class Repose:
    """Repose the canonical mesh of a run to every frame of a pose sequence."""

    run_dir: Path = Path("runs/ins")
    """Run folder written by 'invskin train'."""

    def run(self) -> None:
        not_implemented("repose", "issue 4: the INS model")


@dataclass
class Eval:
    """Evaluate a run's posed meshes on a test split (IoU, Chamfer, normals, F-score, correspondences)."""

    run_dir: Path = Path("runs/ins")
    """Run folder written by 'invskin train'."""

    def run(self) -> None:
        not_implemented("eval", "issue 5: evaluation")


@dataclass
class Demo:
    """Make data, train ins and snarf-nc, extract, repose, evaluate and render, from nothing."""

    out: Path = Path("demo-out")
    """Folder for the demo's outputs."""

    def run(self) -> None:
        not_implemented("demo", "issue 5: the demo")


@dataclass
class Bench:
    """Benchmarks: reposing speed, training time, memory."""

    out: Path = Path("benchmarks/results")
    """Folder for the benchmark JSON files."""

    def run(self) -> None:
        not_implemented("bench", "issue 5: benchmarks")
