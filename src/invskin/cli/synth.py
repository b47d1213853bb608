"""``invskin synth``: generate the embedded synthetic clothed-human benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from invskin.cli.common import OUT_IN_USE, CommandError


@dataclass
class Synth:
    """Generate the embedded synthetic clothed-human benchmark from the anny body model.

    Writes an invskin dataset (scans, bone transforms, skeleton, body prior, correspondence
    ground truth, splits train / test-within / test-out); the scans carry the colours of a print
    on garment and skirt unless --no-colour. Needs the anny package (pip install
    'invskin[anny]'); its first model build takes about a minute and is cached. Holds --out
    locked while it runs: a second synth or import to it, or a training on it, is refused.
    """

    out: Path = Path("data/synth-dress")
    """Folder to write the dataset to (an existing invskin dataset there is replaced)."""
    outfit: Literal["dress", "fitted"] = "dress"
    """dress (bodice, loose skirt draped per pose) or fitted (top, trousers that bulge, wrinkle)."""
    preset: Literal["small", "default"] = "default"
    """small: 40 frames (tests, smoke runs); default: 200 train, 48 test-within, 52 test-out."""
    seed: int = 0
    """Seed of the per-clip motion variation (amplitude, speed, phase) and of the lighting."""
    colour: bool = True
    """Print a pattern on garment and skirt and write coloured scans (--no-colour: geometry only)."""
    lighting: bool = False
    """Multiply each frame's scan colours by a random brightness factor (see --lighting-range)."""
    lighting_range: tuple[float, float] = (0.7, 1.3)
    """Range of the per-frame brightness factor of --lighting (at most 1.3)."""
    progress: bool = True
    """Show a progress bar."""

    def main(self) -> None:
        from invskin.data.format import DataError
        from invskin.data.synth.generate import generate
        from invskin.folder_lock import hold_folder

        with hold_folder(self.out, hint=OUT_IN_USE):
            try:
                generate(
                    self.out,
                    outfit=self.outfit,
                    settings=self.preset,
                    seed=self.seed,
                    progress=self.progress,
                    log=print,
                    colour=self.colour,
                    lighting=self.lighting_range if self.lighting else None,
                )
            except (ImportError, DataError, ValueError) as error:
                raise CommandError(str(error)) from error
