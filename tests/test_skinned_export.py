"""The skinned GLB export: exact on constructed motions, valid for the Khronos validator, and
played by three.js in a real (headless) browser.

Ground truth is constructed: the toy capsule skinned by its own weights plus a known pose-dependent
displacement of rank R. With R <= 8 corrective targets the file reproduces every frame to float32
rounding; with more, the 8 targets leave a residual that shrinks with every target added.
"""

import numpy as np
import pytest
import torch

from invskin.export.browser import (
    find_chromium,
    find_three,
    find_validator,
    screenshot_glb,
    validate_glb,
)
from invskin.export.glb import write_glb
from invskin.export.skinned import (
    pose_skinned_glb,
    read_skinned_glb,
    top_weights,
    write_skinned_glb,
)
from invskin.geometry import lbs
from toy_data import toy_body, toy_skeleton, toy_transforms


def constructed_motion(frames: int, rank: int, seed: int = 0):
    """Toy capsule frames: its own weights (3 bones, so 4 influences are exact) skinning the
    canonical vertices plus ``rank`` displacement modes with per-frame coefficients."""
    vertices, faces, weights = toy_body()
    angles = list(np.linspace(-0.8, 1.0, frames))
    transforms = toy_transforms(angles).double()
    rng = np.random.default_rng(seed)
    modes = rng.normal(scale=0.01, size=(rank, len(vertices), 3))
    coeffs = rng.normal(size=(frames, rank))
    displaced = vertices[None] + np.einsum("fr,rvc->fvc", coeffs, modes)
    posed = lbs(
        torch.from_numpy(displaced),
        torch.from_numpy(weights).expand(frames, -1, -1),
        transforms,
    ).numpy()
    return vertices, faces, weights, transforms.numpy(), posed


def errors(path, posed, correctives=True):
    error = np.linalg.norm(pose_skinned_glb(read_skinned_glb(path), correctives) - posed, axis=-1)
    return error.mean(), error.max()


def test_top_weights_keep_four_and_sum_to_one() -> None:
    weights = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [1.0, 0.0, 0.0, 0.0, 0.0]])
    joints, kept = top_weights(weights)
    assert joints[0].tolist() == [2, 3, 1, 4]
    assert np.allclose(kept[0], np.array([0.3, 0.25, 0.2, 0.15]) / 0.9, atol=1e-6)
    assert kept[1].tolist() == [1.0, 0.0, 0.0, 0.0] and joints[1].tolist() == [0, 0, 0, 0]
    assert np.abs(kept.sum(1, dtype=np.float32) - 1).max() < 1e-6


def test_low_rank_correctives_reproduce_every_frame(tmp_path) -> None:
    vertices, faces, weights, transforms, posed = constructed_motion(frames=12, rank=3)
    path = tmp_path / "exact.glb"
    stored = write_skinned_glb(path, vertices, faces, toy_skeleton(), weights, transforms, posed)
    assert len(stored.targets) == 3 and stored.explained == pytest.approx(1.0)
    mean, worst = errors(path, posed)
    assert worst < 1e-5  # float32 storage
    plain_mean, _ = errors(path, posed, correctives=False)
    assert plain_mean > 5e-3  # the displacement is ~1 cm: skinning alone misses it
    glb = read_skinned_glb(path)
    assert glb.names == ("root", "middle", "tip") and glb.parents == (-1, 0, 1)
    assert np.array_equal(glb.faces, faces) and glb.target_weights.shape == (12, 3)


def test_at_most_eight_targets_and_error_falls_with_each(tmp_path) -> None:
    vertices, faces, weights, transforms, posed = constructed_motion(frames=20, rank=12)
    means = []
    for k in (0, 2, 8):
        path = tmp_path / f"k{k}.glb"
        stored = write_skinned_glb(
            path, vertices, faces, toy_skeleton(), weights, transforms, posed, max_targets=k
        )
        assert len(stored.targets) == k
        means.append(errors(path, posed)[0])
    assert means[0] > means[1] > means[2] > 0
    with pytest.raises(ValueError, match="between 0 and 8"):
        write_skinned_glb(
            tmp_path / "x.glb", vertices, faces, toy_skeleton(), weights, transforms, posed, 9
        )


def test_non_rigid_transforms_are_refused_and_nothing_is_written(tmp_path) -> None:
    vertices, faces, weights, transforms, posed = constructed_motion(frames=3, rank=1)
    path = tmp_path / "keep.glb"
    path.write_bytes(b"good")
    scaled = transforms.copy()
    scaled[:, 1, :3, :3] *= 1.5
    with pytest.raises(ValueError, match="not rigid"):
        write_skinned_glb(path, vertices, faces, toy_skeleton(), weights, scaled, posed)
    assert path.read_bytes() == b"good"


@pytest.mark.skipif(find_validator() is None, reason="npm gltf-validator not installed "
                    "(scripts/install_browser.sh)")  # fmt: skip
def test_khronos_validator_reports_no_errors(tmp_path) -> None:
    vertices, faces, weights, transforms, posed = constructed_motion(frames=10, rank=4)
    path = tmp_path / "toy.glb"
    write_skinned_glb(path, vertices, faces, toy_skeleton(), weights, transforms, posed)
    report = validate_glb(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    assert report["info"]["hasSkins"] and report["info"]["hasMorphTargets"]
    assert report["info"]["animationCount"] == 1 and report["info"]["maxInfluences"] == 4


def foreground(png) -> np.ndarray:
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return np.abs(image - 255).sum(-1) > 30  # not the white background


@pytest.mark.skipif(find_chromium() is None or find_three() is None,
                    reason="chromium or three.js not installed (scripts/install_browser.sh)")  # fmt: skip
def test_three_js_in_chromium_plays_the_skinned_glb(tmp_path) -> None:
    """three.js's own skinning of our file draws the same silhouette as the exact per-frame
    morph GLB of the same frame (same camera), and the animation moves it."""
    vertices, faces, weights, transforms, posed = constructed_motion(frames=10, rank=4)
    skinned, morph = tmp_path / "toy.glb", tmp_path / "morph.glb"
    write_skinned_glb(
        skinned, vertices, faces, toy_skeleton(), weights, transforms, posed, fps=10.0
    )
    write_glb(morph, posed.astype(np.float32), faces, fps=10.0)
    lo, hi = posed.reshape(-1, 3).min(0), posed.reshape(-1, 3).max(0)
    view = (*((lo + hi) / 2).tolist(), float(np.linalg.norm(hi - lo)))
    first = screenshot_glb(skinned, tmp_path / "t0.png", time=0.0, size=256, view=view)
    last = screenshot_glb(skinned, tmp_path / "t1.png", time=0.9, size=256, view=view)
    exact = screenshot_glb(morph, tmp_path / "m1.png", time=0.9, size=256, view=view)
    for shot in (first, last):
        assert shot.loaded, shot.title
        assert shot.field("skinned") == 1 and shot.field("morphs") == 4
        assert shot.field("duration") == pytest.approx(0.9, abs=1e-3)
        mask = foreground(shot.screenshot)
        h, w = mask.shape
        assert mask.mean() > 0.02  # the character covers part of the image
        assert mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean() > 0.03  # and its middle
    a, b = foreground(last.screenshot), foreground(exact.screenshot)
    assert (a & b).sum() / (a | b).sum() > 0.95  # same silhouette as the exact frame
    # The animation plays: the first key's silhouette differs from the last's.
    assert (foreground(first.screenshot) != a).mean() > 0.01
