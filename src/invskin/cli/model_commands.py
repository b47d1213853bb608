"""Subcommands that train, extract, repose and evaluate runs."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from invskin.models.config import Method
from invskin.training.distributed import is_main

Preset = Literal["cpu-quick", "gpu", "tiny"]


@dataclass
class Train:
    """Train a method on the 'train' split of a dataset folder; checkpoints go to --out."""

    data: Path
    """Dataset folder in the invskin format ('invskin synth' or a converter makes one)."""
    out: Path
    """Run folder for checkpoints and the loss log."""
    method: Method = "ins"
    """ins, a baseline (lbs-body, snarf-nc, snarf) or an ablation of ins."""
    preset: Preset = "cpu-quick"
    """cpu-quick: minutes on 2 CPU cores; gpu: full quality on a GPU; tiny: for tests."""
    steps: int | None = None
    """Override the preset's number of training steps (a positive number)."""
    device: str = "auto"
    """auto (CUDA if available), cpu or cuda."""
    seed: int = 0
    signal: Literal["occupancy", "correspondence", "colour"] = "occupancy"
    """What the run learns from: occupancy of the scans alone (all a raw scan gives), or also the
    dataset's known correspondences (synthetic data, CAPE, a rigged glTF without --scans), training
    frames only, or also the scans' colours (coloured scans: a canonical colour field and a
    photometric loss; the extracted mesh gets the learned colours). See docs/method.md, 'Training
    signals'."""
    no_loss: tuple[str, ...] = ()
    """Losses to switch off (weight 0), by name as log.jsonl shows them: e.g. --no-loss colour
    colour_level trains the colour signal's model without its photometric loss (an ablation)."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint, exactly where it stopped (Ctrl-C and
    SIGTERM write a checkpoint at the current step before exiting)."""

    def main(self) -> None:
        from invskin.training.run import train_run

        if hasattr(signal, "SIGUSR1"):  # before and after the training loop: nothing to widen
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        summary = train_run(
            self.data,
            self.out,
            self.method,
            self.preset,
            self.steps,
            self.device,
            self.seed,
            self.resume,
            signal=self.signal,
            no_loss=self.no_loss,
        )
        print(
            f"trained {summary.method} for {summary.result.steps} steps in "
            f"{summary.result.seconds:.0f} s; run folder: {summary.run_dir}"
        )


@dataclass
class Extract:
    """Extract a run's canonical mesh once (marching cubes); writes RUN/canonical.ply."""

    run: Path
    """Run folder written by 'invskin train'."""
    resolution: int | None = None
    """Grid points per axis (default: the preset's, 256 for gpu)."""
    device: str = "cpu"

    def main(self) -> None:
        from invskin.cli.common import RUN_IN_USE
        from invskin.folder_lock import hold_folder
        from invskin.runs.folder import load_run
        from invskin.runs.pipeline import CANONICAL_MESH, canonical_mesh

        with hold_folder(self.run, hint=RUN_IN_USE):  # it writes into the run
            loaded = load_run(self.run, self.device)
            res = self.resolution or int(loaded.state.get("extract_resolution", 256))
            mesh, seconds = canonical_mesh(self.run, loaded.model, res, loaded.state)
        print(
            f"canonical mesh: {mesh.num_vertices} vertices, {mesh.num_faces} faces in "
            f"{seconds:.1f} s -> {Path(self.run) / CANONICAL_MESH}"
        )


