"""Marching-cubes extraction from a positive-inside callable: analytic spheres and ellipsoids give
known area, volume, extents and outward normals; chunked evaluation; component filtering; errors."""

import math
import warnings

import numpy as np
import pytest
import torch
import trimesh
from torch import Tensor

from invskin.mesh import (
    TriMesh,
    evaluate_grid,
    extract_mesh,
    face_normals,
    largest_component,
    mesh_from_grid,
    signed_volume,
    surface_area,
)


def sphere_field(radius: float = 0.5, centre: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    c = torch.tensor(centre)
    return lambda points: radius - (points - c).norm(dim=-1)  # positive inside


def test_sphere_area_volume_and_outward_normals() -> None:
    mesh = extract_mesh(sphere_field(0.5), (-0.6, -0.6, -0.6), (0.6, 0.6, 0.6), 128)
    assert surface_area(mesh) == pytest.approx(4 * math.pi * 0.25, rel=0.01)
    assert signed_volume(mesh) == pytest.approx(4 / 3 * math.pi * 0.125, rel=0.01)
    radius = np.linalg.norm(mesh.vertices, axis=1)
    np.testing.assert_allclose(radius, 0.5, atol=1e-3)  # voxel 9.4 mm, linear interpolation
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    cos = np.einsum(
        "td,td->t", face_normals(mesh), centroids / np.linalg.norm(centroids, axis=1)[:, None]
    )
    assert cos.min() > 0.5 and np.median(cos) > 0.99  # every face points outwards
    assert mesh.to_trimesh().is_watertight


def test_world_coordinates_and_axis_order_with_anisotropic_grid() -> None:
    # Ellipsoid with semi-axes (0.3, 0.2, 0.1) centred off the origin, on a non-cubic grid.
    centre = torch.tensor([0.1, -0.2, 0.3])
    axes = torch.tensor([0.3, 0.2, 0.1])
    field = lambda p: 1.0 - (((p - centre) / axes) ** 2).sum(dim=-1)
    lo, hi = (-0.25, -0.45, 0.15), (0.45, 0.05, 0.5)
    mesh = extract_mesh(field, lo, hi, (71, 51, 36))
    np.testing.assert_allclose(mesh.vertices.min(axis=0), centre - axes, atol=5e-3)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), centre + axes, atol=5e-3)
    assert signed_volume(mesh) == pytest.approx(4 / 3 * math.pi * 0.3 * 0.2 * 0.1, rel=0.02)


def test_level_and_module_field_on_inferred_device() -> None:
    class Sphere(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.radius = torch.nn.Parameter(torch.tensor(0.5))

        def forward(self, points: Tensor) -> Tensor:
            return self.radius - points.norm(dim=-1)

    mesh = extract_mesh(Sphere(), np.full(3, -0.6), torch.full((3,), 0.6), 64, level=0.1)
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 0.4, atol=2e-3)


def test_evaluate_grid_chunks_without_grad_and_indexes_xyz() -> None:
    calls: list[tuple[int, torch.dtype, bool]] = []

    def field(points: Tensor) -> Tensor:
        calls.append((len(points), points.dtype, torch.is_grad_enabled()))
        return points[:, 0] + 10 * points[:, 1] + 100 * points[:, 2]

    grid = evaluate_grid(field, (0, 0, 0), (1, 2, 3), (3, 4, 5), chunk_size=7)
    assert grid.shape == (3, 4, 5) and grid.dtype == np.float32
    assert all(n <= 7 and dtype == torch.float32 and not grad for n, dtype, grad in calls)
    assert sum(n for n, _, _ in calls) == 60
    x, y, z = np.meshgrid(
        np.linspace(0, 1, 3), np.linspace(0, 2, 4), np.linspace(0, 3, 5), indexing="ij"
    )
    np.testing.assert_allclose(grid, x + 10 * y + 100 * z, rtol=1e-6)
    big = evaluate_grid(field, (0, 0, 0), (1, 2, 3), (3, 4, 5), chunk_size=1000)
    np.testing.assert_array_equal(grid, big)


