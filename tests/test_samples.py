"""Occupancy samples: analytic labels on a sphere (also with holes), distribution, caching."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import invskin.data.samples as samples_module
from fixtures_data import sphere, write_dataset
from invskin.data import DataError
from invskin.data.samples import (
    SampleConfig,
    load_or_make_samples,
    make_samples,
    prepare_samples,
    samples_path,
)
from invskin.mesh.io import TriMesh

CONFIG = SampleConfig(num_near=3000, num_coarse=1000, num_uniform=2000, seed=3)
CENTER = np.array([0.2, -0.1, 0.05])


def _check_sphere_labels(points: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> None:
    distance = np.linalg.norm(points - CENTER, axis=1)
    clear = keep & (np.abs(distance - 0.5) > 3e-3)  # icosphere facets deviate < 3 mm
    assert clear.sum() > 0.8 * keep.sum()
    np.testing.assert_array_equal(labels[clear], distance[clear] < 0.5)


def test_labels_match_the_analytic_sphere() -> None:
    scan = sphere(0.5, tuple(CENTER))
    points, labels = make_samples(scan, CONFIG, seed=0)
    assert points.shape == (6000, 3) and points.dtype == np.float32 and labels.dtype == bool
    _check_sphere_labels(points, labels, np.ones(len(points), dtype=bool))
    # The near band is ~1 cm around the surface, the coarse band wider, the box padded by 10 %.
    offset = np.abs(np.linalg.norm(points - CENTER, axis=1) - 0.5)
    assert 0.005 < np.median(offset[:3000]) < 0.012
    assert 0.03 < np.median(offset[3000:4000]) < 0.07
    box = points[4000:] - CENTER
    assert np.abs(box).max() <= 0.5 * 1.2 + 1e-6 and np.abs(box).max() > 0.55
    assert 0.2 < labels[4000:].mean() < 0.45  # sphere / padded cube volume ~ 0.30


def test_labels_stay_right_on_a_scan_with_a_hole() -> None:
    closed = sphere(0.5, tuple(CENTER))
    centroids = closed.vertices[closed.faces].mean(1)
    hole = centroids[:, 1] > CENTER[1] + 0.45  # cut the top cap off
    scan = TriMesh(closed.vertices, closed.faces[~hole])
    points, labels = make_samples(scan, CONFIG, seed=1)
    far_from_hole = points[:, 1] < CENTER[1] + 0.3
    _check_sphere_labels(points, labels, far_from_hole)


def test_samples_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_dataset(tmp_path / "data", with_extras=False)
    first = load_or_make_samples(data, 1, CONFIG)
    path = samples_path(data, 1, CONFIG)
    assert path == tmp_path / "data/cache/samples" / CONFIG.key() / "walk_001.npz"
    assert path.is_file() and (path.parent / "config.json").is_file()
    mtime = path.stat().st_mtime_ns
    assert len(first) == 6000 and first.points[first.uniform].shape == (2000, 3)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(samples_module, "occupancy", fail)
    again = load_or_make_samples(data, 1, CONFIG)
    assert (again.points == first.points).all() and (again.occupancy == first.occupancy).all()
    assert path.stat().st_mtime_ns == mtime
    # The split view reads the same cache (frames are keyed by id, not index).
    train = data.split("train")
    assert (load_or_make_samples(train, 1, CONFIG).points == first.points).all()
    monkeypatch.undo()

    # Deterministic: recomputing from scratch gives the same samples; another frame differs.
    path.unlink()
    assert (load_or_make_samples(data, 1, CONFIG).points == first.points).all()
    assert not (load_or_make_samples(data, 0, CONFIG).points == first.points).all()
    # A corrupt cache entry is recomputed, not trusted.
    path.write_bytes(b"junk")
    assert (load_or_make_samples(data, 1, CONFIG).points == first.points).all()
    # A changed scan file invalidates its entry.
    os.utime(data.scan_path(1), ns=(mtime, mtime + 10**9))
    assert prepare_samples(data, CONFIG, split=None, frames=[1], progress=False) == 1


def test_prepare_split(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", with_extras=False)
    config = SampleConfig(num_near=500, num_coarse=100, num_uniform=200)
    assert prepare_samples(data, config, split="train", progress=False) == 2
    assert prepare_samples(data, config, split="train", progress=False) == 0
    assert prepare_samples(data, config, split=None, progress=False) == 2
    assert len(list((data.cache_dir / "samples" / config.key()).glob("*.npz"))) == 4
    assert config.key() != CONFIG.key()
    with pytest.raises(DataError, match="no split named 'val'"):
        prepare_samples(data, config, split="val", progress=False)
