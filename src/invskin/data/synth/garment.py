"""Fitted garments: an offset of the body surface that bulges and wrinkles with the joint angles.

Conventions: metres, y up (see :mod:`invskin.body.anny_model`). A garment covers the body faces
whose vertices belong mostly to covered bones (:class:`GarmentConfig`); those body faces are
replaced by a copy of them pushed out along the posed body's vertex normals, joined back to the
body along the garment's borders by a narrow strip (a cuff), so body plus garment stays one closed
surface. Around knees, elbows and hips the copy's edges are split once (:func:`split_edges`), since
anny's limbs are coarse (edges of 2 to 2.5 cm) and the wrinkles need finer sampling. Shape legend:
``F`` frames, ``V`` body vertices, ``G`` garment vertices, ``J`` bones.

The offset of a garment vertex in a frame is ``offset + bulge + wrinkle + sag``:

- ``bulge``: near a knee or elbow the fabric bags out in proportion to that joint's flexion
  (a Gaussian of the distance along the limb from the joint);
- ``wrinkle``: ripples along the limb axis on the flexion side of knees, elbows and hips, whose
  amplitude grows with the flexion (``sin(2 pi s / wavelength)``, ``s`` the distance along the
  limb), so trouser legs and sleeves crease when bent;
- ``sag``: loose sleeves and trouser legs hang away from the skin where their surface faces the
  floor (``sag * (max(0, -n_y))^2``, ``n`` the posed normal), e.g. under a raised arm: gravity
  acts in world space, whatever the pose.

The garment tapers to ``border_offset`` within ``taper`` of its borders (geodesic distance along
mesh edges), so necklines and cuffs meet the skin without a jagged step.

Flexion is measured from the posed joint positions (the angle between the two segments; for hips,
the thigh's forward angle in the pelvis's sagittal plane), so the garment is a pure function of
the bone transforms, and it cannot be written as skinning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from torch import Tensor

from invskin.body.anny_model import AnnyBody

#: Hinges that bulge and wrinkle: (joint bone, proximal bone, distal bone); {s} is the side.
HINGES = (
    ("lowerleg01.{s}", "upperleg01.{s}", "foot.{s}"),
    ("lowerarm01.{s}", "upperarm01.{s}", "wrist.{s}"),
)
#: Joints that wrinkle (on the front, in the groin) but do not bulge: (joint, distal bone).
HIPS = (("upperleg01.{s}", "lowerleg01.{s}"),)


@dataclass(frozen=True)
class GarmentConfig:
    """Which body parts a garment covers and how it deforms (metres)."""

    covered: tuple[str, ...] = (
        "root",
        "spine04",
        "spine02",
        "spine01",
        "clavicle",
        "upperarm01",
        "upperleg01",
    )
    """Bones (names without the side suffix) whose skin is fully covered."""
    cut: tuple[tuple[str, str, float], ...] = (
        ("lowerarm01", "wrist", 0.5),
        ("lowerleg01", "foot", 0.9),
    )
    """Bones covered only up to a fraction of the way towards a child bone's joint."""
    offset: float = 0.012
    border_offset: float = 0.002
    """Offset at the garment's borders (necklines, cuffs): the garment tapers down to it."""
    taper: float = 0.03
    """Distance over the surface from a border over which the garment tapers."""
    bulge: float = 0.025
    """Extra offset at a fully flexed (90 degrees) knee or elbow."""
    bulge_width: float = 0.05
    wrinkle: float = 0.01
    """Amplitude of the ripples at 90 degrees of flexion."""
    wavelength: float = 0.06
    wrinkle_width: float = 0.09
    sag: float = 0.015
    """Extra offset under gravity where the surface of a loose part faces straight down."""
    loose: tuple[str, ...] = ("upperarm01", "lowerarm01", "upperleg01", "lowerleg01")
    """Bones whose fabric is loose enough to sag (sleeves and trouser legs)."""
    refine: bool = True
    """Split the garment's edges once around knees, elbows and hips, where it wrinkles (the
    body mesh is coarse there: about 2.5 cm edges on the legs)."""


