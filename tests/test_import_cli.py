"""`invskin import cape|clothseq|folder` run the existing converters from the command line: the
same datasets as the Python functions, the same error policy (one line, nothing written)."""

import numpy as np
import pytest

from fixtures_data import write_cape, write_clothseq, write_plain_folder
from invskin.cli.main import main
from invskin.data.format import load_dataset


def test_import_cape(tmp_path, capsys) -> None:
    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    write_cape(cape, smpl)
    out = tmp_path / "cape-data"
    main(["import", "cape", "--src", str(cape), "--out", str(out), "--smpl", str(smpl),
          "--subject", "00032", "--outfit", "longshort", "--frame-interval", "2"])  # fmt: skip
    data = load_dataset(out)
    assert len(data) == 10 and len(data.splits["test-out"]) == 2
    assert data.skeleton.names[0] == "pelvis" and data.prior is not None
    assert f"dataset {out}: 10 frames" in capsys.readouterr().out


def test_import_clothseq(tmp_path) -> None:
    style, smpl = tmp_path / "ShrugsPants", tmp_path / "smpl"
    write_clothseq(style, smpl, num_frames=10, millimetres=True)
    main(["import", "clothseq", "--src", str(style), "--out", str(tmp_path / "cs"),
          "--smpl", str(smpl), "--frame-interval", "2"])  # fmt: skip
    data = load_dataset(tmp_path / "cs")
    assert data.split("test-out").frame_ids == ("000008",)
    assert data.info["converted_from_millimetres"] == 9


def test_import_folder_and_its_errors(tmp_path, capsys) -> None:
    transforms = write_plain_folder(tmp_path / "src", num_frames=4)
    main(["import", "folder", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "data")])
    data = load_dataset(tmp_path / "data")
    assert np.allclose(data.transforms.numpy(), transforms, atol=1e-6)
    # A broken frame: one clear line, and the existing dataset is left as it was.
    (
        tmp_path / "src" / "meshes" / sorted((tmp_path / "src" / "meshes").iterdir())[0].name
    ).write_text("junk")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "folder", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "data")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: " in err and "--skip-bad-frames" in err and "Traceback" not in err
    assert len(load_dataset(tmp_path / "data")) == 4
    main(["import", "folder", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "data"),
          "--skip-bad-frames"])  # fmt: skip
    assert len(load_dataset(tmp_path / "data")) == 3


def test_import_gltf_with_own_scans_matched_by_frame(tmp_path, capsys) -> None:
    from gltf_quadruped import write_quadruped_glb
    from invskin.mesh.io import TriMesh, save_mesh

    glb = write_quadruped_glb(tmp_path / "quadruped.glb")
    main(["import", "gltf", "--src", str(glb), "--out", str(tmp_path / "skinned")])
    skinned = load_dataset(tmp_path / "skinned")
    scans = tmp_path / "scans"
    scans.mkdir()
    for i, frame_id in enumerate(skinned.frame_ids):  # "own scans": in millimetres, by frame id
        mesh = skinned.scan(i)
        save_mesh(scans / f"{frame_id}.ply", TriMesh(mesh.vertices * 1000.0, mesh.faces))
    main(["import", "gltf", "--src", str(glb), "--out", str(tmp_path / "own"),
          "--scans", str(scans)])  # fmt: skip
    own = load_dataset(tmp_path / "own")
    assert own.frame_ids == skinned.frame_ids and own.correspondence is None
    assert np.allclose(own.scan(3).vertices, skinned.scan(3).vertices, atol=1e-5)
    (scans / f"{skinned.frame_ids[2]}.ply").unlink()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["import", "gltf", "--src", str(glb), "--out", str(tmp_path / "own"),
              "--scans", str(scans)])  # fmt: skip
    assert f"no scan {skinned.frame_ids[2]}.ply" in capsys.readouterr().err
    assert len(load_dataset(tmp_path / "own")) == len(skinned)  # the good dataset is kept
