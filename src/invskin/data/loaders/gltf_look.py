"""What an imported glTF character looks like: its UVs, base-colour texture and vertex colours.

Read per triangle primitive of the imported skin (the vertex order of
:func:`invskin.data.loaders.gltf.read_skinned_mesh`) from its material's
``pbrMetallicRoughness`` (``baseColorTexture``, ``baseColorFactor``) and its ``COLOR_0``. One look
is kept for the whole merged mesh (:class:`~invskin.data.loaders.appearance.SourceAppearance`):

- **texture**: every primitive uses the same base-colour image (texture entries with the same
  image and sampler count as one) with the same factor and none has ``COLOR_0``: the image, the
  UVs (of the ``texCoord`` set the material names) and the factor;
- **colours**: otherwise, when any primitive has a texture, ``COLOR_0`` or a factor other than
  the rest's: each vertex's colour as glTF computes it, ``COLOR_0 x factor x texture`` (in linear
  light; the texture sampled at the vertex's UV), stored sRGB-encoded;
- **factor**: a single material with a plain colour: that colour;
- nothing when every primitive is plain white.

An image that cannot be read (missing file, undecodable bytes, a compressed-texture extension
without a PNG/JPEG source) gives a warning and the primitive counts as untextured.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Float

from invskin.data.loaders.appearance import (
    WHITE,
    SourceAppearance,
    TextureImage,
    linear_to_srgb,
    srgb_to_linear,
    texture_from_bytes,
)
from invskin.motion.gltf_anim import GltfScene

logger = logging.getLogger("invskin.data")

CLAMP_TO_EDGE = 33071
SAMPLER_FIELDS = ("magFilter", "minFilter", "wrapS", "wrapT")


@dataclass
class _Primitive:
    start: int
    stop: int
    factor: tuple[float, float, float, float]
    texture: int | None
    """Index into the file's textures, or None."""
    uv: np.ndarray | None
    color: np.ndarray | None
    """COLOR_0 RGB (linear), or None."""


def _image_bytes(scene: GltfScene, image_index: int) -> tuple[bytes, str | None]:
    image = scene.gltf.images[image_index]
    if image.bufferView is not None:
        view = scene.gltf.bufferViews[image.bufferView]
        start = view.byteOffset or 0
        return scene.blob[start : start + view.byteLength], image.mimeType
    if not image.uri:
        raise ValueError("the image has neither a buffer view nor a uri")
    if image.uri.startswith("data:"):
        header, _, payload = image.uri.partition(",")
        return base64.b64decode(payload), header[5:].split(";")[0] or image.mimeType
    return (Path(scene.path).parent / image.uri).read_bytes(), image.mimeType


def read_texture(scene: GltfScene, texture_index: int) -> TextureImage:
    """A file's texture as encoded image bytes with its sampler; :class:`ValueError` if none."""
    gltf = scene.gltf
    if not 0 <= texture_index < len(gltf.textures or []):
        raise ValueError(f"texture {texture_index} does not exist")
    texture = gltf.textures[texture_index]
    if texture.source is None:
        raise ValueError(
            f"texture {texture_index} has no PNG or JPEG source (only an extension's image)"
        )
    sampler = {}
    if texture.sampler is not None:
        stored = gltf.samplers[texture.sampler]
        sampler = {k: int(getattr(stored, k)) for k in SAMPLER_FIELDS if getattr(stored, k)}
    data, mime = _image_bytes(scene, texture.source)
    return texture_from_bytes(data, mime, sampler)


def sample_texture(image: np.ndarray, uv: np.ndarray, sampler: dict[str, int]) -> np.ndarray:
    """Nearest-pixel RGB in [0, 1] of ``image`` (H, W, 3) uint8 at glTF ``uv`` (N, 2): wrapped
    (repeat) unless the sampler clamps to the edge."""
    h, w = image.shape[:2]
    u, v = uv[:, 0].astype(np.float64), uv[:, 1].astype(np.float64)
    u = np.clip(u, 0.0, 1.0) if sampler.get("wrapS") == CLAMP_TO_EDGE else u % 1.0
    v = np.clip(v, 0.0, 1.0) if sampler.get("wrapT") == CLAMP_TO_EDGE else v % 1.0
    col = np.clip((u * w).astype(np.int64), 0, w - 1)
    row = np.clip((v * h).astype(np.int64), 0, h - 1)
    return image[row, col, :3].astype(np.float64) / 255.0


def textured_linear(
    texture: TextureImage, uv: np.ndarray, factor: tuple[float, ...]
) -> Float[np.ndarray, "n 3"]:
    """glTF's base colour in linear light at ``uv`` (N, 2): the texture (nearest pixel, sRGB
    decoded) times the factor's RGB."""
    sampled = sample_texture(texture.decode(), uv, texture.sampler)
    return srgb_to_linear(sampled) * np.asarray(factor[:3], dtype=np.float64)


