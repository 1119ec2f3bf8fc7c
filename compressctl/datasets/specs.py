"""The recipe's ``data:`` section: a plain path (an ``.npz``) or ``{format: ..., ...}``, one model per format.

Pure pydantic, no TensorFlow: ``compressctl validate`` checks these without loading anything.
Plugins' data sources (``core.registry``) join them here, each with its own ``Spec``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator

from compressctl.core.registry import PluginError, plugins
from compressctl.core.strict import StrictModel
from compressctl.datasets.base import DataSource

_FRACTION = re.compile(r"^\s*([0-9.eE+-]+)\s*/\s*([0-9.eE+-]+)\s*$")


class NpzData(StrictModel):
    """An .npz with x_train, y_train, x_test, y_test (what a plain path means)."""

    format: Literal["npz"] = "npz"
    path: str = Field(..., description="The .npz file.")


class ImagesData(StrictModel):
    """Image folders, one subfolder per class; class ids follow the sorted folder names."""

    format: Literal["images"]
    train: str = Field(..., description="Directory with one subfolder of images per class (fine-tuning, calibration).")
    test: str = Field(..., description="Directory laid out like train, with the same class folders (the metric).")
    image_size: tuple[Annotated[int, Field(ge=1, le=8192)], Annotated[int, Field(ge=1, le=8192)]] = Field(
        ..., description="[height, width] every image is resized to (bilinear)."
    )
    color_mode: Literal["grayscale", "rgb"] = Field("rgb", description="1 or 3 channels.")
    scale: float = Field(
        1.0, gt=0, le=1e6, description="Pixel values (0–255) are multiplied by this; a fraction like 1/255 is accepted."
    )

    @field_validator("scale", mode="before")
    @classmethod
    def _fraction(cls, value):
        if isinstance(value, str):
            match = _FRACTION.match(value)
            if match:
                try:
                    return float(match.group(1)) / float(match.group(2))
                except (ValueError, ZeroDivisionError):
                    raise ValueError(f"not a number or fraction: {value!r}") from None
        return value


class FeatureSpec(StrictModel):
    dtype: Literal["float32", "int64"] = Field("float32", description="Type the feature is stored as.")
    shape: list[Annotated[int, Field(ge=1, le=1 << 24)]] = Field(
        default_factory=list, max_length=8, description="Shape of one sample's value ([] for a scalar)."
    )


class TfrecordData(StrictModel):
    """TFRecord files of tf.train.Example records."""

    format: Literal["tfrecord"]
    train: str = Field(..., description="Glob of the train TFRecord files (e.g. data/train-*.tfrecord).")
    test: str = Field(..., description="Glob of the test TFRecord files.")
    features: dict[str, FeatureSpec] = Field(
        ...,
        min_length=1,
        description="Input feature name → {dtype: float32 | int64, shape: [...] (default [], a scalar)}; several "
        "features are flattened and concatenated in the order given. The label may be listed too (default: int64 "
        "scalar).",
    )
    label: str = Field(..., description="Name of the label feature.")
    compression: Literal["", "GZIP", "ZLIB"] = Field("", description="Compression of the TFRecord files.")


class CsvData(StrictModel):
    """CSV files with a header row; every feature column numeric."""

    format: Literal["csv"]
    train: str = Field(..., description="CSV file of the train split.")
    test: str = Field(..., description="CSV file of the test split, with the same columns.")
    label: str = Field(..., description="Name of the label column (class ids, or numbers for regression).")
    features: list[str] | None = Field(
        None, min_length=1, description="Feature columns, in order (default: every column but the label)."
    )


class PythonData(StrictModel):
    """A Python function returning (train, test) tf.data.Datasets; naming the module is consent to import it."""

    format: Literal["python"]
    function: str = Field(
        ...,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function returning (train, test) tf.data.Datasets of (x, y) samples.",
    )


SPECS = {"npz": NpzData, "images": ImagesData, "tfrecord": TfrecordData, "csv": CsvData, "python": PythonData}
# Data sources from plugins (core.registry, kind ``data_sources``): a DataSource subclass with a ``format``
# and a ``Spec``, its recipe model; format → class. They join SPECS and the recipe's ``data``.
SOURCES: dict[str, type[DataSource]] = {
    cls.format: cls for cls in plugins("data_sources", DataSource, attribute="format", taken=set(SPECS))
}
for _format, _source in SOURCES.items():
    if not (isinstance(getattr(_source, "Spec", None), type) and issubclass(_source.Spec, StrictModel)):
        raise PluginError(f"data source {_format} ({_source.__module__}) has no `Spec`, the recipe model of its fields")
    SPECS[_format] = _source.Spec


def _data_kind(value) -> str | None:
    """A plain string is an npz path; a mapping is chosen by its ``format``."""
    if isinstance(value, str):
        return "path"
    if isinstance(value, dict):
        return value.get("format")
    return getattr(value, "format", None)


# The recipe's ``data``: errors name only the chosen format's fields (a callable discriminator).
DataSpec = Annotated[
    Union[(Annotated[str, Tag("path")], *(Annotated[spec, Tag(name)] for name, spec in SPECS.items()))],  # noqa: UP007
    Discriminator(
        _data_kind,
        custom_error_type="data_format",
        custom_error_message=f"data must be an npz path or {{format: {' | '.join(SPECS)}, ...}}",
    ),
]
