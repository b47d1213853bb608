"""The anny body adapter: reduced rig, y up, star pose, weights, posing, cache, missing-anny error."""

import math
import sys
import time

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from invskin.body.anny_model import (
    KEPT_BONES,
    AnnyBodyConfig,
    cache_path,
    load_anny_body,
    pose_vertices,
    reduce_rig,
)
from invskin.geometry import axis_angle_to_matrix, lbs


def test_reduce_rig_merges_into_nearest_kept_ancestor():
    names = ["root", "hip", "knee", "toe1", "toe2", "spine", "eye"]
    parents = [-1, 0, 1, 2, 2, 0, 5]
    keep_of, reduced = reduce_rig(names, parents, ["root", "knee", "spine"])
    assert keep_of == [0, 0, 1, 1, 1, 2, 2]
    assert reduced == [-1, 0, 0]
    with pytest.raises(KeyError, match="tail"):
        reduce_rig(names, parents, ["root", "tail"])
    with pytest.raises(ValueError, match="no kept ancestor"):
        reduce_rig(names, parents, ["knee"])


def test_missing_anny_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("INVSKIN_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "anny", None)
    with pytest.raises(ImportError, match="pip install anny"):
        load_anny_body()


@pytest.fixture(scope="module")
def body():
    pytest.importorskip("anny")
    return load_anny_body()


@pytest.mark.anny
def test_reduced_rig(body):
    skel = body.skeleton
    assert 20 <= skel.num_bones <= 30
    assert skel.names == KEPT_BONES and len(set(skel.names)) == skel.num_bones
    assert all(p < j for j, p in enumerate(skel.parents)) and skel.parents[0] == -1
    # Canonical bone frames are world-aligned at the joints.
    torch.testing.assert_close(skel.canonical[:, :3, :3], torch.eye(3).expand(skel.num_bones, 3, 3))


@pytest.mark.anny
def test_weights_rows_sum_to_one(body):
    w = body.weights
    assert w.shape == (body.vertices.shape[0], body.skeleton.num_bones)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[0]), atol=1e-5, rtol=0)
    # Fingers merged into the wrist: the hands are skinned by the wrist bone.
    wrist = body.skeleton.index("wrist.L")
    assert (w[:, wrist] > 0.99).sum() > 500


@pytest.mark.anny
def test_mesh_is_one_closed_outward_surface(body):
    import trimesh

    mesh = trimesh.Trimesh(body.vertices.numpy(), body.faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert 0.04 < mesh.volume < 0.1  # cubic metres: an adult body


@pytest.mark.anny
def test_y_up_metres_facing_plus_z(body):
    v = body.vertices.numpy()
    skel = body.skeleton
    head = skel.joints()[skel.index("head")]
    feet = skel.joints()[[skel.index("foot.L"), skel.index("foot.R")]]
    assert (head[1] > feet[:, 1] + 1.0).all()
    assert 1.4 < v[:, 1].max() - v[:, 1].min() < 2.0
    # The toes point forward (+z) from the ankles; the left leg is at +x.
    foot = v[body.weights[:, skel.index("foot.L")].numpy() > 0.9]
    assert foot[:, 2].max() > float(feet[0, 2]) + 0.1
    assert float(feet[0, 0]) > 0 > float(feet[1, 0])


@pytest.mark.anny
def test_star_pose(body):
    config = AnnyBodyConfig()
    j = body.skeleton.joints().numpy()
    idx = body.skeleton.index
    for side, sign in (("L", 1), ("R", -1)):
        leg = j[idx(f"foot.{side}")] - j[idx(f"upperleg01.{side}")]
        assert math.degrees(math.atan2(sign * leg[0], -leg[1])) == pytest.approx(
            config.leg_abduction_deg, abs=0.5
        )
        arm = j[idx(f"wrist.{side}")] - j[idx(f"upperarm01.{side}")]
        assert math.degrees(math.atan2(-arm[1], sign * arm[0])) == pytest.approx(
            config.arm_angle_deg, abs=0.5
        )
    # The legs do not touch: left-leg and right-leg vertices stay well apart.
    w = body.weights.numpy()
    legs = [w[:, [idx(f"{b}.{s}") for b in ("lowerleg01", "foot")]].sum(1) > 0.5 for s in "LR"]
    gap = cKDTree(body.vertices.numpy()[legs[0]]).query(body.vertices.numpy()[legs[1]])[0].min()
    assert gap > 0.2


@pytest.mark.anny
def test_identity_pose_gives_the_canonical_mesh(body):
    eye = torch.eye(3).expand(body.skeleton.num_bones, 3, 3)
    torch.testing.assert_close(body.pose(eye), body.vertices, atol=1e-5, rtol=0)


@pytest.mark.anny
def test_pose_is_lbs_with_reduced_weights(body):
    torch.manual_seed(0)
    rotations = axis_angle_to_matrix(0.3 * torch.randn(2, body.skeleton.num_bones, 3))
    translation = torch.randn(2, 3)
    posed = body.pose(rotations, translation)
    transforms = body.bone_transforms(rotations, translation)
    expected = lbs(body.vertices.expand(2, -1, -1), body.weights.expand(2, -1, -1), transforms)
    torch.testing.assert_close(posed, expected)
    torch.testing.assert_close(pose_vertices(body.vertices, body.weights, transforms), expected)
    # Turning only the root is a rigid motion about the root joint.
    root = torch.eye(3).repeat(body.skeleton.num_bones, 1, 1)
    root[0] = axis_angle_to_matrix(torch.tensor([0.0, 0.7, 0.0]))
    moved = body.pose(root)
    centre = body.skeleton.joints()[0]
    torch.testing.assert_close(
        moved, (body.vertices - centre) @ root[0].T + centre, atol=1e-5, rtol=0
    )


@pytest.mark.anny
def test_cache_is_written_atomically_and_reloads_fast(monkeypatch, tmp_path, body):
    monkeypatch.setenv("INVSKIN_CACHE", str(tmp_path))
    path = cache_path()
    assert path.parent == tmp_path and not path.exists()
    built = load_anny_body()
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]
    start = time.perf_counter()
    cached = load_anny_body()
    assert time.perf_counter() - start < 1.0
    torch.testing.assert_close(cached.vertices, built.vertices, rtol=0, atol=0)
    torch.testing.assert_close(cached.weights, built.weights, rtol=0, atol=0)
    assert cached.skeleton.names == built.skeleton.names
    torch.testing.assert_close(cached.skeleton.canonical, built.skeleton.canonical)
    np.testing.assert_array_equal(cached.faces.numpy(), body.faces.numpy())
    # Another config is another cache file.
    assert cache_path(AnnyBodyConfig(leg_abduction_deg=20.0)) != path
