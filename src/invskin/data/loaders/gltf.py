"""Convert a rigged, animated glTF 2.0 character (``.glb`` / ``.gltf``) into invskin format.

Any skeleton (a quadruped, a tail, a rig that lists children before parents):

- **skeleton**: the joints of the first skin, sorted parents-first (depth-first from the roots; a
  joint's parent is its nearest ancestor node that is a joint); canonical transforms are the bind
  pose, ``G_j = IBM_j^-1``; they must be rigid (a scaled joint is an error saying what to do);
- **prior**: the skinned mesh in the bind pose (all triangle primitives of the skinned mesh node),
  its ``JOINTS_0/WEIGHTS_0`` (and ``_1``) as dense per-vertex weights renormalised to sum to 1;
- **frames**: every selected animation sampled at ``fps``
  (:func:`invskin.motion.gltf_anim.sample_animation`); frame f's bone transforms are
  ``T_j(f) = JointWorld_j(f) IBM_j`` (the glTF skinning matrices, canonical-to-posed);
- **scans**: the skinned mesh in each frame (glTF's linear blend skinning; morph targets are not
  applied), with its ground-truth correspondences, or the user's own scans from ``scans_dir``
  named ``<frame_id>.ply|obj`` (units as :mod:`invskin.data.loaders.common`);
- **splits**: frames of the ``test_out_animations`` (default: the last animation when there are
  several) are ``test-out``, every ``frame_interval``-th frame; in the other animations frame
  positions ``k % frame_interval == 0`` are ``train`` and ``== frame_interval // 2`` ``test-within``.

Frame ids are ``<animation>_<k:04d>``. glTF is y up and in metres, like invskin.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from invskin.body.skeleton import Skeleton
from invskin.data.format import BodyPrior, DataError, Dataset, DatasetWriter
from invskin.data.loaders.common import (
    ConversionReport,
    FrameJob,
    interval_split,
    report_info,
    run_frames,
    safe_frame_id,
    scan_to_metres,
    written_splits,
)
from invskin.geometry import lbs
from invskin.mesh.io import TriMesh, load_mesh
from invskin.motion.gltf_anim import (
    GltfScene,
    animation_names,
    joint_parents,
    load_gltf,
    parents_first,
    sample_animation,
    skin_joints,
    world_transforms,
)

TRIANGLES = 4
RIGID_TOLERANCE = 1e-3


def _rigid_problem(matrices: np.ndarray) -> float:
    rotation = matrices[..., :3, :3]
    gram = rotation.swapaxes(-1, -2) @ rotation
    return float(np.abs(gram - np.eye(3)).max())


def _unique_names(names: list[str | None]) -> list[str]:
    out: list[str] = []
    for i, name in enumerate(names):
        base = name or f"joint_{i}"
        candidate, k = base, 1
        while candidate in out:
            k += 1
            candidate = f"{base}_{k}"
        out.append(candidate)
    return out


def read_skinned_mesh(
    scene: GltfScene, num_joints: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Bind-pose vertices, faces and dense (V, J) weights of the first skinned mesh node."""
    gltf = scene.gltf
    node_index = next(
        (i for i, n in enumerate(gltf.nodes or []) if n.mesh is not None and n.skin == 0), None
    )
    if node_index is None:
        raise DataError(f"{scene.path}: no node uses skin 0 with a mesh; export the skinned mesh")
    vertices, faces, weights = [], [], []
    count = 0
    for k, prim in enumerate(gltf.meshes[gltf.nodes[node_index].mesh].primitives):
        if (prim.mode if prim.mode is not None else TRIANGLES) != TRIANGLES:
            continue
        attrs = prim.attributes
        if attrs.POSITION is None or attrs.JOINTS_0 is None or attrs.WEIGHTS_0 is None:
            raise DataError(
                f"{scene.path}: primitive {k} of the skinned mesh lacks POSITION, JOINTS_0 or "
                "WEIGHTS_0; export the mesh with its skin weights"
            )
        v = scene.accessor(attrs.POSITION).astype(np.float64)
        dense = np.zeros((len(v), num_joints))
        sets = [
            (getattr(attrs, f"JOINTS_{i}", None), getattr(attrs, f"WEIGHTS_{i}", None))
            for i in (0, 1)
        ]
        for joints_acc, weights_acc in sets:
            if joints_acc is None or weights_acc is None:
                continue
            joint_ids = scene.accessor(joints_acc).astype(np.int64)
            w = scene.accessor(weights_acc).astype(np.float64)
            if joint_ids.max(initial=0) >= num_joints:
                raise DataError(f"{scene.path}: JOINTS index beyond the skin's {num_joints} joints")
            np.add.at(dense, (np.arange(len(v))[:, None].repeat(4, 1), joint_ids), w)
        if prim.indices is not None:
            f = scene.accessor(prim.indices).astype(np.int64).reshape(-1, 3)
        else:
            f = np.arange(len(v)).reshape(-1, 3)
        vertices.append(v)
        faces.append(f + count)
        weights.append(dense)
        count += len(v)
    if not vertices:
        raise DataError(f"{scene.path}: the skinned mesh has no triangle primitives")
    weights_all = np.concatenate(weights)
    total = weights_all.sum(1, keepdims=True)
    if (total <= 0).any():
        raise DataError(
            f"{scene.path}: {int((total <= 0).sum())} vertices have no skin weight; weight every "
            "vertex to at least one joint"
        )
    return np.concatenate(vertices), np.concatenate(faces), weights_all / total, node_index


