"""Per-vertex scan colour: TriMesh validation, PLY/OBJ files with colours written and read back, the
dataset format's ``scan_colour`` and colour truth, the folder and ClothSeq importers, and the
synthetic print (moves with the cloth, 2-5 cm features, no repetition within 20 cm, lighting)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from fixtures_data import (
    chain_skeleton,
    frame_transforms,
    sphere,
    write_clothseq,
    write_plain_folder,
)
from invskin.data import DataError, load_dataset
from invskin.data.format import MANIFEST, DatasetWriter
from invskin.data.loaders import convert_clothseq, convert_folder
from invskin.data.synth.pattern import (
    PALETTE,
    PatternConfig,
    brightness_factors,
    hash_uniform,
    print_colours,
    skin_colours,
)
from invskin.mesh.io import TriMesh, load_mesh, save_mesh

QUANTUM = 0.5 / 255 + 1e-6  # files store 8 bits per channel


def coloured(mesh: TriMesh, seed: int = 0) -> TriMesh:
    """``mesh`` with random colours in [0, 1]."""
    colors = np.random.default_rng(seed).uniform(0.0, 1.0, (mesh.num_vertices, 3))
    return TriMesh(mesh.vertices, mesh.faces, colors)


def autocorrelation(
    points: np.ndarray, colours: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean product of the centred colours of point pairs per distance bin, over their variance;
    and the number of pairs per bin."""
    centred = colours - colours.mean(0)
    variance = (centred * centred).sum(1).mean()
    pairs = cKDTree(points).query_pairs(edges[-1], output_type="ndarray")
    distance = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
    product = (centred[pairs[:, 0]] * centred[pairs[:, 1]]).sum(1)
    bins = np.digitize(distance, edges) - 1
    keep = (bins >= 0) & (bins < len(edges) - 1)
    total = np.bincount(bins[keep], product[keep], len(edges) - 1)
    count = np.bincount(bins[keep], minlength=len(edges) - 1)
    return total / np.maximum(count, 1) / variance, count


def check_print_statistics(points: np.ndarray, colours: np.ndarray) -> None:
    """Features of 2-5 cm: still correlated at 2 cm, below 0.3 by 5 cm, no peak above 0.5 up to
    20 cm (1 cm bins)."""
    edges = np.arange(0.0, 0.2051, 0.01)
    corr, count = autocorrelation(points, colours, edges)
    assert count[1:].min() > 100
    assert corr[1] > 0.5  # 1-2 cm: the same blob
    assert corr[4] < 0.3 and corr[5] < 0.3  # 4-6 cm: another blob
    assert corr[5:].max() < 0.5  # no repetition from 5 to 20 cm
    assert np.abs(corr[7:]).max() < 0.2


# ----------------------------------------------------------------------------- TriMesh and files


def test_trimesh_colours_are_converted_and_validated() -> None:
    mesh = sphere()
    assert mesh.colors is None
    rgba = np.random.default_rng(0).integers(0, 256, (mesh.num_vertices, 4), dtype=np.uint8)
    from_bytes = TriMesh(mesh.vertices, mesh.faces, rgba)
    assert from_bytes.colors.shape == (mesh.num_vertices, 3)
    assert from_bytes.colors.dtype == np.float32
    np.testing.assert_allclose(from_bytes.colors, rgba[:, :3] / 255.0, atol=1e-6)
    n = mesh.num_vertices
    bad = [
        (np.full((n, 2), 0.5), "shape"),
        (np.full((n - 1, 3), 0.5), "one colour per vertex"),
        (np.where(np.arange(n)[:, None] == 3, np.nan, np.full((n, 3), 0.5)), "NaN"),
        (np.full((n, 3), 128.0), "divide by 255"),
        (np.full((n, 3), -0.1), r"outside \[0, 1\]"),
    ]
    for colors, message in bad:
        with pytest.raises(DataError, match=message):
            TriMesh(mesh.vertices, mesh.faces, colors)


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_colours_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    mesh = coloured(sphere())
    path = save_mesh(tmp_path / f"scan{suffix}", mesh)
    back = load_mesh(path)
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_allclose(back.colors, mesh.colors, atol=QUANTUM)
    plain = load_mesh(save_mesh(tmp_path / f"plain{suffix}", sphere()))
    assert plain.colors is None


