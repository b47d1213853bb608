"""Extraction and reposing of trained runs: what ``invskin extract`` and ``invskin repose`` do.

Pose-free methods (``ins``, ``snarf-nc``, ``lbs-body``, ablations): marching cubes **once** on the
canonical occupancy, then every frame is the canonical vertices pushed through ``PIN_c -> LBS ->
PIN_d``: one mesh per frame with identical faces, and a GLB animation.

``snarf`` (pose-conditioned shape): marching cubes **per frame** in posed space, every grid query
root-found back to canonical space, coarse-to-fine near the surface (as SNARF's MISE) at the same
fine resolution; frames share no topology, so there is no GLB and no correspondence.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from invskin.export.glb import write_glb
from invskin.fileio import write_text_atomic
from invskin.geometry import lbs
from invskin.mesh.coarse_to_fine import evaluate_grid_coarse_to_fine
from invskin.mesh.extract import extract_mesh, mesh_from_grid
from invskin.mesh.io import TriMesh, load_mesh, save_mesh
from invskin.models.animatable import AnimatableModel
from invskin.models.fast_repose import FastReposer, fast_path_supports
from invskin.runs.folder import load_run

CANONICAL_MESH = "canonical.ply"
CANONICAL_RECORD = "canonical.json"
"""Beside the canonical mesh: the checkpoint (step, SHA-256 of its weights) and resolution it
was extracted from."""

logger = logging.getLogger("invskin")


def extract_canonical(model: AnimatableModel, resolution: int) -> TriMesh:
    """The canonical mesh of a pose-free model (largest component), extracted once; a model with a
    colour field paints each vertex with the field's colour there (``TriMesh.colors``)."""
    if not model.pose_free:
        raise ValueError(
            f"method {model.config.method} has a pose-conditioned shape: it has no single canonical "
            "mesh; 'invskin repose' extracts one mesh per frame instead"
        )
    lo, hi = model.bounds
    mesh = extract_mesh(
        lambda x: model.shape_logits(x[None])[0],
        lo,
        hi,
        resolution,
        chunk_size=131_072,
        keep_largest_component=True,
    )
    if model.colour is None:
        return mesh
    colours = vertex_colours(model, torch.as_tensor(mesh.vertices, dtype=torch.float32))
    return TriMesh(mesh.vertices, mesh.faces, colors=colours.numpy())


@torch.no_grad()
def vertex_colours(model: AnimatableModel, vertices: torch.Tensor) -> torch.Tensor:
    """The colour field's RGB (V, 3) in [0, 1] at canonical ``vertices`` (V, 3)."""
    if model.colour is None:
        raise ValueError(f"the {model.config.method} model has no colour field")
    return torch.cat([model.colour(part) for part in vertices.split(262_144)])


def posed_bounds(model: AnimatableModel, transforms: torch.Tensor, padding: float = 0.15):
    """A box around the posed body: the prior body skinned by its own weights, padded."""
    posed = lbs(model.prior_vertices, model.prior_weights, transforms)
    return posed.min(0).values - padding, posed.max(0).values + padding


def extract_posed(
    model: AnimatableModel, transforms: torch.Tensor, resolution: int, factor: int = 4
) -> tuple[TriMesh, int]:
    """Per-frame extraction in posed space (``snarf``): root finding for every grid query.

    The fine grid has ``resolution`` nodes per axis (rounded to ``(coarse - 1) * factor + 1``).
    Returns the mesh and the number of field evaluations.
    """
    coarse = max(2, round((resolution - 1) / factor) + 1)
    lo, hi = posed_bounds(model, transforms)
    field = model.weight_field()
    frame = transforms[None]

    def posed_field(points: torch.Tensor) -> torch.Tensor:
        return model.posed_logits(points[None], frame, field)[0]

    values, evaluations = evaluate_grid_coarse_to_fine(
        posed_field, lo, hi, coarse, factor, chunk_size=32_768, device=transforms.device
    )
    return mesh_from_grid(values, lo, hi, keep_largest_component=True), evaluations


def write_sequence(
    out_dir: Path,
    names: list[str],
    posed: np.ndarray,
    faces: np.ndarray,
    glb: bool,
    timing: dict,
) -> tuple[list[Path], Path | None]:
    """What ``invskin repose`` writes for one sequence of a pose-free model: ``<name>.ply`` per
    frame (``posed`` (F, V, 3), shared ``faces``), ``animation.glb`` if ``glb``, ``timing.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [
        save_mesh(out_dir / f"{name}.ply", TriMesh(verts.astype(np.float64), faces))
        for name, verts in zip(names, posed)
    ]
    path = None
    if glb:
        path = out_dir / "animation.glb"
        write_glb(path, posed, faces)
    write_text_atomic(out_dir / "timing.json", json.dumps(timing, indent=1))
    return files, path


def reposer_for(model: AnimatableModel):
    """``(vertices, transforms) -> posed``: the CPU fast path (:mod:`invskin.models.fast_repose`)
    on CPU where it supports the model's couplings, the reference ``model.repose`` otherwise."""
    if model.bounds.device.type == "cpu" and fast_path_supports(model):
        return FastReposer(model).repose
    return model.repose