def convert_gltf(
    src: Path | str,
    out: Path | str,
    *,
    animations: list[str] | None = None,
    test_out_animations: list[str] | None = None,
    fps: float = 30.0,
    frame_interval: int = 2,
    scans_dir: Path | str | None = None,
    units: str = "auto",
    skip_bad_frames: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> Dataset:
    """Convert a rigged, animated glTF/GLB (module docstring) into a dataset at ``out``."""
    src = Path(src)
    if fps <= 0:
        raise DataError(f"fps must be positive, got {fps}")
    scene = load_gltf(src)
    joints, bind = skin_joints(scene)
    worst = _rigid_problem(bind)
    if worst > RIGID_TOLERANCE:
        raise DataError(
            f"{src}: the bind pose scales or shears joints (off rigid by {worst:.2g}); apply the "
            "scale to the rig before export (Blender: Object > Apply > All Transforms)"
        )
    parents = joint_parents(scene, joints)
    order = parents_first(parents)
    position = {old: new for new, old in enumerate(order)}
    node_names = _unique_names([scene.gltf.nodes[n].name for n in joints])
    skeleton = Skeleton(
        names=tuple(node_names[i] for i in order),
        parents=tuple(-1 if parents[i] < 0 else position[parents[i]] for i in order),
        canonical=torch.from_numpy(bind[order]).float(),
    )
    vertices, faces, weights, _ = read_skinned_mesh(scene, len(joints))
    weights = weights[:, order]
    prior = BodyPrior(
        torch.from_numpy(vertices).float(),
        torch.from_numpy(faces),
        torch.from_numpy(weights).float(),
    )

    names = animation_names(scene)
    if not names:
        raise DataError(f"{src} holds no animation: its animations become the frames")
    chosen = list(animations) if animations else names
    unknown = [a for a in chosen + list(test_out_animations or []) if a not in names]
    if unknown:
        raise DataError(f"{src}: no animations {unknown}; it has {names}")
    test_out = set(test_out_animations or ([chosen[-1]] if len(chosen) > 1 else []))
    inverse_bind = np.linalg.inv(bind)
    frames: list[tuple[str, str, np.ndarray]] = []
    splits: dict[str, list[str]] = {"train": [], "test-within": [], "test-out": []}
    for anim in chosen:
        world = world_transforms(sample_animation(scene, names.index(anim), fps), scene.parent)
        transforms = (world[:, joints] @ inverse_bind)[:, order]
        kept, held = interval_split(len(transforms), frame_interval)
        label = safe_frame_id(anim)
        for k in sorted(set(kept) | (set() if anim in test_out else set(held))):
            frame_id = f"{label}_{k:04d}"
            frames.append((frame_id, anim, transforms[k]))
            if anim in test_out:
                splits["test-out"].append(frame_id)
            else:
                splits["train" if k in kept else "test-within"].append(frame_id)

    report = ConversionReport()
    scans = Path(scans_dir) if scans_dir is not None else None
    v = torch.from_numpy(vertices)
    w = torch.from_numpy(weights)
    jobs = [
        FrameJob(frame_id, src, anim, _frame_loader(frame_id, t, v, w, faces, scans, units, report))
        for frame_id, anim, t in frames
    ]
    info = {"gltf": str(src), "animations": chosen, "fps": fps, "own_scans": scans is not None}
    with DatasetWriter(
        out, name or src.stem, skeleton, prior=prior, source=f"gltf {src}", info=info
    ) as writer:
        run_frames(
            writer,
            jobs,
            source=src,
            skip_bad_frames=skip_bad_frames,
            report=report,
            progress=progress,
            total=len(jobs),
        )
        writer.set_splits(written_splits(splits, report))
        if scans is None:
            kept_ids = set(report.written)
            posed = [
                lbs(v, w, torch.from_numpy(t)).numpy() for fid, _, t in frames if fid in kept_ids
            ]
            writer.set_correspondence(vertices, faces, np.stack(posed))
        writer.info.update(report_info(report))
        return writer.finish()


def _frame_loader(
    frame_id: str,
    transforms: np.ndarray,
    vertices: torch.Tensor,
    weights: torch.Tensor,
    faces: np.ndarray,
    scans: Path | None,
    units: str,
    report: ConversionReport,
) -> Callable[[], tuple[TriMesh, np.ndarray]]:
    def load() -> tuple[TriMesh, np.ndarray]:
        worst = _rigid_problem(transforms)
        if worst > RIGID_TOLERANCE:
            raise DataError(
                f"frame {frame_id}: the animation scales joints (off rigid by {worst:.2g}); "
                "invskin needs rigid bone motion: remove scale keys"
            )
        if scans is None:
            posed = lbs(vertices, weights, torch.from_numpy(transforms)).numpy()
            return TriMesh(posed, faces), transforms
        path = next(
            (
                scans / f"{frame_id}{s}"
                for s in (".ply", ".obj")
                if (scans / f"{frame_id}{s}").is_file()
            ),
            None,
        )
        if path is None:
            raise DataError(f"{scans} has no scan {frame_id}.ply or .obj for this frame")
        return scan_to_metres(load_mesh(path), str(path), units, report), transforms

    return load
