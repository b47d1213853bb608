"""A dataset's source look: the imported character's own surface with its UVs, colours and texture.

An importer that knows what the character looks like (``import gltf`` of a textured or vertex-
coloured file) writes it beside the dataset, in ``DATA/appearance/``; the dataset format itself
does not read these files, and a dataset without them is complete. Exports and the viewer carry
the look onto a trained avatar (:mod:`invskin.export.look`).

Files (all optional together; written atomically as one folder):

- ``appearance.json``: ``{"version": 1, "texture": "base_color.png" | "base_color.jpg" | null,
  "base_color_factor": [r, g, b, a], "sampler": {"magFilter": ..., "minFilter": ..., "wrapS":
  ..., "wrapT": ...}, "source": "..."}``; the factor and the sampler are glTF's (linear factor,
  OpenGL enums);
- ``surface.npz``: ``vertices`` (V, 3) float32, the source surface in the dataset's canonical
  frame (metres, y up; the bind pose), ``faces`` (T, 3) int64, optional ``uv`` (V, 2) float32
  in glTF's convention (origin at the image's top-left corner, v down; values outside [0, 1]
  repeat as the sampler says), optional ``colors`` (V, 3) float32 sRGB in [0, 1] (as
  :class:`~invskin.mesh.io.TriMesh` colours);
- the base-colour texture image, the source's PNG or JPEG bytes unchanged (other formats are
  stored as PNG).

A vertex of the surface is split where its UVs differ (glTF stores one UV per vertex), so a
texture seam is an edge whose two sides use different vertices.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int, UInt8
from PIL import Image

from invskin.errors import DataError

logger = logging.getLogger("invskin.data")

APPEARANCE_DIR = "appearance"
RECORD_FILE = "appearance.json"
SURFACE_FILE = "surface.npz"
VERSION = 1
IMAGE_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg"}
WHITE = (1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class TextureImage:
    """An encoded base-colour image (PNG or JPEG bytes) and its glTF sampler settings."""

    data: bytes
    mime: str
    sampler: dict[str, int] = field(default_factory=dict)

    def decode(self) -> UInt8[np.ndarray, "h w 3"]:
        """The image as RGB uint8; a :class:`ValueError` when it cannot be decoded."""
        return decode_image(self.data)


@dataclass(frozen=True, eq=False)
class SourceAppearance:
    """The source's canonical surface and what it looks like (module docstring)."""

    vertices: Float[np.ndarray, "v 3"]
    faces: Int[np.ndarray, "t 3"]
    uv: Float[np.ndarray, "v 2"] | None = None
    colors: Float[np.ndarray, "v 3"] | None = None
    texture: TextureImage | None = None
    base_color_factor: tuple[float, float, float, float] = WHITE

    def __post_init__(self) -> None:
        v = len(self.vertices)
        problem = None
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or v == 0:
            problem = f"vertices have shape {self.vertices.shape}, expected (V, 3)"
        elif self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            problem = f"faces have shape {self.faces.shape}, expected (T, 3)"
        elif self.faces.min() < 0 or self.faces.max() >= v:
            problem = "faces index vertices that do not exist"
        elif self.uv is not None and self.uv.shape != (v, 2):
            problem = f"uv has shape {self.uv.shape}, expected ({v}, 2)"
        elif self.colors is not None and self.colors.shape != (v, 3):
            problem = f"colors have shape {self.colors.shape}, expected ({v}, 3)"
        elif self.texture is not None and self.uv is None:
            problem = "a texture needs uv"
        elif len(self.base_color_factor) != 4:
            problem = "base_color_factor needs 4 values (RGBA)"
        for name in ("vertices", "uv", "colors"):
            array = getattr(self, name)
            if problem is None and array is not None and not np.isfinite(array).all():
                problem = f"{name} contain NaN or infinite values"
        if problem is None and self.colors is not None and len(self.colors):
            if self.colors.min() < 0.0 or self.colors.max() > 1.0:
                problem = "colors must lie in [0, 1]"
        if problem is not None:
            raise DataError(f"invalid source appearance: {problem}")

    @property
    def textured(self) -> bool:
        return self.texture is not None and self.uv is not None


