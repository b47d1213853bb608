"""Outfits of the synthetic benchmark: the clothed surface of a posed body, and its visible part.

Conventions: metres, y up (see :mod:`invskin.body.anny_model`). A clothed body is one fixed-topology
surface, the concatenation of the posed body's vertices (V), a fitted garment's vertices (G, see
:mod:`.garment`) and a skirt's vertices (K, see :mod:`.skirt`); its faces are the uncovered body
faces, the garment and its cuffs, and the skirt. Each part is closed, so the union bounds the
clothed volume. Shape legend: ``F`` frames, ``N = V + G + K`` vertices, ``T`` faces, ``J`` bones.

Outfits (:data:`OUTFITS`):

- ``dress``: a sleeveless fitted bodice and a loose knee-length skirt that hangs between the legs
  and is draped per pose by a short cloth relaxation (gravity, stretch, leg collisions): the
  deformation no linear blend skinning can express.
- ``fitted``: a long-sleeved top (to mid-forearm) and trousers (to the ankles) as an offset of the
  body that bulges at bent knees and elbows and wrinkles on the flexion side.

A raw scan shows only what a scanner sees: :func:`visible_faces` keeps the faces just outside of
which the generalised winding number of the whole clothed surface is below 1/2 (the body under
clothes, clothing inside the body, self-intersections are dropped), which leaves small holes at
seams, as real scans have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from invskin.body.anny_model import AnnyBody, pose_vertices
from invskin.data.synth.garment import GarmentConfig, GarmentTemplate, build_garment, dress_garment
from invskin.data.synth.skirt import SkirtConfig, SkirtTemplate, build_skirt, drape_skirt
from invskin.mesh import TriMesh, winding_numbers

VISIBILITY_EPS = 0.002  # metres outside a face at which its visibility is tested


@dataclass(frozen=True)
class OutfitConfig:
    """An outfit: an optional fitted garment and an optional skirt."""

    name: str
    garment: GarmentConfig | None = None
    skirt: SkirtConfig | None = None


BODICE = GarmentConfig(
    covered=("root", "spine04", "spine02", "spine01", "clavicle"),
    cut=(),
    offset=0.008,
    bulge=0.0,
    wrinkle=0.0,
)

#: The outfits by name.
OUTFITS: dict[str, OutfitConfig] = {
    "dress": OutfitConfig("dress", garment=BODICE, skirt=SkirtConfig()),
    "fitted": OutfitConfig("fitted", garment=GarmentConfig()),
}


@dataclass(frozen=True, eq=False)
class Outfit:
    """An outfit fitted to a body: the clothed surface's faces and how to pose its parts.

    ``faces`` (T, 3) over the N clothed vertices; ``part`` (T,) int8: 0 body, 1 garment and cuffs,
    2 skirt; ``body_faces`` are the body's faces (for normals).
    """

    config: OutfitConfig
    body: AnnyBody
    garment: GarmentTemplate | None
    skirt: SkirtTemplate | None
    faces: Int[Tensor, "t 3"]
    part: Int[Tensor, " t"]

    @property
    def part_sizes(self) -> tuple[int, int, int]:
        """Vertex counts of the body, the garment and the skirt (0 when absent), in order."""
        return (
            int(self.body.vertices.shape[0]),
            0 if self.garment is None else int(self.garment.sources.shape[0]),
            0 if self.skirt is None else self.skirt.num_vertices,
        )

    @property
    def num_vertices(self) -> int:
        return sum(self.part_sizes)


def build_outfit(body: AnnyBody, config: OutfitConfig | str) -> Outfit:
    """Fit an outfit (a config or a name in :data:`OUTFITS`) to the body's canonical pose."""
    if isinstance(config, str):
        if config not in OUTFITS:
            raise KeyError(f"unknown outfit {config!r}; outfits are {sorted(OUTFITS)}")
        config = OUTFITS[config]
    num_body = body.vertices.shape[0]
    body_faces = body.faces
    garment = None if config.garment is None else build_garment(body, config.garment)
    faces, part = [], []
    if garment is None:
        faces.append(body_faces)
        part.append(torch.zeros(len(body_faces), dtype=torch.int8))
    else:
        kept = body_faces[~garment.covered_faces]
        garment_faces = torch.cat([garment.faces + num_body, garment.cuff_faces])
        faces += [kept, garment_faces]
        part += [
            torch.zeros(len(kept), dtype=torch.int8),
            torch.ones(len(garment_faces), dtype=torch.int8),
        ]
    skirt = None if config.skirt is None else build_skirt(body, config.skirt)
    if skirt is not None:
        offset = num_body + (0 if garment is None else int(garment.sources.shape[0]))
        faces.append(skirt.faces + offset)
        part.append(torch.full((len(skirt.faces),), 2, dtype=torch.int8))
    return Outfit(config, body, garment, skirt, torch.cat(faces), torch.cat(part))


def dress(outfit: Outfit, transforms: Float[Tensor, "f j 4 4"]) -> Float[Tensor, "f n 3"]:
    """The clothed surface's vertices (F, N, 3) float64 for canonical-to-posed bone transforms."""
    body = outfit.body
    transforms = transforms.double()
    posed = pose_vertices(body.vertices.double(), body.weights.double(), transforms)
    parts = [posed]
    if outfit.garment is not None:
        canonical = body.skeleton.joints().double()
        joints = (
            torch.einsum("fjik,jk->fji", transforms[..., :3, :3], canonical)
            + transforms[..., :3, 3]
        )
        root = transforms[:, body.skeleton.index("root"), :3, :3]
        parts.append(dress_garment(outfit.garment, posed, body.faces, joints, canonical, root))
    if outfit.skirt is not None:
        parts.append(drape_skirt(outfit.skirt, transforms))
    return torch.cat(parts, dim=1)


def visible_faces(
    vertices: Float[np.ndarray, "n 3"], faces: Int[np.ndarray, "t 3"], eps: float = VISIBILITY_EPS
) -> Bool[np.ndarray, " t"]:
    """Faces on the outside of the clothed volume: the generalised winding number of the whole
    surface, just outside each face (its centroid moved ``eps`` along its normal), is below 1/2."""
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
    probe = tri.mean(1) + eps * normal
    return (winding_numbers((vertices, faces), probe) < 0.5) & (length[:, 0] > 0)


def compact(
    vertices: Float[np.ndarray, "n 3"], faces: Int[np.ndarray, "t 3"]
) -> tuple[TriMesh, Int[np.ndarray, " m"]]:
    """The mesh of the used vertices only, and the old index of each kept vertex."""
    used = np.unique(faces)
    index = np.full(len(vertices), -1, dtype=np.int64)
    index[used] = np.arange(len(used))
    return TriMesh(vertices[used], index[faces]), used
