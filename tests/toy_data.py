"""A small constructed dataset for model tests: a capsule 'limb' on a 3-bone chain that bends.

The scans are the capsule skinned with its own smooth weights, so the ground truth is exactly what
LBS can express and the correspondence truth is the skinned vertices, with two labelled parts:
``lower`` (below the middle joint) and ``all``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from invskin.body import Skeleton
from invskin.data.format import BodyPrior, DatasetWriter
from invskin.geometry import axis_angle_to_matrix, lbs, make_transform
from invskin.mesh.io import TriMesh
from invskin.models.animatable import AnimatableModel
from invskin.models.config import ModelConfig


def toy_skeleton() -> Skeleton:
    joints = [[0.0, 0.0, 0.0], [0.0, 0.4, 0.0], [0.0, 0.8, 0.0]]
    canonical = torch.stack([make_transform(torch.eye(3), torch.tensor(j)) for j in joints])
    return Skeleton(("root", "middle", "tip"), (-1, 0, 1), canonical)


def toy_body() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    capsule = trimesh.creation.capsule(height=1.0, radius=0.12, count=[16, 16])
    # trimesh's capsule runs along z, centred at the origin: lay it along y from -0.1 to 1.1.
    vertices = capsule.vertices[:, [1, 2, 0]] + np.array([0.0, 0.5, 0.0])
    faces = capsule.faces[:, [0, 2, 1]]  # the axis swap flips orientation: restore outward normals
    centres = np.array([0.15, 0.5, 0.85])
    logits = -((vertices[:, 1:2] - centres) ** 2) * 60.0
    weights = np.exp(logits - logits.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    return vertices, faces, weights


def toy_animatable(config: ModelConfig) -> AnimatableModel:
    """A model of ``config`` (a method's configuration) for the toy skeleton and body prior."""
    vertices, _, weights = toy_body()
    return AnimatableModel(
        config,
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
    )


def toy_transforms(angles: list[float]) -> torch.Tensor:
    skeleton = toy_skeleton()
    rots = torch.eye(3).repeat(len(angles), 3, 1, 1)
    rots[:, 1] = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, a] for a in angles]))
    rots[:, 2] = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.5 * a] for a in angles]))
    shift = torch.tensor([[0.05 * i, 0.0, 0.0] for i in range(len(angles))])
    return skeleton.bone_transforms(rots, shift)


def make_toy_dataset(out: Path) -> Path:
    vertices, faces, weights = toy_body()
    angles = [0.0, 0.2, 0.4, 0.6, 0.8, -0.3, 0.3, 0.7, 1.0, -0.6]
    motions = ["bend"] * 8 + ["back"] * 2
    transforms = toy_transforms(angles)
    v = torch.from_numpy(vertices).float()
    w = torch.from_numpy(weights).float()
    posed = lbs(v.expand(len(angles), -1, -1), w.expand(len(angles), -1, -1), transforms)
    prior = BodyPrior(v, torch.from_numpy(faces), w)
    ids = [f"f{i:02d}" for i in range(len(angles))]
    with DatasetWriter(out, "toy", toy_skeleton(), prior, source="tests/toy_data.py") as writer:
        for i, frame_id in enumerate(ids):
            writer.add_frame(
                frame_id,
                TriMesh(posed[i].double().numpy(), faces),
                transforms[i].numpy(),
                motions[i],
            )
        writer.set_splits({"train": ids[:6], "test-within": ids[6:8], "test-out": ids[8:]})
        parts = {"lower": np.flatnonzero(vertices[:, 1] < 0.5), "all": np.arange(len(vertices))}
        writer.set_correspondence(vertices, faces, posed.numpy(), parts)
        writer.finish()
    return out
