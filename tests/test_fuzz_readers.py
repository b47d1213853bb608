"""Property-based fuzzing of every reader of user files (hypothesis).

Each reader gets truncated, bit-flipped, mistyped, oversized and NaN-filled versions of a good
file: every case either reads (a valid result) or ends in the project's own error,
:class:`~invskin.errors.DataError`, with a message; never another exception. Converters write
into a folder that already holds a good dataset, which must be untouched by a failed conversion.

The number of cases tried per reader is counted in ``CASES`` and printed (and checked) by the last
test of the module (``pytest -s``). Examples are derandomized (the same cases in every run); set
``INVSKIN_FUZZ_EXAMPLES`` (default 80 per reader, 50 for the CAPE and ClothSeq converters) to try more.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures_data import (
    fake_smpl_arrays,
    sphere,
    write_cape,
    write_clothseq,
    write_dataset,
    write_plain_folder,
)
from invskin.body.smpl import SMPLModel
from invskin.data import DataError, load_dataset
from invskin.data.format import MANIFEST, TRANSFORMS_FILE
from invskin.data.loaders import convert_cape, convert_clothseq, convert_folder
from invskin.mesh.io import TriMesh, load_mesh, save_mesh
from invskin.runs.poses import read_poses

CASES: Counter[str] = Counter()
FUZZ = settings(
    max_examples=int(os.environ.get("INVSKIN_FUZZ_EXAMPLES", "80")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ----------------------------------------------------------------------------- byte mutations


def mutations(good: bytes) -> st.SearchStrategy[bytes]:
    """Truncations, byte flips, inserted garbage and plain random bytes of ``good``."""
    n = len(good)
    truncated = st.integers(0, n - 1).map(lambda k: good[:k])

    def flip(edits: list[tuple[int, int]]) -> bytes:
        data = bytearray(good)
        for position, value in edits:
            data[position % n] = value
        return bytes(data)

    flipped = st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=8
    )
    inserted = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=64)).map(
        lambda t: good[: t[0]] + t[1] + good[t[0] :]
    )
    return st.one_of(truncated, flipped.map(flip), inserted, st.binary(max_size=256))


# ----------------------------------------------------------------------------- array contents

DTYPES = [np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex64, "<U3"]


@st.composite
def arrays(draw: st.DrawFn, like: tuple[int, ...]) -> np.ndarray:
    """An array that is wrong in one way: shape, dtype, NaN/inf values, or size."""
    kind = draw(st.sampled_from(["shape", "dtype", "nonfinite", "oversized", "empty", "object"]))
    if kind == "shape":
        shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=5)))
        return np.zeros(shape)
    if kind == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
        return np.ones(like).astype(dtype)
    if kind == "nonfinite":
        array = np.ones(like)
        flat = array.reshape(-1)
        index = draw(st.integers(0, max(flat.size - 1, 0)))
        if flat.size:
            flat[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return array
    if kind == "oversized":
        return np.zeros((like[0] * 50, *like[1:]) if like else (1000,))
    if kind == "empty":
        return np.zeros((0, *like[1:]))
    return np.array(["a", 1, None], dtype=object)


def npz_bytes(contents: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **contents)
    return buffer.getvalue()


def oversized_npy_header(key: str) -> bytes:
    """An .npz whose array header claims 10^12 x 4 x 4 float64 values (8 TB) over a short body."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12, 3, 4, 4)}
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + b"\x00" * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{key}.npy", npy)
    return buffer.getvalue()


def expect_data_error_or_value(read, *args):
    """Run ``read``: a value or a DataError with a message; anything else fails the test."""
    try:
        return read(*args)
    except DataError as error:
        assert str(error).strip(), "a DataError without a message"
        return None


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- mesh reader

GOOD_MESH = sphere(0.5)


def _mesh_bytes(suffix: str, tmp: Path) -> bytes:
    path = tmp / f"good{suffix}"
    save_mesh(path, GOOD_MESH)
    return path.read_bytes()


