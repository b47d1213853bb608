"""Reposing many motion sequences in one command: ``invskin repose --poses A.npz B.npz FOLDER ...``.

The run is loaded and its canonical mesh extracted (or read) **once**; the frames of all sequences
are reposed in batches of ``batch`` frames that run across sequence boundaries; each sequence is
written, as soon as its last frame is done, to ``out/<sequence name>/`` with exactly the files a
one-sequence ``invskin repose`` writes (one PLY per frame, ``animation.glb``, ``timing.json``), by
the same writer (:func:`invskin.runs.pipeline.write_sequence`).

Several processes (``torchrun --nproc-per-node N -m invskin.cli.main repose ...``, one per device):
each rank takes a share of the sequences, balanced by frame count (sequence ``i`` in length order
goes to the rank with the fewest frames so far), and reposes it on its own device (``cuda:LOCAL_RANK``
when ``--device cuda``). Ranks do not communicate: a sequence is written whole by one rank. Within
one process, one device is used.

Only pose-free methods (one canonical mesh) can be reposed in bulk; ``snarf`` extracts per frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from invskin.runs.folder import load_run
from invskin.runs.pipeline import canonical_mesh, reposer_for, write_sequence
from invskin.training.distributed import world


@dataclass(frozen=True)
class Sequence:
    """One motion clip: its name (the output sub-folder), transforms (F, J, 4, 4), frame names."""

    name: str
    transforms: torch.Tensor
    frame_names: list[str]


def assign_sequences(lengths: list[int], ranks: int) -> list[list[int]]:
    """Sequence indices per rank: longest first, each to the rank with the fewest frames so far."""
    shares: list[list[int]] = [[] for _ in range(ranks)]
    load = [0] * ranks
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        rank = min(range(ranks), key=lambda r: (load[r], r))
        shares[rank].append(i)
        load[rank] += lengths[i]
    return [sorted(share) for share in shares]


@dataclass(frozen=True)
class BulkResult:
    out_dirs: list[Path]
    """The sequences this process wrote."""
    frames: int
    seconds_per_frame: float


def repose_many(
    run_dir: Path,
    sequences: list[Sequence],
    out_dir: Path,
    batch: int = 16,
    write_glb: bool = True,
    device: str = "cpu",
    progress: bool = True,
) -> BulkResult:
    """Repose every sequence (this rank's share under ``torchrun``); see the module docstring."""
    from tqdm import tqdm

    names = [s.name for s in sequences]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"several motion sequences are named {duplicates}: their outputs would overwrite each "
            "other; rename the files"
        )
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    rank, ranks, local_rank = world()
    if device.startswith("cuda") and ranks > 1 and ":" not in device:
        device = f"cuda:{local_rank}"
    mine = [
        sequences[i] for i in assign_sequences([len(s.transforms) for s in sequences], ranks)[rank]
    ]
    loaded = load_run(run_dir, device)
    model = loaded.model
    if not model.pose_free:
        raise ValueError(
            f"method {loaded.method} extracts a mesh per frame; repose its sequences one at a time"
        )
    for s in sequences:
        if s.transforms.shape[-3] != model.skeleton.num_bones:
            raise ValueError(
                f"sequence {s.name}: the poses have {s.transforms.shape[-3]} bones but the run's "
                f"skeleton has {model.skeleton.num_bones}"
            )
    mesh, extraction = canonical_mesh(run_dir, model, None, loaded.state)
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32, device=device)
    repose = reposer_for(model)
    out_dir = Path(out_dir)
    # Flat list of (sequence, frame) in order; batches cut across sequence boundaries.
    flat = [(k, f) for k, s in enumerate(mine) for f in range(len(s.transforms))]
    done: list[list[torch.Tensor | None]] = [[None] * len(s.transforms) for s in mine]
    remaining = [len(s.transforms) for s in mine]
    written: list[Path] = []
    seconds = 0.0
    for start in tqdm(range(0, len(flat), batch), desc="repose", disable=not progress):
        part = flat[start : start + batch]
        poses = torch.stack([mine[k].transforms[f] for k, f in part]).to(device, torch.float32)
        tic = time.perf_counter()
        posed = repose(vertices, poses).cpu()
        seconds += time.perf_counter() - tic
        for (k, f), frame in zip(part, posed):
            done[k][f] = frame
            remaining[k] -= 1
            if remaining[k] == 0:
                s = mine[k]
                frames = torch.stack(done[k]).numpy()  # type: ignore[arg-type]
                done[k] = []
                timing = {
                    "method": loaded.method,
                    "frames": len(s.transforms),
                    "device": device,
                    "canonical_vertices": mesh.num_vertices,
                    "extraction_seconds": extraction,
                    "bulk_sequences": len(sequences),
                    "rank": rank,
                    "world_size": ranks,
                }
                seq_dir = out_dir / s.name
                write_sequence(seq_dir, s.frame_names, frames, mesh.faces, write_glb, timing)
                written.append(seq_dir)
    return BulkResult(written, len(flat), seconds / max(len(flat), 1))
