"""``invskin demo``: the whole story on the embedded synthetic data, from nothing, on CPU.

1. make the synthetic ``dress`` dataset (or reuse the cached one): by default the ``demo`` preset,
   the same training frames as ``default`` but only the one held-out motion the demo shows
   (``run``), so no time goes into frames nobody looks at;
2. train ``ins`` and ``snarf-nc`` with the ``cpu-quick`` preset, side by side in two processes
   (each with half the cores, the last one running on with all of them; ``parallel=False``
   trains them one after the other), or reuse finished runs;
3. extract each canonical mesh once, paint a texture on it (a UV checker projected from the front)
   and repose it through the held-out motion: a PLY per frame with vertex colours and a GLB with
   ``COLOR_0``;
4. evaluate both on that motion (IoU, Chamfer, normals, F-score, correspondence error, and per
   part where ``invskin eval`` reports it);
5. draw ``renders.png`` (ground truth, then each method coloured by its per-vertex distance to the
   scan, front and side, with a colour bar) and ``textured.gif`` (the painted ground truth, ins and
   snarf-nc moving through the motion).

Everything lands in ``--out``; the command prints where each output is and how long each stage took
(also written to ``timing.json``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invskin.data.format import Dataset, load_dataset
from invskin.data.synth.generate import SynthPreset
from invskin.data.synth.generate import preset as synth_preset
from invskin.evaluation.evaluate import evaluate_run, markdown_table
from invskin.export.figures import error_figure, save_gif, texture_frames, vertex_error_cm
from invskin.export.glb import write_glb
from invskin.export.texture import checker_image, front_box, project_front, save_colored_ply
from invskin.fileio import write_text_atomic
from invskin.mesh.io import TriMesh, load_mesh
from invskin.mesh.render import save_png
from invskin.runs.pipeline import repose_run
from invskin.training.checkpoint import load_checkpoint
from invskin.training.run import train_run

DEMO_METHODS = ("ins", "snarf-nc")
DEMO_MOTION = "run"


def default_cache() -> Path:
    return Path(os.environ.get("INVSKIN_CACHE", Path.home() / ".cache" / "invskin"))


def say(message: str) -> None:
    print(f"[invskin demo] {message}", flush=True)


def demo_data_preset(name: str) -> SynthPreset:
    """``demo``: the ``default`` training clips (identical frames: each clip's seed depends only on
    the seed, motion and clip) plus the held-out ``run`` clip, no test-within. Otherwise a named
    synthetic preset (``small``, ``default``)."""
    if name != "demo":
        return synth_preset(name)
    base = synth_preset("default")
    return SynthPreset(
        "demo",
        train_clips=base.train_clips,
        frames_per_clip=base.frames_per_clip,
        within_frames=0,
        out_frames=base.out_frames,
        train_motions=base.train_motions,
        test_out_motions=(DEMO_MOTION,),
    )


def demo_dataset(cache: Path, outfit: str, preset: str, seed: int) -> Dataset:
    """The cached synthetic dataset, generated on first use."""
    from invskin.data.synth.generate import generate_dataset

    path = cache / "data" / f"synth-{outfit}-{preset}-seed{seed}"
    try:
        return load_dataset(path)
    except (FileNotFoundError, ValueError):
        say(f"making the synthetic '{outfit}' dataset in {path} (cached for next time)")
        return generate_dataset(path, outfit=outfit, preset=demo_data_preset(preset), seed=seed)


def finished_run(run_dir: Path) -> bool:
    try:
        return bool(load_checkpoint(run_dir, with_optimizer=False).state.get("finished"))
    except (FileNotFoundError, ValueError):
        return False


def _last_step(run_dir: Path) -> int:
    try:
        lines = (run_dir / "log.jsonl").read_text().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (FileNotFoundError, ValueError, KeyError, IndexError):
        return 0


def train_side_by_side(
    data: Path, runs: dict[str, Path], preset: str, steps: int | None, seed: int
) -> None:
    """Train several methods at once, one ``invskin train`` process each with an equal share of
    the cores (``OMP_NUM_THREADS``), so every core is busy instead of one method's small batches
    being split over two threads; when all but one have finished (successfully), the last gets
    SIGUSR1 and goes on with every core. Each process logs to ``RUN.log``."""
    threads = max(1, (os.cpu_count() or 2) // len(runs))
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = {}
    try:
        for method, run_dir in runs.items():
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "invskin.cli.main", "train", "--data", str(data),
                   "--out", str(run_dir), "--method", method, "--preset", preset,
                   "--device", "cpu", "--seed", str(seed)]  # fmt: skip
            if steps is not None:
                cmd += ["--steps", str(steps)]
            if (run_dir / "checkpoint").exists():
                cmd += ["--resume"]
            log = open(run_dir.with_suffix(".log"), "w")  # noqa: SIM115 (closed below)
            procs[method] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                             log)  # fmt: skip
        say(f"training {', '.join(runs)} side by side ({threads} thread(s) each); logs: "
            + ", ".join(str(r.with_suffix('.log')) for r in runs.values()))  # fmt: skip
        widened = False
        started_at = {m: _last_step(r) for m, r in runs.items()}  # a resumed run's log goes on
        while any(p.poll() is None for p, _ in procs.values()):
            time.sleep(2.0)
            running = [p for p, _ in procs.values() if p.poll() is None]
            finished_well = all(p.returncode == 0 for p, _ in procs.values() if p not in running)
            last = [m for m, (p, _) in procs.items() if p in running]
            # SIGUSR1 is handled in the training loop, which has logged a step since the start
            in_loop = bool(last) and _last_step(runs[last[0]]) > started_at[last[0]]
            if len(running) == 1 and len(procs) > 1 and finished_well and in_loop and not widened:
                running[0].send_signal(signal.SIGUSR1)  # the last one takes every core
                widened = True
            if int(time.monotonic()) % 30 < 2:
                say("  " + ", ".join(f"{m} step {_last_step(runs[m])}" for m in runs))
    finally:
        for process, log in procs.values():
            if process.poll() is None:
                process.terminate()
                process.wait()
            log.close()
    for method, (process, _) in procs.items():
        if process.returncode != 0:
            raise RuntimeError(
                f"training {method} failed (exit {process.returncode}); see "
                f"{runs[method].with_suffix('.log')}"
            )


@contextmanager
def stage(timing: dict[str, float], name: str) -> Iterator[None]:
    tic = time.perf_counter()
    yield
    timing[name] = round(time.perf_counter() - tic, 1)
    say(f"{name}: {timing[name]:.0f} s")


def write_textured_sequence(
    out_dir: Path,
    names: list[str],
    meshes: list[TriMesh],
    colors: np.ndarray,
    fps: float = 30.0,
) -> Path:
    """Overwrite each frame's PLY with a vertex-coloured one and write ``animation.glb`` with
    ``COLOR_0``: the colours painted on the canonical mesh, the same for every frame."""
    for name, mesh in zip(names, meshes):
        save_colored_ply(out_dir / f"{name}.ply", mesh, colors)
    glb = out_dir / "animation.glb"
    write_glb(glb, np.stack([m.vertices for m in meshes]), meshes[0].faces, fps, colors=colors)
    return glb


def part_numbers(report: dict) -> dict[str, dict]:
    """The parts of an ``invskin eval`` report's ``per_part`` block (``per_part["parts"]``: each
    part a dict with ``correspondence_mean_cm``, ``correspondence_p95_cm``, ``stretch_p99``, ...),
    or ``{}`` where the report has none (an older eval, or data without part labels)."""
    block = report.get("per_part") or {}
    parts = block.get("parts") if isinstance(block, dict) else None
    return (
        {k: v for k, v in parts.items() if isinstance(v, dict)} if isinstance(parts, dict) else {}
    )


def drift_table(reports: list[dict]) -> str:
    """How far painted points drift from where the ground truth puts them: the correspondence
    error that ``invskin eval`` computed (whole mesh, and per part where its report has parts)."""

    def cm(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"

    lines = [
        "| method | part | drift mean (cm) | drift p95 (cm) | edge stretch p99 |",
        "|---|---|---|---|---|",
    ]
    for report in reports:
        corr = report.get("correspondence")
        if not corr:
            continue
        lines.append(
            f"| {report['method']} | all | {cm(corr['mean_cm'])} | {cm(corr['p95_cm'])} | - |"
        )
        for part, values in part_numbers(report).items():
            lines.append(
                f"| {report['method']} | {part} | {cm(values.get('correspondence_mean_cm'))} | "
                f"{cm(values.get('correspondence_p95_cm'))} | {cm(values.get('stretch_p99'))} |"
            )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DemoResult:
    out: Path
    table: Path
    renders: Path
    gif: Path
    glb: Path
    seconds: float
    timing: dict[str, float]


def run_demo(
    out: Path,
    outfit: str = "dress",
    data_preset: str = "demo",
    train_preset: str = "cpu-quick",
    steps: int | None = None,
    seed: int = 0,
    eval_frames: int | None = None,
    num_points: int = 30_000,
    cache: Path | None = None,
    parallel: bool = True,
    figure_frames: int = 2,
) -> DemoResult:
    """Run the demo into ``out``; see the module docstring."""
    tic = time.perf_counter()
    timing: dict[str, float] = {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or default_cache()
    with stage(timing, "dataset"):
        dataset = demo_dataset(cache, outfit, data_preset, seed)
    say(f"dataset: {dataset.root} ({len(dataset)} frames, {dataset.num_bones} bones)")
    runs = {method: out / "runs" / method for method in DEMO_METHODS}
    todo = {m: r for m, r in runs.items() if not finished_run(r)}
    for method in set(runs) - set(todo):
        say(f"{method}: reusing the finished run in {runs[method]}")
    with stage(timing, "training"):
        if parallel and len(todo) > 1:
            train_side_by_side(dataset.root, todo, train_preset, steps, seed)
        else:
            for method, run_dir in todo.items():
                say(f"training {method} ({train_preset})")
                resume = (run_dir / "checkpoint").exists()
                train_run(dataset.root, run_dir, method, train_preset, steps, "cpu", seed,
                          resume=resume)  # fmt: skip
    test = dataset.split("test-out")
    motion = DEMO_MOTION if DEMO_MOTION in test.motions else test.motions[0]
    frames = [i for i, m in enumerate(test.motions) if m == motion]
    names = [test.frame_ids[i] for i in frames]
    image = checker_image()
    truth = test.correspondence
    box = front_box(truth.canonical_vertices.double().numpy() if truth is not None
                    else dataset.prior.vertices.double().numpy())  # fmt: skip
    posed, colors, glbs = {}, {}, {}
    with stage(timing, "extract and repose"):
        for method, run_dir in runs.items():
            say(f"{method}: extracting once, painting and reposing the held-out motion '{motion}'")
            result = repose_run(run_dir, test.transforms[frames], out / "repose" / method, names,
                                write_glb=False, progress=False)  # fmt: skip
            posed[method] = [load_mesh(p) for p in result.mesh_files]
            colors[method] = project_front(
                load_mesh(run_dir / "canonical.ply").vertices, image, box
            )
            glbs[method] = write_textured_sequence(result.out_dir, names, posed[method],
                                                   colors[method])  # fmt: skip
    reports = []
    with stage(timing, "evaluation"):
        for method, run_dir in runs.items():
            say(f"{method}: evaluating on test-out ({num_points} points per set)")
            reports.append(evaluate_run(run_dir, dataset.root, "test-out", num_points,
                                        eval_frames, "cpu", progress=False))  # fmt: skip
    frames_done = reports[0]["frames"]
    table = out / "metrics.md"
    write_text_atomic(
        table,
        f"# invskin demo: {outfit}, test-out split ({frames_done} frames; "
        f"motions {', '.join(sorted(set(test.motions[:frames_done])))})\n\n"
        + markdown_table(reports)
        + "\n## Texture drift (correspondence error)\n\n"
        + drift_table(reports),
    )
    write_text_atomic(
        out / "metrics.json",
        json.dumps([{k: r[k] for k in r if k != "per_frame"} for r in reports], indent=1),
    )
    with stage(timing, "figures"):
        scans = [test.scan(i) for i in frames]
        picks = np.linspace(0, len(names) - 1, num=min(figure_frames + 2, len(names)))
        picks = picks.round().astype(int)
        if len(names) > figure_frames + 1:
            picks = picks[1:-1]  # frames inside the motion, not its ends
        errors = {m: [vertex_error_cm(posed[m][k], scans[k]) for k in picks] for m in runs}
        figure = error_figure(
            [scans[k] for k in picks],
            {m: [posed[m][k] for k in picks] for m in runs},
            errors,
            [names[k] for k in picks],
        )
        renders = save_png(out / "renders.png", figure)
        sequences = {}
        if truth is not None:
            gt_faces = truth.faces.long().numpy()
            gt_meshes = [
                TriMesh(truth.posed_vertices[i].double().numpy(), gt_faces) for i in frames
            ]
            gt_colors = project_front(truth.canonical_vertices.double().numpy(), image, box)
            sequences["ground truth"] = (gt_meshes, gt_colors)
        for method in runs:
            sequences[method] = (posed[method], colors[method])
        gif = save_gif(out / "textured.gif", texture_frames(sequences, names), 100)
    seconds = time.perf_counter() - tic
    timing["total"] = round(seconds, 1)
    write_text_atomic(out / "timing.json", json.dumps(timing, indent=1))
    say(f"metrics table:   {table}")
    say(f"renders:         {renders}")
    say(f"textured GIF:    {gif}")
    say(f"textured GLB:    {glbs['ins']}")
    say(f"view in a browser: invskin view --runs {' '.join(str(r) for r in runs.values())} "
        f"--data {dataset.root} --motion {motion}")  # fmt: skip
    say("stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()))
    say(f"done in {seconds / 60:.1f} minutes")
    print(table.read_text())
    return DemoResult(out, table, renders, gif, glbs["ins"], seconds, timing)
