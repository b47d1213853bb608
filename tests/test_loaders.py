"""Converters (CAPE, ClothSeq, plain folder) on small fixture folders in each real layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures_data import (
    fake_smpl_arrays,
    sphere,
    write_cape,
    write_clothseq,
    write_dataset,
    write_obj,
    write_plain_folder,
)
from invskin.body.smpl import SMPL_JOINT_NAMES, SMPLModel
from invskin.data import DataError, load_dataset
from invskin.data.format import MANIFEST
from invskin.data.loaders import ConversionError, convert_cape, convert_clothseq, convert_folder
from invskin.mesh.io import TriMesh, save_mesh

# ----------------------------------------------------------------------------- CAPE


def test_cape_converts_with_the_snarf_recipe(tmp_path: Path) -> None:
    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    frames = write_cape(cape, smpl)
    data = convert_cape(
        cape, tmp_path / "out", smpl, "00032", "longshort", frame_interval=2, progress=False
    )
    # 3 clips -> 2 train motions, 1 test-out motion (seeded); interval 2 -> positions 0, 2 train,
    # 1, 3 test-within; test-out clips keep positions 0 and 2.
    train_motions = {data.motions[i] for i in data.splits["train"]}
    out_motions = {data.motions[i] for i in data.splits["test-out"]}
    assert len(train_motions) == 2 and len(out_motions) == 1 and not train_motions & out_motions
    assert len(data.splits["train"]) == 4 and len(data.splits["test-within"]) == 4
    assert len(data.splits["test-out"]) == 2 and len(data) == 10
    assert {data.motions[i] for i in data.splits["test-within"]} == train_motions
    assert all(f.split("_")[-1] in ("000001", "000003") for f in data.split("train").frame_ids)
    assert data.skeleton.names == SMPL_JOINT_NAMES
    assert data.info["gender"] == "male" and data.info["subject"] == "00032"

    # Scan = v_posed - transl with SMPL faces; transforms from SMPL with the minimal body.
    model = SMPLModel.load(smpl / "SMPL_MALE.npz")
    minimal = torch.from_numpy(np.load(cape / "minimal_body_shape/00032/00032_minimal.npy"))
    i = data.splits["test-out"][1]
    motion = data.motions[i]
    frame = frames[f"longshort_{motion}.000003"]
    scan = data.scan(i)
    np.testing.assert_allclose(scan.vertices, frame["v_posed"] - frame["transl"], atol=1e-5)
    np.testing.assert_array_equal(scan.faces, fake_smpl_arrays()["f"])
    posed = model(torch.from_numpy(frame["pose"]), v_template=minimal)
    expected = model.bone_transforms(torch.from_numpy(frame["pose"]), v_template=minimal)
    assert torch.allclose(data.transforms[i].double(), expected, atol=1e-5)
    # Canonical joints (star pose) go to the posed joints under the stored transforms.
    joints = data.skeleton.joints()
    moved = (data.transforms[i, :, :3, :3] @ joints[:, :, None])[..., 0] + data.transforms[
        i, :, :3, 3
    ]
    assert torch.allclose(moved.double(), posed.joints, atol=1e-4)
    assert data.prior is not None and data.prior.weights.shape == (300, 24)
    assert data.body_params()["pose"].shape == (10, 72)


def test_cape_collects_every_bad_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    write_cape(cape, smpl, frames_per_clip={"ATUsquat": 4, "hips": 4})
    clip = cape / "sequences/00032/longshort_ATUsquat"
    frame = dict(np.load(clip / "longshort_ATUsquat.000001.npz"))
    np.savez(clip / "longshort_ATUsquat.000001.npz", **dict(frame, pose=np.full(72, np.nan)))
    np.savez(clip / "longshort_ATUsquat.000002.npz", v_posed=frame["v_posed"], pose=frame["pose"])
    np.savez(clip / "longshort_ATUsquat.000003.npz", **dict(frame, pose=np.zeros(69)))
    with pytest.raises(ConversionError) as caught:
        convert_cape(cape, tmp_path / "out", smpl, "00032", "longshort", frame_interval=1,
                     test_out_motions=["hips"], progress=False)  # fmt: skip
    message = str(caught.value)
    assert "3 of 8 frames" in message
    assert "000001.npz: 'pose' contains NaN" in message
    assert "000002.npz: no array 'transl'" in message
    assert "000003.npz: 'pose' has 69 values for 24 SMPL joints" in message
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "cape_release",
        "smpl",
    ]
    with caplog.at_level(logging.WARNING, logger="invskin.data"):
        data = convert_cape(cape, tmp_path / "out", smpl, "00032", "longshort", frame_interval=1,
                            test_out_motions=["hips"], skip_bad_frames=True, progress=False)  # fmt: skip
    assert len(data) == 5 and len(data.info["skipped_frames"]) == 3
    assert "skipped 3 of 8 frames" in caplog.text


def test_cape_bad_conversion_keeps_the_good_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dataset(out)
    before = (out / MANIFEST).read_text()
    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    write_cape(cape, smpl, frames_per_clip={"ATUsquat": 2, "hips": 2})
    (cape / "sequences/00032/longshort_hips/longshort_hips.000002.npz").write_bytes(b"corrupt")
    with pytest.raises(ConversionError, match="000002.npz is not a readable .npz"):
        convert_cape(cape, out, smpl, "00032", "longshort", frame_interval=1, progress=False)
    assert (out / MANIFEST).read_text() == before and len(load_dataset(out)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cape_release", "out", "smpl"]


def test_cape_missing_inputs(tmp_path: Path) -> None:
    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    write_cape(cape, smpl, frames_per_clip={"hips": 1})
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"licensed \(https://smpl.is.tue.mpg.de\)"):
        convert_cape(cape, out, tmp_path / "nope", "00032", "longshort", progress=False)
    with pytest.raises(DataError, match=r"no female SMPL model file"):
        convert_cape(cape, out, smpl, "00032", "longshort", gender="female", progress=False)
    with pytest.raises(DataError, match=r"outfits are \['longshort', 'shortshort'\]"):
        convert_cape(cape, out, smpl, "00032", "blazer", progress=False)
    with pytest.raises(DataError, match=r"one of its subjects: \['00032'\]"):
        convert_cape(cape, out, smpl, "00096", "longshort", progress=False)
    (cape / "minimal_body_shape/00032/00032_minimal.npy").unlink()
    with pytest.raises(DataError, match="00032_minimal.npy is missing"):
        convert_cape(cape, out, smpl, "00032", "longshort", progress=False)
    assert not out.exists()


# ----------------------------------------------------------------------------- ClothSeq


def test_clothseq_millimetres_and_unif_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    style, smpl = tmp_path / "ShrugsPants", tmp_path / "smpl"
    registration = write_clothseq(style, smpl, num_frames=10, millimetres=True)
    with caplog.at_level(logging.WARNING, logger="invskin.data"):
        data = convert_clothseq(style, tmp_path / "out", smpl, frame_interval=2, progress=False)
    assert "10 scans" not in caplog.text and "were in millimetres" in caplog.text
    assert data.info["gender"] == "male" and data.info["converted_from_millimetres"] == 9
    # First 8 frames: train 0, 2, 4, 6 and test-within 1, 3, 5, 7; last 2: test-out 8.
    assert data.split("train").frame_ids == ("000000", "000002", "000004", "000006")
    assert data.split("test-within").frame_ids == ("000001", "000003", "000005", "000007")
    assert data.split("test-out").frame_ids == ("000008",)
    # Metres, global translation removed: the sphere is centred at the origin.
    scan = data.scan(data.index("000005"))
    np.testing.assert_allclose(scan.vertices.mean(0), 0.0, atol=1e-4)
    assert np.isclose(np.linalg.norm(scan.vertices, axis=1).max(), 0.6, atol=1e-4)
    model = SMPLModel.load(smpl / "SMPL_MALE.npz")
    expected = model.bone_transforms(
        torch.from_numpy(registration["thetas"][5]), torch.from_numpy(registration["betas"])
    )
    assert torch.allclose(data.transforms[data.index("000005")].double(), expected, atol=1e-5)
    assert data.body_params()["thetas"].shape == (9, 72)


def test_clothseq_bad_frames_and_inputs(tmp_path: Path) -> None:
    style, smpl = tmp_path / "JacketPants", tmp_path / "smpl"
    registration = write_clothseq(style, smpl, num_frames=5, with_frames=False)
    write_obj(style / "scans/000002.obj", TriMesh(np.eye(3), np.zeros((0, 3), dtype=np.int64)))
    registration["thetas"][0, 4] = np.inf
    np.savez(style / "smpl_registrations.npz", **registration)
    with pytest.raises(ConversionError) as caught:
        convert_clothseq(style, tmp_path / "out", smpl, frame_interval=1, progress=False)
    message = str(caught.value)
    assert "smpl_registrations.npz: row of 000000.obj: 'thetas' contains NaN or infinite" in message
    assert "000002.obj" in message and "0 faces" in message
    data = convert_clothseq(
        style, tmp_path / "out", smpl, frame_interval=1, skip_bad_frames=True, progress=False
    )
    assert data.frame_ids == ("000001", "000003", "000004") and data.info["gender"] == "female"

    (style / "scans/000004.obj").rename(tmp_path / "000004.obj")
    with pytest.raises(DataError, match="5 registrations but .* holds 4 scans"):
        convert_clothseq(style, tmp_path / "out2", smpl, progress=False)
    (tmp_path / "000004.obj").rename(style / "scans/000004.obj")
    style.rename(tmp_path / "Mine")
    with pytest.raises(DataError, match="unknown gender for ClothSeq style 'Mine'"):
        convert_clothseq(tmp_path / "Mine", tmp_path / "out2", smpl, progress=False)


# ----------------------------------------------------------------------------- plain folder


def test_folder_converts_and_rejects_bad_input(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    transforms = write_plain_folder(src)
    (src / "splits.json").write_text(
        json.dumps({"train": ["walk_000", "walk_001"], "test-out": ["walk_003"]})
    )
    data = convert_folder(src, tmp_path / "out", progress=False)
    assert data.frame_ids == ("walk_000", "walk_001", "walk_002", "walk_003")
    assert set(data.motions) == {"walk"} and data.splits["test-out"] == (3,)
    assert torch.allclose(data.transforms, torch.from_numpy(transforms).float())

    np.savez(src / "bone_transforms.npz", transforms=transforms[:, :2])
    with pytest.raises(DataError, match="2 bone transforms per frame but .*skeleton.json has 3"):
        convert_folder(src, tmp_path / "out", progress=False)
    bad = transforms.copy()
    bad[2, 1, 0, 3] = np.nan
    np.savez(src / "bone_transforms.npz", transforms=bad)
    with pytest.raises(ConversionError, match=r"bone_transforms.npz \(row 2\): .*NaN"):
        convert_folder(src, tmp_path / "out", progress=False)
    np.savez(src / "bone_transforms.npz", transforms=transforms[:3])
    with pytest.raises(DataError, match="holds 4 meshes but .* has 3 frames"):
        convert_folder(src, tmp_path / "out", progress=False)
    assert len(load_dataset(tmp_path / "out")) == 4  # the first good conversion survived


def test_folder_units_rule(tmp_path: Path) -> None:
    src = tmp_path / "mine"
    write_plain_folder(src, num_frames=2)
    for f in range(2):  # a person-sized sphere in centimetres: ambiguous, so refused
        save_mesh(src / "meshes" / f"walk_{f:03d}.ply", sphere(50.0, (10.0 * f, 0.0, 0.0)))
    with pytest.raises(ConversionError, match="neither metres nor millimetres.*units='cm'"):
        convert_folder(src, tmp_path / "out", progress=False)
    data = convert_folder(src, tmp_path / "out", units="cm", progress=False)
    assert np.isclose(np.linalg.norm(data.scan(1).vertices - [0.1, 0, 0], axis=1).max(), 0.5)
    for f in range(2):  # millimetres are detected
        save_mesh(src / "meshes" / f"walk_{f:03d}.ply", sphere(500.0, (100.0 * f, 0.0, 0.0)))
    data = convert_folder(src, tmp_path / "out", progress=False)
    assert data.info["converted_from_millimetres"] == 2
    assert np.isclose(np.linalg.norm(data.scan(1).vertices - [0.1, 0, 0], axis=1).max(), 0.5)
