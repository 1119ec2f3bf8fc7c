"""Building blocks shared by the recipe's stage and target parameter models."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from compressctl.core.strict import StrictModel
from compressctl.model import selectors


def check_patterns(patterns):
    """The layer selectors as given (name regexes, type:, role:, feeds:); ValueError naming the first bad one."""
    for pattern in patterns:
        selectors.parse(pattern)
    return patterns


SELECTOR_HELP = (
    "a layer-name regex, type:CLASS, role:output|first|largest|hidden, feeds:CLASS, or the mapping form {type: Dense}"
)


class LayerSelection(StrictModel):
    """Which layers a stage touches: by name, by Keras class, or by role (``compressctl.model.selectors``).

    Name patterns are Python regular expressions matched against the whole layer name
    (``re.fullmatch``): ``dense.*`` matches ``dense`` and ``dense_1`` but not ``my_dense``.
    ``type:Dense``, ``role:output`` and ``feeds:Multiply`` select by class and by place in the model.
    A layer is selected when ``include`` is empty or one of its selectors matches, and no
    ``exclude`` selector matches: exclude wins over include.
    """

    include: list[str | dict[str, str]] = Field(
        default_factory=list, description=f"Layers to touch (empty: all); each {SELECTOR_HELP}."
    )
    exclude: list[str | dict[str, str]] = Field(
        default_factory=list, description=f"Layers to leave alone; each {SELECTOR_HELP}."
    )

    @field_validator("include", "exclude")
    @classmethod
    def _valid_selectors(cls, value):
        return [selectors.normalize(item) for item in value]

    def selects(self, layer_name: str) -> bool:
        if any(re.fullmatch(p, layer_name) for p in self.exclude):
            return False
        return not self.include or any(re.fullmatch(p, layer_name) for p in self.include)


def check_per_layer(mapping: dict, valid, what: str, bounds: str) -> dict:
    """Validate a per-layer map: regex keys, values within ``bounds`` (``valid(value)`` is True)."""
    check_patterns(mapping)
    for pattern, value in mapping.items():
        if not valid(value):
            raise ValueError(f"{what} for {pattern!r} must be in {bounds}, got {value}")
    return mapping


def first_match(mapping: dict[str, object], layer_name: str):
    """The value of the first regex key (in recipe order) that matches the whole name, else None."""
    for pattern, value in mapping.items():
        if re.fullmatch(pattern, layer_name):
            return value
    return None


class FineTune(StrictModel):
    """Fine-tuning settings shared by training stages."""

    epochs: int = Field(2, ge=1, le=1000, description="Fine-tuning epochs on the train split.")
    learning_rate: float = Field(1e-4, gt=0, le=1, description="Adam learning rate.")
    batch_size: int | None = Field(
        None, ge=1, le=65536, description="Batch size (default: the recipe's training.batch_size)."
    )
