"""A generic skeleton: bone names, parents and canonical-pose bone transforms, any bone count.

Conventions: ``canonical[j]`` is bone j's world transform in the canonical pose (bone frame to model
space, 4x4, metres). Posing applies a local rotation per bone about its joint, in the bone's canonical
frame, plus a root translation. :meth:`Skeleton.bone_transforms` returns the canonical-to-posed
transforms ``T_j = G_j(pose) @ G_j(canonical)^-1`` that linear blend skinning uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from invskin.fileio import write_text_atomic
from invskin.geometry import check_parents, forward_kinematics, local_from_world, make_transform


@dataclass(frozen=True)
class Skeleton:
    """Bone names, parent indices (parents before children, ``-1`` for roots) and canonical transforms."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    canonical: Float[Tensor, "j 4 4"]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents):
            raise ValueError(f"{len(self.names)} bone names but {len(self.parents)} parents")
        if len(set(self.names)) != len(self.names):
            raise ValueError("bone names must be unique")
        check_parents(self.parents)
        if tuple(self.canonical.shape) != (len(self.names), 4, 4):
            raise ValueError(
                f"canonical transforms have shape {tuple(self.canonical.shape)}, "
                f"expected ({len(self.names)}, 4, 4)"
            )
        if not torch.isfinite(self.canonical).all():
            raise ValueError("canonical bone transforms contain NaN or infinite values")

    @property
    def num_bones(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the bone called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no bone named {name!r}; bones are {list(self.names)}") from None

    def children(self, bone: int) -> list[int]:
        return [j for j, p in enumerate(self.parents) if p == bone]

    def joints(self) -> Float[Tensor, "j 3"]:
        """Canonical joint positions (the origins of the bone frames)."""
        return self.canonical[:, :3, 3]

    def posed_world(
        self,
        local_rotations: Float[Tensor, "*b j 3 3"],
        root_translation: Float[Tensor, "*b 3"] | None = None,
    ) -> Float[Tensor, "*b j 4 4"]:
        """World transforms of every bone after rotating each about its joint (its local frame)."""
        rest_local = local_from_world(self.canonical.to(local_rotations), self.parents)
        zero = torch.zeros(local_rotations.shape[:-2] + (3,), dtype=local_rotations.dtype)
        rotation = make_transform(local_rotations, zero.to(local_rotations.device))
        world = forward_kinematics(rest_local @ rotation, self.parents)
        if root_translation is not None:
            shift = make_transform(
                torch.eye(3, dtype=world.dtype, device=world.device), root_translation
            )
            world = shift[..., None, :, :] @ world
        return world

    def bone_transforms(
        self,
        local_rotations: Float[Tensor, "*b j 3 3"],
        root_translation: Float[Tensor, "*b 3"] | None = None,
    ) -> Float[Tensor, "*b j 4 4"]:
        """Canonical-to-posed 4x4 transforms of every bone, the input of linear blend skinning."""
        world = self.posed_world(local_rotations, root_translation)
        return world @ torch.linalg.inv(self.canonical.to(world))

    def to_json(self) -> dict:
        return {
            "names": list(self.names),
            "parents": list(self.parents),
            "canonical": self.canonical.double().tolist(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Skeleton:
        return cls(
            names=tuple(data["names"]),
            parents=tuple(int(p) for p in data["parents"]),
            canonical=torch.tensor(data["canonical"], dtype=torch.float32),
        )

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Skeleton:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"skeleton file {path} does not exist")
        try:
            data = json.loads(path.read_text())
            return cls.from_json(data)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path} is not a valid skeleton file ({error}); it must be JSON with 'names', "
                "'parents' and 'canonical' (J x 4 x 4 bone-to-world transforms in metres)"
            ) from error


def merge_weights(
    weights: Float[Tensor, "*b n j"], keep_of: Sequence[int], num_kept: int
) -> Float[Tensor, "*b n k"]:
    """Sum skinning weights of merged bones into the bone they are merged into.

    ``keep_of[j]`` is the index (in the reduced rig of ``num_kept`` bones) that bone j merges into.
    """
    index = torch.as_tensor(list(keep_of), device=weights.device)
    out = torch.zeros(*weights.shape[:-1], num_kept, dtype=weights.dtype, device=weights.device)
    return out.index_add_(-1, index, weights)
