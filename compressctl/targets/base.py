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


@dataclass
class TargetOutcome:
    """What the target adds to its artifact's record beyond the common measurements."""

    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
