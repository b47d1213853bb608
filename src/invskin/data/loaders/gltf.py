"""Convert a rigged, animated glTF 2.0 character (``.glb`` / ``.gltf``) into invskin format.

Any skeleton (a quadruped, a tail, a rig that lists children before parents):

- **skin**: ``skin`` (index or name) or by default the skin whose meshes have the most vertices;
  a file whose skin has no ``inverseBindMatrices`` is refused (glTF then binds every joint at the
  origin, which gives no skeleton);
- **skeleton**: the skin's joints, sorted parents-first (depth-first from the roots; a joint's
  parent is its nearest ancestor node that is a joint, so non-joint nodes inside the hierarchy are
  skipped); canonical transforms are the bind pose ``IBM_j^-1`` with each joint's **uniform scale
  factored out** (:func:`factor_uniform_scale`: a scaled armature node above the joints, scaled
  joints, scaled inverse bind matrices); a non-uniform scale or a shear is refused, naming the
  joint;
- **prior**: every triangle primitive of the mesh nodes that use the skin (or the ``meshes``
  chosen by mesh or node name), merged, in the bind pose, with ``JOINTS_0/WEIGHTS_0`` (and ``_1``)
  as dense per-vertex weights renormalised to sum to 1. The skinned node's own transform and its
  parents' are ignored, as glTF specifies. Parts with open edges get a warning
  (:func:`open_edge_report`): occupancy learns closed surfaces;
- **frames**: every selected animation sampled at ``fps``
  (:func:`invskin.motion.gltf_anim.sample_animation`); frame f's bone transforms are
  ``T_j(f) = JointWorld_j(f) IBM_j`` (the glTF skinning matrices, canonical-to-posed), which must
  be rigid (an animated scale is an error naming the joint);
- **upright**: files exported z up bind their mesh lying down; the bind space is turned by a
  quarter or half turn so that what the node rest pose shows as up is +y (:func:`upright_rotation`;
  the frames' transforms are re-expressed, the posed meshes do not change);
- **units**: mesh, bind-pose and animation translations are scaled together by ``units``
  (``m``, ``cm``, ``mm``); ``auto`` reads the bind-pose mesh's bounding-box diagonal
  (:func:`detect_units`);
- **size**: a character whose bind-pose height (after ``units``) lies outside
  :data:`PRESET_HEIGHTS` is scaled uniformly to :data:`WORKING_HEIGHT` (``height="auto"``), as
  the training presets are set for human-sized figures (1 and 6 cm sample bands, a 25 cm margin
  around the body, a 5 cm prior radius, extraction grids over that box); ``height=H`` scales it to
  ``H`` metres, ``height="keep"`` keeps the file's size. The factor is in the dataset's info
  (``resized``; ``metres_per_unit`` is the dataset's length per file unit, factor included), so
  the file's figure is the dataset's divided by it;
- **scans**: the skinned mesh in each frame (glTF's linear blend skinning; morph targets are not
  applied), with its ground-truth correspondences, or the user's own scans from ``scans_dir``
  named ``<frame_id>.ply|obj`` (scaled by ``units``, or detected per scan as in
  :mod:`invskin.data.loaders.common` when ``auto``);
- **look**: the character's UVs and base-colour texture, or its vertex colours, with its
  canonical (bind-pose) surface, written to ``DATA/appearance/``
  (:mod:`invskin.data.loaders.appearance`, :mod:`invskin.data.loaders.gltf_look`); exports and
  the viewer carry them onto a trained avatar (:mod:`invskin.export.look`);
- **splits**: frames of the ``test_out_animations`` (default: the last animation when there are
  several) are ``test-out``, every ``frame_interval``-th frame; with a single animation and no
  ``test_out_animations``, the last ``test_out_window`` fraction of its frames is ``test-out``.
  Elsewhere frame positions ``k % frame_interval == 0`` are ``train`` and
  ``== frame_interval // 2`` ``test-within``.

Frame ids are ``<animation>_<k:04d>``. glTF is y up, like invskin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from invskin.body.skeleton import Skeleton
from invskin.data.format import BodyPrior, DataError, Dataset, DatasetWriter
from invskin.data.loaders.appearance import appearance_kind, save_appearance
from invskin.data.loaders.common import (
    UNIT_SCALE,
    ConversionReport,
    FrameJob,
    interval_split,
    report_info,
    run_frames,
    safe_frame_id,
    scan_to_metres,
    written_splits,
)
from invskin.data.loaders.gltf_look import look_vertex_colours, read_source_appearance
from invskin.geometry import lbs, scale_translations
from invskin.mesh.io import TriMesh, load_mesh
from invskin.motion.gltf_anim import (
    GltfScene,
    animation_names,
    joint_parents,
    load_gltf,
    parents_first,
    sample_animation,
    upright_rotation,
    world_transforms,
)

logger = logging.getLogger("invskin.data")

TRIANGLES = 4
RIGID_TOLERANCE = 1e-3
METRES_MAX_DIAGONAL = 10.0
CENTIMETRES_MAX_DIAGONAL = 400.0
MILLIMETRES_MAX_DIAGONAL = 10_000.0


@dataclass(frozen=True)
class SkinnedMesh:
    """The merged bind-pose mesh of a skin: vertices (V, 3), faces (T, 3), weights (V, J) in the
    skin's joint order, per part (``mesh name/primitive``) its range of faces, and per part the
    glTF primitive it came from: ``(mesh index, primitive index, first vertex)``."""

    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    parts: tuple[tuple[str, int, int], ...]
    primitives: tuple[tuple[int, int, int], ...] = ()


def _rigid_problem(matrices: np.ndarray) -> float:
    rotation = matrices[..., :3, :3]
    gram = rotation.swapaxes(-1, -2) @ rotation
    return float(np.abs(gram - np.eye(3)).max(initial=0.0))


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


def factor_uniform_scale(
    matrices: np.ndarray, names: list[str], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split (J, 4, 4) affine transforms into rigid ones and per-joint uniform scales.

    ``M = [s R | t]`` becomes ``[R | t]`` and ``s`` (the cube root of the determinant). A joint
    whose ``M / s`` is not a rotation (non-uniform scale, shear) or whose determinant is not
    positive (a mirror) raises a :class:`DataError` naming the joint.
    """
    linear = matrices[:, :3, :3]
    det = np.linalg.det(linear)
    for j in np.flatnonzero(~(det > 1e-12)):
        raise DataError(
            f"{where}: joint {names[j]!r} is mirrored or collapsed in the bind pose (determinant "
            f"{det[j]:.3g}); apply the transforms in the modelling tool before export "
            "(Blender: Object > Apply > All Transforms)"
        )
    scale = np.cbrt(det)
    rigid = matrices.copy()
    rigid[:, :3, :3] = linear / scale[:, None, None]
    for j in range(len(matrices)):
        off = _rigid_problem(rigid[j])
        if off > RIGID_TOLERANCE:
            axes = np.linalg.norm(linear[j], axis=0)
            raise DataError(
                f"{where}: joint {names[j]!r} is scaled non-uniformly or sheared in the bind pose "
                f"(axis scales {np.array2string(axes, precision=4)}, off rigid by {off:.2g} after "
                "removing its uniform scale); only uniform scales are factored out: apply the "
                "scale in the modelling tool before export (Blender: Object > Apply > All "
                "Transforms)"
            )
    return rigid, scale


