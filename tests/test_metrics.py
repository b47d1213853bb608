"""Metrics against constructed ground truth: concentric and intersecting spheres (IoU), offset
spheres (Chamfer), a 45-degree zigzag over a plane (normal consistency), a half-matched scene
(F-score), and known surface motion (correspondence error)."""

import math

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from invskin.mesh import TriMesh, interpolate_barycentric, sample_surface, surface_area
from invskin.metrics import (
    chamfer_cm,
    compare_surfaces,
    correspondence_error,
    evaluation_points,
    fscore,
    iou,
    mesh_metrics,
    normal_consistency,
    occupancy_iou,
)

N = 20_000


def sphere(radius: float, centre: tuple[float, float, float] = (0, 0, 0), sub: int = 4) -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=sub, radius=radius)
    return TriMesh(s.vertices + np.asarray(centre, dtype=float), s.faces)


def merge(a: TriMesh, b: TriMesh) -> TriMesh:
    return TriMesh(
        np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + len(a.vertices)])
    )


# ----------------------------------------------------------------------------- IoU


def test_evaluation_points_follow_the_protocol() -> None:
    gt = sphere(0.5, centre=(1.0, 2.0, 3.0))
    points = evaluation_points(gt, n=N, seed=0)
    assert points.bbox.shape == (N, 3) and points.surface.shape == (N, 3)
    lo, hi = gt.vertices.min(axis=0), gt.vertices.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1  # enlarged by 10% about the centre
    assert np.all(points.bbox >= centre - half) and np.all(points.bbox <= centre + half)
    np.testing.assert_allclose(points.bbox.min(axis=0), centre - half, atol=0.01)
    np.testing.assert_allclose(points.bbox.max(axis=0), centre + half, atol=0.01)
    # Surface points: radial offset from the sphere is N(0, 1 cm).
    offset = np.linalg.norm(points.surface - [1.0, 2.0, 3.0], axis=1) - 0.5
    assert abs(offset.mean()) < 1e-3 and offset.std() == pytest.approx(0.01, rel=0.05)
    again = evaluation_points(gt, n=N, seed=0)
    np.testing.assert_array_equal(again.bbox, points.bbox)
    np.testing.assert_array_equal(again.surface, points.surface)
    assert not np.allclose(evaluation_points(gt, n=N, seed=1).bbox, points.bbox)


def test_iou_of_boolean_vectors() -> None:
    pred = np.array([True, True, False, False, True])
    gt = np.array([True, False, True, False, True])
    assert iou(pred, gt) == pytest.approx(2 / 4)
    assert iou(np.zeros(3, dtype=bool), np.zeros(3, dtype=bool)) == 1.0


def test_iou_of_concentric_spheres_is_radius_ratio_cubed() -> None:
    pred, gt = sphere(0.3), sphere(0.5)
    points = evaluation_points(gt, n=N, seed=0)
    assert occupancy_iou(pred, gt, points.bbox) == pytest.approx(0.6**3, abs=0.015)
    assert occupancy_iou(gt, gt, points.surface) == 1.0


def test_iou_of_intersecting_spheres_matches_lens_volume() -> None:
    r, big_r, d = 0.3, 0.4, 0.35
    lens = (
        math.pi
        * (big_r + r - d) ** 2
        * (d * d + 2 * d * r - 3 * r * r + 2 * d * big_r + 6 * r * big_r - 3 * big_r**2)
        / (12 * d)
    )
    union = 4 / 3 * math.pi * (r**3 + big_r**3) - lens
    pred, gt = sphere(r, centre=(d, 0, 0)), sphere(big_r)
    points = np.random.default_rng(0).uniform([-0.45, -0.45, -0.45], [0.7, 0.45, 0.45], size=(N, 3))
    assert occupancy_iou(pred, gt, points) == pytest.approx(lens / union, abs=0.015)


# ----------------------------------------------------------------------------- surface


def test_chamfer_of_concentric_spheres_is_their_gap() -> None:
    # 20k samples on a 10 cm sphere are ~2.5 mm apart: the gap dominates the sampling error.
    assert chamfer_cm(sphere(0.11), sphere(0.10), n=N) == pytest.approx(1.0, rel=0.03)
    assert chamfer_cm(sphere(0.10), sphere(0.13), n=N) == pytest.approx(3.0, rel=0.03)


def test_identical_meshes_score_perfectly_up_to_sampling() -> None:
    mesh = sphere(0.2)  # 20k samples on 0.5 m^2: no sample is 1 cm from its nearest neighbour
    result = compare_surfaces(mesh, mesh, n=N, seed=0)
    # Nearest-sample distance between independent uniform samples: about 1 / (2 sqrt(density)).
    expected_cm = 100 * 0.5 / math.sqrt(N / surface_area(mesh))
    assert result.chamfer_cm() == pytest.approx(expected_cm, rel=0.15)
    assert result.normal_consistency() > 0.99
    assert result.fscore(0.01) == 1.0
    assert chamfer_cm(mesh, mesh, n=N) == result.chamfer_cm()  # same seed, same samples


