"""Export a trained run's reposed sequence as a GLB: what ``invskin export`` does.

``skinned`` (default): the canonical mesh once, its learned skinning weights (4 largest per vertex),
the skeleton and the motion as joint animation, plus at most 8 corrective morph targets fitted to
the model's output (:mod:`invskin.export.skinned`). ``morph``: the per-frame morph-target GLB of
:mod:`invskin.export.glb` (one target per frame; exact, but grows with every frame).

Both carry the avatar's look (:func:`invskin.export.look.avatar_look`): the source's texture
through UVs (skinned only; UV seams split the canonical mesh's vertices, the copies share their
vertex's skinning), or per-vertex colours (``COLOR_0``), or the source's plain base colour.

A run trained on a character the import resized (``import gltf``: heights outside human size)
is written back at the file's size: mesh, skeleton, motion and correctives scaled by the run's
``export_scale``.

The report gives the vertex error of the skinned file against the model output, evaluated from
the file as written (read back, glTF skinning formula), with and without the correctives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from invskin.export.glb import write_glb
from invskin.export.look import AvatarLook, LookMode, avatar_look, dataset_appearance
from invskin.export.skinned import (
    MAX_TARGETS,
    pose_skinned_glb,
    read_skinned_glb,
    write_skinned_glb,
)
from invskin.geometry import scale_translations
from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh

ExportFormat = Literal["skinned", "morph"]


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    frames: int
    vertices: int
    bytes: int
    targets: int
    """Corrective morph targets (skinned) or per-frame targets (morph)."""
    error_mean_m: float | None = None
    """Skinned only: mean vertex distance to the model output over all frames, with correctives."""
    error_max_m: float | None = None
    error_mean_plain_m: float | None = None
    """Skinned only: the same without the correctives (4-weight skinning alone)."""
    error_max_plain_m: float | None = None
    seconds: float = 0.0
    look: str | None = None
    """What the file's look is and where it comes from, in words (None: no look)."""
    scale: float = 1.0
    """Lengths in the file per length of the run's dataset (``export_scale``); errors are in the
    file's lengths."""

    def summary(self) -> str:
        text = (
            f"{self.path}: {self.format} GLB, {self.frames} frames, {self.vertices} vertices, "
            f"{self.targets} morph targets, {self.bytes / 1e6:.2f} MB"
        )
        if self.error_mean_m is not None:
            text += (
                f"; vertex error vs the model: mean {self.error_mean_m * 1000:.2f} mm, max "
                f"{self.error_max_m * 1000:.2f} mm (without correctives: mean "
                f"{self.error_mean_plain_m * 1000:.2f} mm, max {self.error_max_plain_m * 1000:.2f} mm)"
            )
        if self.scale != 1.0:
            text += f"; written at the source file's size ({self.scale:.4g} x the dataset's)"
        return text + f"; {self.look or 'no look (plain material)'}"


def skinned_errors(path: Path, posed: np.ndarray) -> tuple[float, float, float, float]:
    """Mean and max vertex error of the GLB at ``path`` against ``posed``, with/without correctives."""
    glb = read_skinned_glb(path)
    out = []
    for correctives in (True, False):
        error = np.linalg.norm(pose_skinned_glb(glb, correctives) - posed, axis=-1)
        out += [float(error.mean()), float(error.max())]
    return out[0], out[1], out[2], out[3]


def export_run(
    run_dir: Path,
    transforms: torch.Tensor,
    out: Path,
    format: ExportFormat = "skinned",
    correctives: int = MAX_TARGETS,
    fps: float = 30.0,
    batch: int = 16,
    device: str = "cpu",
    look: LookMode = "auto",
) -> ExportReport:
    """Repose the run's canonical mesh to ``transforms`` (F, J, 4, 4) and write ``out`` (GLB).

    ``look`` picks what the avatar looks like (:func:`invskin.export.look.avatar_look`; the
    source look is read from the run's dataset).
    """
    loaded = load_run(run_dir, device)
    model = loaded.model
    if not model.pose_free:
        raise ValueError(
            f"method {loaded.method} has a pose-conditioned shape (one mesh per frame, no shared "
            "vertices): it cannot be exported as one animated mesh; export an ins or snarf-nc run"
        )
    transforms = transforms.to(device=device, dtype=torch.float32)
    if transforms.ndim != 4 or transforms.shape[1] != model.skeleton.num_bones:
        raise ValueError(
            f"the poses have shape {tuple(transforms.shape)} but the run's skeleton has "
            f"{model.skeleton.num_bones} bones; pass poses for the run's rig"
        )
    tic = time.perf_counter()
    mesh, _ = canonical_mesh(run_dir, model, None, loaded.state)
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)
    posed = (
        torch.cat(
            [
                model.repose(vertices, transforms[i : i + batch]).cpu()
                for i in range(0, len(transforms), batch)
            ]
        )
        .double()
        .numpy()
    )
    scale = float(loaded.state.get("export_scale", 1.0))
    skeleton = model.skeleton
    if scale != 1.0:
        posed = posed * scale
        transforms = scale_translations(transforms, scale)
        skeleton = replace(skeleton, canonical=scale_translations(skeleton.canonical, scale))
    out = Path(out)
    source = dataset_appearance(loaded.state.get("dataset")) if look != "none" else None
    if format == "morph":
        # One morph target per frame over the mesh's own vertices: colours only.
        styled = avatar_look(mesh, source, "colours" if look == "auto" else look)
        colors = None
        if styled is not None and styled.colors is not None:
            colors = np.round(styled.colors * 255).astype(np.uint8)
        write_glb(out, posed, mesh.faces, fps=fps, colors=colors)
        return ExportReport(
            out, format, len(posed), len(vertices), out.stat().st_size, len(posed) - 1,
            seconds=time.perf_counter() - tic, look=_described(styled), scale=scale,
        )  # fmt: skip
    if format != "skinned":
        raise ValueError(f"format must be 'skinned' or 'morph', got {format!r}")
    with torch.no_grad():
        weights = model.weight_field()(vertices).cpu().double().numpy()
    styled = avatar_look(mesh, source, look)
    faces, uv, colors, texture, factor = mesh.faces, None, None, None, None
    mesh_vertices = mesh.vertices * scale
    if styled is not None:
        # Seam copies share their vertex's position, skinning and motion.
        mesh_vertices, weights = styled.expand(mesh_vertices), styled.expand(weights)
        posed = styled.expand(posed, axis=1)
        faces, uv, colors, texture = styled.faces, styled.uv, styled.colors, styled.texture
        factor = styled.base_color_factor
    stored = write_skinned_glb(
        out,
        mesh_vertices,
        faces,
        skeleton,
        weights,
        transforms.cpu().double().numpy(),
        posed,
        max_targets=correctives,
        fps=fps,
        uv=uv,
        colors=colors,
        texture=texture,
        base_color_factor=factor,
    )
    mean, worst, mean_plain, worst_plain = skinned_errors(out, posed)
    return ExportReport(
        out,
        format,
        len(posed),
        len(mesh_vertices),
        out.stat().st_size,
        len(stored.targets),
        mean,
        worst,
        mean_plain,
        worst_plain,
        time.perf_counter() - tic,
        _described(styled),
        scale,
    )


def _described(styled: AvatarLook | None) -> str | None:
    return styled.summary() if styled is not None else None