def detect_units(diagonal: float, where: str) -> float:
    """Metres per file unit from the bind-pose mesh's bounding-box diagonal: up to 10 metres,
    up to 400 centimetres, up to 10,000 millimetres; anything else asks for ``--units``."""
    if 0.0 < diagonal <= METRES_MAX_DIAGONAL:
        return 1.0
    if diagonal <= CENTIMETRES_MAX_DIAGONAL:
        return UNIT_SCALE["cm"]
    if diagonal <= MILLIMETRES_MAX_DIAGONAL:
        return UNIT_SCALE["mm"]
    raise DataError(
        f"{where}: the bind-pose mesh's bounding-box diagonal is {diagonal:.4g}, neither metres, "
        "centimetres nor millimetres of a character; pass --units m, cm or mm"
    )


def unit_scale(units: str, vertices: np.ndarray, where: str) -> float:
    """Metres per file unit: the given ``units``, or detected (:func:`detect_units`)."""
    if units not in ("auto", *UNIT_SCALE):
        raise DataError(f"units must be 'auto', 'm', 'cm' or 'mm', got {units!r}")
    if units != "auto":
        return UNIT_SCALE[units]
    diagonal = float(np.linalg.norm(vertices.max(0) - vertices.min(0))) if len(vertices) else 0.0
    return detect_units(diagonal, where)