@dataclass
class Repose:
    """Repose a run's canonical mesh to every frame of one or many pose sequences (PLY per frame +
    GLB). With several sequences (several --poses, or a folder of motion files) frames are batched
    across sequences and each sequence goes to OUT/<its name>/; under torchrun the sequences are
    split over the ranks. For snarf the same command extracts one mesh per frame (no GLB)."""

    run: Path
    """Run folder written by 'invskin train'."""
    poses: tuple[Path, ...]
    """Dataset folders (their frames, or one --split), .npz/.npy files with 'transforms'
    (F, J, 4, 4), AMASS/SMPL .npz ('poses', 'trans'), .bvh or .glb/.gltf animations, or folders of
    such files; one sequence per file or dataset."""
    out: Path
    """Output folder for the meshes, animation.glb and timing.json."""
    split: str | None = None
    """With a dataset folder: only this split's frames."""
    mapping: Path | None = None
    """JSON bone mapping {"bones": {run_bone: motion_bone}} for motions of another rig."""
    smpl: Path | None = None
    """SMPL-family model (file, or folder with one per gender) for AMASS/SMPL .npz motions: the
    subject's rest joints from the file's betas and gender (default: a T-pose)."""
    batch: int = 16
    """Frames reposed at once."""
    device: str = "cpu"

    def main(self) -> None:
        from contextlib import ExitStack

        from invskin.cli.common import OUT_IN_USE, RUN_IN_USE
        from invskin.folder_lock import hold_folder

        # The run is read (shared: several reposes of one run at once), --out written (by rank 0's
        # lock under torchrun, whose ranks do not talk: a refused rank 0 stops the job).
        with ExitStack() as locks:
            locks.enter_context(hold_folder(self.run, shared=True, hint=RUN_IN_USE))
            if is_main():
                locks.enter_context(hold_folder(self.out, hint=OUT_IN_USE))
            self._repose()

    def _repose(self) -> None:
        from invskin.runs.pipeline import repose_run
        from invskin.runs.poses import collect_sequences

        sequences = collect_sequences(
            list(self.poses), self.split, self.run, self.mapping, self.smpl
        )
        first = Path(self.poses[0])
        single = len(self.poses) == 1 and (
            first.is_file() or (first / "invskin-dataset.json").exists()
        )
        if not single:
            from invskin.runs.bulk_repose import repose_many

            result = repose_many(self.run, sequences, self.out, self.batch, device=self.device)
            print(
                f"{len(result.out_dirs)} of {len(sequences)} sequences ({result.frames} frames) "
                f"in {self.out} ({result.seconds_per_frame * 1000:.1f} ms per frame)"
            )
            return
        if not is_main():  # one sequence under torchrun: rank 0 does it
            return
        seq = sequences[0]
        result = repose_run(
            self.run, seq.transforms, self.out, seq.frame_names, self.batch, device=self.device
        )
        print(
            f"{len(result.mesh_files)} meshes in {result.out_dir} "
            f"({result.seconds_per_frame * 1000:.1f} ms per frame)"
            + (f"; animation: {result.glb}" if result.glb else "")
        )


@dataclass
class Eval:
    """Evaluate a run on a test split (IoU, Chamfer, normals, F-score, correspondence error; per
    labelled part of the ground truth: correspondence error, Chamfer, stretch)."""

    run: Path
    """Run folder written by 'invskin train'."""
    data: Path | None = None
    """Dataset folder (default: the one the run was trained on)."""
    split: str = "test-within"
    """test-within or test-out (or train)."""
    num_points: int = 100_000
    """Points per IoU set and surface samples per mesh (a quarter of that for the part Chamfer)."""
    max_frames: int | None = None
    """Evaluate only the first frames of the split."""
    device: str = "cpu"

    def main(self) -> None:
        from invskin.cli.common import RUN_IN_USE
        from invskin.evaluation.evaluate import evaluate_run, markdown_table, per_part_table
        from invskin.folder_lock import hold_folder

        with hold_folder(self.run, hint=RUN_IN_USE):  # it writes into the run
            report = evaluate_run(
                self.run, self.data, self.split, self.num_points, self.max_frames, self.device
            )
        print(markdown_table([report]))
        if report["per_part"] is not None:
            print(per_part_table([report]))
        print(f"per-frame numbers: {Path(self.run) / 'eval' / self.split / 'metrics.json'}")
