"""TriMesh validation, PLY/OBJ round trips with vertex order kept, atomic saves, unit checks,
surface sampling, normals and closest points, all against constructed ground truth."""

import os
import stat
from pathlib import Path

import igl
import numpy as np
import pytest
import trimesh

from invskin.mesh import (
    TriMesh,
    check_units_metres,
    closest_points,
    face_normals,
    load_mesh,
    sample_surface,
    save_mesh,
    signed_volume,
    surface_area,
    vertex_normals,
)


def sphere(radius: float = 0.5, subdivisions: int = 3) -> TriMesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return TriMesh(s.vertices, s.faces)


def shuffled_sphere() -> TriMesh:
    """A sphere whose vertex order is a random permutation, so any reordering on IO shows."""
    mesh = sphere()
    perm = np.random.default_rng(1).permutation(mesh.num_vertices)
    inverse = np.argsort(perm)
    return TriMesh(mesh.vertices[perm], inverse[mesh.faces])


UNIT_TRIANGLE = TriMesh(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))


# ----------------------------------------------------------------------------- TriMesh


def test_trimesh_converts_dtypes() -> None:
    mesh = TriMesh(np.zeros((3, 3), dtype=np.float32), np.array([[0, 1, 2]], dtype=np.int32))
    assert mesh.vertices.dtype == np.float64 and mesh.faces.dtype == np.int64
    assert mesh.num_vertices == 3 and mesh.num_faces == 1


@pytest.mark.parametrize(
    ("vertices", "faces", "message"),
    [
        (np.array([[0.0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]), np.array([[0, 1, 2]]), "NaN"),
        (np.eye(3), np.array([[0, 1, 3]]), "only 3 vertices"),
        (np.eye(3), np.array([[-1, 1, 2]]), "0-based"),
    ],
)
def test_trimesh_rejects_invalid(vertices: np.ndarray, faces: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TriMesh(vertices, faces)


@pytest.mark.parametrize(
    ("vertices", "faces"),
    [(np.eye(3), np.array([[0, 1, 2, 0]])), (np.zeros((3, 2)), np.array([[0, 1, 2]]))],
)
def test_trimesh_rejects_wrong_shapes(vertices: np.ndarray, faces: np.ndarray) -> None:
    # The jaxtyping hook (TypeError) catches these in tests; __post_init__ (ValueError) otherwise.
    with pytest.raises((ValueError, TypeError), match="3"):
        TriMesh(vertices, faces)


def test_trimesh_is_frozen_and_converts_to_trimesh() -> None:
    mesh = shuffled_sphere()
    with pytest.raises(AttributeError):
        mesh.vertices = mesh.vertices  # type: ignore[misc]
    tm = mesh.to_trimesh()
    np.testing.assert_array_equal(tm.vertices, mesh.vertices)
    np.testing.assert_array_equal(tm.faces, mesh.faces)
    back = TriMesh.from_trimesh(tm)
    np.testing.assert_array_equal(back.faces, mesh.faces)


def test_area_and_volume_of_unit_cube() -> None:
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    mesh = TriMesh(box.vertices, box.faces)
    assert surface_area(mesh) == pytest.approx(2 * (2 + 3 + 6))
    assert signed_volume(mesh) == pytest.approx(6.0)
    assert signed_volume(TriMesh(mesh.vertices, mesh.faces[:, ::-1])) == pytest.approx(-6.0)


# ----------------------------------------------------------------------------- IO


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".PLY"])
def test_save_load_round_trip_keeps_vertex_order(tmp_path: Path, suffix: str) -> None:
    mesh = shuffled_sphere()
    path = save_mesh(tmp_path / f"m{suffix}", mesh)
    loaded = load_mesh(path)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    # PLY is binary float64 (exact); OBJ is text with enough digits for 1e-7 m.
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-7)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"m{suffix}"]  # no temp files left


def test_load_obj_with_uv_seams_keeps_vertices(tmp_path: Path) -> None:
    # Each corner uses a different texture coordinate than its vertex index: trimesh's default
    # loader would split the 4 vertices into 10.
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
    text += "".join(f"vt {u} {u}\n" for u in np.linspace(0, 1, 6))
    text += "f 2/1 3/2 4/3\nf 1/4 3/5 2/6\nf 1/1 2/2 4/3\nf 1/4 4/5 3/6\n"
    (tmp_path / "t.obj").write_text(text)
    mesh = load_mesh(tmp_path / "t.obj")
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(mesh.faces, [[1, 2, 3], [0, 2, 1], [0, 1, 3], [0, 3, 2]])


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.ply"):
        load_mesh(tmp_path / "nope.ply")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.ply", b"", "corrupt"),
        ("bad.ply", b"this is not a mesh\n", "corrupt"),
        (
            "cloud.ply",
            b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n0 0 0\n1 1 1\n",
            "0 faces",
        ),
        ("mesh.stl", b"solid x\nendsolid x\n", "not supported"),
    ],
)
def test_load_bad_files_raise_clear_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_mesh(tmp_path / name)
    assert name in str(info.value)


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = sphere()
    target = save_mesh(tmp_path / "m.ply", good)
    before = target.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_mesh(target, shuffled_sphere())
    assert target.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.ply"]  # the temp file was removed