PRESET_HEIGHTS = (0.5, 3.0)
"""Bind-pose heights (metres) that ``height="auto"`` keeps; others are scaled to
:data:`WORKING_HEIGHT`."""
WORKING_HEIGHT = 1.7


def resize_factor(height: float | str, figure: float, where: str) -> float:
    """The uniform factor applied to a character ``figure`` metres tall (module docstring,
    **size**): ``"auto"``, ``"keep"`` or a height in metres."""
    if height == "keep":
        return 1.0
    if figure <= 0.0:
        raise DataError(f"{where}: the bind-pose mesh has no height along the up axis")
    if height == "auto":
        low, high = PRESET_HEIGHTS
        return 1.0 if low <= figure <= high else WORKING_HEIGHT / figure
    try:
        wanted = float(height)
    except (TypeError, ValueError):
        wanted = float("nan")
    if not (np.isfinite(wanted) and wanted > 0.0):
        raise DataError(
            f"height must be 'auto', 'keep' or a positive number of metres, got {height!r}"
        )
    return wanted / figure


def skin_meshes(scene: GltfScene) -> dict[int, list[int]]:
    """For each skin index, the mesh nodes that use it (file order)."""
    out: dict[int, list[int]] = {k: [] for k in range(len(scene.gltf.skins or []))}
    for i, node in enumerate(scene.gltf.nodes or []):
        if node.mesh is not None and node.skin is not None and node.skin in out:
            out[node.skin].append(i)
    return out


def _vertex_count(scene: GltfScene, node: int) -> int:
    mesh = scene.gltf.meshes[scene.gltf.nodes[node].mesh]
    return sum(
        scene.gltf.accessors[p.attributes.POSITION].count
        for p in mesh.primitives
        if p.attributes.POSITION is not None
    )


def _skin_label(scene: GltfScene, k: int) -> str:
    name = scene.gltf.skins[k].name
    return f"{k} ({name!r})" if name else str(k)


def select_skin(scene: GltfScene, skin: str | int | None) -> int:
    """The skin to import: by index or name, or by default the one whose mesh nodes hold the most
    vertices (the first on a tie)."""
    skins = scene.gltf.skins or []
    if not skins:
        raise DataError(f"{scene.path} has no skin: it must be a rigged (skinned) character")
    labels = ", ".join(_skin_label(scene, k) for k in range(len(skins)))
    if skin is None:
        users = skin_meshes(scene)
        counts = [sum(_vertex_count(scene, n) for n in users[k]) for k in range(len(skins))]
        return int(np.argmax(counts))
    if isinstance(skin, int) or str(skin).isdigit():
        index = int(skin)
        if not 0 <= index < len(skins):
            raise DataError(f"{scene.path}: no skin {index}; it has {labels}")
        return index
    matches = [k for k, s in enumerate(skins) if s.name == skin]
    if not matches:
        raise DataError(f"{scene.path}: no skin named {skin!r}; it has {labels}")
    return matches[0]


def select_mesh_nodes(scene: GltfScene, skin: int, meshes: list[str] | None) -> list[int]:
    """The mesh nodes using ``skin``: all of them, or those whose node or mesh name (or node
    index) is in ``meshes``."""
    gltf = scene.gltf
    users = skin_meshes(scene)[skin]

    def labels(node: int) -> set[str]:
        out = {str(node)}
        if gltf.nodes[node].name:
            out.add(gltf.nodes[node].name)
        if gltf.meshes[gltf.nodes[node].mesh].name:
            out.add(gltf.meshes[gltf.nodes[node].mesh].name)
        return out

    described = [f"node {n} {sorted(labels(n) - {str(n)})}" for n in users]
    if not users:
        raise DataError(
            f"{scene.path}: no mesh node uses skin {_skin_label(scene, skin)}; export the skinned "
            "mesh, or pick another skin with --skin"
        )
    if not meshes:
        return users
    chosen = [n for n in users if labels(n) & set(meshes)]
    unknown = [m for m in meshes if not any(m in labels(n) for n in users)]
    if unknown:
        raise DataError(
            f"{scene.path}: meshes {unknown} are not skinned by skin {_skin_label(scene, skin)}; "
            f"its mesh nodes are {described}"
        )
    return chosen


