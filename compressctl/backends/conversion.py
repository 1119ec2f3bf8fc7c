"""One way to convert a model: the ``Conversion`` a target lists and a backend carries out.

Here, not in targets/, because the backends build conversions too (the LiteRT Quantizer's fallbacks);
targets/base.py re-exports it, so a target module imports it from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Backends that turn the float SavedModel into a .tflite file; the pipeline maps each to its code.
Backend = Literal["converter", "litert-quantizer"]


@dataclass(frozen=True)
class Conversion:
    """One way to convert: tried in order until one yields an artifact that loads and runs."""

    mode: str  # float32 | float16 | dynamic | int8
    io_dtype: str = "float32"
    integer_only: bool = False
    sparsity: bool = False
    label: str = ""
    fallback_reason: str = ""  # why this is a fallback (empty for the first choice)
    # What writes the file (compressctl/backends): "converter" converts the SavedModel in a child
    # process; "litert-quantizer" quantizes the float TFLite file with ``options``.
    backend: Backend = "converter"
    options: dict = field(default_factory=dict)
    per_tensor_dense: bool = False  # one scale per Dense kernel: older FULLY_CONNECTED versions
