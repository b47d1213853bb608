"""The synthetic benchmark: presets and splits, visible-surface scans, outfits, the generator."""

import math

import numpy as np
import pytest
import torch
import trimesh

from invskin.data import load_dataset
from invskin.data.synth.garment import split_edges
from invskin.data.synth.generate import (
    SynthPreset,
    correspondence_surface,
    generate,
    plan_clips,
    preset,
)
from invskin.data.synth.outfits import build_outfit, compact, dress, visible_faces
from invskin.data.synth.skirt import build_skirt, drape_skirt
from invskin.geometry import axis_angle_to_matrix, lbs

TINY = SynthPreset(
    "tiny",
    train_clips=1,
    frames_per_clip=2,
    within_frames=1,
    out_frames=1,
    train_motions=("walk", "squat"),
    test_out_motions=("kick",),
)


# ----------------------------------------------------------------------------- no anny needed


def test_presets_and_plan():
    assert preset("default").num_frames == 300
    assert preset("small").num_frames == 40
    assert preset("small") is not preset("small")  # fresh objects
    plan = plan_clips(preset("default"))
    assert sum(c.num_frames for c in plan if c.split == "train") == 200
    assert sum(c.num_frames for c in plan if c.split == "test-within") == 48
    assert sum(c.num_frames for c in plan if c.split == "test-out") == 52
    assert len({(c.motion, c.clip) for c in plan}) == len(plan)
    with pytest.raises(KeyError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown motions"):
        SynthPreset("x", 1, 1, 1, 1, train_motions=("moonwalk",))
    with pytest.raises(ValueError, match="must not be training"):
        SynthPreset("x", 1, 1, 1, 1, train_motions=("walk",), test_out_motions=("walk",))


def test_visible_faces_drops_buried_and_inner_surfaces():
    outer = trimesh.creation.icosphere(3, radius=1.0)
    inner = trimesh.creation.icosphere(3, radius=0.5)
    poking = trimesh.creation.icosphere(3, radius=0.4)
    poking.apply_translation([1.1, 0, 0])  # half outside the big sphere
    parts = [outer, inner, poking]
    vertices = np.concatenate([p.vertices for p in parts])
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets)])
    keep = visible_faces(vertices, faces)
    n_outer, n_inner = len(outer.faces), len(inner.faces)
    centroids = vertices[faces].mean(1)
    assert not keep[n_outer : n_outer + n_inner].any()
    poke = slice(n_outer + n_inner, None)
    radius = np.linalg.norm(centroids, axis=1)
    assert keep[poke][radius[poke] > 1.03].all()
    assert not keep[poke][radius[poke] < 0.97].any()
    inside_poking = np.linalg.norm(centroids[:n_outer] - [1.1, 0, 0], axis=1) < 0.38
    assert not keep[:n_outer][inside_poking].any()
    assert keep[:n_outer][centroids[:n_outer, 0] < 0.5].all()
    mesh, used = compact(vertices, faces[keep])
    assert mesh.num_vertices == len(used) < len(vertices)
    np.testing.assert_array_equal(mesh.vertices, vertices[used])


def test_split_edges_keeps_the_mesh_closed_and_oriented():
    sphere = trimesh.creation.icosphere(2)
    zone = sphere.vertices[:, 0] > 0.2
    faces, pairs = split_edges(np.asarray(sphere.faces), zone)
    edges = sphere.edges_unique
    assert len(pairs) == zone[edges].all(1).sum() > 0
    vertices = np.concatenate([sphere.vertices, sphere.vertices[pairs].mean(1)])
    refined = trimesh.Trimesh(vertices, faces, process=False)
    assert refined.is_watertight and refined.is_winding_consistent
    assert refined.area == pytest.approx(sphere.area) and refined.volume == pytest.approx(
        sphere.volume
    )
    assert len(faces) > len(sphere.faces)


# ----------------------------------------------------------------------------- with anny


@pytest.fixture(scope="module")
def body():
    pytest.importorskip("anny")
    from invskin.body.anny_model import load_anny_body

    return load_anny_body()