def test_normal_consistency_of_zigzag_over_plane_is_cos_45() -> None:
    # Facets at +-45 degrees, 1 mm tall, over a flat square: |cos| is exactly 1/sqrt(2).
    h = 0.001
    xs = np.arange(0, 101) * h
    zs = (np.arange(101) % 2) * h
    vertices = np.concatenate(
        [np.stack([xs, np.zeros(101), zs], 1), np.stack([xs, np.full(101, 0.1), zs], 1)]
    )
    i = np.arange(100)
    faces = np.concatenate([np.stack([i, i + 1, i + 102], 1), np.stack([i, i + 102, i + 101], 1)])
    zigzag = TriMesh(vertices, faces)
    plane = TriMesh(
        np.array([[0.0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0], [0, 0.1, 0]]),
        np.array([[0, 1, 2], [0, 2, 3]]),
    )
    assert normal_consistency(zigzag, plane, n=5000) == pytest.approx(1 / math.sqrt(2), abs=1e-9)
    assert normal_consistency(plane, plane, n=5000) == pytest.approx(1.0)


def test_fscore_with_half_of_the_truth_missing() -> None:
    # Prediction = one of two equal, far-apart spheres: precision 1, recall 1/2, F = 2/3.
    pred = sphere(0.15)
    gt = merge(sphere(0.15), sphere(0.15, centre=(2.0, 0.0, 0.0)))
    result = compare_surfaces(pred, gt, n=N)
    assert np.mean(result.pred_to_gt < 0.01) > 0.999
    assert np.mean(result.gt_to_pred < 0.01) == pytest.approx(0.5, abs=0.02)
    assert fscore(pred, gt, n=N) == pytest.approx(2 / 3, abs=0.015)
    assert fscore(sphere(0.2), sphere(0.23), n=N) == 0.0  # 3 cm apart, 1 cm threshold


def test_mesh_metrics_keys_and_values() -> None:
    gt = sphere(0.2)
    same = mesh_metrics(gt, gt, n=N, seed=0)
    assert set(same) == {
        "iou_bbox",
        "iou_surface",
        "chamfer_cm",
        "normal_consistency",
        "fscore_1cm",
    }
    assert same["iou_bbox"] == 1.0 and same["iou_surface"] == 1.0 and same["fscore_1cm"] == 1.0
    assert same == mesh_metrics(gt, gt, n=N, seed=0)  # deterministic
    smaller = mesh_metrics(sphere(0.16), gt, n=N, seed=0)
    assert smaller["iou_bbox"] == pytest.approx(0.8**3, abs=0.02)
    assert smaller["chamfer_cm"] == pytest.approx(4.0, rel=0.03)
    assert smaller["iou_surface"] < 0.9 and smaller["fscore_1cm"] == 0.0


# ----------------------------------------------------------------------------- correspondence


def gt_sequence(frames: int = 3) -> tuple[TriMesh, np.ndarray]:
    """A sphere moved by random rigid motions plus per-vertex jitter (non-rigid), (F, W, 3)."""
    canonical = sphere(0.3, sub=3)
    rng = np.random.default_rng(0)
    rotations = Rotation.random(frames, random_state=1).as_matrix()
    posed = np.einsum("fij,wj->fwi", rotations, canonical.vertices) + rng.normal(
        size=(frames, 1, 3)
    )
    posed += rng.normal(scale=0.01, size=posed.shape)
    return canonical, posed


def test_correspondence_error_is_zero_for_the_truth() -> None:
    canonical, posed = gt_sequence()
    out = correspondence_error(
        canonical.vertices, posed, canonical.vertices, canonical.faces, posed
    )
    assert out["mean_cm"] < 1e-8 and out["p95_cm"] < 1e-8
    assert out["per_frame_mean_cm"].shape == (3,)


def test_correspondence_error_uses_barycentric_surface_points() -> None:
    canonical, posed = gt_sequence()
    samples = sample_surface(canonical, 2000, seed=0)
    # The predicted vertices sit 1 mm off the surface in canonical space (their closest point is
    # the sample), and each frame places them where the attached surface point truly moves.
    pred_canonical = samples.points + 0.001 * samples.normals
    truth = np.stack(
        [
            interpolate_barycentric(
                TriMesh(p, canonical.faces), samples.face_index, samples.barycentric
            )
            for p in posed
        ]
    )
    out = correspondence_error(pred_canonical, truth, canonical.vertices, canonical.faces, posed)
    assert out["mean_cm"] < 1e-6
    # A known offset of 5 cm (3-4-5) in every frame gives exactly 5 cm.
    shifted = truth + np.array([0.03, 0.0, 0.04])
    out = correspondence_error(pred_canonical, shifted, canonical.vertices, canonical.faces, posed)
    assert out["mean_cm"] == pytest.approx(5.0) and out["p95_cm"] == pytest.approx(5.0)
    np.testing.assert_allclose(out["per_frame_mean_cm"], 5.0)
    # Offsetting only frame 1 shows up in that frame alone.
    one = truth.copy()
    one[1] += [0.0, 0.02, 0.0]
    out = correspondence_error(pred_canonical, one, canonical.vertices, canonical.faces, posed)
    np.testing.assert_allclose(out["per_frame_mean_cm"], [0.0, 2.0, 0.0], atol=1e-6)


def test_correspondence_error_checks_frame_counts() -> None:
    canonical, posed = gt_sequence()
    # ValueError from the function; the jaxtyping hook in tests raises TypeError on "f" first.
    with pytest.raises((ValueError, TypeError), match="frames|gt_posed_vertices"):
        correspondence_error(
            canonical.vertices, posed[:2], canonical.vertices, canonical.faces, posed
        )
