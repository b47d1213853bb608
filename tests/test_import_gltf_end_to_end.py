"""A user's own rigged character through every command: import gltf, train, extract, repose
(its own animation, a BVH and an AMASS-style npz through a mapping file), export.

The character is non-human (a quadruped with a tail) and its glTF lists children before parents;
the tests write every input file themselves.
"""

import json

import numpy as np
import pytest

from gltf_quadruped import NAMES, write_quadruped_glb
from invskin.cli.main import main
from invskin.data.format import load_dataset
from invskin.export.browser import find_validator, validate_glb
from invskin.export.glb import read_glb_frames
from invskin.export.skinned import read_skinned_glb
from invskin.mesh.io import load_mesh
from invskin.motion.bvh import write_bvh
from invskin.runs.export import skinned_errors

pytestmark = pytest.mark.slow


def test_import_gltf_dataset_is_sorted_and_exact(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "quadruped.glb")
    main(["import", "gltf", "--src", str(glb), "--out", str(tmp_path / "data")])
    dataset = load_dataset(tmp_path / "data")
    names, parents = dataset.skeleton.names, dataset.skeleton.parents
    assert sorted(names) == sorted(NAMES) and names[0] == "hips"
    assert all(p < j for j, p in enumerate(parents))  # parents first, though the file is reversed
    assert names[parents[names.index("tail_3")]] == "tail_2"
    assert names[parents[names.index("paw_fl")]] == "leg_fl"
    assert {k: len(v) for k, v in dataset.splits.items()} == {
        "train": 6, "test-within": 6, "test-out": 4,
    }  # fmt: skip
    assert all(dataset.frame_ids[i].startswith("wag") for i in dataset.splits["test-out"])
    # Frame 0 of 'walk' is the rest pose: its scan is the bind-pose mesh (the prior).
    assert np.allclose(dataset.scan(0).vertices, dataset.prior.vertices.numpy(), atol=1e-5)
    # The weights are the file's, renormalised; the tail moves in 'wag'.
    assert np.allclose(dataset.prior.weights.sum(1).numpy(), 1.0, atol=1e-5)
    wag = dataset.split("test-out")
    tail = names.index("tail_3")
    assert np.abs(wag.transforms[:, tail].numpy() - np.eye(4)).max() > 0.05


def test_quadruped_train_extract_repose_export(tmp_path) -> None:
    glb = write_quadruped_glb(tmp_path / "quadruped.glb")
    data, run = tmp_path / "data", tmp_path / "run"
    main(["import", "gltf", "--src", str(glb), "--out", str(data)])
    main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"])
    main(["extract", "--run", str(run), "--resolution", "32"])
    canonical = load_mesh(run / "canonical.ply")
    assert canonical.num_faces > 100

    # repose: the dataset's test-out split, the file's own animation, a BVH and an AMASS npz.
    main(["repose", "--run", str(run), "--poses", str(data), "--split", "test-out",
          "--out", str(tmp_path / "r_split")])  # fmt: skip
    main(["repose", "--run", str(run), "--poses", str(glb), "--out", str(tmp_path / "r_glb")])
    frames, faces = read_glb_frames(tmp_path / "r_glb" / "animation.glb")
    assert frames.shape == (12, canonical.num_vertices, 3) and np.array_equal(
        faces, canonical.faces
    )

    skeleton = load_dataset(data).skeleton
    joints = skeleton.joints().double().numpy()
    offsets = np.stack(
        [joints[j] - (joints[p] if p >= 0 else 0) for j, p in enumerate(skeleton.parents)]
    )
    # A BVH in centimetres: the body walks 10 cm along x while the tail swings.
    angles = np.zeros((6, len(NAMES), 3))
    angles[:, skeleton.names.index("tail_1"), 0] = np.linspace(0, 60, 6)
    walk = np.linspace(0.0, 0.1, 6)[:, None] * np.array([1.0, 0.0, 0.0])
    bvh = tmp_path / "swing.bvh"
    write_bvh(bvh, list(skeleton.names), list(skeleton.parents), offsets * 100, angles,
              (offsets[:1] + walk) * 100)  # fmt: skip
    main(["repose", "--run", str(run), "--poses", str(bvh), "--out", str(tmp_path / "r_bvh")])
    bvh_frames, _ = read_glb_frames(tmp_path / "r_bvh" / "animation.glb")
    assert len(bvh_frames) == 6 and np.isfinite(bvh_frames).all()
    # The tiny run's canonical mesh is a blob around the body's centre: away from the tail it
    # follows the root, which moved 0.1 m (10 cm rescaled by the rigs' rest heights).
    moved = bvh_frames[-1] - bvh_frames[0]
    assert np.median(moved[:, 0]) == pytest.approx(0.1, abs=2e-3)
    assert np.median(np.abs(moved[:, 1:])) < 2e-3

    poses = np.zeros((5, 72))
    poses[:, 3 * 16 + 2] = np.linspace(0, 1.0, 5)  # left shoulder about z
    np.savez(tmp_path / "amass.npz", poses=poses, trans=np.zeros((5, 3)),
             mocap_framerate=np.array(60.0))  # fmt: skip
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"bones": {"hips": "pelvis", "chest": "spine3", "head": "head",
                                             "leg_fl": "left_shoulder"}}))  # fmt: skip
    main(["repose", "--run", str(run), "--poses", str(tmp_path / "amass.npz"),
          "--mapping", str(mapping), "--out", str(tmp_path / "r_amass")])  # fmt: skip
    amass_frames, _ = read_glb_frames(tmp_path / "r_amass" / "animation.glb")
    assert len(amass_frames) == 5 and np.isfinite(amass_frames).all()

    # export: skinned (validated, error against the model) and the per-frame morph GLB.
    skinned, morph = tmp_path / "quadruped_skinned.glb", tmp_path / "quadruped_morph.glb"
    main(["export", "--run", str(run), "--poses", str(glb), "--out", str(skinned)])
    main(["export", "--run", str(run), "--poses", str(glb), "--out", str(morph),
          "--format", "morph"])  # fmt: skip
    stored = read_skinned_glb(skinned)
    assert stored.names == skeleton.names and len(stored.targets) <= 8
    model_frames, _ = read_glb_frames(morph)
    mean, worst, mean_plain, _ = skinned_errors(skinned, model_frames.astype(np.float64))
    assert worst < 0.01 and mean <= mean_plain  # against the model's own reposed vertices
    if find_validator() is not None:
        report = validate_glb(skinned)
        assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]