@dataclass(frozen=True, eq=False)
class GarmentTemplate:
    """A garment on a body: which body faces it replaces and its pose-dependent offset model.

    ``covered_faces`` (T_body,) bool. Garment vertex g lies over the body point
    ``source_weights[g] @ body[sources[g]]``: a body vertex (weights 1, 0) or, where the garment
    was refined around the joints, an edge midpoint (1/2, 1/2). ``faces`` (T_g, 3) garment faces
    over garment vertices (0..G-1); ``cuff_faces`` (T_c, 3) over body vertices (0..V-1) and
    garment vertices (V..V+G-1); ``hinge_*`` the per-vertex data of :data:`HINGES` and
    :data:`HIPS` (joint bone indices, distance along the limb, side weight); ``taper`` and
    ``loose`` (G,) in [0, 1].
    """

    config: GarmentConfig
    covered_faces: Bool[Tensor, " tb"]
    sources: Int[Tensor, "g 2"]
    source_weights: Float[Tensor, "g 2"]
    faces: Int[Tensor, "tg 3"]
    cuff_faces: Int[Tensor, "tc 3"]
    hinge_bones: Int[Tensor, "h 3"]
    hinge_along: Float[Tensor, "h g"]
    hinge_near: Float[Tensor, "h g"]
    hinge_inner: Float[Tensor, "h g"]
    hinge_bulges: Bool[Tensor, " h"]
    taper: Float[Tensor, " g"]
    loose: Float[Tensor, " g"]


def coverage(body: AnnyBody, config: GarmentConfig) -> Float[np.ndarray, " v"]:
    """How much each body vertex is covered, in [0, 1]: its weights on covered bones, bones that
    are cut counting only up to the cut."""
    names = body.skeleton.names
    joints = body.skeleton.joints().double().numpy()
    verts = body.vertices.double().numpy()
    weights = body.weights.double().numpy()
    cover = np.zeros_like(weights)
    for j, name in enumerate(names):
        base, _, side = name.partition(".")
        if base in config.covered:
            cover[:, j] = 1.0
        for bone, child, fraction in config.cut:
            if base == bone:
                end = names.index(f"{child}.{side}" if side else child)
                axis = joints[end] - joints[j]
                t = (verts - joints[j]) @ axis / (axis @ axis)
                cover[:, j] = (t < fraction).astype(float)
    return (weights * cover).sum(1)