@functools.cache
def mesh_files() -> dict[str, bytes]:
    """A good sphere as binary PLY, ASCII PLY and OBJ."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {suffix: _mesh_bytes(suffix, Path(tmp)) for suffix in (".ply", ".obj")}
    files[".ascii.ply"] = GOOD_MESH.to_trimesh().export(file_type="ply", encoding="ascii")
    return files


@FUZZ
@given(data=st.data())
def test_mesh_reader(tmp_path: Path, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(mesh_files())))
    good = mesh_files()[kind]
    special = [
        good.replace(b"element vertex 642", b"element vertex 999999999999"),
        good.replace(b"element face 1280", b"element face 4000000000"),
        good.replace(b"v 0.", b"v nan ", 5),
        good.replace(b"f 1", b"f 99999", 3),
    ]
    content = data.draw(st.one_of(mutations(good), st.sampled_from(special)))
    path = tmp_path / f"fuzzed{'.ply' if kind.endswith('ply') else '.obj'}"
    path.write_bytes(content)
    CASES["mesh reader (load_mesh)"] += 1
    mesh = expect_data_error_or_value(load_mesh, path)
    if mesh is not None:
        assert isinstance(mesh, TriMesh) and np.isfinite(mesh.vertices).all()


# ----------------------------------------------------------------------------- dataset loader


@pytest.fixture(scope="module")
def good_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good") / "dataset"
    write_dataset(root)
    return root


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def dataset_damage(draw: st.DrawFn, root: Path) -> tuple[str, bytes]:
    """(relative file, new content) that breaks one file of the dataset at ``root``."""
    target = draw(
        st.sampled_from(
            [MANIFEST, TRANSFORMS_FILE, "prior.npz", "correspondence.npz", "skeleton.json", "scan"]
        )
    )
    if target == "scan":
        manifest = json.loads((root / MANIFEST).read_text())
        target = draw(st.sampled_from([f["scan"] for f in manifest["frames"]]))
    good = (root / target).read_bytes()
    if target == MANIFEST:
        manifest = json.loads(good)
        key = draw(
            st.sampled_from(sorted(manifest) + ["frames.0", "frames.0.scan", "splits.train"])
        )
        value = draw(JSON_VALUES)
        if key.startswith("frames.0"):
            frame = manifest["frames"][0]
            if key == "frames.0":
                manifest["frames"][0] = value
            else:
                frame["scan"] = value
        elif key == "splits.train":
            manifest["splits"]["train"] = value
        else:
            manifest[key] = value
        text = json.dumps(manifest)
        return target, draw(st.one_of(st.just(text.encode()), mutations(text.encode())))
    if target.endswith(".npz"):
        with np.load(root / target) as data:
            contents = {k: data[k] for k in data.files}
        key = draw(st.sampled_from(sorted(contents)))
        damaged = dict(contents, **{key: draw(arrays(contents[key].shape))})
        return target, draw(
            st.one_of(
                st.just(npz_bytes(damaged)),
                mutations(good),
                st.just(oversized_npy_header(key)),
            )
        )
    return target, draw(mutations(good))


@FUZZ
@given(data=st.data())
def test_dataset_loader(good_dataset: Path, tmp_path: Path, data: st.DataObject) -> None:
    before = tree_digest(good_dataset)
    copy = tmp_path / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(good_dataset, copy)
    target, content = data.draw(dataset_damage(good_dataset))
    (copy / target).write_bytes(content)
    CASES["dataset loader (load_dataset + scans)"] += 1
    dataset = expect_data_error_or_value(load_dataset, copy)
    if dataset is not None:
        for i in range(len(dataset)):
            expect_data_error_or_value(dataset.scan, i)
        expect_data_error_or_value(dataset.body_params)
    assert tree_digest(good_dataset) == before


# ----------------------------------------------------------------------------- converters


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A plain input folder and, beside it, a good converted dataset (the conversion target)."""
    tmp = tmp_path_factory.mktemp("plain")
    src = tmp / "src"
    write_plain_folder(src)
    out = tmp / "out"
    convert_folder(src, out, progress=False)
    return src, out


