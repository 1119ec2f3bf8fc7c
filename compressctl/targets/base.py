"""What a target tells the pipeline: the conversions to try, in order, and checks on the result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Conversion:
    """One way to convert: tried in order until one yields an artifact that loads and runs."""

    mode: str  # float32 | float16 | dynamic | int8
    io_dtype: str = "float32"
    integer_only: bool = False
    sparsity: bool = False
    label: str = ""
    fallback_reason: str = ""  # why this is a fallback (empty for the first choice)
    # Quantization backend (compressctl/backends): "converter" converts the SavedModel;
    # "litert-quantizer" quantizes the float TFLite file with ``options``.
    backend: str = "converter"
    options: dict = field(default_factory=dict)
    per_tensor_dense: bool = False  # one scale per Dense kernel: older FULLY_CONNECTED versions


@dataclass
class TargetOutcome:
    """What the target adds to its artifact's record beyond the common measurements."""

    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Target:
    """A deployment target: its params, its name, and the conversions to try (``conversions()``).

    A target may also define ``finish(path, folder, emit) -> dict`` to check the artifact further;
    what it returns joins the artifact's record in report.json.
    """

    def __init__(self, params):
        self.params = params

    @property
    def name(self) -> str:
        return self.params.name or self.params.type
