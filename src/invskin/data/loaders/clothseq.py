"""Convert one ClothSeq clothing style (Neural-GIF's raw scans + SMPL+D registration) to invskin format.

Input layout (one folder per style, e.g. ``JacketPants``, ``JacketShorts``, ``ShrugsPants``)::

    STYLE/scans/<frame>.obj              raw posed scans (.obj or .ply); ShrugsPants is in millimetres;
                                         vertex colours (OBJ ``v x y z r g b``, PLY red/green/blue)
                                         are kept (every scan has them, or none)
    STYLE/smpl_registrations.npz         (or smpl_registration.npz) with
                                         betas (S,) or (F, S), thetas (F, 72), trans (F, 3),
                                         optional frames (F,) naming the scan of each row

Rows are matched to scans by ``frames`` (numeric names match numerically, so ``12`` finds
``000012.obj``); without ``frames`` the scans, sorted by name (numbers numerically), must be exactly
one per row. Scans are converted to metres by the units rule of
:mod:`invskin.data.loaders.common` (millimetre scans such as ShrugsPants are detected and divided by
1000, with a warning), then the global ``trans`` is removed; bone transforms come from our SMPL
forward pass with ``betas`` and ``thetas`` (canonical = star pose).

Split (UNIF's ClothSeq protocol): the first ``floor(0.8 F)`` frames in sequence order form the
training interval: positions ``k % frame_interval == 0`` are ``train``, ``k % frame_interval ==
frame_interval // 2`` are ``test-within``; every ``frame_interval``-th frame of the last 20 % is
``test-out`` (temporal extrapolation). Other frames are not converted.

Gender: ``gender=`` or, if omitted, UNIF's table by folder name (ShrugsPants male, JacketPants and
JacketShorts female).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from invskin import safe_pickle
from invskin.body.smpl import SMPLFileError, SMPLModel, find_smpl_file
from invskin.data.format import BodyPrior, DataError, Dataset, DatasetWriter
from invskin.data.loaders.common import (
    ConversionReport,
    FrameJob,
    check_array,
    interval_split,
    load_npz,
    report_info,
    run_frames,
    safe_frame_id,
    scan_to_metres,
    written_splits,
)
from invskin.errors import NPZ_READ_ERRORS
from invskin.mesh.io import TriMesh, load_mesh

logger = logging.getLogger("invskin.data")

REGISTRATION_NAMES = ("smpl_registrations.npz", "smpl_registration.npz")
KNOWN_GENDERS = {"shrugspants": "male", "jacketpants": "female", "jacketshorts": "female"}
SCAN_SUFFIXES = (".obj", ".ply")


def _natural_key(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def find_registration(style_dir: Path) -> Path:
    for file_name in REGISTRATION_NAMES:
        if (style_dir / file_name).is_file():
            return style_dir / file_name
    raise DataError(
        f"{style_dir} has no SMPL+D registration ({' or '.join(REGISTRATION_NAMES)}); pass the "
        "ClothSeq style folder that holds scans/ and the registration npz, or registration=PATH"
    )


def match_scans(scans: list[Path], frames: np.ndarray, registration: Path) -> list[Path]:
    """The scan file named by each entry of ``frames`` (numeric names match numerically)."""
    by_name = {p.stem: p for p in scans}
    by_number = {int(p.stem): p for p in scans if p.stem.isdigit()}
    matched, missing = [], []
    for frame in frames.tolist():
        text = frame.decode() if isinstance(frame, bytes) else str(frame)
        stem = Path(text).stem
        path = by_name.get(stem)
        if path is None and re.fullmatch(r"\d+", stem):
            path = by_number.get(int(stem))
        if path is None:
            missing.append(text)
        else:
            matched.append(path)
    if missing:
        raise DataError(
            f"{registration}: 'frames' names {len(missing)} scans that are not in scans/ "
            f"(e.g. {missing[:3]}); put the scans there or pass the right registration file"
        )
    return matched


def _frames_array(path: Path) -> np.ndarray:
    """The 'frames' entry; an object array (pickled strings) is read by the safe unpickler."""
    return np.asarray(safe_pickle.read_npz(path, keys=("frames",))["frames"]).reshape(-1)


def convert_clothseq(
    style_dir: Path | str,
    out: Path | str,
    smpl_model_path: Path | str,
    *,
    gender: str | None = None,
    registration: Path | str | None = None,
    units: str = "auto",
    frame_interval: int = 10,
    test_out_fraction: float = 0.2,
    skip_bad_frames: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> Dataset:
    """Convert a ClothSeq style folder into an invskin dataset at ``out``; return it."""
    style_dir = Path(style_dir)
    scans_dir = style_dir / "scans"
    if not scans_dir.is_dir():
        raise DataError(
            f"{scans_dir} does not exist; pass a ClothSeq style folder (e.g. .../JacketPants) "
            "holding scans/ and the SMPL+D registration npz"
        )
    scans = sorted(
        (p for p in scans_dir.iterdir() if p.suffix.lower() in SCAN_SUFFIXES), key=_natural_key
    )
    if not scans:
        raise DataError(f"{scans_dir} holds no .obj or .ply scans")
    reg_path = Path(registration) if registration is not None else find_registration(style_dir)
    with load_npz(reg_path, "a SMPL+D registration with betas, thetas, trans") as data:
        thetas = check_array(data, "thetas", (None, None), reg_path, finite=False)
        num_rows = thetas.shape[0]
        trans = check_array(data, "trans", (num_rows, 3), reg_path, finite=False)
        try:
            betas = np.asarray(data["betas"]) if "betas" in data.files else None
        except NPZ_READ_ERRORS as error:
            raise DataError(f"{reg_path}: 'betas' cannot be read ({error})") from error
        frames = _frames_array(reg_path) if "frames" in data.files else None
    if betas is None:
        raise DataError(f"{reg_path}: no array 'betas'; is this a SMPL+D registration?")
    betas = check_array({"betas": betas}, "betas", (None,) * betas.ndim, reg_path)
    if betas.ndim == 2 and betas.shape[0] == num_rows:
        betas = betas[0]  # one body shape per sequence (the first row)
    if betas.ndim != 1:
        raise DataError(f"{reg_path}: 'betas' has shape {betas.shape}, expected (S,) or (F, S)")
    if frames is not None and len(frames) != num_rows:
        raise DataError(f"{reg_path}: 'frames' has {len(frames)} rows but 'thetas' has {num_rows}")
    if frames is None and len(scans) != num_rows:
        raise DataError(
            f"{reg_path} has {num_rows} registrations but {scans_dir} holds {len(scans)} scans "
            "and the npz has no 'frames' to match them; keep exactly one scan per row"
        )
    matched = scans if frames is None else match_scans(scans, frames, reg_path)

    if gender is None:
        gender = KNOWN_GENDERS.get(style_dir.name.lower())
        if gender is None:
            raise DataError(
                f"unknown gender for ClothSeq style {style_dir.name!r}; pass gender='male', "
                "'female' or 'neutral'"
            )
        logger.info("ClothSeq %s: using the %s SMPL model", style_dir.name, gender)
    try:
        model = SMPLModel.load(find_smpl_file(smpl_model_path, gender))
    except SMPLFileError as error:
        raise DataError(str(error)) from error
    if betas.shape[0] > model.num_betas:
        raise DataError(
            f"{reg_path}: {betas.shape[0]} betas but the SMPL model {model.source} has "
            f"{model.num_betas} shape coefficients; pass the matching SMPL model"
        )
    betas_t = torch.from_numpy(betas)

    front = int(np.floor((1.0 - test_out_fraction) * num_rows + 1e-9))
    kept, held = interval_split(front, frame_interval)
    test_out, _ = interval_split(num_rows - front, frame_interval)
    chosen = sorted(
        [(k, "train") for k in kept]
        + [(k, "test-within") for k in held]
        + [(front + k, "test-out") for k in test_out]
    )
    if thetas.shape[1] != 3 * model.num_joints:
        raise DataError(
            f"{reg_path}: 'thetas' has {thetas.shape[1]} values per frame for "
            f"{model.num_joints} SMPL joints (expected {3 * model.num_joints})"
        )
    splits: dict[str, list[str]] = {"train": [], "test-within": [], "test-out": []}
    report = ConversionReport()
    jobs = []
    row_of: dict[str, int] = {}
    motion = safe_frame_id(style_dir.name)
    for row, split in chosen:
        scan_path = matched[row]
        frame_id = safe_frame_id(scan_path.stem)
        splits[split].append(frame_id)
        row_of[frame_id] = row
        load = _frame_loader(
            scan_path, reg_path, thetas[row], trans[row], betas_t, model, units, report
        )
        jobs.append(FrameJob(frame_id, scan_path, motion, load))

    skeleton = model.skeleton(betas=betas_t)
    prior = BodyPrior(
        vertices=model.canonical_vertices(betas=betas_t).float(),
        faces=model.faces,
        weights=model.weights.float(),
    )
    info = {
        "dataset": "ClothSeq",
        "style": style_dir.name,
        "gender": gender,
        "smpl_model": Path(model.source).name,
        "canonical_pose": "star: SMPL hips at +-pi/6 about z",
        "split": (
            f"first {front} of {num_rows} frames: train / test-within (interval "
            f"{frame_interval}); the rest: test-out"
        ),
    }
    with DatasetWriter(
        out,
        name or f"clothseq-{motion}",
        skeleton,
        prior=prior,
        source=f"ClothSeq {style_dir}",
        info=info,
    ) as writer:
        run_frames(
            writer,
            jobs,
            source=style_dir,
            skip_bad_frames=skip_bad_frames,
            report=report,
            progress=progress,
            total=len(jobs),
        )
        writer.set_splits(written_splits(splits, report))
        index = [row_of[frame_id] for frame_id in writer.frame_ids]
        writer.set_body_params(
            thetas=thetas[index].astype(np.float32),
            trans=trans[index].astype(np.float32),
            betas=betas.astype(np.float32),
        )
        writer.info.update(report_info(report))
        return writer.finish()


def _frame_loader(
    scan_path: Path,
    registration: Path,
    pose: np.ndarray,
    transl: np.ndarray,
    betas: torch.Tensor,
    model: SMPLModel,
    units: str,
    report: ConversionReport,
) -> Callable[[], tuple[TriMesh, np.ndarray]]:
    def load() -> tuple[TriMesh, np.ndarray]:
        where = f"{registration}: row of {scan_path.name}"
        for key, value in (("thetas", pose), ("trans", transl)):
            if not np.isfinite(value).all():
                raise DataError(f"{where}: {key!r} contains NaN or infinite values")
        scan = scan_to_metres(load_mesh(scan_path), str(scan_path), units, report)
        scan = replace(scan, vertices=scan.vertices - transl)  # keeps the vertex colours
        transforms = model.bone_transforms(torch.from_numpy(pose), betas=betas)
        return scan, transforms.numpy()

    return load