def test_bad_mapping_gives_one_line_naming_the_bones(tmp_path, capsys) -> None:
    glb = write_quadruped_glb(tmp_path / "quadruped.glb")
    data, run = tmp_path / "data", tmp_path / "run"
    main(["import", "gltf", "--src", str(glb), "--out", str(data)])
    main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"])
    np.savez(tmp_path / "amass.npz", poses=np.zeros((2, 72)))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["repose", "--run", str(run), "--poses", str(tmp_path / "amass.npz"),
              "--out", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "tail_1" in err and "--mapping" in err
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"bones": {"hips": "pelvis", "wing": "spine3"}}))
    with pytest.raises(SystemExit):
        main(["export", "--run", str(run), "--poses", str(tmp_path / "amass.npz"),
              "--mapping", str(mapping), "--out", str(tmp_path / "x.glb")])  # fmt: skip
    err = capsys.readouterr().err
    assert "'wing'" in err and "Traceback" not in err
    assert not (tmp_path / "x.glb").exists()


def test_a_resized_character_is_exported_at_the_file_size(tmp_path) -> None:
    """Imported at three times its size (``--height``), trained, exported: the skinned and the
    per-frame files hold the run's canonical mesh and reposed frames at the file's size."""
    glb = write_quadruped_glb(tmp_path / "quadruped.glb")
    data, run = tmp_path / "data", tmp_path / "run"
    main(["import", "gltf", "--src", str(glb), "--out", str(data), "--height", "keep"])
    tall = float(np.ptp(load_dataset(data).prior.vertices[:, 1].numpy()))
    main(["import", "gltf", "--src", str(glb), "--out", str(data), "--height", str(3 * tall)])
    main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"])
    assert json.loads((run / "checkpoint" / "state.json").read_text())[
        "export_scale"
    ] == pytest.approx(1 / 3)
    main(["repose", "--run", str(run), "--poses", str(glb), "--out", str(tmp_path / "r")])
    reposed, _ = read_glb_frames(tmp_path / "r" / "animation.glb")
    skinned, morph = tmp_path / "skinned.glb", tmp_path / "morph.glb"
    main(["export", "--run", str(run), "--poses", str(glb), "--out", str(skinned), "--look",
          "none"])  # fmt: skip
    main(["export", "--run", str(run), "--poses", str(glb), "--out", str(morph), "--format",
          "morph", "--look", "none"])  # fmt: skip
    exported, _ = read_glb_frames(morph)
    assert np.allclose(exported, reposed / 3, atol=1e-5)
    stored = read_skinned_glb(skinned)
    canonical = load_mesh(run / "canonical.ply")
    assert np.allclose(stored.vertices, canonical.vertices / 3, atol=1e-5)
    _, worst, _, _ = skinned_errors(skinned, exported.astype(np.float64))
    assert worst < 0.01 / 3