def test_colours_from_hand_written_files(tmp_path: Path) -> None:
    header = [
        "ply",
        "format ascii 1.0",
        "element vertex 3",
        "property float x",
        "property float y",
        "property float z",
        "property {kind} red",
        "property {kind} green",
        "property {kind} blue",
        "element face 1",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    positions = ["0 0 0", "1 0 0", "0 1 0"]

    def ply(kind: str, values: list[str]) -> Path:
        path = tmp_path / f"{kind}.ply"
        rows = [f"{p} {v}" for p, v in zip(positions, values)]
        path.write_text("\n".join([*(h.format(kind=kind) for h in header), *rows, "3 0 1 2"]))
        return path

    bytes_mesh = load_mesh(ply("uchar", ["255 0 0", "0 128 0", "0 0 51"]))
    np.testing.assert_allclose(bytes_mesh.colors, [[1, 0, 0], [0, 128 / 255, 0], [0, 0, 0.2]])
    floats = load_mesh(ply("float", ["1 0 0", "0 0.5 0", "0 0 0.25"]))
    np.testing.assert_allclose(floats.colors, [[1, 0, 0], [0, 0.5, 0], [0, 0, 0.25]])
    with pytest.raises(DataError, match=r"float\.ply.*outside \[0, 1\].*divide by 255"):
        load_mesh(ply("float", ["255 0 0", "0 128 0", "0 0 51"]))
    with pytest.raises(DataError, match=r"float\.ply.*NaN"):
        load_mesh(ply("float", ["nan 0 0", "0 1 0", "0 0 1"]))
    obj = tmp_path / "scanner.obj"
    obj.write_text("v 0 0 0 1 0 0\nv 1 0 0 0 0.5 0\nv 0 1 0 0 0 1\nf 1 2 3\n")
    np.testing.assert_allclose(
        load_mesh(obj).colors, [[1, 0, 0], [0, 128 / 255, 0], [0, 0, 1]], atol=1e-6
    )


# ----------------------------------------------------------------------------- dataset format


def write_coloured_dataset(out: Path, coloured_frames: tuple[bool, ...]) -> DatasetWriter:
    """A writer holding one sphere per frame, with colours where ``coloured_frames`` says so."""
    writer = DatasetWriter(out, "colour", chain_skeleton(3), source="tests")
    for f, has_colour in enumerate(coloured_frames):
        scan = sphere(0.5, (0.1 * f, 0.0, 0.0))
        scan = coloured(scan, seed=f) if has_colour else scan
        writer.add_frame(f"walk_{f:03d}", scan, frame_transforms(3, 0.1 * f), "walk")
    return writer


def test_dataset_scan_colour_round_trip(tmp_path: Path) -> None:
    with write_coloured_dataset(tmp_path / "c", (True, True, True)) as writer:
        base = sphere(0.5)
        truth_colours = np.random.default_rng(5).uniform(0.1, 0.7, (base.num_vertices, 3))
        posed = np.stack([base.vertices + [0.1 * f, 0, 0] for f in range(3)])
        writer.set_correspondence(
            base.vertices, base.faces, posed, colors=truth_colours, brightness=[0.8, 1.0, 1.2]
        )
        data = writer.finish()
    assert json.loads((data.root / MANIFEST).read_text())["scan_colour"] is True
    again = load_dataset(data.root)
    assert again.scan_colour
    np.testing.assert_allclose(
        again.scan(1).colors, coloured(sphere(), seed=1).colors, atol=QUANTUM
    )
    truth = again.correspondence
    np.testing.assert_allclose(truth.colors.numpy(), truth_colours, atol=1e-6)
    view = again.subset([2, 0])
    assert view.scan_colour and view.correspondence.brightness.tolist() == pytest.approx([1.2, 0.8])

    plain = write_coloured_dataset(tmp_path / "p", (False, False)).finish()
    assert not plain.scan_colour and plain.scan(0).colors is None
    manifest = json.loads((plain.root / MANIFEST).read_text())
    del manifest["scan_colour"]  # datasets written before colour existed
    (plain.root / MANIFEST).write_text(json.dumps(manifest))
    assert not load_dataset(plain.root).scan_colour


def test_dataset_colour_problems_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"2 scans have vertex colours but 1 have none.*walk_001"):
        with write_coloured_dataset(tmp_path / "mixed", (True, False, True)) as writer:
            writer.finish()
    assert not (tmp_path / "mixed").exists()

    data = write_coloured_dataset(tmp_path / "c", (True, True)).finish()
    manifest_path = data.root / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["scan_colour"] = "yes"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="'scan_colour' must be true or false"):
        load_dataset(data.root)
    manifest["scan_colour"] = True
    manifest_path.write_text(json.dumps(manifest))
    save_mesh(data.scan_path(1), sphere(0.5, (0.1, 0.0, 0.0)))  # a scan that lost its colours
    with pytest.raises(DataError, match="walk_001.ply: the manifest says the scans carry colour"):
        load_dataset(data.root).scan(1)

    writer = write_coloured_dataset(tmp_path / "t", (True,))
    base = sphere(0.5)
    with writer, pytest.raises(DataError, match="colour truth|colours"):
        writer.set_correspondence(
            base.vertices, base.faces, base.vertices[None], colors=np.full((5, 3), 0.5)
        )
    with writer, pytest.raises(DataError, match="brightness must be finite and positive"):
        writer.set_correspondence(
            base.vertices,
            base.faces,
            base.vertices[None],
            colors=np.full((base.num_vertices, 3), 0.5),
            brightness=[0.0],
        )