def test_keep_largest_component_removes_small_sphere() -> None:
    big, small = sphere_field(0.4, (-0.2, 0.0, 0.0)), sphere_field(0.1, (0.5, 0.0, 0.0))
    field = lambda p: torch.maximum(big(p), small(p))
    lo, hi = (-0.7, -0.5, -0.5), (0.7, 0.5, 0.5)
    both = extract_mesh(field, lo, hi, 96)
    assert both.vertices[:, 0].max() == pytest.approx(0.6, abs=0.01)
    kept = extract_mesh(field, lo, hi, 96, keep_largest_component=True)
    assert kept.vertices[:, 0].max() == pytest.approx(0.2, abs=0.01)
    assert signed_volume(kept) == pytest.approx(4 / 3 * math.pi * 0.4**3, rel=0.01)
    assert kept.num_vertices < both.num_vertices and kept.faces.max() == kept.num_vertices - 1


def test_largest_component_is_by_area_and_keeps_order() -> None:
    a = trimesh.creation.box(extents=(1, 1, 1))
    b = trimesh.creation.box(extents=(2, 2, 2))
    b.vertices += 5.0
    mesh = TriMesh(np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + 8]))
    kept = largest_component(mesh)
    np.testing.assert_array_equal(kept.vertices, b.vertices)
    np.testing.assert_array_equal(kept.faces, b.faces)


def test_errors_are_clear() -> None:
    lo, hi = (-1, -1, -1), (1, 1, 1)
    with pytest.raises(ValueError, match="every grid point is outside"):
        extract_mesh(lambda p: -torch.ones(len(p)), lo, hi, 8)
    with pytest.raises(ValueError, match="every grid point is inside"):
        extract_mesh(lambda p: torch.ones(len(p)), lo, hi, 8)
    with pytest.raises(ValueError, match="NaN"):
        extract_mesh(lambda p: torch.full((len(p),), float("nan")), lo, hi, 8)
    with pytest.raises(ValueError, match="values \\(N,\\)"):
        extract_mesh(lambda p: p, lo, hi, 8)
    with pytest.raises(ValueError, match="bounds_min < bounds_max"):
        extract_mesh(sphere_field(), hi, lo, 8)
    with pytest.raises(ValueError, match=">= 2"):
        extract_mesh(sphere_field(), lo, hi, (8, 1, 8))


def test_warns_when_shape_touches_the_bounds() -> None:
    with pytest.warns(UserWarning, match="enlarge the bounds"):
        mesh = extract_mesh(sphere_field(0.5), (-0.4, -0.4, -0.4), (0.4, 0.4, 0.4), 16)
    assert not mesh.to_trimesh().is_watertight
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_mesh(sphere_field(0.3), (-0.4, -0.4, -0.4), (0.4, 0.4, 0.4), 16)


def test_a_dropped_floater_at_the_border_does_not_warn_but_a_cut_kept_component_does() -> None:
    lo, hi = (-0.4, -0.4, -0.4), (0.4, 0.4, 0.4)
    body, floater = (
        sphere_field(0.25),
        sphere_field(0.08, (0.4, 0.0, 0.0)),
    )  # floater cut by x = 0.4

    def body_and_floater(p: Tensor) -> Tensor:
        return torch.maximum(body(p), floater(p))

    with pytest.warns(UserWarning, match="enlarge the bounds"):
        extract_mesh(body_and_floater, lo, hi, 32)  # the floater is kept: the mesh is cut open
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mesh = extract_mesh(body_and_floater, lo, hi, 32, keep_largest_component=True)
    assert mesh.to_trimesh().is_watertight
    big = sphere_field(0.45)  # the largest component itself is cut by the bounds
    with pytest.warns(UserWarning, match="enlarge the bounds"):
        mesh = extract_mesh(
            lambda p: torch.maximum(big(p), floater(p)), lo, hi, 32, keep_largest_component=True
        )
    assert not mesh.to_trimesh().is_watertight


def test_mesh_from_grid_matches_extract_mesh() -> None:
    lo, hi = (-0.6, -0.5, -0.4), (0.6, 0.5, 0.4)
    values = evaluate_grid(sphere_field(0.3), lo, hi, (40, 33, 27))
    direct = extract_mesh(sphere_field(0.3), lo, hi, (40, 33, 27))
    from_grid = mesh_from_grid(values, lo, hi)
    np.testing.assert_array_equal(from_grid.faces, direct.faces)
    np.testing.assert_allclose(from_grid.vertices, direct.vertices)
    with pytest.raises(ValueError, match="3-D"):
        mesh_from_grid(values[0], lo, hi)
