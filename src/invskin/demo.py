"""``invskin demo``: the whole story on the embedded synthetic data, from nothing, on CPU.

1. make the synthetic ``dress`` dataset (or reuse the cached one);
2. train ``ins`` and ``snarf-nc`` with the ``cpu-quick`` preset (or reuse finished runs);
3. extract each canonical mesh once and repose it to a ``test-out`` motion (PLY per frame + GLB);
4. evaluate both on that motion (IoU, Chamfer, normals, F-score, correspondence error);
5. render ground truth vs ins vs snarf-nc on a few frames (PNG) and the ins sequence (GIF).

Everything lands in ``--out``; the command prints where each output is.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from invskin.data.format import Dataset, load_dataset
from invskin.evaluation.evaluate import evaluate_run, markdown_table
from invskin.export.render import Camera, render_mesh, save_png, tile_images
from invskin.fileio import write_text_atomic
from invskin.mesh.io import TriMesh, load_mesh
from invskin.models.pipeline import repose_run
from invskin.training.checkpoint import load_checkpoint
from invskin.training.run import train_run

DEMO_METHODS = ("ins", "snarf-nc")


def default_cache() -> Path:
    return Path(os.environ.get("INVSKIN_CACHE", Path.home() / ".cache" / "invskin"))


def say(message: str) -> None:
    print(f"[invskin demo] {message}", flush=True)


def demo_dataset(cache: Path, outfit: str, preset: str, seed: int) -> Dataset:
    """The cached synthetic dataset, generated on first use."""
    from invskin.data.synth.generate import generate_dataset

    path = cache / "data" / f"synth-{outfit}-{preset}-seed{seed}"
    try:
        return load_dataset(path)
    except (FileNotFoundError, ValueError):
        say(f"making the synthetic '{outfit}' dataset in {path} (cached for next time)")
        return generate_dataset(path, outfit=outfit, preset=preset, seed=seed)


def finished_run(run_dir: Path) -> bool:
    try:
        return bool(load_checkpoint(run_dir, with_optimizer=False).state.get("finished"))
    except (FileNotFoundError, ValueError):
        return False


def camera_for(meshes: list[TriMesh]) -> Camera:
    """One front camera framing every mesh of a sequence (so the animation does not jump)."""
    points = np.concatenate([m.vertices for m in meshes])
    return Camera.framing(points, aspect=1.0)


@dataclass(frozen=True)
class DemoResult:
    out: Path
    table: Path
    renders: Path
    gif: Path
    glb: Path
    seconds: float


def run_demo(
    out: Path,
    outfit: str = "dress",
    data_preset: str = "default",
    train_preset: str = "cpu-quick",
    steps: int | None = None,
    seed: int = 0,
    eval_frames: int = 12,
    num_points: int = 100_000,
    cache: Path | None = None,
) -> DemoResult:
    tic = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or default_cache()
    dataset = demo_dataset(cache, outfit, data_preset, seed)
    say(f"dataset: {dataset.root} ({len(dataset)} frames, {dataset.num_bones} bones)")
    runs = {}
    for method in DEMO_METHODS:
        run_dir = out / "runs" / method
        runs[method] = run_dir
        if finished_run(run_dir):
            say(f"{method}: reusing the finished run in {run_dir}")
            continue
        say(f"training {method} ({train_preset})")
        resume = (run_dir / "checkpoint").exists()
        train_run(dataset.root, run_dir, method, train_preset, steps, "cpu", seed, resume=resume)
    test = dataset.split("test-out")
    motion = test.motions[0]
    frames = [i for i, m in enumerate(test.motions) if m == motion]
    names = [test.frame_ids[i] for i in frames]
    reposed = {}
    for method, run_dir in runs.items():
        say(f"{method}: extracting once and reposing the test-out motion '{motion}'")
        reposed[method] = repose_run(
            run_dir, test.transforms[frames], out / "repose" / method, names, progress=True
        )
    reports = []
    for method, run_dir in runs.items():
        say(f"{method}: evaluating on test-out ({eval_frames} frames)")
        reports.append(
            evaluate_run(run_dir, dataset.root, "test-out", num_points, eval_frames, "cpu")
        )
    table = out / "metrics.md"
    write_text_atomic(
        table,
        f"# invskin demo: {outfit}, test-out (first {eval_frames} frames)\n\n"
        + markdown_table(reports),
    )
    write_text_atomic(
        out / "metrics.json",
        json.dumps([{k: r[k] for k in r if k != "per_frame"} for r in reports], indent=1),
    )
    say("rendering")
    gt = [test.scan(test.index(name)) for name in names]
    posed = {m: [load_mesh(p) for p in reposed[m].mesh_files] for m in runs}
    camera = camera_for(gt)
    picks = np.linspace(0, len(names) - 1, num=min(4, len(names))).round().astype(int)
    tiles, labels = [], []
    for k in picks:
        for label, mesh in [("ground truth", gt[k]), *[(m, posed[m][k]) for m in runs]]:
            tiles.append(render_mesh(mesh, 192, 192, camera))
            labels.append(f"{label} {names[k]}")
    renders = save_png(out / "renders.png", tile_images(tiles, labels, columns=1 + len(runs)))
    gif = out / "ins.gif"
    images = [Image.fromarray(render_mesh(m, 192, 192, camera)) for m in posed["ins"]]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=66, loop=0)
    seconds = time.perf_counter() - tic
    glb = reposed["ins"].glb
    say(f"metrics table:   {table}")
    say(f"renders:         {renders}")
    say(f"animation (GIF): {gif}")
    say(f"animation (GLB): {glb}")
    say(f"done in {seconds / 60:.1f} minutes")
    print(table.read_text())
    return DemoResult(out, table, renders, gif, glb, seconds)