def _face_components(faces: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Component label of every face in ``mask`` (-1 elsewhere), faces joined by shared edges."""
    ids = np.nonzero(mask)[0]
    edges = np.sort(faces[ids][:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)
    owner = np.repeat(np.arange(len(ids)), 3)
    key = edges[:, 0] * (faces.max() + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    a, b = owner[order][:-1][same], owner[order][1:][same]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(graph, directed=False)
    out = np.full(len(faces), -1)
    out[ids] = label
    return out


def covered_faces(body: AnnyBody, config: GarmentConfig, min_faces: int = 300) -> np.ndarray:
    """Faces (T,) the garment covers: mean vertex coverage above 1/2, without specks of covered
    faces or of uncovered holes smaller than ``min_faces``."""
    faces = body.faces.numpy()
    covered = coverage(body, config)[faces].mean(1) > 0.5
    for value in (True, False):
        label = _face_components(faces, covered == value)
        sizes = np.bincount(label[label >= 0])
        small = (label >= 0) & (sizes[np.maximum(label, 0)] < min_faces)
        covered[small] = not value
    return covered


def build_garment(body: AnnyBody, config: GarmentConfig | None = None) -> GarmentTemplate:
    """Select the covered faces, make the offset copy and its cuffs, precompute hinge data."""
    config = config or GarmentConfig()
    faces = body.faces.numpy()
    verts = body.vertices.double().numpy()
    weights = body.weights.double().numpy()
    num_body = len(verts)
    covered = covered_faces(body, config)
    vertex = np.unique(faces[covered])
    local = np.full(num_body, -1)
    local[vertex] = np.arange(len(vertex))
    garment_faces = local[faces[covered]]
    # Border edges: directed edges of covered faces whose reverse belongs to an uncovered face.
    directed = faces[covered][:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2)
    uncovered = faces[~covered][:, [[1, 0], [2, 1], [0, 2]]].reshape(-1, 2)
    border = directed[_rows_in(directed, uncovered)]
    a, b = border[:, 0], border[:, 1]
    ga, gb = num_body + local[a], num_body + local[b]
    cuffs = np.concatenate([np.stack([a, b, gb], -1), np.stack([a, gb, ga], -1)])
    distance = _distance_to_border(verts, faces[covered], np.unique(border))[vertex]

    sources = np.stack([vertex, vertex], -1)
    source_weights = np.tile([1.0, 0.0], (len(vertex), 1))
    if config.refine:
        hinge = _hinge_data(body, verts[vertex], weights[vertex])
        window = np.exp(-((hinge["hinge_along"].numpy() / config.wrinkle_width) ** 2))
        zone = (window * hinge["hinge_near"].numpy()).max(0) > 0.1
        zone[local[np.unique(border)]] = False  # keep the borders (and cuffs) as they are
        garment_faces, pairs = split_edges(garment_faces, zone)
        sources = np.concatenate([sources, vertex[pairs]])
        source_weights = np.concatenate([source_weights, np.full((len(pairs), 2), 0.5)])
        distance = np.concatenate([distance, distance[pairs].mean(1)])
    g_verts = np.einsum("gk,gkc->gc", source_weights, verts[sources])
    g_weights = np.einsum("gk,gkj->gj", source_weights, weights[sources])
    return GarmentTemplate(
        config=config,
        covered_faces=torch.from_numpy(covered),
        sources=torch.from_numpy(sources),
        source_weights=torch.from_numpy(source_weights),
        faces=torch.from_numpy(garment_faces),
        cuff_faces=torch.from_numpy(cuffs),
        **_hinge_data(body, g_verts, g_weights),
        taper=torch.from_numpy(_smoothstep(distance / config.taper)),
        loose=torch.from_numpy(_share(body, g_weights, config.loose)),
    )


def split_edges(
    faces: Int[np.ndarray, "t 3"], zone: Bool[np.ndarray, " n"]
) -> tuple[Int[np.ndarray, "s 3"], Int[np.ndarray, "m 2"]]:
    """Split once, at their midpoints, the edges whose two vertices are both in ``zone``.

    Faces with one, two or three split edges become two, three or four triangles with the same
    orientation, so the mesh stays conforming (no T-junctions). Returns the new faces and, for
    each new vertex (numbered after the old ones, ``len(zone) + k``), its edge's two vertices.
    """
    edges = np.sort(faces[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    split = zone[unique].all(1)
    midpoint = np.full(len(unique), -1)
    midpoint[split] = len(zone) + np.arange(split.sum())
    mids = midpoint[inverse.reshape(-1, 3)]  # (T, 3): midpoints of edges v0v1, v1v2, v2v0
    out = []
    for face, mid in zip(faces, mids):
        count = int((mid >= 0).sum())
        if count == 0:
            out.append(face)
            continue
        if count == 3:
            (p, q, r), (pq, qr, rp) = face, mid
            out += [(p, pq, rp), (pq, q, qr), (rp, qr, r), (pq, qr, rp)]
            continue
        # Rotate so that edge v0v1 is the split one (one split) or v2v0 the whole one (two).
        turn = next(
            k
            for k in range(3)
            if (np.roll(mid, -k)[0] >= 0 if count == 1 else np.roll(mid, -k)[2] < 0)
        )
        (p, q, r), (pq, qr, _) = np.roll(face, -turn), np.roll(mid, -turn)
        if count == 1:
            out += [(p, pq, r), (pq, q, r)]
        else:
            out += [(pq, q, qr), (p, pq, qr), (p, qr, r)]
    return np.array(out, dtype=np.int64), unique[split]


def _share(body: AnnyBody, weights: np.ndarray, bones: tuple[str, ...]) -> np.ndarray:
    """Each garment vertex's total skinning weight on the named bones (either side)."""
    mask = np.array([name.split(".")[0] in bones for name in body.skeleton.names])
    return weights[:, mask].sum(1).clip(0, 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _distance_to_border(vertices: np.ndarray, faces: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Shortest distance along mesh edges (V,) from each vertex to the nearest border vertex."""
    edges = faces[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2)
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    n = len(vertices)
    graph = coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    if len(border) == 0:
        return np.full(n, np.inf)
    return dijkstra(graph, directed=False, indices=border, min_only=True)


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Which rows (N, 2) of int pairs also appear in ``table`` (M, 2)."""
    base = max(int(rows.max()), int(table.max())) + 1
    return np.isin(rows[:, 0] * base + rows[:, 1], table[:, 0] * base + table[:, 1])


def _hinge_data(body: AnnyBody, verts: np.ndarray, weights: np.ndarray) -> dict[str, Tensor]:
    """Per hinge: bones (joint, proximal, distal) and, for garment vertices at canonical
    positions ``verts`` with skinning ``weights``, the signed distance along the limb from the
    joint, how much the vertex belongs to the limb, and its flexion-side weight."""
    skel = body.skeleton
    joints = skel.joints().double().numpy()
    bones, along, near, inner, bulges = [], [], [], [], []
    for side in ("L", "R"):
        specs = [(h, True) for h in HINGES] + [((hip, hip, distal), False) for hip, distal in HIPS]
        for (joint_name, prox_name, dist_name), bulge in specs:
            j, p, d = (skel.index(n.format(s=side)) for n in (joint_name, prox_name, dist_name))
            axis = joints[d] - joints[j]
            axis /= np.linalg.norm(axis)
            s = (verts - joints[j]) @ axis
            if bulge:
                limb = weights[:, [p, j]].sum(1)
                # The flexion side: behind the knee, in front of the elbow.
                side_dir = np.array([0.0, 0.0, -1.0 if "leg" in joint_name else 1.0])
            else:
                limb = weights[:, [skel.index("root"), j]].sum(1) * (s > -0.05)
                side_dir = np.array([0.0, 0.0, 1.0])  # the groin, in front
            radial = verts - joints[j] - s[:, None] * axis
            radial /= np.linalg.norm(radial, axis=1, keepdims=True).clip(1e-9)
            bones.append((j, p, d))
            along.append(s)
            near.append(np.clip(limb, 0, 1))
            inner.append(np.clip(radial @ side_dir, 0, 1))
            bulges.append(bulge)
    return {
        "hinge_bones": torch.tensor(bones, dtype=torch.int64),
        "hinge_along": torch.from_numpy(np.stack(along)),
        "hinge_near": torch.from_numpy(np.stack(near)),
        "hinge_inner": torch.from_numpy(np.stack(inner)),
        "hinge_bulges": torch.tensor(bulges),
    }


def vertex_normals(
    vertices: Float[Tensor, "f v 3"], faces: Int[Tensor, "t 3"]
) -> Float[Tensor, "f v 3"]:
    """Area-weighted unit vertex normals of a batch of meshes sharing faces."""
    tri = vertices[:, faces]  # (F, T, 3, 3)
    cross = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    summed = torch.zeros_like(vertices)
    for k in range(3):
        summed.index_add_(1, faces[:, k], cross)
    return torch.nn.functional.normalize(summed, dim=-1)


def flexion(
    joints: Float[Tensor, "f j 3"],
    bones: Int[Tensor, "h 3"],
    canonical: Float[Tensor, "j 3"],
    root_rotation: Float[Tensor, "f 3 3"],
) -> Float[Tensor, "f h"]:
    """Flexion (radians, >= 0) of each hinge beyond its canonical value.

    For a knee or elbow, the angle between the proximal and distal segments; for a hip (joint ==
    proximal bone), the forward angle of the thigh in the pelvis's sagittal plane (pelvis axes
    from the root bone's rotation).
    """
    eye = torch.eye(3, dtype=joints.dtype)[None]
    angles = []
    for posed, rotation in ((joints, root_rotation), (canonical[None], eye)):
        j, p, d = (posed[:, bones[:, k]] for k in range(3))
        distal, proximal = d - j, j - p
        cos = torch.nn.functional.cosine_similarity(proximal, distal, dim=-1)
        hinge = torch.arccos(cos.clamp(-1, 1))
        forward, up = rotation[:, None, :, 2], rotation[:, None, :, 1]
        hip = torch.atan2((distal * forward).sum(-1), -(distal * up).sum(-1))
        angles.append(torch.where(bones[:, 0] == bones[:, 1], hip, hinge))
    return (angles[0] - angles[1]).clamp(min=0)


def dress_garment(
    template: GarmentTemplate,
    body_vertices: Float[Tensor, "f v 3"],
    body_faces: Int[Tensor, "t 3"],
    joints: Float[Tensor, "f j 3"],
    canonical_joints: Float[Tensor, "j 3"],
    root_rotation: Float[Tensor, "f 3 3"],
) -> Float[Tensor, "f g 3"]:
    """Garment vertices in every frame: posed body vertices pushed out along their normals."""
    cfg = template.config
    w = template.source_weights.to(body_vertices)[None, :, :, None]  # (1, G, 2, 1)
    base = (w * body_vertices[:, template.sources]).sum(2)
    normals = vertex_normals(body_vertices, body_faces)[:, template.sources]
    normals = torch.nn.functional.normalize((w * normals).sum(2), dim=-1)
    flex = flexion(joints, template.hinge_bones, canonical_joints.to(joints), root_rotation)
    flex = flex / (math.pi / 2)
    near = template.hinge_near[None]
    along = template.hinge_along[None]
    bend = flex[:, :, None]  # (F, H, 1)
    bulge = cfg.bulge * bend * near * torch.exp(-((along / cfg.bulge_width) ** 2))
    bulge = bulge * template.hinge_bulges[None, :, None]
    ripple = torch.sin(2 * math.pi * along / cfg.wavelength)
    window = torch.exp(-((along / cfg.wrinkle_width) ** 2))
    wrinkle = cfg.wrinkle * bend * near * template.hinge_inner[None] * window * ripple
    down = (-normals[..., 1]).clamp(min=0)  # 1 where the surface faces the floor
    offset = cfg.offset + (bulge + wrinkle).sum(1) + cfg.sag * template.loose[None] * down**2
    offset = cfg.border_offset + template.taper * (offset.clamp(min=0.004) - cfg.border_offset)
    return base + offset[..., None] * normals