def test_save_uses_normal_permissions_and_rejects_bad_targets(tmp_path: Path) -> None:
    path = save_mesh(tmp_path / "m.obj", sphere())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_mesh(tmp_path / "missing" / "m.ply", sphere())
    with pytest.raises(ValueError, match="not supported"):
        save_mesh(tmp_path / "m.glb", sphere())


def test_check_units_metres() -> None:
    body = TriMesh(np.array([[0.0, 0, 0], [0.5, 1.7, 0.3], [0, 1, 0]]), np.array([[0, 1, 2]]))
    assert check_units_metres(body, "scan") == pytest.approx(np.linalg.norm([0.5, 1.7, 0.3]))
    millimetres = TriMesh(body.vertices * 1000, body.faces)
    with pytest.raises(ValueError, match="scan_0001.*divide the vertices by 1000"):
        check_units_metres(millimetres, "scan_0001")
    with pytest.raises(ValueError, match="rescale it to metres"):
        check_units_metres(TriMesh(body.vertices / 100, body.faces), "scan")


# ----------------------------------------------------------------------------- sampling


def test_sample_surface_is_deterministic_and_on_the_faces() -> None:
    mesh = sphere()
    a, b = sample_surface(mesh, 2000, seed=3), sample_surface(mesh, 2000, seed=3)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.allclose(a.points, sample_surface(mesh, 2000, seed=4).points)
    assert a.points.shape == (2000, 3) and a.face_index.dtype == np.int64
    assert np.all(a.barycentric >= 0) and np.allclose(a.barycentric.sum(axis=1), 1)
    corners = mesh.vertices[mesh.faces[a.face_index]]
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", a.barycentric, corners), a.points)
    np.testing.assert_allclose(a.normals, face_normals(mesh)[a.face_index])
    assert np.all(np.einsum("nd,nd->n", a.normals, a.points) > 0)  # outward


def test_sample_surface_is_area_weighted_and_uniform_in_a_face() -> None:
    # Two triangles of areas 0.5 and 1.5: a quarter of the samples land on the first.
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 0, 0], [2, 1, 0]])
    mesh = TriMesh(vertices, np.array([[0, 1, 2], [3, 4, 5]]))
    samples = sample_surface(mesh, 40_000, seed=0)
    first = samples.face_index == 0
    assert first.mean() == pytest.approx(0.25, abs=0.01)
    # Uniform in a triangle: the mean is the centroid.
    np.testing.assert_allclose(samples.points[first].mean(axis=0), [1 / 3, 1 / 3, 0], atol=0.01)
    np.testing.assert_allclose(samples.points[~first].mean(axis=0), [3, 1 / 3, 0], atol=0.02)


def test_sample_surface_rejects_zero_area() -> None:
    flat = TriMesh(np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]]), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="zero surface area"):
        sample_surface(flat, 10, seed=0)


def test_vertex_normals_of_sphere_point_outwards() -> None:
    mesh = sphere(subdivisions=4)
    normals = vertex_normals(mesh)
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    assert np.min(np.einsum("vd,vd->v", normals, radial)) > 0.9999
    lonely = TriMesh(np.vstack([mesh.vertices, [[9.0, 9, 9]]]), mesh.faces)
    np.testing.assert_array_equal(vertex_normals(lonely)[-1], 0.0)


def test_closest_points_on_a_triangle() -> None:
    queries = np.array([[0.2, 0.3, 5.0], [2.0, -1.0, 0.5], [1.0, 1.0, 0.0]])
    closest, face_index, bary = closest_points(UNIT_TRIANGLE, queries)
    np.testing.assert_allclose(closest, [[0.2, 0.3, 0], [1, 0, 0], [0.5, 0.5, 0]], atol=1e-12)
    np.testing.assert_allclose(bary, [[0.5, 0.2, 0.3], [0, 1, 0], [0, 0.5, 0.5]], atol=1e-12)
    np.testing.assert_array_equal(face_index, [0, 0, 0])


def test_closest_points_on_sphere_match_exact_distances() -> None:
    mesh = sphere(subdivisions=5)
    directions = np.random.default_rng(0).normal(size=(5000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = np.random.default_rng(1).uniform(0.1, 2.0, size=5000)
    queries = radii[:, None] * directions
    closest, face_index, bary = closest_points(mesh, queries)
    corners = mesh.vertices[mesh.faces[face_index]]
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", bary, corners), closest, atol=1e-12)
    # The polygonal sphere lies within 1e-4 m inside the true one, so the distance is |r - 0.5|.
    distance = np.linalg.norm(queries - closest, axis=1)
    np.testing.assert_allclose(distance, np.abs(radii - 0.5), atol=2e-4)
    # Reference: libigl's exact point-to-mesh distance.
    squared, _, _ = igl.point_mesh_squared_distance(queries, mesh.vertices, mesh.faces)
    np.testing.assert_allclose(distance, np.sqrt(squared), atol=1e-9)