# ----------------------------------------------------------------------------- importers


def test_folder_import_keeps_vertex_colours(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    write_plain_folder(src, num_frames=2)
    meshes = []
    for f in range(2):  # millimetres: the unit conversion keeps the colours
        mesh = coloured(sphere(500.0, (100.0 * f, 0.0, 0.0)), seed=f)
        save_mesh(src / "meshes" / f"walk_{f:03d}.ply", mesh)
        meshes.append(mesh)
    data = convert_folder(src, tmp_path / "out", progress=False)
    assert data.scan_colour and data.info["converted_from_millimetres"] == 2
    np.testing.assert_allclose(data.scan(1).colors, meshes[1].colors, atol=QUANTUM)
    np.testing.assert_allclose(data.scan(1).vertices, meshes[1].vertices / 1000.0, atol=1e-6)


def test_clothseq_import_reads_obj_vertex_colours(tmp_path: Path) -> None:
    style, smpl = tmp_path / "JacketPants", tmp_path / "smpl"
    write_clothseq(style, smpl, num_frames=4)
    expected = {}
    for path in sorted((style / "scans").glob("*.obj")):  # a scanner's "v x y z r g b" lines
        mesh = load_mesh(path)
        colors = np.random.default_rng(int(path.stem)).uniform(0.0, 1.0, (mesh.num_vertices, 3))
        lines = [
            f"v {x:.6f} {y:.6f} {z:.6f} {r:.6f} {g:.6f} {b:.6f}"
            for (x, y, z), (r, g, b) in zip(mesh.vertices, colors)
        ]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
        path.write_text("\n".join(lines) + "\n")
        expected[path.stem] = colors
    data = convert_clothseq(style, tmp_path / "out", smpl, frame_interval=1, progress=False)
    assert data.scan_colour
    for i, frame_id in enumerate(data.frame_ids):
        np.testing.assert_allclose(data.scan(i).colors, expected[frame_id], atol=QUANTUM)


# ----------------------------------------------------------------------------- the print


def test_print_is_deterministic_and_has_2_to_5_cm_features_without_repeats() -> None:
    assert 0.45 < hash_uniform(np.arange(30000).reshape(-1, 3), 0).mean() < 0.55
    grid = np.stack(np.meshgrid(*[np.arange(0.0, 0.9, 0.012)] * 2, indexing="ij"), -1)
    plane = np.concatenate([grid.reshape(-1, 2), np.zeros((grid[..., 0].size, 1))], axis=1)
    plane = plane @ np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0].T
    config = PatternConfig()
    colours = print_colours(plane, config, seed=3)
    np.testing.assert_array_equal(colours, print_colours(plane, config, seed=3))
    assert not np.allclose(colours, print_colours(plane, config, seed=4))
    assert colours.min() >= PALETTE.min() - 1e-9 and colours.max() <= PALETTE.max() + 1e-9
    check_print_statistics(plane, colours)
    skin = skin_colours(plane, seed=0)
    assert skin.std(0).max() < 0.03  # plain, softly varying
    factors = brightness_factors(100, PatternConfig(lighting=(0.7, 1.3)), seed=0)
    assert factors.min() >= 0.7 and factors.max() <= 1.3 and factors.std() > 0.1
    assert (brightness_factors(3, config, seed=0) == 1.0).all()
    with pytest.raises(ValueError, match="saturate"):
        PatternConfig(lighting=(0.5, 2.0))