def decode_image(data: bytes) -> UInt8[np.ndarray, "h w 3"]:
    """Encoded image bytes as RGB uint8 (any format Pillow reads)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"the image cannot be decoded ({error})") from None


def texture_from_bytes(data: bytes, mime: str | None, sampler: dict[str, int]) -> TextureImage:
    """A :class:`TextureImage` from a source's image bytes: PNG and JPEG kept as they are, other
    formats decoded and stored as PNG. Raises :class:`ValueError` for bytes that are no image."""
    pixels = decode_image(data)
    with Image.open(io.BytesIO(data)) as image:
        found = Image.MIME.get(image.format or "", mime or "")
    if found in IMAGE_SUFFIX:
        return TextureImage(data, found, dict(sampler))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return TextureImage(buffer.getvalue(), "image/png", dict(sampler))


def save_appearance(dataset_root: Path | str, look: SourceAppearance, source: str = "") -> Path:
    """Write ``look`` into ``dataset_root/appearance`` (replacing one there) atomically."""
    root = Path(dataset_root)
    folder = root / APPEARANCE_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{APPEARANCE_DIR}.writing-", dir=root))
    try:
        os.chmod(tmp, root.stat().st_mode & 0o777)  # as the dataset, not mkdtemp's 0700
        arrays = {
            "vertices": np.asarray(look.vertices, np.float32),
            "faces": np.asarray(look.faces, np.int64),
        }
        if look.uv is not None:
            arrays["uv"] = np.asarray(look.uv, np.float32)
        if look.colors is not None:
            arrays["colors"] = np.asarray(look.colors, np.float32)
        np.savez(tmp / SURFACE_FILE, **arrays)
        image_name = None
        if look.texture is not None:
            image_name = "base_color" + IMAGE_SUFFIX[look.texture.mime]
            (tmp / image_name).write_bytes(look.texture.data)
        record = {
            "version": VERSION,
            "texture": image_name,
            "base_color_factor": [float(c) for c in look.base_color_factor],
            "sampler": look.texture.sampler if look.texture is not None else {},
            "source": source,
        }
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=1))
        old = None
        if folder.exists():
            old = root / f".{APPEARANCE_DIR}.old-{os.getpid()}"
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_appearance(dataset_root: Path | str) -> SourceAppearance | None:
    """The look saved in ``dataset_root/appearance``, or ``None`` when there is none.

    A record or surface that cannot be read gives a warning and ``None`` (the avatar then comes
    out without the source's look); an unreadable texture image gives a warning and the look
    without its texture (vertex colours and the base-colour factor are kept).
    """
    folder = Path(dataset_root) / APPEARANCE_DIR
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        if not isinstance(record, dict) or record.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} record")
        with np.load(folder / SURFACE_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        look = SourceAppearance(
            vertices=arrays["vertices"].astype(np.float64),
            faces=arrays["faces"].astype(np.int64),
            uv=arrays["uv"].astype(np.float32) if "uv" in arrays else None,
            colors=arrays["colors"].astype(np.float32) if "colors" in arrays else None,
            base_color_factor=tuple(float(c) for c in record.get("base_color_factor", WHITE)),
        )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, DataError) as error:
        logger.warning(
            "%s cannot be read (%s): the avatar comes out without the source's look; import the "
            "character again to rewrite it",
            folder,
            error,
        )
        return None
    image = record.get("texture")
    if not image:
        return look
    path = folder / str(image)
    try:
        data = path.read_bytes()
        texture = texture_from_bytes(data, None, dict(record.get("sampler") or {}))
    except (OSError, ValueError) as error:
        logger.warning(
            "texture image %s cannot be read (%s): the avatar comes out untextured; import the "
            "character again, or replace the file with a PNG or JPEG",
            path,
            error,
        )
        return look
    if look.uv is None:
        logger.warning("%s has a texture but no uv: the avatar comes out untextured", folder)
        return look
    return SourceAppearance(
        look.vertices, look.faces, look.uv, look.colors, texture, look.base_color_factor
    )


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (the sRGB transfer function's inverse)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear-light values in [0, 1] to sRGB encoding."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def appearance_kind(look: SourceAppearance | None) -> str | None:
    """``texture``, ``colours``, ``factor`` or ``None``: what ``look`` carries."""
    if look is None:
        return None
    if look.textured:
        return "texture"
    return "colours" if look.colors is not None else "factor"
