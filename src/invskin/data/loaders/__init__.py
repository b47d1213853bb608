"""Converters from other dataset layouts into the invskin format (written via DatasetWriter).

- :func:`convert_cape`: CAPE release (registered SMPL-topology meshes; needs the user's SMPL file).
- :func:`convert_clothseq`: ClothSeq raw scans + SMPL+D registration (needs the user's SMPL file).
- :func:`convert_folder`: a plain folder of posed meshes + bone transforms + skeleton.

Each returns the loaded :class:`~invskin.data.format.Dataset`; errors are
:class:`~invskin.data.format.DataError` (per-frame problems collected into one
:class:`ConversionError`).
"""

from invskin.data.loaders.cape import convert_cape
from invskin.data.loaders.clothseq import convert_clothseq
from invskin.data.loaders.common import ConversionError, FrameProblem
from invskin.data.loaders.folder import convert_folder

__all__ = [
    "ConversionError",
    "FrameProblem",
    "convert_cape",
    "convert_clothseq",
    "convert_folder",
]
