"""The print of the synthetic outfits: colours fixed to the canonical surface, and per-frame lighting.

Conventions: metres, RGB in [0, 1]. Colours are a function of a vertex's **canonical** position
(the clothed surface in the star pose), computed once per vertex, so in every frame a vertex shows
the colour it had in the canonical pose: the print moves with the cloth, and colour
correspondences are exact.

- **Print** (garment and skirt): smooth value noise over a randomly rotated and shifted cubic
  lattice of ``cell`` metres (default 4 cm). Each lattice node gets one colour of :data:`PALETTE`
  (distinct, saturated hues) from a hash of its integer coordinates and the seed; a point's colour
  blends the eight nodes of its cell with smoothstep weights. Node colours are independent, so the
  colour's autocorrelation falls to about 0.5 at 0.6 ``cell`` (2.5 cm), to 0.07 at 1.25 ``cell``
  (5 cm) and to zero beyond 2 ``cell``: blobs of 2-5 cm that never repeat (the hash has no period
  a body could span).
- **Skin** (body): one skin tone whose brightness varies softly (value noise of 15 cm cells, +-5 %).
- **Lighting** (optional): frame f's scan colours are multiplied by a brightness factor drawn
  uniformly from a range (default [0.7, 1.3]); the palette stays at or below 0.75 and skin at or
  below 0.76 so that factors up to 1.3 never saturate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int
from scipy.spatial.transform import Rotation

#: Node colours of the print: eight distinct hues, every channel in [0.1, 0.75].
PALETTE = np.array(
    [
        [0.75, 0.12, 0.12],  # red
        [0.12, 0.55, 0.15],  # green
        [0.12, 0.20, 0.72],  # blue
        [0.75, 0.65, 0.10],  # yellow
        [0.60, 0.15, 0.65],  # purple
        [0.10, 0.62, 0.66],  # teal
        [0.75, 0.42, 0.10],  # orange
        [0.72, 0.72, 0.70],  # off-white
    ],
    dtype=np.float64,
)
SKIN = np.array([0.72, 0.54, 0.43])
SKIN_CELL = 0.15  # metres: the skin tone's variation is this soft
SKIN_VARIATION = 0.05  # relative brightness variation of the skin
MAX_BRIGHTNESS = 1.3  # lighting factors above this could saturate the brightest colours
DEFAULT_LIGHTING = (0.7, 1.3)  # range of the per-frame brightness factor of ``--lighting``

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class PatternConfig:
    """The print on garment and skirt, and the per-frame lighting of the scans."""

    cell: float = 0.04
    """Lattice spacing of the print (metres): its blobs are about this wide."""
    seed: int = 0
    """Seed of the print (a property of the outfit: the same for every dataset seed)."""
    lighting: tuple[float, float] | None = None
    """Range of the per-frame brightness factor, e.g. (0.7, 1.3); ``None``: every frame 1."""

    def __post_init__(self) -> None:
        if not self.cell > 0:
            raise ValueError(f"the print's cell must be > 0 metres, got {self.cell}")
        if self.seed < 0:
            raise ValueError(f"the print's seed must be >= 0, got {self.seed}")
        if self.lighting is not None:
            low, high = self.lighting
            if not 0 < low <= high <= MAX_BRIGHTNESS:
                raise ValueError(
                    f"lighting range {self.lighting} must satisfy 0 < low <= high <= "
                    f"{MAX_BRIGHTNESS} (brighter would saturate the print)"
                )


def hash_uniform(nodes: Int[np.ndarray, "n 3"], seed: int) -> Float[np.ndarray, " n"]:
    """A uniform number in [0, 1) per integer lattice node, a pure function of (node, seed)."""
    with np.errstate(over="ignore"):
        key = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        for axis, prime in enumerate((0x8CB92BA72F3D8DD7, 0xAEF17502108EF2D9, 0xD6E8FEB86659FD93)):
            key = key ^ (nodes[:, axis].astype(np.int64).view(np.uint64) * np.uint64(prime))
            key = (key ^ (key >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9) & _MASK64
        key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB) & _MASK64
        key = key ^ (key >> np.uint64(31))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def lattice_frame(
    seed: int, cell: float
) -> tuple[Float[np.ndarray, "3 3"], Float[np.ndarray, " 3"]]:
    """The random rotation and shift (in cells) that place the lattice of one seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    rotation = Rotation.random(random_state=rng).as_matrix()
    return rotation, rng.uniform(0.0, 1.0, 3)