@FUZZ
@given(data=st.data())
def test_folder_converter(
    plain_folder: tuple[Path, Path], tmp_path: Path, data: st.DataObject
) -> None:
    src, out = plain_folder
    before = tree_digest(out)
    copy = tmp_path / "src"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(src, copy)
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    target = data.draw(st.sampled_from(files))
    good = (src / target).read_bytes()
    if target.endswith(".npz"):
        with np.load(src / target) as loaded:
            contents = {k: loaded[k] for k in loaded.files}
        key = data.draw(st.sampled_from(sorted(contents)))
        damaged = dict(contents, **{key: data.draw(arrays(contents[key].shape))})
        content = data.draw(st.one_of(st.just(npz_bytes(damaged)), mutations(good)))
    elif target.endswith(".json"):
        content = data.draw(
            st.one_of(mutations(good), JSON_VALUES.map(lambda v: json.dumps(v).encode()))
        )
    else:
        content = data.draw(mutations(good))
    (copy / target).write_bytes(content)
    CASES["converter (convert_folder)"] += 1
    try:
        convert_folder(copy, out, progress=False)
    except DataError as error:
        assert str(error).strip()
        assert tree_digest(out) == before  # the good dataset there is untouched
    else:
        load_dataset(out)  # a conversion that succeeded wrote a valid dataset
        shutil.rmtree(out)
        convert_folder(src, out, progress=False)
        assert tree_digest(out) == before


@pytest.fixture(scope="module")
def cape_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("cape")
    cape, smpl = tmp / "cape_release", tmp / "smpl"
    write_cape(cape, smpl, frames_per_clip={"hips": 2})
    out = tmp / "out"
    convert_cape(cape, out, smpl, "00032", "longshort", frame_interval=1, progress=False)
    frame = next((cape / "sequences/00032/longshort_hips").glob("*.npz"))
    return cape, smpl, out, frame


