"""Generalised winding numbers: fast backend vs an exact solid-angle reference, open meshes
(scans with holes), orientation, chunking and edge cases."""

import numpy as np
import pytest
import trimesh

from invskin.mesh import TriMesh, occupancy, winding_numbers
from invskin.mesh.winding import spatial_order


def sphere(radius: float = 0.5, subdivisions: int = 4) -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return TriMesh(s.vertices, s.faces)


def sphere_with_hole() -> TriMesh:
    """Sphere of radius 0.5 with a cap around the north pole removed (hole radius ~0.22 m)."""
    mesh = sphere()
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    return TriMesh(mesh.vertices, mesh.faces[centroids[:, 2] < 0.45])


def exact_winding_numbers(mesh: TriMesh, points: np.ndarray) -> np.ndarray:
    """Readable reference: sum of signed solid angles (Van Oosterom and Strackee) over 4 pi."""
    tri = mesh.vertices[mesh.faces][None] - points[:, None, None, :]  # (N, T, 3, 3)
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    numerator = np.einsum("ntd,ntd->nt", a, np.cross(b, c))
    denominator = (
        la * lb * lc
        + np.einsum("ntd,ntd->nt", a, b) * lc
        + np.einsum("ntd,ntd->nt", b, c) * la
        + np.einsum("ntd,ntd->nt", c, a) * lb
    )
    return (2.0 * np.arctan2(numerator, denominator)).sum(axis=1) / (4.0 * np.pi)


def random_points(n: int, seed: int = 0, extent: float = 0.7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-extent, extent, size=(n, 3))


def test_closed_sphere_inside_is_one_outside_is_zero() -> None:
    points = random_points(20_000)
    radius = np.linalg.norm(points, axis=1)
    away = np.abs(radius - 0.5) > 0.02
    w = winding_numbers(sphere(), points)
    assert w.dtype == np.float64 and w.shape == (20_000,)
    np.testing.assert_allclose(w[away], (radius[away] < 0.5).astype(float), atol=5e-3)
    np.testing.assert_array_equal(occupancy(sphere(), points)[away], radius[away] < 0.5)


def test_fast_winding_matches_exact_reference_on_open_mesh() -> None:
    mesh = sphere_with_hole()
    points = random_points(200, seed=1)
    radius = np.linalg.norm(points, axis=1)
    points = points[np.abs(radius - 0.5) > 0.02]
    reference = exact_winding_numbers(mesh, points)
    assert reference.min() < 0.2 and reference.max() > 0.8  # both sides are covered
    np.testing.assert_allclose(winding_numbers(mesh, points), reference, atol=5e-3)


def test_occupancy_of_sphere_with_hole_is_right_away_from_the_hole() -> None:
    mesh = sphere_with_hole()
    points = random_points(100_000, seed=2)
    radius = np.linalg.norm(points, axis=1)
    truth = radius < 0.5
    inside = occupancy(mesh, points)
    off_surface = np.abs(radius - 0.5) > 0.02
    far_from_hole = np.linalg.norm(points - [0.0, 0.0, 0.5], axis=1) > 0.3
    sel = off_surface & far_from_hole
    np.testing.assert_array_equal(inside[sel], truth[sel])
    assert np.mean(inside[off_surface] == truth[off_surface]) > 0.999  # even near the hole


def test_inputs_pair_chunking_and_orientation() -> None:
    mesh = sphere(subdivisions=2)
    points = random_points(1000, seed=3)
    w = winding_numbers(mesh, points)
    np.testing.assert_allclose(winding_numbers((mesh.vertices, mesh.faces), points), w)
    np.testing.assert_allclose(winding_numbers(mesh, points, chunk_size=7), w, atol=1e-12)
    # Inward-facing faces flip the sign: -1 inside.
    flipped = TriMesh(mesh.vertices, mesh.faces[:, ::-1])
    np.testing.assert_allclose(winding_numbers(flipped, points), -w, atol=1e-6)
    assert not occupancy(flipped, points).any()


def test_edge_cases() -> None:
    mesh = sphere(subdivisions=1)
    assert winding_numbers(mesh, np.zeros((0, 3))).shape == (0,)
    no_faces = TriMesh(mesh.vertices, np.zeros((0, 3), dtype=np.int64))
    np.testing.assert_array_equal(winding_numbers(no_faces, random_points(5)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        winding_numbers(mesh, np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="chunk_size"):
        winding_numbers(mesh, random_points(5), chunk_size=0)


def test_spatial_order_is_a_z_order_permutation() -> None:
    points = random_points(5000, seed=4)
    order = spatial_order(points)
    np.testing.assert_array_equal(np.sort(order), np.arange(5000))
    # The most significant key bit is the top bit of z: the lower half in z comes first.
    lower = points[order, 2] < 0.5 * (points[:, 2].min() + points[:, 2].max())
    assert np.all(lower[: lower.sum()]) and not np.any(lower[lower.sum() :])
