"""Bulk reposing: many sequences in one command write what one sequence at a time writes."""

import json

import numpy as np
import pytest

from invskin.cli.main import main
from invskin.export.glb import read_glb_frames
from invskin.mesh.io import load_mesh
from invskin.runs.bulk_repose import assign_sequences, repose_many
from invskin.runs.poses import collect_sequences
from invskin.training.run import train_run
from toy_data import make_toy_dataset, toy_transforms

LENGTHS = {"walk": 3, "kick": 5, "bow": 2}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bulk")
    data = make_toy_dataset(root / "data")
    run = root / "run"
    train_run(data, run, "ins", "tiny", device="cpu", progress=False)
    main(["extract", "--run", str(run), "--resolution", "24"])
    motions = root / "motions"
    motions.mkdir()
    for i, (name, length) in enumerate(LENGTHS.items()):
        angles = list(np.linspace(-0.5 + 0.1 * i, 0.9, length))
        np.savez(motions / f"{name}.npz", transforms=toy_transforms(angles).numpy())
    (motions / "notes.txt").write_text("not a motion")
    return run, motions


def read_sequence(folder):
    names = sorted(p.name for p in folder.iterdir())
    meshes = {n: load_mesh(folder / n) for n in names if n.endswith(".ply")}
    return names, meshes, read_glb_frames(folder / "animation.glb")


def test_bulk_writes_what_one_sequence_at_a_time_writes(toy_run, tmp_path) -> None:
    run, motions = toy_run
    # Batches of 4 frames cut across the sequences (3 + 5 + 2 frames).
    main(["repose", "--run", str(run), "--poses", str(motions), "--out", str(tmp_path / "bulk"),
          "--batch", "4"])  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "bulk").iterdir()) == sorted(LENGTHS)
    for name, length in LENGTHS.items():
        single = tmp_path / "single" / name
        main(["repose", "--run", str(run), "--poses", str(motions / f"{name}.npz"),
              "--out", str(single)])  # fmt: skip
        names, meshes, (frames, faces) = read_sequence(tmp_path / "bulk" / name)
        ref_names, ref_meshes, (ref_frames, ref_faces) = read_sequence(single)
        assert names == ref_names and len(meshes) == length
        for key, mesh in meshes.items():
            np.testing.assert_array_equal(mesh.faces, ref_meshes[key].faces)
            np.testing.assert_allclose(mesh.vertices, ref_meshes[key].vertices, atol=1e-6)
        np.testing.assert_array_equal(faces, ref_faces)
        np.testing.assert_allclose(frames, ref_frames, atol=1e-6)
        timing = json.loads((tmp_path / "bulk" / name / "timing.json").read_text())
        assert timing["frames"] == length and timing["bulk_sequences"] == 3


def test_ranks_split_the_sequences(toy_run, tmp_path, monkeypatch) -> None:
    # Two ranks as torchrun starts them (they do not talk to each other): disjoint, complete.
    run, motions = toy_run
    sequences = collect_sequences([motions], None)
    written = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        result = repose_many(run, sequences, tmp_path / "out", batch=3, progress=False)
        written.append({p.name for p in result.out_dirs})
    assert written[0].isdisjoint(written[1])
    assert written[0] | written[1] == set(LENGTHS)
    assert {"kick"} in written  # the longest sequence alone balances the other two (5 vs 3 + 2)


def test_assign_sequences_balances_frames() -> None:
    assert assign_sequences([5, 3, 2], 2) == [[0], [1, 2]]
    assert assign_sequences([1, 1, 1, 1], 3) == [[0, 3], [1], [2]]
    assert assign_sequences([4], 2) == [[0], []]


def test_bulk_rejects_bad_input(toy_run, tmp_path) -> None:
    run, motions = toy_run
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no motion files"):
        collect_sequences([empty], None)
    twice = collect_sequences([motions / "walk.npz", motions / "walk.npz"], None)
    with pytest.raises(ValueError, match="named \\['walk'\\]"):
        repose_many(run, twice, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_bench_repose_times_both_paths(toy_run) -> None:
    from invskin.bench import bench_repose

    run, _ = toy_run
    result = bench_repose(run, None, frames=4, batch=2, min_vertices=500, resolution=24, repeats=1)
    ins = result["ins"]
    assert ins["canonical_vertices"] >= 500 and ins["flops_per_vertex"] > 0
    assert ins["seconds_per_frame"] > 0 and ins["fast_path_seconds_per_frame"] > 0
