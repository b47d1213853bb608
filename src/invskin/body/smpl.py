"""SMPL body model: our own forward pass over a user-supplied model file (never shipped).

Conventions: metres, y up, column vectors; ``pose`` is SMPL's axis-angle per joint, ``(*b, J, 3)``
or flat ``(*b, 3J)``, each joint's rotation relative to its parent in SMPL's rest (T) pose, joint 0
the global orientation. Shape legend: ``V`` vertices, ``J`` joints (24 for SMPL; never hard-coded),
``S`` shape coefficients, ``P = 9 (J - 1)`` pose blend-shape features, ``*b`` any batch.

The forward pass, step by step (Loper et al. 2015):

1. shape: ``v_shaped = v_template + shapedirs . betas``; joints ``J = J_regressor @ v_shaped``;
2. pose blend shapes: ``v_rest = v_shaped + posedirs . vec(R_1..R_{J-1} - I)``;
3. kinematics: local transforms ``[R_j, J_j - J_parent(j)]`` chained by
   :func:`invskin.geometry.forward_kinematics` into bone world transforms ``G_j``;
4. skinning: ``A_j = G_j [I, -J_j]`` maps rest-pose points to posed ones, applied with
   :func:`invskin.geometry.lbs`, then the global translation.

**Canonical pose.** invskin's bone transforms are canonical-to-posed relative to a canonical pose,
by default the star ("Da") pose of SNARF: every joint at rest except the left hip (joint 1) at
+pi/6 and the right hip (joint 2) at -pi/6 about z, legs apart ~30 degrees each so they do not touch
in canonical space. :meth:`SMPLModel.bone_transforms` returns ``T_j = A_j(pose) A_j(canonical)^-1``
(plus translation), the matrices linear blend skinning uses; :meth:`SMPLModel.skeleton` returns a
:class:`~invskin.body.Skeleton` whose canonical transforms are the bone frames ``G_j`` in the
canonical pose. Posing that skeleton takes rotations relative to the canonical pose:
:meth:`SMPLModel.skeleton_rotations` converts SMPL's.

**Model files.** SMPL files are licensed (https://smpl.is.tue.mpg.de) and never shipped: users pass
their own ``.npz`` (keys ``v_template``, ``shapedirs``, ``posedirs``, ``J_regressor``, ``weights``,
``kintree_table``, ``f``) or a ``.pkl`` holding plain numpy/scipy arrays. The official ``.pkl`` files
store some arrays as chumpy objects; invskin does not use chumpy and says how to convert them to
``.npz`` once (see :data:`CHUMPY_CONVERSION`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from jaxtyping import Float, Int
from torch import Tensor

from invskin import safe_pickle
from invskin.body.skeleton import Skeleton
from invskin.errors import DataError
from invskin.geometry import (
    axis_angle_to_matrix,
    check_parents,
    forward_kinematics,
    invert_rigid,
    lbs,
    make_transform,
)

SMPL_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

SMPL_WEBSITE = "https://smpl.is.tue.mpg.de"

CHUMPY_CONVERSION = (
    'python -c "import pickle, sys, numpy as np, scipy.sparse as sp; '
    "d = pickle.load(open(sys.argv[1], 'rb'), encoding='latin1'); "
    "np.savez(sys.argv[2], **{k: (v.toarray() if sp.issparse(v) else np.asarray(v)) "
    "for k, v in d.items() if k in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', "
    "'weights', 'kintree_table', 'f')})\" MODEL.pkl MODEL.npz"
)

REQUIRED_KEYS = (
    "v_template",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "f",
)


class SMPLFileError(DataError):
    """The SMPL model file is missing or cannot be used; the message says what to do."""


def star_pose(num_joints: int = 24, angle: float = math.pi / 6) -> Float[Tensor, "j 3"]:
    """The default canonical pose: hips (joints 1 and 2) at +angle / -angle about z, rest zero."""
    pose = torch.zeros(num_joints, 3, dtype=torch.float64)
    pose[1, 2] = angle
    pose[2, 2] = -angle
    return pose


@dataclass(frozen=True, eq=False)
class SMPLOutput:
    """Result of :meth:`SMPLModel.forward`.

    ``vertices`` (*b, V, 3) and ``joints`` (*b, J, 3) posed (translation included);
    ``bone_transforms`` (*b, J, 4, 4) canonical-to-posed; ``weights`` (V, J) the model's skinning
    weights.
    """

    vertices: Float[Tensor, "*b v 3"]
    joints: Float[Tensor, "*b j 3"]
    bone_transforms: Float[Tensor, "*b j 4 4"]
    weights: Float[Tensor, "v j"]


@dataclass(frozen=True, eq=False)
class SMPLModel:
    """An SMPL-layout body model (buffers in float64; outputs in the dtype of ``pose``)."""

    v_template: Float[Tensor, "v 3"]
    shapedirs: Float[Tensor, "v 3 s"]
    posedirs: Float[Tensor, "v 3 p"]
    joint_regressor: Float[Tensor, "j v"]
    weights: Float[Tensor, "v j"]
    parents: tuple[int, ...]
    faces: Int[Tensor, "t 3"]
    canonical_pose: Float[Tensor, "j 3"]
    names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        num_vertices, num_joints = self.weights.shape
        where = self.source or "SMPL model"
        if self.v_template.shape[0] != num_vertices or self.shapedirs.shape[0] != num_vertices:
            raise SMPLFileError(f"{where}: v_template, shapedirs and weights disagree on V")
        if self.joint_regressor.shape != (num_joints, num_vertices):
            raise SMPLFileError(
                f"{where}: J_regressor has shape {tuple(self.joint_regressor.shape)}, "
                f"expected ({num_joints}, {num_vertices})"
            )
        if self.posedirs.shape != (num_vertices, 3, 9 * (num_joints - 1)):
            raise SMPLFileError(
                f"{where}: posedirs has shape {tuple(self.posedirs.shape)}, expected "
                f"({num_vertices}, 3, {9 * (num_joints - 1)})"
            )
        if len(self.parents) != num_joints or len(self.names) != num_joints:
            raise SMPLFileError(f"{where}: {len(self.parents)} parents for {num_joints} joints")
        if tuple(self.canonical_pose.shape) != (num_joints, 3):
            raise ValueError(
                f"canonical pose has shape {tuple(self.canonical_pose.shape)}, "
                f"expected ({num_joints}, 3)"
            )
        check_parents(self.parents)

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, path: Path | str, canonical_pose: Tensor | None = None) -> SMPLModel:
        """Read an SMPL model file (``.npz``, or ``.pkl`` without chumpy objects).

        ``canonical_pose`` (J, 3) axis-angle defaults to :func:`star_pose`.
        """
        path = Path(path)
        arrays = read_smpl_file(path)
        return cls.from_arrays(arrays, source=str(path), canonical_pose=canonical_pose)

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, Any],
        source: str = "",
        canonical_pose: Tensor | None = None,
    ) -> SMPLModel:
        """Build from SMPL-layout arrays (see the module docstring for the keys)."""
        where = source or "SMPL arrays"
        missing = [key for key in REQUIRED_KEYS if key not in arrays]
        if missing:
            raise SMPLFileError(
                f"{where} lacks the keys {missing} (it has {sorted(arrays)}); an SMPL model file "
                f"needs {list(REQUIRED_KEYS)}"
            )
        v_template = _float_array(arrays["v_template"], "v_template", where)
        if v_template.ndim != 2 or v_template.shape[1] != 3:
            raise SMPLFileError(
                f"{where}: v_template has shape {v_template.shape}, expected (V, 3)"
            )
        num_vertices = v_template.shape[0]
        weights = _float_array(arrays["weights"], "weights", where)
        if weights.ndim != 2 or weights.shape[0] != num_vertices:
            raise SMPLFileError(
                f"{where}: weights has shape {weights.shape}, expected ({num_vertices}, J)"
            )
        num_joints = weights.shape[1]
        shapedirs = _float_array(arrays["shapedirs"], "shapedirs", where)
        if shapedirs.ndim == 2 and shapedirs.shape[0] == 3 * num_vertices:
            shapedirs = shapedirs.reshape(num_vertices, 3, -1)
        if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_vertices, 3):
            raise SMPLFileError(
                f"{where}: shapedirs has shape {shapedirs.shape}, expected ({num_vertices}, 3, S)"
            )
        posedirs = _posedirs(arrays["posedirs"], num_vertices, num_joints, where)
        regressor = _float_array(arrays["J_regressor"], "J_regressor", where)
        if regressor.shape != (num_joints, num_vertices):
            raise SMPLFileError(
                f"{where}: J_regressor has shape {regressor.shape}, expected "
                f"({num_joints}, {num_vertices})"
            )
        parents = _parents(arrays["kintree_table"], num_joints, where)
        faces = np.asarray(arrays["f"])
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
            raise SMPLFileError(f"{where}: f has shape {faces.shape}, expected (T, 3) integers")
        faces = faces.astype(np.int64)
        if faces.min() < 0 or faces.max() >= num_vertices:
            raise SMPLFileError(f"{where}: face indices out of range for {num_vertices} vertices")
        names = (
            SMPL_JOINT_NAMES
            if num_joints == len(SMPL_JOINT_NAMES)
            else tuple(f"joint{j:02d}" for j in range(num_joints))
        )
        if canonical_pose is None:
            canonical_pose = star_pose(num_joints)
        return cls(
            v_template=torch.from_numpy(v_template),
            shapedirs=torch.from_numpy(shapedirs),
            posedirs=torch.from_numpy(posedirs),
            joint_regressor=torch.from_numpy(regressor),
            weights=torch.from_numpy(weights),
            parents=parents,
            faces=torch.from_numpy(faces),
            canonical_pose=canonical_pose.double().reshape(num_joints, 3),
            names=names,
            source=source,
        )

    def with_canonical_pose(self, pose: Float[Tensor, "j 3"]) -> SMPLModel:
        """The same model with another canonical pose (e.g. zeros for the T-pose)."""
        return replace(self, canonical_pose=pose.double())

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    # ------------------------------------------------------------------ forward pass pieces

    def rest_shape(
        self,
        betas: Float[Tensor, "*bs s"] | None = None,
        v_template: Float[Tensor, "*bv v 3"] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Float[Tensor, "*r v 3"], Float[Tensor, "*r j 3"]]:
        """Shaped rest (T-pose) vertices and regressed joints.

        ``v_template`` (e.g. CAPE's minimal body of a subject) replaces the model's template;
        ``betas`` with fewer than S coefficients are zero-padded.
        """
        template = self.v_template if v_template is None else v_template
        if template.shape[-2:] != self.v_template.shape:
            raise ValueError(
                f"v_template has shape {tuple(template.shape)}, expected (*b, "
                f"{self.num_vertices}, 3): it must have the model's vertex count and order"
            )
        template = template.to(dtype)
        if betas is not None:
            if betas.shape[-1] > self.num_betas:
                raise ValueError(
                    f"{betas.shape[-1]} betas but the model has {self.num_betas} shape coefficients"
                )
            dirs = self.shapedirs[..., : betas.shape[-1]].to(dtype)
            template = template + torch.einsum("vcs,...s->...vc", dirs, betas.to(dtype))
        joints = torch.einsum("jv,...vc->...jc", self.joint_regressor.to(dtype), template)
        return template, joints

    def world_transforms(
        self, rotations: Float[Tensor, "*br j 3 3"], rest_joints: Float[Tensor, "*bj j 3"]
    ) -> Float[Tensor, "... j 4 4"]:
        """Bone world transforms ``G_j`` for local rotations about the rest joints."""
        parents = list(self.parents)
        offsets = rest_joints.clone()
        offsets[..., 1:, :] = rest_joints[..., 1:, :] - rest_joints[..., parents[1:], :]
        roots = [j for j, p in enumerate(parents) if p < 0]
        offsets[..., roots, :] = rest_joints[..., roots, :]
        batch = torch.broadcast_shapes(rotations.shape[:-3], offsets.shape[:-2])
        local = make_transform(
            rotations.expand(*batch, *rotations.shape[-3:]),
            offsets.expand(*batch, *offsets.shape[-2:]),
        )
        return forward_kinematics(local, parents)

    def _skinning_transforms(
        self, rotations: Float[Tensor, "*br j 3 3"], rest_joints: Float[Tensor, "*bj j 3"]
    ) -> Float[Tensor, "... j 4 4"]:
        """``A_j = G_j [I, -J_j]``: rest-pose (T-pose) points to posed points."""
        world = self.world_transforms(rotations, rest_joints)
        eye = torch.eye(3, dtype=world.dtype, device=world.device)
        return world @ make_transform(eye.expand(*rest_joints.shape, 3), -rest_joints)

    def _rotations(self, pose: Tensor) -> Tensor:
        if pose.shape[-1] == 3 * self.num_joints and (
            pose.ndim == 1 or pose.shape[-2:] != (self.num_joints, 3)
        ):
            pose = pose.reshape(*pose.shape[:-1], self.num_joints, 3)
        if pose.shape[-2:] != (self.num_joints, 3):
            raise ValueError(
                f"pose has shape {tuple(pose.shape)}, expected (*b, {self.num_joints}, 3) or "
                f"(*b, {3 * self.num_joints}) axis-angle"
            )
        if not torch.isfinite(pose).all():
            raise ValueError("pose contains NaN or infinite values")
        return axis_angle_to_matrix(pose)

    def bone_transforms(
        self,
        pose: Float[Tensor, "..."],
        betas: Float[Tensor, "*bs s"] | None = None,
        transl: Float[Tensor, "*bt 3"] | None = None,
        v_template: Float[Tensor, "*bv v 3"] | None = None,
    ) -> Float[Tensor, "*b j 4 4"]:
        """Canonical-to-posed bone transforms ``T_j = A_j(pose) A_j(canonical)^-1`` (+ translation).

        Cheap: needs only the joints, not the pose blend shapes or vertices.
        """
        rotations = self._rotations(pose)
        _, joints = self.rest_shape(betas, v_template, dtype=rotations.dtype)
        return self._canonical_to_posed(rotations, joints, transl)

    def _canonical_to_posed(
        self, rotations: Tensor, joints: Tensor, transl: Tensor | None
    ) -> Tensor:
        posed = self._skinning_transforms(rotations, joints)
        canonical_rotations = axis_angle_to_matrix(self.canonical_pose.to(rotations))
        canonical = self._skinning_transforms(canonical_rotations.expand_as(rotations), joints)
        transforms = posed @ invert_rigid(canonical)
        if transl is not None:
            eye = torch.eye(3, dtype=transforms.dtype, device=transforms.device)
            shift = make_transform(eye.expand(*transl.shape, 3), transl.to(transforms))
            transforms = shift[..., None, :, :] @ transforms
        return transforms

    def forward(
        self,
        pose: Float[Tensor, "..."],
        betas: Float[Tensor, "*bs s"] | None = None,
        transl: Float[Tensor, "*bt 3"] | None = None,
        v_template: Float[Tensor, "*bv v 3"] | None = None,
    ) -> SMPLOutput:
        """Posed vertices, joints and canonical-to-posed bone transforms (dtype of ``pose``)."""
        rotations = self._rotations(pose)
        dtype = rotations.dtype
        shaped, joints = self.rest_shape(betas, v_template, dtype=dtype)
        eye = torch.eye(3, dtype=dtype, device=rotations.device)
        pose_features = (rotations[..., 1:, :, :] - eye).flatten(-3)
        rest = shaped + torch.einsum("vcp,...p->...vc", self.posedirs.to(dtype), pose_features)
        skinning = self._skinning_transforms(rotations, joints)
        batch = torch.broadcast_shapes(rest.shape[:-2], skinning.shape[:-3])
        weights = self.weights.to(dtype)
        vertices = lbs(
            rest.expand(*batch, *rest.shape[-2:]),
            weights.expand(*batch, *weights.shape),
            skinning.expand(*batch, *skinning.shape[-3:]),
        )
        world = self.world_transforms(rotations, joints)
        posed_joints = world[..., :3, 3]
        if transl is not None:
            vertices = vertices + transl.to(dtype)[..., None, :]
            posed_joints = posed_joints + transl.to(dtype)[..., None, :]
        return SMPLOutput(
            vertices=vertices,
            joints=posed_joints,
            bone_transforms=self._canonical_to_posed(rotations, joints, transl),
            weights=weights,
        )

    __call__ = forward

    # ------------------------------------------------------------------ canonical space

    def canonical_vertices(
        self,
        betas: Float[Tensor, " s"] | None = None,
        v_template: Float[Tensor, "v 3"] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Float[Tensor, "v 3"]:
        """The body posed in the canonical pose (with its pose blend shapes), no translation."""
        return self.forward(self.canonical_pose.to(dtype), betas, None, v_template).vertices

    def skeleton(
        self,
        betas: Float[Tensor, " s"] | None = None,
        v_template: Float[Tensor, "v 3"] | None = None,
    ) -> Skeleton:
        """The rig as a :class:`Skeleton`: SMPL joint names and canonical-pose bone frames."""
        _, joints = self.rest_shape(betas, v_template, dtype=torch.float64)
        rotations = axis_angle_to_matrix(self.canonical_pose)
        world = self.world_transforms(rotations, joints)
        return Skeleton(names=self.names, parents=self.parents, canonical=world.float())

    def skeleton_rotations(self, pose: Float[Tensor, "..."]) -> Float[Tensor, "... j 3 3"]:
        """SMPL pose as local rotations relative to the canonical pose, for :meth:`Skeleton.bone_transforms`.

        ``R_local = R_canonical^T R_smpl`` per joint (the skeleton's rest frames are canonical).
        """
        rotations = self._rotations(pose)
        canonical = axis_angle_to_matrix(self.canonical_pose.to(rotations))
        return canonical.transpose(-1, -2) @ rotations


# ---------------------------------------------------------------------- file reading


def missing_model_message(path: Path) -> str:
    return (
        f"SMPL model file {path} not found. SMPL model files are licensed ({SMPL_WEBSITE}) and "
        "are never shipped with invskin: register there, download the model (e.g. SMPL_MALE / "
        "SMPL_FEMALE / SMPL_NEUTRAL, .npz or .pkl) and pass its path (or the folder holding "
        "them) as smpl_model_path"
    )


def find_smpl_file(path: Path | str, gender: str = "neutral") -> Path:
    """``path`` itself if it is a file; in a folder, the model file of ``gender``.

    Recognised names contain the gender as a word: ``SMPL_MALE.npz``, ``smpl_female.pkl``,
    ``basicModel_f_lbs_10_207_0_v1.0.0.pkl``, ``basicmodel_neutral_lbs...pkl``.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise SMPLFileError(missing_model_message(path))
    tokens = {"male": ("m", "male"), "female": ("f", "female"), "neutral": ("n", "neutral")}
    if gender not in tokens:
        raise SMPLFileError(f"unknown gender {gender!r}; use one of {sorted(tokens)}")
    candidates = []
    for file in sorted(path.iterdir()):
        if file.suffix.lower() not in (".npz", ".pkl"):
            continue
        words = set(re.split(r"[_\-.\s]+", file.stem.lower()))
        if words & set(tokens[gender]):
            candidates.append(file)
    if not candidates:
        raise SMPLFileError(
            f"no {gender} SMPL model file (.npz or .pkl with '{gender}' in its name) in {path}. "
            + missing_model_message(path / f"SMPL_{gender.upper()}.npz")
        )
    # Prefer .npz (no pickle) when both exist.
    candidates.sort(key=lambda f: f.suffix.lower() != ".npz")
    return candidates[0]


def read_smpl_file(path: Path) -> dict[str, Any]:
    """The arrays of an SMPL model file (``.npz``, or ``.pkl`` without chumpy)."""
    if not path.is_file():
        raise SMPLFileError(missing_model_message(path))
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".pkl":
        return _read_pickle(path)
    raise SMPLFileError(f"{path}: an SMPL model file must be .npz or .pkl, not {path.suffix!r}")


def _read_npz(path: Path) -> dict[str, Any]:
    """The SMPL arrays of an ``.npz``; object arrays (e.g. a scipy.sparse J_regressor) are read by
    :func:`invskin.safe_pickle.read_npz`, never by ``np.load(allow_pickle=True)``."""
    try:
        arrays: dict[str, Any] = safe_pickle.read_npz(path, keys=REQUIRED_KEYS)
    except DataError as error:
        raise SMPLFileError(str(error)) from error
    for key, value in arrays.items():
        if value.dtype == object and value.shape == ():  # e.g. np.savez(J_regressor=csc_matrix)
            arrays[key] = value.item()
    return arrays


def _read_pickle(path: Path) -> dict[str, Any]:
    """The arrays of an SMPL ``.pkl`` through :func:`invskin.safe_pickle.load` (numpy, scipy
    sparse and containers only); chumpy objects get the conversion command."""
    try:
        data = safe_pickle.load(path, "an SMPL model .pkl")
    except safe_pickle.PickleRefused as error:
        if error.module.split(".")[0] == "chumpy":
            raise SMPLFileError(
                f"{path} stores arrays as chumpy objects, which invskin does not read (chumpy is "
                "unmaintained). Convert it once to .npz, in any Python environment that has chumpy "
                f"installed:\n  {CHUMPY_CONVERSION}\nthen pass the .npz file"
            ) from None
        raise SMPLFileError(str(error)) from error
    except DataError as error:
        raise SMPLFileError(f"{path} is not a readable SMPL .pkl file ({error})") from error
    if not isinstance(data, dict):
        raise SMPLFileError(f"{path} does not hold a dict of SMPL arrays")
    return data


def _float_array(value: Any, key: str, where: str) -> np.ndarray:
    try:
        if scipy.sparse.issparse(value):
            value = value.toarray()
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, MemoryError) as error:
        raise SMPLFileError(f"{where}: {key} is not a numeric array ({error})") from error
    if not np.isfinite(array).all():
        raise SMPLFileError(f"{where}: {key} contains NaN or infinite values")
    return array


def _posedirs(value: Any, num_vertices: int, num_joints: int, where: str) -> np.ndarray:
    posedirs = _float_array(value, "posedirs", where)
    features = 9 * (num_joints - 1)
    if posedirs.shape == (num_vertices, 3, features):
        return posedirs
    if posedirs.shape == (3 * num_vertices, features):
        return posedirs.reshape(num_vertices, 3, features)
    if posedirs.shape == (features, 3 * num_vertices):
        return posedirs.T.reshape(num_vertices, 3, features)
    raise SMPLFileError(
        f"{where}: posedirs has shape {posedirs.shape}; expected ({num_vertices}, 3, {features}), "
        f"({3 * num_vertices}, {features}) or ({features}, {3 * num_vertices})"
    )


def _parents(value: Any, num_joints: int, where: str) -> tuple[int, ...]:
    table = np.asarray(value)
    if table.shape != (2, num_joints):
        raise SMPLFileError(
            f"{where}: kintree_table has shape {table.shape}, expected (2, {num_joints})"
        )
    ids = [int(i) for i in table[1]]
    position = {joint_id: j for j, joint_id in enumerate(ids)}
    parents = []
    for j in range(num_joints):
        parent = position.get(int(table[0, j]), -1)  # the root's entry is -1 or 2**32 - 1
        parents.append(-1 if parent == j else parent)
    try:
        check_parents(parents)
    except ValueError as error:
        raise SMPLFileError(f"{where}: kintree_table: {error}") from error
    return tuple(parents)