@pytest.fixture(scope="module")
def datasets(body, tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {
        outfit: generate(root / outfit, outfit, TINY, seed=0, body=body, progress=False).dataset
        for outfit in ("dress", "fitted")
    }


@pytest.mark.anny
def test_dataset_layout_and_splits(datasets, body):
    for outfit, dataset in datasets.items():
        again = load_dataset(dataset.root)
        assert again.name == f"synth-{outfit}" and len(again) == TINY.num_frames
        assert again.num_bones == body.skeleton.num_bones == 20
        assert {name: len(ids) for name, ids in again.splits.items()} == {
            "train": 4,
            "test-within": 2,
            "test-out": 1,
        }
        motions = {name: {again.motions[i] for i in ids} for name, ids in again.splits.items()}
        assert motions["test-out"] and not motions["test-out"] & motions["train"]
        assert motions["test-within"] <= motions["train"]
        train_ids = {again.frame_ids[i] for i in again.splits["train"]}
        assert not train_ids & {again.frame_ids[i] for i in again.splits["test-within"]}
        assert again.prior is not None and again.prior.weights.shape[1] == 20
        assert again.info["outfit"] == outfit and again.info["canonical_pose"] == "star"


@pytest.mark.anny
def test_scans_are_finite_metres_and_match_the_truth(datasets):
    for dataset in datasets.values():
        truth = dataset.correspondence
        for i in range(len(dataset)):
            scan = dataset.scan(i)
            assert np.isfinite(scan.vertices).all()
            assert 15_000 < scan.num_faces < 45_000
            extent = scan.vertices.max(0) - scan.vertices.min(0)
            assert 1.0 < np.linalg.norm(extent) < 3.0
            posed = truth.posed_vertices[i].numpy()
            np.testing.assert_allclose(scan.vertices.min(0), posed.min(0), atol=0.05)
            np.testing.assert_allclose(scan.vertices.max(0), posed.max(0), atol=0.05)


@pytest.mark.anny
def test_correspondence_truth_is_the_outfit_under_the_frame_transforms(datasets, body):
    for outfit, dataset in datasets.items():
        clothes = build_outfit(body, outfit)
        surface, used = correspondence_surface(clothes)
        truth = dataset.correspondence
        np.testing.assert_allclose(truth.canonical_vertices.numpy(), surface.vertices, atol=1e-6)
        np.testing.assert_array_equal(truth.faces.numpy(), surface.faces)
        # Identity transforms reproduce the canonical truth.
        identity = torch.eye(4, dtype=torch.float64).expand(1, 20, 4, 4)
        np.testing.assert_allclose(
            dress(clothes, identity)[0, used].numpy(), surface.vertices, atol=1e-9
        )
        # Every frame's truth is the outfit posed by that frame's stored transforms.
        posed = dress(clothes, dataset.transforms.double())[:, used].float()
        torch.testing.assert_close(posed, truth.posed_vertices, atol=2e-4, rtol=0)
        # Exposed body vertices are plain LBS with the body prior's weights.
        # The labelled parts: body, garment, skirt in that order, "clothing" = garment + skirt.
        parts = truth.parts
        sizes = [len(parts[name]) for name in ("body", "garment", "skirt")]
        assert sum(sizes) == truth.canonical_vertices.shape[0] and sizes[0] > 0 and sizes[1] > 0
        assert (sizes[2] > 0) == (outfit == "dress")
        ordered = torch.cat([parts["body"], parts["garment"], parts["skirt"]])
        assert torch.equal(ordered, torch.arange(sum(sizes)))
        assert torch.equal(parts["clothing"], torch.cat([parts["garment"], parts["skirt"]]))
        on_skirt = torch.from_numpy(used) >= clothes.num_vertices - clothes.part_sizes[2]
        assert torch.equal(torch.nonzero(on_skirt).flatten(), parts["skirt"])
        canonical = truth.canonical_vertices[parts["body"]]
        prior_index = torch.cdist(canonical, dataset.prior.vertices).argmin(1)
        weights = dataset.prior.weights[prior_index]
        skinned = lbs(
            canonical.expand(len(dataset), -1, -1),
            weights.expand(len(dataset), -1, -1),
            dataset.transforms,
        )
        torch.testing.assert_close(
            skinned, truth.posed_vertices[:, parts["body"]], atol=2e-5, rtol=0
        )


@pytest.mark.anny
def test_same_seed_same_dataset(datasets, body, tmp_path):
    again = generate(tmp_path / "a", "dress", TINY, seed=0, body=body, progress=False).dataset
    first = datasets["dress"]
    torch.testing.assert_close(again.transforms, first.transforms, rtol=0, atol=0)
    torch.testing.assert_close(
        again.correspondence.posed_vertices, first.correspondence.posed_vertices, rtol=0, atol=0
    )
    np.testing.assert_array_equal(again.scan(3).vertices, first.scan(3).vertices)
    other = generate(tmp_path / "b", "fitted", TINY, seed=1, body=body, progress=False).dataset
    assert not torch.allclose(other.transforms, first.transforms)


@pytest.mark.anny
def test_skirt_is_a_closed_outward_surface(body):
    skirt = build_skirt(body)
    rotations = torch.eye(3).repeat(3, 20, 1, 1)
    for side, angle in (("L", 0.6), ("R", -0.4)):
        rotations[1, body.skeleton.index(f"upperleg01.{side}")] = axis_angle_to_matrix(
            torch.tensor([-angle, 0.0, 0.0])
        )
    rotations[2, body.skeleton.index("upperleg01.L")] = axis_angle_to_matrix(
        torch.tensor([0.0, 0.0, 0.5])
    )
    vertices = drape_skirt(skirt, body.bone_transforms(rotations))
    for v in vertices:
        mesh = trimesh.Trimesh(v.numpy(), skirt.faces.numpy(), process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0.02


@pytest.mark.anny
def test_gravity_acts_in_world_space(body):
    """Tilting the whole body is a rigid motion for LBS; the skirt hangs instead, the fitted
    garment only sags a little, and the body itself moves rigidly."""
    tilt = torch.eye(3).repeat(2, 20, 1, 1)
    tilt[1, 0] = axis_angle_to_matrix(torch.tensor([math.radians(40), 0.0, 0.0]))
    transforms = body.bone_transforms(tilt)
    rigid = transforms[1, 0].double()
    for outfit, lo, hi in (("dress", 0.05, 1.0), ("fitted", 0.002, 0.02)):
        clothes = build_outfit(body, outfit)
        rest, tilted = dress(clothes, transforms)
        expected = rest @ rigid[:3, :3].T + rigid[:3, 3]
        deviation = (tilted - expected).norm(dim=-1)
        n_body = clothes.part_sizes[0]
        assert deviation[:n_body].max() < 1e-5
        assert lo < deviation[n_body:].max() < hi, (outfit, float(deviation[n_body:].max()))


@pytest.mark.anny
@pytest.mark.slow
def test_cli_small_preset(tmp_path):
    pytest.importorskip("anny")
    from invskin.cli.main import main

    out = str(tmp_path / "ds")
    main(["synth", "--out", out, "--outfit", "fitted", "--preset", "small", "--no-progress"])
    dataset = load_dataset(tmp_path / "ds")
    assert len(dataset) == 40 and dataset.source.startswith("invskin synth --outfit fitted")