def _dense_weights(scene: GltfScene, attrs, count: int, num_joints: int) -> np.ndarray:
    dense = np.zeros((count, num_joints))
    for i in (0, 1):
        joints_acc = getattr(attrs, f"JOINTS_{i}", None)
        weights_acc = getattr(attrs, f"WEIGHTS_{i}", None)
        if joints_acc is None or weights_acc is None:
            continue
        joint_ids = scene.accessor(joints_acc).astype(np.int64)
        w = scene.accessor(weights_acc).astype(np.float64)
        if joint_ids.max(initial=0) >= num_joints:
            raise DataError(f"{scene.path}: JOINTS index beyond the skin's {num_joints} joints")
        np.add.at(dense, (np.arange(count)[:, None].repeat(4, 1), joint_ids), w)
    return dense


def read_skinned_mesh(scene: GltfScene, nodes: list[int], num_joints: int) -> SkinnedMesh:
    """Bind-pose vertices, faces and dense (V, J) weights of the triangle primitives of ``nodes``
    (merged; the nodes' own transforms are ignored, as glTF specifies for skinned meshes)."""
    gltf = scene.gltf
    vertices, faces, weights, parts, primitives = [], [], [], [], []
    count = num_faces = 0
    for node in nodes:
        mesh_index = gltf.nodes[node].mesh
        mesh = gltf.meshes[mesh_index]
        label = mesh.name or gltf.nodes[node].name or f"mesh {gltf.nodes[node].mesh}"
        for k, prim in enumerate(mesh.primitives):
            if (prim.mode if prim.mode is not None else TRIANGLES) != TRIANGLES:
                continue
            attrs = prim.attributes
            if attrs.POSITION is None or attrs.JOINTS_0 is None or attrs.WEIGHTS_0 is None:
                raise DataError(
                    f"{scene.path}: primitive {k} of mesh {label!r} lacks POSITION, JOINTS_0 or "
                    "WEIGHTS_0; export the mesh with its skin weights"
                )
            v = scene.accessor(attrs.POSITION).astype(np.float64)
            if prim.indices is not None:
                f = scene.accessor(prim.indices).astype(np.int64).reshape(-1, 3)
            else:
                f = np.arange(len(v) - len(v) % 3).reshape(-1, 3)
            vertices.append(v)
            faces.append(f + count)
            weights.append(_dense_weights(scene, attrs, len(v), num_joints))
            parts.append((f"{label}/{k}", num_faces, num_faces + len(f)))
            primitives.append((mesh_index, k, count))
            count += len(v)
            num_faces += len(f)
    if not vertices:
        raise DataError(f"{scene.path}: the skinned mesh has no triangle primitives")
    weights_all = np.concatenate(weights)
    total = weights_all.sum(1, keepdims=True)
    if (total <= 0).any():
        raise DataError(
            f"{scene.path}: {int((total <= 0).sum())} vertices have no skin weight; weight every "
            "vertex to at least one joint"
        )
    return SkinnedMesh(
        np.concatenate(vertices),
        np.concatenate(faces),
        weights_all / total,
        tuple(parts),
        tuple(primitives),
    )


def open_edges(faces: np.ndarray) -> int:
    """Number of edges used by exactly one triangle (0 for a closed surface)."""
    if len(faces) == 0:
        return 0
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return int((counts == 1).sum())


def open_edge_report(mesh: SkinnedMesh) -> list[tuple[str, int]]:
    """Parts of ``mesh`` with open edges and how many (edges shared by parts count as closed)."""
    # Parts often share vertices only by position (split at material seams): weld first.
    _, welded = np.unique(np.round(mesh.vertices, 6), axis=0, return_inverse=True)
    faces = welded.reshape(-1)[mesh.faces]
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, inverse, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    single = (counts[inverse.reshape(-1)] == 1).reshape(-1, 3).sum(1)
    return [(name, int(single[a:b].sum())) for name, a, b in mesh.parts if single[a:b].sum() > 0]


