"""What the viewer shows, computed up front: runs reposed to a dataset split, scans, errors, texture.

For each run (a method that extracts its canonical mesh once): the canonical mesh, its vertices
reposed to every shown frame (``posed`` (F, V, 3)), each posed vertex's distance to that frame's
ground-truth scan (``errors_cm`` (F, V)), per-vertex colours painted on the canonical mesh by
:mod:`invskin.export.texture` (the same box for every run, so the pattern sits at the same place),
and the avatar's own look when it has one (:func:`invskin.export.look.avatar_look`: the imported
character's texture through UVs, the canonical mesh's vertex colours, or the character's colours),
which the viewer shows instead of the painted checker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, UInt8
from tqdm import tqdm

from invskin.data.format import Dataset, load_dataset
from invskin.export.figures import vertex_error_cm
from invskin.export.look import AvatarLook, avatar_look, dataset_appearance
from invskin.export.texture import checker_image, front_box, project_front
from invskin.mesh.io import TriMesh
from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh


@dataclass(frozen=True)
class RunView:
    """One run, ready to draw: ``posed[f]`` shares ``canonical.faces``."""

    name: str
    method: str
    canonical: TriMesh
    posed: Float[np.ndarray, "f v 3"]
    errors_cm: Float[np.ndarray, "f v"]
    texture: UInt8[np.ndarray, "v 3"]
    """The painted checker (front projection)."""
    look: AvatarLook | None = None
    """The avatar's own look (texture through UVs or colours), shown instead of the checker."""


@dataclass(frozen=True)
class ViewData:
    """Everything the viewer shows: frames of one split, their scans, and the runs."""

    frame_names: tuple[str, ...]
    scans: tuple[TriMesh, ...]
    runs: tuple[RunView, ...]

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("the viewer needs at least one run")
        if len(self.scans) != len(self.frame_names) or not self.frame_names:
            raise ValueError("the viewer needs at least one frame and one scan per frame")
        for run in self.runs:
            if run.posed.shape[:2] != (len(self.frame_names), run.canonical.num_vertices):
                raise ValueError(f"run {run.name}: posed vertices do not match frames and mesh")


def pick_frames(
    dataset: Dataset, split: str, motion: str | None, max_frames: int | None
) -> list[int]:
    """Indices (into ``dataset``) of the shown frames: the split's, of one motion if given."""
    if split not in dataset.splits:
        raise ValueError(f"dataset {dataset.root} has no split {split!r}; it has "
                         f"{sorted(dataset.splits)}")  # fmt: skip
    indices = list(dataset.splits[split])
    if motion is not None:
        motions = sorted({dataset.motions[i] for i in indices})
        indices = [i for i in indices if dataset.motions[i] == motion]
        if not indices:
            raise ValueError(f"split {split!r} has no motion {motion!r}; it has {motions}")
    indices = indices[: max_frames or None]
    if not indices:
        raise ValueError(f"split {split!r} of {dataset.root} is empty")
    return indices


def texture_box(dataset: Dataset, fallback: TriMesh):
    """The canonical x-y box the texture is projected over: the ground-truth canonical mesh's
    (or the body prior's) so every run gets the same picture at the same place."""
    if dataset.correspondence is not None:
        return front_box(dataset.correspondence.canonical_vertices.double().numpy())
    if dataset.prior is not None:
        return front_box(dataset.prior.vertices.double().numpy())
    return front_box(fallback.vertices)


def load_view_data(
    runs: Sequence[Path],
    data: Path | None = None,
    split: str = "test-out",
    motion: str | None = None,
    max_frames: int | None = 30,
    texture: np.ndarray | None = None,
    progress: bool = True,
) -> ViewData:
    """Repose every run to the chosen frames and compute their errors (CPU).

    ``data`` defaults to the dataset the first run was trained on. A run without
    ``canonical.ply`` gets it extracted and saved first (as ``invskin extract`` would). Runs of
    ``snarf`` (a new mesh per frame, no shared vertices) are refused with a message.
    """
    if not runs:
        raise ValueError("pass at least one run folder (--runs RUN [RUN ...])")
    loaded = []
    for run_dir in runs:
        run = load_run(Path(run_dir), "cpu")
        if not run.model.pose_free:
            raise ValueError(
                f"{run_dir}: method {run.method} extracts a new mesh per frame, so it has no "
                "canonical mesh to repose; the viewer shows methods that extract once (ins, "
                "snarf-nc, lbs-body, ablations)"
            )
        loaded.append((Path(run_dir), run))
    data = Path(data) if data is not None else Path(loaded[0][1].state["dataset"])
    dataset = load_dataset(data)
    indices = pick_frames(dataset, split, motion, max_frames)
    names = tuple(dataset.frame_ids[i] for i in indices)
    scans = tuple(dataset.scan(i) for i in indices)
    transforms = dataset.transforms[indices].float()
    image = texture if texture is not None else checker_image()
    views, used = [], set()
    appearances: dict[str, object] = {}
    for run_dir, run in loaded:
        if transforms.shape[1] != run.model.skeleton.num_bones:
            raise ValueError(f"{run_dir} has {run.model.skeleton.num_bones} bones but dataset "
                             f"{data} has {transforms.shape[1]}; pass the run's dataset")  # fmt: skip
        mesh, _ = canonical_mesh(run_dir, run.model, None, run.state)
        vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
        with torch.no_grad():
            posed = torch.cat([run.model.repose(vertices, t) for t in transforms.split(16)])
        posed = posed.double().numpy()
        errors = np.stack([
            vertex_error_cm(TriMesh(p, mesh.faces), scan)
            for p, scan in tqdm(list(zip(posed, scans)), desc=f"errors {run_dir.name}",
                                disable=not progress)
        ])  # fmt: skip
        name = run_dir.name if run_dir.name not in used else str(run_dir)
        used.add(name)
        colors = project_front(mesh.vertices, image, texture_box(dataset, mesh))
        look = None
        if texture is None:  # a texture given by the caller replaces the avatar's own look
            trained_on = str(run.state.get("dataset") or data)
            if trained_on not in appearances:
                appearances[trained_on] = dataset_appearance(trained_on)
            look = avatar_look(mesh, appearances[trained_on])
        views.append(RunView(name, run.method, mesh, posed, errors, colors, look))
    return ViewData(names, scans, tuple(views))
