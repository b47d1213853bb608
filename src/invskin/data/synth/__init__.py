"""The embedded synthetic clothed-human benchmark, built from the anny body model.

``outfits`` (the ``dress`` and ``fitted`` outfits, visible-surface scans), ``skirt`` (the draped
skirt), ``garment`` (fitted offset garments), ``generate`` (presets, splits, the dataset writer).
See ``docs/synthetic-data.md``.
"""

from invskin.data.synth.generate import (
    SynthPreset,
    SynthResult,
    generate,
    generate_dataset,
    plan_clips,
    preset,
)
from invskin.data.synth.outfits import OUTFITS, Outfit, OutfitConfig, build_outfit, dress

__all__ = [
    "OUTFITS",
    "Outfit",
    "OutfitConfig",
    "SynthPreset",
    "SynthResult",
    "build_outfit",
    "dress",
    "generate",
    "generate_dataset",
    "plan_clips",
    "preset",
]
