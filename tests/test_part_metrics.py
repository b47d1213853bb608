"""Per-part metrics against constructed ground truth: flat sheets with known per-part offsets, a
sheet torn along a known line (known stretch), a prediction that sits off the ground truth (its
canonical mismatch is not stretch), membership by the nearest corner, degenerate edges."""

import numpy as np
import pytest

from invskin.mesh import TriMesh
from invskin.metrics import attach, edge_stretch, mesh_edges, part_metrics, vertex_parts


def grid(nx: int, ny: int, spacing: float, z: float = 0.0) -> TriMesh:
    """A flat (nx x ny)-vertex sheet in the plane z, split into triangles along one diagonal."""
    x, y = np.meshgrid(np.arange(nx) * spacing, np.arange(ny) * spacing, indexing="ij")
    vertices = np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], axis=1)
    index = np.arange(nx * ny).reshape(nx, ny)
    a, b = index[:-1, :-1].ravel(), index[1:, :-1].ravel()
    c, d = index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return TriMesh(vertices, faces)


def two_sheets() -> tuple[TriMesh, dict[str, np.ndarray]]:
    """Two parallel 0.5 m sheets, 1 m apart: part ``low`` (z = 0) and part ``high`` (z = 1)."""
    low, high = grid(21, 21, 0.025), grid(21, 21, 0.025, z=1.0)
    n = low.num_vertices
    mesh = TriMesh(np.vstack([low.vertices, high.vertices]), np.vstack([low.faces, high.faces + n]))
    return mesh, {"low": np.arange(n), "high": np.arange(n, 2 * n), "all": np.arange(2 * n)}


def test_mesh_edges_are_unique_and_undirected() -> None:
    edges = mesh_edges(np.array([[0, 1, 2], [2, 1, 3]]))
    np.testing.assert_array_equal(edges, [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]])


def test_membership_follows_the_nearest_corner() -> None:
    gt = TriMesh(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]), np.array([[0, 1, 2]]))
    # Points on the face, 1 cm above it, near corner 0, corner 1 and corner 2 respectively.
    pred = np.array([[0.1, 0.1, 0.01], [0.8, 0.1, 0.01], [0.1, 0.7, 0.01]])
    attachment = attach(pred, gt.vertices, gt.faces)
    np.testing.assert_array_equal(attachment.nearest_corner(), [0, 1, 2])
    np.testing.assert_allclose(attachment.points(gt.vertices), pred * [1, 1, 0], atol=1e-9)
    masks = vertex_parts(attachment, {"a": np.array([0, 2]), "b": np.array([1, 3])}, 4)
    np.testing.assert_array_equal(masks["a"], [True, False, True])
    np.testing.assert_array_equal(masks["b"], [False, True, False])


def test_known_offset_per_part_gives_known_errors() -> None:
    gt, parts = two_sheets()
    frames = 2
    # Ground truth: the sheets move rigidly (a different shift per frame).
    gt_posed = np.stack([gt.vertices + [0.1 * f, 0.0, 0.05 * f] for f in range(frames)])
    # Prediction: the same mesh, the low sheet 2 cm off along its normal, the high sheet exact.
    pred_posed = gt_posed.copy()
    pred_posed[:, parts["low"]] += [0.0, 0.0, 0.02]
    attachment = attach(gt.vertices, gt.vertices, gt.faces)
    out = part_metrics(
        attachment,
        gt.faces,
        pred_posed,
        gt.vertices,
        gt.faces,
        gt_posed,
        parts,
        pred_canonical_vertices=gt.vertices,
        chamfer_points=40_000,
    )
    low, high, both = out.summary["low"], out.summary["high"], out.summary["all"]
    assert low["vertices"] == high["vertices"] == low["gt_vertices"] == 441
    assert low["correspondence_mean_cm"] == pytest.approx(2.0)
    assert low["correspondence_p95_cm"] == pytest.approx(2.0)
    assert high["correspondence_mean_cm"] == pytest.approx(0.0, abs=1e-9)
    assert both["correspondence_mean_cm"] == pytest.approx(1.0)  # half the vertices at 2 cm
    # Parallel planes 2 cm apart: Chamfer 2 cm (plus a small sampling floor); exact sheet: floor.
    assert low["chamfer_cm"] == pytest.approx(2.0, abs=0.05)
    assert high["chamfer_cm"] < 0.2
    # A rigid offset stretches nothing.
    for part in (low, high, both):
        assert part["stretch_p99"] == pytest.approx(1.0)
        assert part["stretch_frac_above"] == 0.0
        assert part["edges_skipped"] == 0
    assert len(out.per_frame) == frames
    for frame in out.per_frame:
        assert frame["low"]["correspondence_mean_cm"] == pytest.approx(2.0)
        assert frame["high"]["stretch_p99"] == pytest.approx(1.0)