def _primitives(scene: GltfScene, primitives, total: int) -> list[_Primitive]:
    gltf = scene.gltf
    out = []
    starts = [p[2] for p in primitives] + [total]
    for (mesh_index, k, start), stop in zip(primitives, starts[1:]):
        prim = gltf.meshes[mesh_index].primitives[k]
        material = gltf.materials[prim.material] if prim.material is not None else None
        pbr = material.pbrMetallicRoughness if material is not None else None
        factor = tuple(float(c) for c in (pbr.baseColorFactor if pbr and pbr.baseColorFactor
                                          else WHITE))  # fmt: skip
        info = pbr.baseColorTexture if pbr is not None else None
        texture, uv = None, None
        if info is not None:
            accessor = getattr(prim.attributes, f"TEXCOORD_{info.texCoord or 0}", None)
            if accessor is None:
                logger.warning(
                    "%s: mesh %d primitive %d has a base-colour texture but no TEXCOORD_%d: "
                    "it comes out untextured",
                    scene.path,
                    mesh_index,
                    k,
                    info.texCoord or 0,
                )
            else:
                texture = int(info.index)
                uv = scene.accessor(accessor).astype(np.float64)[:, :2]
        color = None
        if prim.attributes.COLOR_0 is not None:
            color = scene.accessor(prim.attributes.COLOR_0).astype(np.float64)[:, :3]
        out.append(_Primitive(start, stop, factor, texture, uv, color))  # type: ignore[arg-type]
    return out


def read_source_appearance(
    scene: GltfScene,
    primitives: tuple[tuple[int, int, int], ...],
    vertices: np.ndarray,
    faces: np.ndarray,
) -> SourceAppearance | None:
    """The look of the merged mesh (module docstring) on ``vertices`` (the canonical surface),
    or ``None`` when every primitive is plain white."""
    prims = _primitives(scene, primitives, len(vertices))
    textures: dict[int, TextureImage | None] = {}
    for index in sorted({p.texture for p in prims if p.texture is not None}):
        try:
            textures[index] = read_texture(scene, index)
        except (OSError, ValueError) as error:
            logger.warning(
                "%s: the base-colour texture %d cannot be read (%s): the avatar comes out "
                "without it; export the file with its PNG or JPEG images",
                scene.path,
                index,
                error,
            )
            textures[index] = None
    # Two texture entries of one image with one sampler are one texture (Mixamo exports give
    # each material its own entry).
    first: dict[tuple[bytes, str, tuple], int] = {}
    same: dict[int, int] = {}
    for index, texture in textures.items():
        if texture is not None:
            key = (texture.data, texture.mime, tuple(sorted(texture.sampler.items())))
            same[index] = first.setdefault(key, index)
    for p in prims:
        if p.texture is not None and textures[p.texture] is None:
            p.texture, p.uv = None, None
        elif p.texture is not None:
            p.texture = same[p.texture]
    keys = {(p.texture, p.factor) for p in prims}
    has_color = any(p.color is not None for p in prims)
    if len(keys) == 1 and not has_color:
        texture, factor = next(iter(keys))
        if texture is not None:
            uv = np.concatenate([p.uv for p in prims]).astype(np.float32)
            return SourceAppearance(vertices, faces, uv, None, textures[texture], factor)
        if factor[:3] == WHITE[:3]:
            return None
        return SourceAppearance(vertices, faces, base_color_factor=factor)
    linear = np.ones((len(vertices), 3))
    for p in prims:
        if p.texture is not None:
            part = textured_linear(textures[p.texture], p.uv, p.factor)
        else:
            part = np.broadcast_to(np.asarray(p.factor[:3]), (p.stop - p.start, 3)).copy()
        if p.color is not None:
            part *= p.color
        linear[p.start : p.stop] = part
    colors = linear_to_srgb(linear).astype(np.float32)
    return SourceAppearance(vertices, faces, colors=colors)


def look_vertex_colours(look: SourceAppearance | None) -> Float[np.ndarray, "v 3"] | None:
    """Each vertex's colour (sRGB in [0, 1]) as glTF computes it: the stored per-vertex colours,
    or the base-colour texture at the vertex's UV (nearest pixel) times the factor (in linear
    light); None for a plain colour or no look (a uniform colour shows nothing moving)."""
    if look is None:
        return None
    if look.colors is not None:
        return look.colors.astype(np.float32)
    if look.textured:
        linear = textured_linear(look.texture, look.uv, look.base_color_factor)
        return np.clip(linear_to_srgb(linear), 0.0, 1.0).astype(np.float32)
    return None