@settings(FUZZ, max_examples=max(FUZZ.max_examples * 5 // 8, 10))
@given(data=st.data())
def test_cape_converter(cape_release: tuple[Path, Path, Path, Path], data: st.DataObject) -> None:
    cape, smpl, out, frame = cape_release
    before = tree_digest(out)
    good = frame.read_bytes()
    with np.load(frame) as loaded:
        contents = {k: loaded[k] for k in loaded.files}
    key = data.draw(st.sampled_from(sorted(contents)))
    damaged = dict(contents, **{key: data.draw(arrays(contents[key].shape))})
    content = data.draw(st.one_of(st.just(npz_bytes(damaged)), mutations(good)))
    try:
        frame.write_bytes(content)
        CASES["converter (convert_cape, one frame)"] += 1
        try:
            convert_cape(cape, out, smpl, "00032", "longshort", frame_interval=1, progress=False)
        except DataError as error:
            assert str(error).strip()
            assert tree_digest(out) == before
    finally:
        frame.write_bytes(good)
    if tree_digest(out) != before:  # the damaged frame still converted: restore the good dataset
        convert_cape(cape, out, smpl, "00032", "longshort", frame_interval=1, progress=False)
        assert tree_digest(out) == before


@pytest.fixture(scope="module")
def clothseq_style(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("clothseq")
    style, smpl = tmp / "JacketPants", tmp / "smpl"
    write_clothseq(style, smpl, num_frames=3)
    out = tmp / "out"
    convert_clothseq(style, out, smpl, frame_interval=1, progress=False)
    return style, smpl, out


@settings(FUZZ, max_examples=max(FUZZ.max_examples * 5 // 8, 10))
@given(data=st.data())
def test_clothseq_converter(clothseq_style: tuple[Path, Path, Path], data: st.DataObject) -> None:
    style, smpl, out = clothseq_style
    before = tree_digest(out)
    registration = style / "smpl_registrations.npz"
    good = registration.read_bytes()
    with np.load(registration) as loaded:
        contents = {k: loaded[k] for k in loaded.files}
    key = data.draw(st.sampled_from(sorted(contents)))
    damaged = dict(contents, **{key: data.draw(arrays(contents[key].shape))})
    content = data.draw(st.one_of(st.just(npz_bytes(damaged)), mutations(good)))
    try:
        registration.write_bytes(content)
        CASES["converter (convert_clothseq, registration)"] += 1
        try:
            convert_clothseq(style, out, smpl, frame_interval=1, progress=False)
        except DataError as error:
            assert str(error).strip()
            assert tree_digest(out) == before
    finally:
        registration.write_bytes(good)
    if tree_digest(out) != before:  # the damaged file still converted: restore the good dataset
        convert_clothseq(style, out, smpl, frame_interval=1, progress=False)
        assert tree_digest(out) == before


# ----------------------------------------------------------------------------- SMPL model files


@functools.cache
def smpl_files() -> dict[str, bytes]:
    arrays_ = fake_smpl_arrays()
    pkl = dict(arrays_, J_regressor=scipy.sparse.csc_matrix(arrays_["J_regressor"]))
    return {".npz": npz_bytes(arrays_), ".pkl": pickle.dumps(pkl, protocol=2)}


@FUZZ
@given(data=st.data())
def test_smpl_model_files(tmp_path: Path, data: st.DataObject) -> None:
    suffix = data.draw(st.sampled_from(sorted(smpl_files())))
    good = smpl_files()[suffix]
    if suffix == ".npz":
        contents = fake_smpl_arrays()
        key = data.draw(st.sampled_from(sorted(contents)))
        damaged = dict(contents, **{key: data.draw(arrays(contents[key].shape))})
        content = data.draw(st.one_of(st.just(npz_bytes(damaged)), mutations(good)))
    else:
        content = data.draw(mutations(good))
    path = tmp_path / f"SMPL_NEUTRAL{suffix}"
    path.write_bytes(content)
    CASES["SMPL model file (SMPLModel.load, safe unpickler)"] += 1
    expect_data_error_or_value(SMPLModel.load, path)


# ----------------------------------------------------------------------------- pose inputs


@FUZZ
@given(data=st.data())
def test_pose_inputs(tmp_path: Path, data: st.DataObject) -> None:
    transforms = np.tile(np.eye(4), (3, 5, 1, 1))
    suffix = data.draw(st.sampled_from([".npz", ".npy"]))
    if suffix == ".npz":
        good = npz_bytes({"transforms": transforms})
        content = data.draw(
            st.one_of(
                mutations(good),
                arrays(transforms.shape).map(lambda a: npz_bytes({"transforms": a})),
                st.just(oversized_npy_header("transforms")),
            )
        )
    else:
        buffer = io.BytesIO()
        np.save(buffer, transforms)
        good = buffer.getvalue()
        content = data.draw(mutations(good))
    path = tmp_path / f"poses{suffix}"
    path.write_bytes(content)
    CASES["pose inputs (invskin repose --poses)"] += 1
    result = expect_data_error_or_value(read_poses, path, None)
    if result is not None:
        poses, names = result
        assert poses.shape[-2:] == (4, 4) and len(names) == len(poses)


# ----------------------------------------------------------------------------- the count


def test_report_the_number_of_cases() -> None:
    """Runs last in this module: prints how many cases each reader was fed."""
    if not CASES:
        pytest.skip("the fuzz tests of this module did not run (deselected)")
    total = sum(CASES.values())
    lines = [f"  {name}: {count}" for name, count in sorted(CASES.items())]
    print(f"\nfuzz cases tried: {total}\n" + "\n".join(lines))
    assert all(count >= 10 for count in CASES.values()), CASES
