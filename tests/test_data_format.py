"""The invskin dataset format: round trip, atomic replacement, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures_data import chain_skeleton, frame_transforms, sphere, write_dataset
from invskin.data import DataError, DatasetWriter, load_dataset
from invskin.data.format import MANIFEST, TRANSFORMS_FILE
from invskin.mesh.io import TriMesh


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    out = tmp_path / "data"
    written = write_dataset(out)
    loaded = load_dataset(out)
    assert len(loaded) == 4
    assert loaded.frame_ids == ("walk_000", "walk_001", "walk_002", "jump_003")
    assert loaded.motions == ("walk", "walk", "walk", "jump")
    assert loaded.splits == {"train": (0, 1), "test-within": (2,), "test-out": (3,)}
    assert loaded.transforms.shape == (4, 3, 4, 4) and loaded.transforms.dtype == torch.float32
    assert torch.allclose(loaded.transforms[2], frame_transforms(3, 0.2))
    assert loaded.skeleton.names == written.skeleton.names
    # Scans keep their vertex order and values.
    scan = loaded.scan(1)
    expected = sphere(0.5, (0.1, 0.0, 0.0))
    np.testing.assert_allclose(scan.vertices, expected.vertices, atol=1e-6)
    np.testing.assert_array_equal(scan.faces, expected.faces)
    assert loaded.prior is not None and loaded.prior.weights.shape[1] == 3
    assert loaded.correspondence is not None
    assert loaded.correspondence.posed_vertices.shape == (4, expected.num_vertices, 3)
    assert loaded.body_params()["pose"].shape == (4, 72)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folders left


def test_split_view_reindexes(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data")
    train = data.split("train")
    assert train.frame_ids == ("walk_000", "walk_001")
    assert train.splits["train"] == (0, 1) and train.splits["test-out"] == ()
    assert torch.equal(train.transforms, data.transforms[:2])
    assert train.correspondence is not None and train.correspondence.posed_vertices.shape[0] == 2
    np.testing.assert_allclose(train.scan(1).vertices, data.scan(1).vertices)
    with pytest.raises(DataError, match="no split named 'val'"):
        data.split("val")


def test_failed_write_leaves_the_good_dataset(tmp_path: Path) -> None:
    out = tmp_path / "data"
    write_dataset(out)
    before = (out / MANIFEST).read_text()
    with pytest.raises(DataError, match="bone"):
        with DatasetWriter(out, "new", chain_skeleton(3)) as writer:
            writer.add_frame("a", sphere(), frame_transforms(3, 0.0), "walk")
            writer.add_frame("b", sphere(), frame_transforms(5, 0.0), "walk")  # wrong bone count
            writer.finish()
    assert (out / MANIFEST).read_text() == before
    assert len(load_dataset(out)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_finish_replaces_dataset_and_drops_its_cache(tmp_path: Path) -> None:
    out = tmp_path / "data"
    write_dataset(out)
    (out / "cache").mkdir()
    with DatasetWriter(out, "new", chain_skeleton(2)) as writer:
        writer.add_frame("only", sphere(), frame_transforms(2, 0.0), "idle")
        dataset = writer.finish()
    assert dataset.name == "new" and dataset.frame_ids == ("only",)
    assert dataset.splits["train"] == (0,) and dataset.splits["test-out"] == ()
    assert not (out / "cache").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_never_replaces_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not an invskin dataset"):
        DatasetWriter(out, "x", chain_skeleton(2))
    with pytest.raises(DataError, match="overwrite=True"):
        write_dataset(tmp_path / "data")
        DatasetWriter(tmp_path / "data", "x", chain_skeleton(2), overwrite=False)


@pytest.mark.parametrize(
    ("frame_id", "scan", "transforms", "message"),
    [
        ("a", sphere(), frame_transforms(4, 0.0), "4 bone transforms but the skeleton has 3"),
        ("a", sphere(), frame_transforms(3, float("nan")), "NaN"),
        ("a", sphere(), frame_transforms(3, 0.5).transpose(-1, -2), "transposed"),
        ("a", sphere(500.0), frame_transforms(3, 0.0), "millimetres"),
        (
            "a",
            TriMesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64)),
            frame_transforms(3, 0.0),
            "empty",
        ),
        ("../a", sphere(), frame_transforms(3, 0.0), "not allowed"),
    ],
)
def test_add_frame_rejects_bad_input(
    tmp_path: Path, frame_id: str, scan: TriMesh, transforms: torch.Tensor, message: str
) -> None:
    with DatasetWriter(tmp_path / "d", "x", chain_skeleton(3)) as writer:
        with pytest.raises(DataError, match=message):
            writer.add_frame(frame_id, scan, transforms, "walk")
        assert len(writer) == 0


def test_writer_rejects_bad_splits_and_correspondence(tmp_path: Path) -> None:
    skeleton = chain_skeleton(2)
    with DatasetWriter(tmp_path / "d", "x", skeleton) as writer:
        writer.add_frame("a", sphere(), frame_transforms(2, 0.0), "walk")
        writer.add_frame("b", sphere(), frame_transforms(2, 0.0), "walk")
        writer.set_splits({"train": ["a", "zzz"]})
        with pytest.raises(DataError, match="not in the dataset"):
            writer.finish()
    with DatasetWriter(tmp_path / "d", "x", skeleton) as writer:
        writer.add_frame("a", sphere(), frame_transforms(2, 0.0), "walk")
        writer.set_splits({"train": ["a"], "test-out": ["a"]})
        with pytest.raises(DataError, match="both 'train' and 'test-out'"):
            writer.finish()
    with DatasetWriter(tmp_path / "d", "x", skeleton) as writer:
        writer.add_frame("a", sphere(), frame_transforms(2, 0.0), "walk")
        base = sphere()
        writer.set_correspondence(base.vertices, base.faces, np.stack([base.vertices] * 2))
        with pytest.raises(DataError, match="2 posed frames but 1 frames"):
            writer.finish()
    assert not (tmp_path / "d").exists()
    assert list(tmp_path.iterdir()) == []


def _edit_manifest(root: Path, **changes: object) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    manifest.update(changes)
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(root)
    write_dataset(root, with_extras=False)

    _edit_manifest(root, version=99)
    with pytest.raises(DataError, match=f"{MANIFEST}.*newer than this invskin reads"):
        load_dataset(root)
    _edit_manifest(root, version=1, format="something-else")
    with pytest.raises(DataError, match="not an invskin dataset manifest"):
        load_dataset(root)
    _edit_manifest(root, format="invskin-dataset", splits={"train": ["nope"]})
    with pytest.raises(DataError, match="not in the dataset"):
        load_dataset(root)
    _edit_manifest(root, splits={"train": ["walk_000"]})
    assert len(load_dataset(root)) == 4

    transforms = np.load(root / TRANSFORMS_FILE)["transforms"]
    np.savez(root / TRANSFORMS_FILE, transforms=transforms[:, :2])
    with pytest.raises(DataError, match=f"{TRANSFORMS_FILE}.*shape"):
        load_dataset(root)
    bad = transforms.copy()
    bad[1, 0, 0, 0] = np.inf
    np.savez(root / TRANSFORMS_FILE, transforms=bad)
    with pytest.raises(DataError, match="NaN or infinite"):
        load_dataset(root)
    np.savez(root / TRANSFORMS_FILE, transforms=transforms)

    (root / "scans" / "walk_001.ply").unlink()
    with pytest.raises(DataError, match="walk_001.ply.*missing"):
        load_dataset(root)
    (root / MANIFEST).unlink()
    with pytest.raises(DataError, match="did not finish"):
        load_dataset(root)


def test_scan_in_millimetres_on_disk_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_dataset(root, with_extras=False)
    from invskin.mesh.io import save_mesh

    save_mesh(root / "scans" / "walk_000.ply", sphere(700.0))
    with pytest.raises(DataError, match="walk_000.ply.*millimetres"):
        load_dataset(root).scan(0)


@pytest.mark.parametrize("key", ["prior", "correspondence", "body_params", "scan"])
@pytest.mark.parametrize(
    "value", ["/etc/passwd", "../outside.npz", "sub/../../x.npz", "C:\\\\x.npz", ""]
)
def test_manifest_paths_stay_inside_the_dataset(tmp_path: Path, key: str, value: str) -> None:
    """Absolute paths and '..' in a manifest's file names are refused (the file is never read)."""
    root = tmp_path / "data"
    write_dataset(root)
    manifest = json.loads((root / MANIFEST).read_text())
    if key == "scan":
        manifest["frames"][0]["scan"] = value
    else:
        manifest[key] = value
    (root / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="inside the dataset folder"):
        load_dataset(root)
