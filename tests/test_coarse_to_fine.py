"""Coarse-to-fine grid evaluation (snarf's per-frame extraction) against the dense reference."""

import numpy as np
import torch

from invskin.mesh.coarse_to_fine import evaluate_grid_coarse_to_fine
from invskin.mesh.extract import evaluate_grid, mesh_from_grid
from invskin.mesh.io import surface_area


def two_spheres(points: torch.Tensor) -> torch.Tensor:
    a = 0.4 - (points - torch.tensor([-0.3, 0.0, 0.0])).norm(dim=-1)
    b = 0.25 - (points - torch.tensor([0.45, 0.1, 0.0])).norm(dim=-1)
    return torch.maximum(a, b)


def test_matches_the_dense_grid_where_it_matters_and_evaluates_far_fewer_points() -> None:
    lo, hi = [-1.0, -0.6, -0.6], [1.0, 0.6, 0.6]
    fine, evaluations = evaluate_grid_coarse_to_fine(two_spheres, lo, hi, 17, 4)
    dense = evaluate_grid(two_spheres, lo, hi, fine.shape)
    assert fine.shape == (65, 65, 65)
    assert np.array_equal(fine > 0, dense > 0)  # every inside/outside decision is the same
    assert evaluations < 0.4 * dense.size
    mesh, reference = mesh_from_grid(fine, lo, hi), mesh_from_grid(dense, lo, hi)
    assert abs(surface_area(mesh) - surface_area(reference)) < 1e-3 * surface_area(reference)
    analytic = 4 * np.pi * (0.4**2 + 0.25**2)
    assert abs(surface_area(mesh) - analytic) < 0.03 * analytic
