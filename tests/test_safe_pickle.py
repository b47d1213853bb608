"""No code runs from a data file: hostile pickles through every entry point that reads one.

Each payload, if unpickled without restriction, creates a marker file (checked by
``test_the_payloads_are_live``); through invskin each must be refused with a DataError naming the
object, and the marker must not exist afterwards.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse

from fixtures_data import fake_smpl_arrays, write_cape, write_clothseq, write_fake_smpl
from invskin import safe_pickle
from invskin.body.smpl import SMPLFileError, SMPLModel
from invskin.data import DataError
from invskin.data.loaders import convert_cape, convert_clothseq
from invskin.data.loaders.common import load_plain_pickle


class Call:
    """Pickles as ``func(*args)``: what a hostile file makes the unpickler run."""

    def __init__(self, func: Any, args: tuple) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args

    def __call__(self, *args: Any) -> None:  # pickle requires reduce callables to be callable
        raise AssertionError("never called while pickling")


def payloads(marker: Path) -> dict[str, Any]:
    """Objects whose unpickling creates ``marker``; the key names the route."""
    touch = f"{sys.executable} -c \"open({str(marker)!r}, 'w').close()\""
    system_via_getattr = Call(Call(getattr, (Call(__import__, ("os",)), "system")), (touch,))
    return {
        "eval": Call(eval, (f"open({str(marker)!r}, 'w').close()",)),
        "os.system": Call(os.system, (touch,)),
        "subprocess.check_call": Call(
            subprocess.check_call,
            ([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],),
        ),
        "subprocess.Popen": Call(
            subprocess.Popen, ([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],)
        ),
        "builtins.getattr": system_via_getattr,
        # A nested reduce hidden among allowed objects, deep inside plain containers.
        "nested": {
            "v_template": np.zeros((3, 3)),
            "J_regressor": scipy.sparse.csc_matrix(np.eye(3)),
            "deep": [1, (2, {"x": [Call(os.system, (touch,))]})],
        },
        # A numpy function outside the allow-list (a prefix allow-list of "numpy" let it through).
        "numpy-not-allowed": Call(np.save, (str(marker), np.zeros(1))),
    }


PAYLOADS = list(payloads(Path("m")))


def _ran(marker: Path, wait: float = 0.0) -> bool:
    """Whether a payload created ``marker``; Popen payloads run in a child, so allow ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        if marker.exists() or Path(f"{marker}.npy").exists():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("route", PAYLOADS)
def test_the_payloads_are_live(tmp_path: Path, route: str) -> None:
    """Unrestricted pickle.loads does run each payload, so the refusal tests below can fail."""
    marker = tmp_path / "ran"
    data = pickle.dumps(payloads(marker)[route], protocol=2)
    pickle.loads(data)
    assert _ran(marker, wait=5.0)


def _entry_points(tmp_path: Path) -> dict[str, Callable[[Any], Any]]:
    """Each way a user file reaches the unpickler, as ``feed(obj)`` that writes and reads it."""

    def plain(obj: Any) -> Any:
        path = tmp_path / "plain.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=2))
        return load_plain_pickle(path, "a test pickle")

    def smpl_pkl(obj: Any) -> Any:
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(dict(fake_smpl_arrays(), extra=obj), protocol=2))
        return SMPLModel.load(path)

    def smpl_npz(obj: Any) -> Any:
        path = tmp_path / "SMPL_NEUTRAL.npz"
        box = np.empty((), dtype=object)
        box[()] = obj
        np.savez(path, **dict(fake_smpl_arrays(), J_regressor=box))
        return SMPLModel.load(path)

    def cape_genders(obj: Any) -> Any:
        cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
        if not cape.exists():
            write_cape(cape, smpl, frames_per_clip={"hips": 1})
        (cape / "misc" / "subj_genders.pkl").write_bytes(pickle.dumps(obj, protocol=2))
        return convert_cape(cape, tmp_path / "out", smpl, "00032", "longshort", progress=False)

    registrations: list[dict[str, np.ndarray]] = []

    def clothseq_frames(obj: Any) -> Any:
        style, smpl = tmp_path / "JacketPants", tmp_path / "smpl-cs"
        if not registrations:
            registrations.append(write_clothseq(style, smpl, num_frames=3))
        registration = dict(registrations[0])
        registration["frames"] = np.array([obj, "1", "2"], dtype=object)
        np.savez(style / "smpl_registrations.npz", **registration)
        return convert_clothseq(style, tmp_path / "out", smpl, progress=False)

    return {
        "load_plain_pickle": plain,
        "SMPLModel.load(.pkl)": smpl_pkl,
        "SMPLModel.load(.npz object entry)": smpl_npz,
        "convert_cape (subj_genders.pkl)": cape_genders,
        "convert_clothseq (object 'frames')": clothseq_frames,
    }


ENTRY_POINTS = list(_entry_points(Path(".")))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_hostile_pickles_are_refused_and_nothing_runs(tmp_path: Path, entry: str) -> None:
    feed = _entry_points(tmp_path)[entry]
    for route, obj in payloads(tmp_path / "ran").items():
        with pytest.raises(DataError, match=r"refused to load the object .*nothing from this file"):
            feed(obj)
        assert not _ran(tmp_path / "ran"), f"{route} ran through {entry}"
    assert not _ran(tmp_path / "ran", wait=0.5)
    assert not (tmp_path / "out").exists()


