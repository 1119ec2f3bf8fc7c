"""Data sources, one module per format behind one protocol (``base.DataSource``).

``open_source`` takes the recipe's ``data``: a plain path (an ``.npz``, as always) or a
``{format: ...}`` spec; a plugin's format (``core.registry``, kind ``data_sources``) is opened by
its own class. Modules import TensorFlow only inside the functions that need it.
May import core/ only.
"""

from __future__ import annotations

from pathlib import Path

from compressctl.datasets.base import DataSource
from compressctl.datasets.specs import SOURCES, SPECS, CsvData, DataSpec, ImagesData, NpzData, PythonData, TfrecordData

__all__ = ["DataSource", "DataSpec", "FORMATS", "open_source"]

FORMATS = tuple(SPECS)  # the built-in formats, then the plugins'


def open_source(spec, keep_float_labels: bool = False) -> DataSource:
    """The data source for a recipe's ``data`` value; every problem is one UserError naming the file.

    ``keep_float_labels``: an npz's float labels stay floats, for a task that may be regression.
    """
    if isinstance(spec, (str, Path)):
        spec = NpzData(path=str(spec))
    if isinstance(spec, NpzData):
        from compressctl.datasets.npz import NpzSource

        return NpzSource(spec.path, keep_float_labels=keep_float_labels)
    if isinstance(spec, ImagesData):
        from compressctl.datasets.images import ImagesSource

        return ImagesSource(spec)
    if isinstance(spec, TfrecordData):
        from compressctl.datasets.tfrecord import TfrecordSource

        return TfrecordSource(spec)
    if isinstance(spec, CsvData):
        from compressctl.datasets.csv import CsvSource

        return CsvSource(spec)
    if isinstance(spec, PythonData):
        from compressctl.datasets.python import PythonSource

        return PythonSource(spec)
    if getattr(spec, "format", None) in SOURCES:  # a plugin's data source, given its own Spec
        return SOURCES[spec.format](spec)
    raise TypeError(f"not a data spec: {spec!r}")
