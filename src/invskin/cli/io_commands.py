"""Subcommands that bring data in (``invskin import``) and send a run out (``invskin export``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

import tyro


def _convert(convert, src: Path, out: Path, *args, **kwargs):
    """Run a converter from ``src`` to the dataset ``out``, holding ``out`` locked (a second import
    or synth to it, or a training on it, is refused); its per-frame error names the command-line
    option, not the keyword."""
    from invskin.cli.common import OUT_IN_USE, CommandError
    from invskin.data.loaders import ConversionError
    from invskin.folder_lock import hold_folder

    with hold_folder(out, hint=OUT_IN_USE):
        try:
            return convert(src, out, *args, **kwargs)
        except ConversionError as error:
            message = str(error).replace("pass skip_bad_frames=True", "pass --skip-bad-frames")
            raise CommandError(message) from None


def _dataset_summary(dataset) -> str:
    sizes = ", ".join(f"{name} {len(ids)}" for name, ids in dataset.splits.items())
    return (
        f"dataset {dataset.root}: {len(dataset)} frames ({sizes}), {dataset.num_bones} bones "
        f"({', '.join(dataset.skeleton.names[:8])}{' ...' if dataset.num_bones > 8 else ''})"
    )


@dataclass
class ImportCape:
    """CAPE: one subject + outfit of the CAPE release (needs your own SMPL model file)."""

    src: Path
    """The CAPE release folder (holding sequences/, minimal_body_shape/, misc/)."""
    out: Path
    """Output dataset folder."""
    smpl: Path
    """Your SMPL model file (.npz / plain .pkl) or a folder with one per gender."""
    subject: str
    outfit: str
    frame_interval: int = 10
    test_out_fraction: float = 0.2
    seed: int = 0
    gender: str | None = None
    skip_bad_frames: bool = False
    """Leave unreadable frames out (listed in the manifest) instead of failing."""

    def main(self) -> None:
        from invskin.data.loaders import convert_cape

        dataset = _convert(
            convert_cape,
            self.src,
            self.out,
            self.smpl,
            self.subject,
            self.outfit,
            frame_interval=self.frame_interval,
            test_out_fraction=self.test_out_fraction,
            seed=self.seed,
            gender=self.gender,
            skip_bad_frames=self.skip_bad_frames,
        )
        print(_dataset_summary(dataset))


@dataclass
class ImportClothSeq:
    """ClothSeq: raw scans + SMPL+D registration of one clothing style (needs your SMPL file)."""

    src: Path
    """A ClothSeq style folder (e.g. .../JacketPants) holding scans/ and the registration npz."""
    out: Path
    smpl: Path
    """Your SMPL model file (.npz / plain .pkl) or a folder with one per gender."""
    gender: str | None = None
    registration: Path | None = None
    """The registration npz, if not found in the style folder."""
    units: Literal["auto", "m", "cm", "mm"] = "auto"
    frame_interval: int = 10
    test_out_fraction: float = 0.2
    skip_bad_frames: bool = False

    def main(self) -> None:
        from invskin.data.loaders import convert_clothseq

        dataset = _convert(
            convert_clothseq,
            self.src,
            self.out,
            self.smpl,
            gender=self.gender,
            registration=self.registration,
            units=self.units,
            frame_interval=self.frame_interval,
            test_out_fraction=self.test_out_fraction,
            skip_bad_frames=self.skip_bad_frames,
        )
        print(_dataset_summary(dataset))


@dataclass
class ImportFolder:
    """A plain folder: skeleton.json, bone_transforms.npz and meshes/ (docs/data-format.md)."""

    src: Path
    out: Path
    units: Literal["auto", "m", "cm", "mm"] = "auto"
    skip_bad_frames: bool = False

    def main(self) -> None:
        from invskin.data.loaders import convert_folder

        dataset = _convert(
            convert_folder,
            self.src,
            self.out,
            units=self.units,
            skip_bad_frames=self.skip_bad_frames,
        )
        print(_dataset_summary(dataset))


@dataclass
class ImportGltf:
    """A rigged, animated glTF/GLB character of any skeleton: skin weights become the prior, the
    bind pose the canonical pose, the animations the frames (scans: the skinned mesh, or yours)."""

    src: Path
    """The .glb or .gltf file."""
    out: Path
    animations: list[str] | None = None
    """Animations to use (default: all)."""
    test_out: list[str] | None = None
    """Animations held out as test-out (default: the last one, when there are several)."""
    test_out_window: float = 0.2
    """With a single animation (and no --test-out): the fraction at its end held out as test-out."""
    fps: float = 30.0
    """Rate at which animations are sampled into frames."""
    frame_interval: int = 2
    """In training animations, every n-th frame is train, the one halfway between test-within."""
    scans: Path | None = None
    """Folder of your own scans named <frame_id>.ply|obj (default: the skinned mesh)."""
    units: Literal["auto", "m", "cm", "mm"] = "auto"
    """Units of the file (mesh, skeleton, animation) and of your own scans; auto: the bind-pose
    mesh's size says metres, centimetres or millimetres (scans: each scan's size)."""
    height: str = "auto"
    """Size to train at: auto scales a character shorter than 0.5 m or taller than 3 m to 1.7 m
    (the presets are set for human-sized figures; said when done); keep: the file's size; or a
    height in metres."""
    skin: str | None = None
    """Skin to import, by index or name (default: the skin whose meshes have the most vertices)."""
    mesh: list[str] | None = None
    """Mesh nodes of that skin to use, by node or mesh name or node index (default: all)."""
    skip_bad_frames: bool = False

    def main(self) -> None:
        from invskin.data.loaders.gltf import convert_gltf

        dataset = _convert(
            convert_gltf,
            self.src,
            self.out,
            animations=self.animations,
            test_out_animations=self.test_out,
            test_out_window=self.test_out_window,
            fps=self.fps,
            frame_interval=self.frame_interval,
            scans_dir=self.scans,
            units=self.units,
            height=self.height,
            skin=self.skin,
            meshes=self.mesh,
            skip_bad_frames=self.skip_bad_frames,
        )
        print(_dataset_summary(dataset))


Import = Union[  # noqa: UP007 (tyro reads the Union of annotated subcommands)
    Annotated[ImportCape, tyro.conf.subcommand("cape")],
    Annotated[ImportClothSeq, tyro.conf.subcommand("clothseq")],
    Annotated[ImportFolder, tyro.conf.subcommand("folder")],
    Annotated[ImportGltf, tyro.conf.subcommand("gltf")],
]
"""``invskin import {cape,clothseq,folder,gltf}``: write a dataset in the invskin format."""


@dataclass
class Export:
    """Export a run reposed to a motion as a GLB: skinned (joints, 4 weights per vertex, joint
    animation, at most 8 corrective morph targets) or the per-frame morph-target animation."""

    run: Path
    """Run folder written by 'invskin train' (its canonical mesh is extracted if missing)."""
    poses: Path
    """A dataset folder (with --split), 4x4 arrays (.npy/.npz 'transforms'), an AMASS/SMPL .npz,
    a .bvh, or a .glb/.gltf animation."""
    out: Path
    """The .glb to write."""
    split: str | None = None
    """With a dataset folder: only this split's frames."""
    mapping: Path | None = None
    """JSON bone mapping {"bones": {run_bone: motion_bone}} for motions of another rig."""
    smpl: Path | None = None
    """SMPL-family model (file, or folder with one per gender) for AMASS/SMPL .npz motions: the
    subject's rest joints from the file's betas and gender (default: a T-pose)."""
    format: Literal["skinned", "morph"] = "skinned"
    correctives: int = 8
    """Corrective morph targets (0 to 8) of the skinned export."""
    fps: float | None = None
    """Playback rate (default: the motion file's, else 30)."""
    look: Literal["auto", "texture", "colours", "none"] = "auto"
    """What the avatar looks like: auto takes the imported character's texture (through UVs),
    else the canonical mesh's vertex colours, else the character's vertex colours or plain
    colour; texture / colours keep only that kind; none: a plain material."""
    device: str = "cpu"

    def main(self) -> None:
        from invskin.cli.common import OUT_IN_USE, RUN_IN_USE
        from invskin.folder_lock import hold_folder
        from invskin.motion import motion_fps
        from invskin.runs.export import export_run
        from invskin.runs.poses import poses_for_run

        # The run is read (shared: several exports of one run at once), the GLB written.
        with (
            hold_folder(self.run, shared=True, hint=RUN_IN_USE),
            hold_folder(self.out, hint=OUT_IN_USE),
        ):
            transforms, _ = poses_for_run(self.run, self.poses, self.split, self.mapping, self.smpl)
            fps = self.fps or motion_fps(self.poses)
            report = export_run(
                self.run,
                transforms,
                self.out,
                self.format,
                correctives=self.correctives,
                fps=fps,
                device=self.device,
                look=self.look,
            )
        print(report.summary())
