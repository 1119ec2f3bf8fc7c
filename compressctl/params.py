"""Building blocks shared by the recipe's stage and target parameter models."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StrictModel(BaseModel):
    """Every recipe model refuses unknown keys: a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_patterns(patterns):
    """The regexes as given; ValueError naming the first one that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class LayerSelection(StrictModel):
    """Which layers a stage touches, by layer name.

    Patterns are Python regular expressions matched against the whole layer name
    (``re.fullmatch``): ``dense.*`` matches ``dense`` and ``dense_1`` but not ``my_dense``.
    A layer is selected when ``include`` is empty or one of its patterns matches, and no
    ``exclude`` pattern matches: exclude wins over include.
    """

    include: list[str] = Field(default_factory=list, description="Regexes of layer names to touch (empty: all).")
    exclude: list[str] = Field(default_factory=list, description="Regexes of layer names to leave alone.")

    @field_validator("include", "exclude")
    @classmethod
    def _valid_regexes(cls, value):
        return check_patterns(value)

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