def test_refusal_names_the_file_and_the_object(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(
        safe_pickle.PickleRefused, match=r"evil.pkl: refused to load the object os.system"
    ):
        safe_pickle.load(path, "anything")
    for module, name in [("builtins", "eval"), ("builtins", "getattr"), ("posix", "system")]:
        data = f"\x80\x02c{module}\n{name}\n.".encode("latin1")
        with pytest.raises(safe_pickle.PickleRefused, match=rf"{module}\.{name}"):
            safe_pickle.loads(data, "x")
    with pytest.raises(SMPLFileError, match="refused to load the object os.system"):
        SMPLModel.load(path.rename(tmp_path / "SMPL_MALE.pkl"))


def test_allow_list_is_exact() -> None:
    modules = {module for module, _ in safe_pickle.ALLOWED}
    assert modules <= {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
        "scipy.sparse",
        "scipy.sparse.csc",
        "scipy.sparse._csc",
        "scipy.sparse.csr",
        "scipy.sparse._csr",
        "builtins",
        "__builtin__",
        "_codecs",
        "copyreg",
        "copy_reg",
    }
    names = {name for _, name in safe_pickle.ALLOWED}
    for dangerous in ("eval", "exec", "getattr", "__import__", "open", "load", "system", "apply"):
        assert dangerous not in names


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_real_smpl_layout_pickle_still_loads(tmp_path: Path, protocol: int) -> None:
    """Numpy arrays, a scipy CSC regressor, plain containers: every pickle protocol."""
    arrays = fake_smpl_arrays()
    reference = SMPLModel.from_arrays(arrays)
    contents = dict(
        arrays,
        J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"]),
        posedirs=arrays["posedirs"].reshape(-1, 207),
        pose_training_info={"set": {1, 2}, "frozen": frozenset("ab"), "scalar": np.float64(2)},
        bs_style="lbs",
        misc=[
            b"bytes",
            bytearray(b"x"),
            complex(1, 2),
            None,
            True,
            scipy.sparse.csr_matrix(np.eye(2)),
        ],
    )
    path = tmp_path / "basicModel_neutral.pkl"
    path.write_bytes(pickle.dumps(contents, protocol=protocol))
    model = SMPLModel.load(path)
    assert np.array_equal(model.v_template.numpy(), reference.v_template.numpy())
    assert np.allclose(model.joint_regressor.numpy(), reference.joint_regressor.numpy())
    loaded = safe_pickle.load(path, "test")
    assert type(loaded["J_regressor"]) is scipy.sparse.csc_matrix
    assert loaded["pose_training_info"]["set"] == {1, 2}
    assert (loaded["misc"][5] != scipy.sparse.csr_matrix(np.eye(2))).nnz == 0


def test_smpl_npz_with_a_sparse_object_entry_loads(tmp_path: Path) -> None:
    arrays = fake_smpl_arrays()
    np.savez(
        tmp_path / "SMPL_NEUTRAL.npz",
        **dict(arrays, J_regressor=scipy.sparse.csc_matrix(arrays["J_regressor"])),
    )
    model = SMPLModel.load(tmp_path / "SMPL_NEUTRAL.npz")
    assert np.allclose(model.joint_regressor.numpy(), arrays["J_regressor"])
    reference = SMPLModel.load(write_fake_smpl(tmp_path / "ref" / "SMPL_NEUTRAL.npz"))
    assert np.allclose(model.joint_regressor.numpy(), reference.joint_regressor.numpy())


def test_tampered_sparse_matrix_is_rebuilt_or_refused(tmp_path: Path) -> None:
    """A sparse matrix whose stored fields are not arrays, or whose methods were replaced."""
    matrix = scipy.sparse.csc_matrix(np.eye(3))
    matrix.toarray = np.dtype  # an allowed callable planted as an instance attribute
    loaded = safe_pickle.loads(pickle.dumps(matrix, protocol=2), "t")
    assert "toarray" not in vars(loaded) and np.array_equal(loaded.toarray(), np.eye(3))
    broken = scipy.sparse.csc_matrix(np.eye(3))
    broken.indices = [0, 1, 2]
    with pytest.raises(DataError, match="indices of a sparse matrix is not a numeric array"):
        safe_pickle.loads(pickle.dumps(broken, protocol=2), "t")
    wrong = scipy.sparse.csc_matrix(np.eye(3))
    wrong._shape = (2, 2)
    with pytest.raises(DataError, match="t: an invalid sparse matrix"):
        safe_pickle.loads(pickle.dumps(wrong, protocol=2), "t")


def test_malformed_pickles_are_data_errors(tmp_path: Path) -> None:
    good = pickle.dumps({"a": np.arange(10)}, protocol=2)
    cases = {
        "truncated": good[:-7],
        "empty": b"",
        "not a pickle": b"hello world",
        "persistent id": b"\x80\x02X\x01\x00\x00\x00aQ.",
        "bad reduce args": b"\x80\x02cnumpy\ndtype\nq\x00X\x04\x00\x00\x00nopeq\x01\x85q\x02R.",
        "huge bytes": b"\x80\x04\x8e" + (2**62).to_bytes(8, "little") + b"x",
        "deep nesting": b"\x80\x02" + b"]" * 10_000 + b"a" * 9_999 + b".",
        "recursive list": b"\x80\x02]q\x00h\x00a.",
    }
    for name, data in cases.items():
        with pytest.raises(DataError):
            safe_pickle.loads(data, name)