# ----------------------------------------------------------------------------- with anny


@pytest.fixture(scope="module")
def lit_small(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("anny")
    from invskin.body.anny_model import load_anny_body
    from invskin.data.synth.generate import generate

    body = load_anny_body()
    root = tmp_path_factory.mktemp("synth-colour")
    dataset = generate(
        root / "dress", "dress", "small", seed=0, body=body, progress=False, lighting=(0.7, 1.3)
    ).dataset
    return dataset, body


@pytest.mark.anny
def test_synthetic_print_moves_with_the_cloth(lit_small) -> None:
    dataset, _ = lit_small
    assert dataset.scan_colour and len(dataset) == 40
    assert dataset.info["colour"]["lighting"] == [0.7, 1.3]
    assert dataset.source.endswith("--lighting")
    truth = dataset.correspondence
    colours = truth.colors.numpy().astype(np.float64)
    brightness = truth.brightness.numpy().astype(np.float64)
    assert brightness.min() >= 0.7 and brightness.max() <= 1.3 and brightness.std() > 0.05
    clothing = truth.parts["clothing"].numpy()
    matched_clothing = 0
    for i in range(len(dataset)):
        scan = dataset.scan(i)
        posed = truth.posed_vertices[i].numpy().astype(np.float64)
        distance, nearest = cKDTree(posed).query(scan.vertices)
        same = distance < 1e-4  # scan vertices that are correspondence vertices
        assert same.mean() > 0.9
        # The same canonical point has the same colour in every frame, times the frame's light.
        np.testing.assert_allclose(
            scan.colors[same], colours[nearest[same]] * brightness[i], atol=QUANTUM + 1e-6
        )
        matched_clothing += np.isin(nearest[same], clothing).sum()
    assert matched_clothing > 40 * 1000


@pytest.mark.anny
def test_synthetic_print_statistics_on_the_canonical_surface(lit_small) -> None:
    dataset, _ = lit_small
    truth = dataset.correspondence
    points = truth.canonical_vertices.numpy().astype(np.float64)
    colours = truth.colors.numpy().astype(np.float64)
    for part in ("garment", "skirt"):
        index = truth.parts[part].numpy()
        check_print_statistics(points[index], colours[index])
    body = truth.parts["body"].numpy()
    assert colours[body].std(0).max() < 0.05  # the skin is plain
    assert colours[truth.parts["skirt"].numpy()].std(0).min() > 0.1  # the print is not


@pytest.mark.anny
def test_synthetic_scans_without_colour(lit_small, tmp_path: Path) -> None:
    from invskin.data.synth.generate import SynthPreset, generate

    _, body = lit_small
    one = SynthPreset("one", 1, 1, 0, 0, train_motions=("walk",), test_out_motions=())
    plain = generate(tmp_path / "p", "dress", one, body=body, progress=False, colour=False)
    data = plain.dataset
    assert not data.scan_colour and data.scan(0).colors is None
    assert data.correspondence.colors is None and "colour" not in data.info
    assert data.source.endswith("--no-colour")
    with pytest.raises(ValueError, match="needs colour=True"):
        generate(tmp_path / "q", "dress", one, body=body, colour=False, lighting=(0.8, 1.2))
    assert torch.is_tensor(data.transforms)