def value_noise(
    points: Float[np.ndarray, "n 3"], values: np.ndarray, cell: float, seed: int
) -> Float[np.ndarray, "n c"]:
    """Smooth noise at ``points``: each node of the seed's lattice (``cell`` metres) takes row
    ``floor(hash * len(values))`` of ``values`` (K, C); a point blends its cell's eight nodes with
    smoothstep weights (C1-continuous, no period)."""
    rotation, shift = lattice_frame(seed, cell)
    local = np.asarray(points, dtype=np.float64) @ rotation.T / cell + shift
    base = np.floor(local).astype(np.int64)
    frac = local - base
    weight = frac * frac * (3.0 - 2.0 * frac)
    result = np.zeros((len(local), values.shape[1]))
    for corner in np.ndindex(2, 2, 2):
        offset = np.array(corner)
        pick = hash_uniform(base + offset, seed)
        row = np.minimum((pick * len(values)).astype(np.int64), len(values) - 1)
        w = np.prod(np.where(offset == 1, weight, 1.0 - weight), axis=1)
        result += w[:, None] * values[row]
    return result


def print_colours(
    points: Float[np.ndarray, "n 3"], config: PatternConfig, seed: int
) -> Float[np.ndarray, "n 3"]:
    """The print's colour (RGB in [0, 1]) at canonical ``points`` (module docstring)."""
    return value_noise(points, PALETTE, config.cell, seed)


def skin_colours(points: Float[np.ndarray, "n 3"], seed: int) -> Float[np.ndarray, "n 3"]:
    """The body's skin colour at canonical ``points``: one tone, softly brighter or darker."""
    levels = np.linspace(-1.0, 1.0, 9)[:, None]
    variation = value_noise(points, levels, SKIN_CELL, seed)
    return SKIN[None, :] * (1.0 + SKIN_VARIATION * variation)


def outfit_colours(
    canonical: Float[np.ndarray, "n 3"], part_sizes: tuple[int, int, int], config: PatternConfig
) -> Float[np.ndarray, "n 3"]:
    """Colours of the clothed vertices (ordered body, garment, skirt; ``part_sizes`` their counts)
    at their canonical positions: skin on the body, the print (its own lattice per part) on
    garment and skirt."""
    body, garment, _ = part_sizes
    seed = config.seed
    colours = np.empty((len(canonical), 3))
    colours[:body] = skin_colours(canonical[:body], seed)
    colours[body : body + garment] = print_colours(
        canonical[body : body + garment], config, seed + 1
    )
    colours[body + garment :] = print_colours(canonical[body + garment :], config, seed + 2)
    return np.clip(colours, 0.0, 1.0)


def brightness_factors(
    num_frames: int, config: PatternConfig, seed: int
) -> Float[np.ndarray, " f"]:
    """Each frame's lighting factor (the dataset's ``seed``): uniform in ``config.lighting``, or 1
    without lighting."""
    if config.lighting is None:
        return np.ones(num_frames)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x11647]))
    return rng.uniform(*config.lighting, num_frames)


def lit(colours: Float[np.ndarray, "n 3"], brightness: float) -> Float[np.ndarray, "n 3"]:
    """``colours`` under one frame's lighting (multiplied, clipped to [0, 1])."""
    return np.clip(colours * brightness, 0.0, 1.0)