def one_clip_split(count: int, window: float) -> int:
    """First frame of the held-out time window (the last ``window`` fraction of ``count``
    frames; ``count`` when the window is empty)."""
    if not 0.0 <= window < 1.0:
        raise DataError(f"test_out_window must be in [0, 1), got {window}")
    if window == 0.0 or count < 2:
        return count
    return min(max(int(np.ceil(count * (1.0 - window))), 1), count - 1)


def split_frames(
    count: int, interval: int, held_out: bool, window_start: int
) -> list[tuple[int, str]]:
    """(frame position, split) of one animation: ``held_out`` animations give every
    ``interval``-th frame to test-out; otherwise frames from ``window_start`` on are test-out
    likewise and the others train / test-within (:func:`interval_split`)."""
    kept, held = interval_split(count, interval)
    start = 0 if held_out else window_start
    out = [(k, "test-out") for k in interval_split(count - start, interval)[0]]
    out = [(k + start, split) for k, split in out]
    if not held_out:
        out += [(k, "train") for k in kept if k < start]
        out += [(k, "test-within") for k in held if k < start]
    return sorted(out)


def convert_gltf(
    src: Path | str,
    out: Path | str,
    *,
    animations: list[str] | None = None,
    test_out_animations: list[str] | None = None,
    test_out_window: float = 0.2,
    fps: float = 30.0,
    frame_interval: int = 2,
    scans_dir: Path | str | None = None,
    units: str = "auto",
    skin: str | int | None = None,
    meshes: list[str] | None = None,
    skip_bad_frames: bool = False,
    progress: bool = True,
    name: str | None = None,
    height: float | str = "auto",
) -> Dataset:
    """Convert a rigged, animated glTF/GLB (module docstring) into a dataset at ``out``."""
    src = Path(src)
    if fps <= 0:
        raise DataError(f"fps must be positive, got {fps}")
    scene = load_gltf(src)
    skin_index = select_skin(scene, skin)
    skin_def = scene.gltf.skins[skin_index]
    if skin_def.inverseBindMatrices is None:
        raise DataError(
            f"{src}: skin {_skin_label(scene, skin_index)} has no inverseBindMatrices, so glTF "
            "binds every joint at the origin and the file gives no bind-pose skeleton; export "
            "the skin with its inverse bind matrices"
        )
    joints = list(skin_def.joints)
    node_names = _unique_names([scene.gltf.nodes[n].name for n in joints])
    ibm = scene.accessor(skin_def.inverseBindMatrices).reshape(-1, 4, 4).swapaxes(-1, -2)
    if len(ibm) != len(joints):
        raise DataError(
            f"{src}: skin {_skin_label(scene, skin_index)} has {len(joints)} joints but "
            f"{len(ibm)} inverse bind matrices"
        )
    ibm = ibm.astype(np.float64)
    bind, _ = factor_uniform_scale(np.linalg.inv(ibm), node_names, str(src))
    mesh = read_skinned_mesh(scene, select_mesh_nodes(scene, skin_index, meshes), len(joints))
    to_metres = unit_scale(units, mesh.vertices, str(src))
    open_parts = open_edge_report(mesh)
    if open_parts:
        logger.warning(
            "%s: parts with open edges: %s. Occupancy learns closed surfaces, so open or "
            "one-sided parts (visors, hair cards, single-layer cloth) come out thickened, "
            "rounded or missing; leave such meshes out with --mesh, or close them",
            src,
            ", ".join(f"{part} ({count} edges)" for part, count in open_parts),
        )
    parents = joint_parents(scene, joints)
    order = parents_first(parents)
    position = {old: new for new, old in enumerate(order)}
    rest_world = world_transforms(scene.rest_local, scene.parent)
    upright = upright_rotation(rest_world[joints[order[0]]] @ ibm[order[0]])
    vertices = mesh.vertices @ upright[:3, :3].T * to_metres
    figure = float(np.ptp(vertices[:, 1])) if len(vertices) else 0.0
    resize = resize_factor(height, figure, str(src))
    if resize != 1.0:
        logger.warning(
            "%s: the character is %.3g m tall; scaled by %.4g to %.3g m for training (the presets "
            "are set for human-sized figures; --height keep keeps the file's size). The dataset's "
            "lengths are the file's times %.4g",
            src,
            figure,
            resize,
            figure * resize,
            to_metres * resize,
        )
    file_to_metres = to_metres
    to_metres *= resize
    skeleton = Skeleton(
        names=tuple(node_names[i] for i in order),
        parents=tuple(-1 if parents[i] < 0 else position[parents[i]] for i in order),
        canonical=torch.from_numpy(scale_translations(upright @ bind[order], to_metres)).float(),
    )
    vertices = vertices * resize
    faces = mesh.faces
    weights = mesh.weights[:, order]
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
    window = test_out_window if len(chosen) == 1 and not test_out_animations else 0.0
    frames: list[tuple[str, str, np.ndarray]] = []
    splits: dict[str, list[str]] = {"train": [], "test-within": [], "test-out": []}
    ordered_names = [node_names[i] for i in order]
    for anim in chosen:
        world = world_transforms(sample_animation(scene, names.index(anim), fps), scene.parent)
        skinning = (world[:, joints] @ ibm)[:, order] @ upright.T
        transforms = scale_translations(skinning, to_metres)
        label = safe_frame_id(anim)
        start = one_clip_split(len(transforms), window)
        for k, split in split_frames(len(transforms), frame_interval, anim in test_out, start):
            frame_id = f"{label}_{k:04d}"
            frames.append((frame_id, anim, transforms[k]))
            splits[split].append(frame_id)

    report = ConversionReport()
    scans = Path(scans_dir) if scans_dir is not None else None
    v = torch.from_numpy(vertices)
    w = torch.from_numpy(weights)
    look = read_source_appearance(scene, mesh.primitives, vertices, faces)
    # The character's own skinned mesh as scans: coloured as the file colours it, so that
    # --signal colour can train on it (own scans keep whatever colours their files have).
    colours = look_vertex_colours(look) if scans is None else None
    jobs = [
        FrameJob(
            frame_id,
            src,
            anim,
            _frame_loader(
                frame_id, t, v, w, faces, scans, units, report, ordered_names, colours, resize
            ),
        )
        for frame_id, anim, t in frames
    ]
    info = {
        "gltf": str(src),
        "animations": chosen,
        "fps": fps,
        "own_scans": scans is not None,
        "skin": skin_index,
        "metres_per_unit": to_metres,
        "resized": {
            "file_height_m": figure,
            "factor": resize,
            "file_metres_per_unit": file_to_metres,
        }
        if resize != 1.0
        else None,
        "appearance": appearance_kind(look),
    }
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
        dataset = writer.finish()
    if look is not None:
        save_appearance(dataset.root, look, source=f"gltf {src}")
    return dataset


def _frame_loader(
    frame_id: str,
    transforms: np.ndarray,
    vertices: torch.Tensor,
    weights: torch.Tensor,
    faces: np.ndarray,
    scans: Path | None,
    units: str,
    report: ConversionReport,
    names: list[str],
    colours: np.ndarray | None = None,
    resize: float = 1.0,
) -> Callable[[], tuple[TriMesh, np.ndarray]]:
    def load() -> tuple[TriMesh, np.ndarray]:
        off = [_rigid_problem(t) for t in transforms]
        worst = int(np.argmax(off))
        if off[worst] > RIGID_TOLERANCE:
            raise DataError(
                f"frame {frame_id}: the animation scales joint {names[worst]!r} away from its "
                f"bind-pose scale (off rigid by {off[worst]:.2g}); invskin needs rigid bone "
                "motion: remove the scale keys"
            )
        if scans is None:
            posed = lbs(vertices, weights, torch.from_numpy(transforms)).numpy()
            return TriMesh(posed, faces, colours), transforms
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
        scan = scan_to_metres(load_mesh(path), str(path), units, report)
        if resize != 1.0:
            scan = TriMesh(scan.vertices * resize, scan.faces, scan.colors)
        return scan, transforms

    return load
