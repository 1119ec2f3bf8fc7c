"""The base of every recipe model: pydantic, frozen, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Every recipe model refuses unknown keys: a typo is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