@dataclass(frozen=True)
class ReposeResult:
    out_dir: Path
    mesh_files: list[Path]
    glb: Path | None
    seconds_per_frame: float
    extraction_seconds: float


def canonical_mesh(run_dir: Path, model: AnimatableModel, resolution: int | None, state: dict):
    """The run's canonical mesh and the seconds spent extracting it (0 when reused).

    ``RUN/canonical.ply`` is reused only when ``RUN/canonical.json`` says it was extracted from the
    checkpoint loaded now (``state["weights_sha256"]``, set by :func:`~invskin.runs.folder.load_run`)
    and ``resolution`` is None; otherwise (a resolution asked for, a resumed or retrained run, a mesh
    from an older invskin) it is extracted again, at ``resolution``, else the resolution recorded
    with the old mesh, else the run's default, and saved with a new record.
    """
    path = Path(run_dir) / CANONICAL_MESH
    record_path = Path(run_dir) / CANONICAL_RECORD
    weights = state.get("weights_sha256")
    record = _read_record(record_path)
    if path.exists() and record is not None and weights is not None:
        same_weights = record.get("weights_sha256") == weights
        if same_weights and resolution is None:
            return load_mesh(path), 0.0
        if not same_weights:
            logger.warning(
                "%s was extracted from the checkpoint of step %s, not from the current one (step "
                "%s): extracting it again",
                path,
                record.get("step"),
                state.get("step"),
            )
    elif path.exists():
        logger.warning(
            "%s has no record of its checkpoint (%s): extracting it again", path, record_path
        )
    res = (
        resolution or (record or {}).get("resolution") or int(state.get("extract_resolution", 256))
    )
    tic = time.perf_counter()
    mesh = extract_canonical(model, int(res))
    seconds = time.perf_counter() - tic
    record_path.unlink(missing_ok=True)  # the mesh and its record are replaced one after the other
    save_mesh(path, mesh)
    write_text_atomic(
        record_path,
        json.dumps(
            {"step": state.get("step"), "weights_sha256": weights, "resolution": int(res)},
            indent=1,
        ),
    )
    return mesh, seconds


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def repose_run(
    run_dir: Path,
    transforms: torch.Tensor,
    out_dir: Path,
    frame_names: list[str] | None = None,
    batch: int = 16,
    resolution: int | None = None,
    write_glb: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> ReposeResult:
    """Repose a run to every frame of ``transforms`` (F, J, 4, 4); one PLY per frame in ``out_dir``."""
    from tqdm import tqdm

    loaded = load_run(run_dir, device)
    model = loaded.model
    transforms = transforms.to(device=device, dtype=torch.float32)
    if transforms.shape[-3] != model.skeleton.num_bones:
        raise ValueError(
            f"the poses have {transforms.shape[-3]} bones but the run's skeleton has "
            f"{model.skeleton.num_bones}; pass poses of the dataset the run was trained on"
        )
    names = frame_names or [f"frame_{i:04d}" for i in range(len(transforms))]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    timing: dict = {"method": loaded.method, "frames": len(transforms), "device": device}
    if model.pose_free:
        mesh, extraction = canonical_mesh(run_dir, model, resolution, loaded.state)
        vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)
        repose = reposer_for(model)
        frames = []
        tic = time.perf_counter()
        for start in tqdm(range(0, len(transforms), batch), desc="repose", disable=not progress):
            frames.append(repose(vertices, transforms[start : start + batch]).cpu())
        posed = torch.cat(frames).numpy()
        seconds = (time.perf_counter() - tic) / len(transforms)
        timing |= {
            "canonical_vertices": mesh.num_vertices,
            "extraction_seconds": extraction,
            "seconds_per_frame": seconds,
        }
        files, glb = write_sequence(out_dir, names, posed, mesh.faces, write_glb, timing)
    else:
        res = resolution or int(loaded.state.get("extract_resolution", 256))
        total = 0.0
        for name, frame in tqdm(list(zip(names, transforms)), desc="extract", disable=not progress):
            tic = time.perf_counter()
            mesh, _ = extract_posed(model, frame, res)
            total += time.perf_counter() - tic
            files.append(save_mesh(out_dir / f"{name}.ply", mesh))
        seconds, extraction, glb = total / len(transforms), 0.0, None
        timing |= {"resolution": res, "seconds_per_frame": seconds}
        write_text_atomic(out_dir / "timing.json", json.dumps(timing, indent=1))
    return ReposeResult(out_dir, files, glb, seconds, extraction)
