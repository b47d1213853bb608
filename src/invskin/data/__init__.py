"""Datasets: the invskin on-disk format, training samples, and converters for CAPE, ClothSeq, folders.

``invskin.data.format`` is the format (``docs/data-format.md``); ``invskin.data.samples`` makes and
caches occupancy training samples; ``invskin.data.loaders`` converts other datasets into the format.
"""

from invskin.data.format import (
    BodyPrior,
    CorrespondenceTruth,
    DataError,
    Dataset,
    DatasetWriter,
    load_dataset,
)

__all__ = [
    "BodyPrior",
    "CorrespondenceTruth",
    "DataError",
    "Dataset",
    "DatasetWriter",
    "load_dataset",
]