def test_a_tear_gives_the_stretch_of_its_edges() -> None:
    spacing, gap = 0.05, 0.1
    sheet = grid(21, 11, spacing)  # x in [0, 1], y in [0, 0.5]
    x = sheet.vertices[:, 0]
    right = x > 0.5 + 1e-9
    parts = {"all": np.arange(sheet.num_vertices), "left": np.flatnonzero(~right)}
    gt_posed = sheet.vertices[None]
    # The prediction tears the sheet along x = 0.5: its right half moves 10 cm further right.
    pred_posed = gt_posed.copy()
    pred_posed[0, right] += [gap, 0.0, 0.0]
    attachment = attach(sheet.vertices, sheet.vertices, sheet.faces)
    out = part_metrics(
        attachment,
        sheet.faces,
        pred_posed,
        sheet.vertices,
        sheet.faces,
        gt_posed,
        parts,
        pred_canonical_vertices=sheet.vertices,
    )
    edges = mesh_edges(sheet.faces)
    crossing = right[edges[:, 0]] != right[edges[:, 1]]
    stretch = edge_stretch(edges, pred_posed, gt_posed, sheet.vertices, sheet.vertices)[0]
    # Edges across the tear: along x, (0.05 + 0.1) / 0.05 = 3; diagonal, sqrt(0.15^2 + 0.05^2) /
    # sqrt(2 * 0.05^2) = sqrt(5). Every other edge keeps its length.
    along_x = crossing & (
        np.abs(sheet.vertices[edges[:, 0], 1] - sheet.vertices[edges[:, 1], 1]) < 1e-9
    )
    np.testing.assert_allclose(stretch[along_x], 3.0)
    np.testing.assert_allclose(stretch[crossing & ~along_x], np.sqrt(5.0))
    np.testing.assert_allclose(stretch[~crossing], 1.0)
    assert along_x.sum() == 11 and (crossing & ~along_x).sum() == 10
    whole = out.summary["all"]
    assert whole["edges"] == len(edges)
    assert whole["stretch_frac_above"] == pytest.approx(crossing.mean())
    assert whole["stretch_p99"] == pytest.approx(np.percentile(stretch, 99))
    assert whole["stretch_p99"] > 2.0
    # The left half holds no edge of the tear.
    assert out.summary["left"]["stretch_p99"] == pytest.approx(1.0)
    assert out.summary["left"]["stretch_frac_above"] == 0.0
    assert out.summary["left"]["correspondence_mean_cm"] == pytest.approx(0.0, abs=1e-9)


def test_a_prediction_off_the_ground_truth_is_not_stretch_until_a_pose_stretches_it() -> None:
    # Ground truth: a sheet in z = 0. Prediction: the same grid tilted to z = x, so each vertex
    # attaches straight below itself and an edge along x is sqrt(2) times the distance between its
    # attached points in every frame, the canonical pose included: a mismatch no pose causes.
    gt = grid(11, 11, 0.05)
    pred = TriMesh(gt.vertices + gt.vertices[:, [2, 2, 0]] * [0, 0, 1], gt.faces)
    attachment = attach(pred.vertices, gt.vertices, gt.faces)
    np.testing.assert_allclose(attachment.points(gt.vertices), gt.vertices, atol=1e-12)
    edges = mesh_edges(pred.faces)
    along_y = np.abs(pred.vertices[edges[:, 0], 0] - pred.vertices[edges[:, 1], 0]) < 1e-9

    def summary(pred_posed: np.ndarray, gt_posed: np.ndarray) -> dict:
        return part_metrics(
            attachment,
            pred.faces,
            pred_posed[None],
            gt.vertices,
            gt.faces,
            gt_posed[None],
            {"all": np.arange(gt.num_vertices)},
            pred_canonical_vertices=pred.vertices,
        ).summary["all"]

    # Both move rigidly (a rotation about z and a shift): no stretch, the mismatch is reported.
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rigid = summary(pred.vertices @ rot.T + 0.3, gt.vertices @ rot.T + 0.3)
    assert rigid["stretch_p99"] == pytest.approx(1.0)
    assert rigid["stretch_frac_above"] == 0.0
    assert rigid["canonical_stretch_p99"] == pytest.approx(np.sqrt(2.0))
    # The ground truth grows 1.5x and the prediction follows: no stretch.
    assert summary(1.5 * pred.vertices, 1.5 * gt.vertices)["stretch_p99"] == pytest.approx(1.0)
    # The prediction alone stretches 2x along y: its edges along y stretch 2x, its diagonals
    # sqrt(2)x (below the threshold), its edges along x not at all.
    alone = summary(pred.vertices * [1.0, 2.0, 1.0], gt.vertices)
    assert alone["stretch_p99"] == pytest.approx(2.0)
    assert alone["stretch_frac_above"] == pytest.approx(along_y.mean())


def test_edges_attached_to_one_point_are_skipped_and_empty_parts_are_none() -> None:
    gt = TriMesh(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
    # A small triangle beyond corner 0: all three vertices attach to that corner.
    pred = TriMesh(np.array([[-0.1, -0.1, 0], [-0.12, -0.1, 0], [-0.1, -0.12, 0]]), gt.faces)
    attachment = attach(pred.vertices, gt.vertices, gt.faces)
    out = part_metrics(
        attachment,
        pred.faces,
        pred.vertices[None],
        gt.vertices,
        gt.faces,
        gt.vertices[None],
        {"corner": np.array([0]), "other": np.array([1, 2])},
        pred_canonical_vertices=pred.vertices,
    )
    corner, other = out.summary["corner"], out.summary["other"]
    assert corner["vertices"] == 3 and corner["edges"] == 0 and corner["edges_skipped"] == 3
    assert corner["stretch_p99"] is None and corner["stretch_frac_above"] is None
    assert corner["chamfer_cm"] is None  # the ground-truth part has no face of its own
    assert corner["correspondence_mean_cm"] == pytest.approx(100 * np.hypot(0.1, 0.1), rel=0.2)
    assert other["vertices"] == 0 and other["correspondence_mean_cm"] is None
    assert out.per_frame[0]["other"] == {
        "correspondence_mean_cm": None,
        "chamfer_cm": None,
        "stretch_p99": None,
    }


def test_part_metrics_checks_shapes() -> None:
    gt, parts = two_sheets()
    attachment = attach(gt.vertices, gt.vertices, gt.faces)
    posed = gt.vertices[None]
    with pytest.raises((ValueError, TypeError), match="frames|gt_posed_vertices"):
        part_metrics(
            attachment,
            gt.faces,
            posed,
            gt.vertices,
            gt.faces,
            np.stack([posed[0]] * 2),
            parts,
            pred_canonical_vertices=gt.vertices,
        )
