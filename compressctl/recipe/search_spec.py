"""The recipe's ``search:`` section: objective, space, sampler and budget of a search.

``compressctl run`` ignores the section; ``compressctl search`` reads it. Space keys are ``--set``
paths (``stages.0.target_sparsity``); that each resolves to a recipe field is checked against the
whole recipe in ``compressctl.search.space``, with the error pointing at the key's line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from compressctl.core.strict import StrictModel

OBJECTIVES = ("gzip_bytes", "size_bytes", "latency_p50", "pareto")
# key → field
KINDS = {"uniform": "uniform", "loguniform": "loguniform", "sparsity": "sparsity", "int": "integer", "choice": "choice"}


class Dimension(StrictModel):
    """One searched field: exactly one of ``uniform``, ``loguniform``, ``sparsity``, ``int`` or ``choice``.

    ``sparsity`` draws the density (1 − sparsity) on a log scale: a model's size goes with its
    density, so each doubling of the compression is as likely as the next (uniform draws put 6 %
    of the trials above 0.95 in [0.5, 0.98]; sparsity draws put 28 % there).
    """

    # `integer` reads and writes as `int` in YAML; populate_by_name lets a dump read back either way.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    uniform: tuple[float, float] | None = Field(None, description="[low, high]: a float drawn uniformly.")
    loguniform: tuple[float, float] | None = Field(None, description="[low, high], both > 0: a float, log scale.")
    sparsity: tuple[float, float] | None = Field(
        None, description="[low, high] in [0, 1): a sparsity whose density (1 − sparsity) is drawn on a log scale."
    )
    integer: tuple[int, int] | None = Field(
        None, alias="int", description="[low, high]: an integer, both ends included."
    )
    choice: list[float | int | str | bool] | None = Field(
        None, min_length=1, max_length=256, description="One of these values."
    )

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in KINDS if getattr(self, KINDS[k]) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of uniform: [low, high], loguniform: [low, high], sparsity: [low, high], "
                "int: [low, high], choice: [...]" + (f" (got {', '.join(given)})" if given else "")
            )
        kind = given[0]
        if kind != "choice":
            low, high = getattr(self, KINDS[kind])
            if not low < high:
                raise ValueError(f"{kind}: low must be < high, got [{low}, {high}]")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform: low must be > 0, got {low}")
            if kind == "sparsity" and not 0 <= low < high < 1:
                raise ValueError(f"sparsity: need 0 ≤ low < high < 1, got [{low}, {high}]")
        return self

    def sampled(self, value):
        """The sampler's value (a density for ``sparsity``) → the recipe's value."""
        return round(1 - value, 6) if self.kind == "sparsity" else value

    def unsampled(self, value):
        """The recipe's value → the sampler's (inverse of ``sampled``)."""
        return 1 - value if self.kind == "sparsity" else value

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, KINDS[k]) is not None)

    def edge_values(self) -> list:
        """The values whose validity stands for the whole range: both ends, or every choice."""
        if self.kind == "choice":
            return list(self.choice)
        return list(getattr(self, KINDS[self.kind]))

    def to_json(self) -> dict:
        value = getattr(self, KINDS[self.kind])
        return {self.kind: list(value)}


class PerLayer(StrictModel):
    """Per-layer pruning ranges bounded by the layer sensitivity analysis (run before the trials)."""

    stage: int = Field(
        0, ge=0, le=31, description="Index of the prune stage whose `layers` map gets one entry per layer."
    )
    low: float = Field(0.3, ge=0, lt=1, description="Lowest sparsity searched for any layer.")
    max_drop: float = Field(
        0.02,
        ge=0,
        le=1,
        description="A layer's range ends at the first level whose one-shot pruning (no fine-tuning) lost more "
        "than this, so fine-tuning has room to recover.",
    )
    bisect: int = Field(
        0,
        ge=0,
        le=1000,
        description="Trials that first bisect one compression level for the whole model (the one-shot drop each "
        "layer may lose, read on its sensitivity curve) until the metric gate binds; the sampler then searches each "
        "layer around it. With bisect, each layer's range runs from low to the last level and max_drop is not used.",
    )
    levels: list[float] = Field(
        [0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
        min_length=1,
        max_length=32,
        description="Sparsity levels the sensitivity analysis tries per layer.",
    )

    @field_validator("levels")
    @classmethod
    def _levels(cls, value):
        if any(not 0 < v < 1 for v in value):
            raise ValueError("levels must be in (0, 1)")
        return sorted(set(value))


class EarlyStopping(StrictModel):
    """Stop the trials whose training trails the others' at the same epoch (Ray Tune's ASHA)."""

    scheduler: Literal["asha"] = Field("asha", description="asha: asynchronous successive halving (Ray Tune).")
    grace_epochs: int = Field(
        1, ge=1, le=1000, description="Training epochs (counted over the recipe's stages) every trial runs first."
    )
    reduction_factor: float = Field(
        3.0, gt=1, le=16, description="At each rung (grace_epochs × factor^k) a trial goes on only in the top 1/factor."
    )


class Search(StrictModel):
    """What `compressctl search` varies, what it optimises, and how long it may take."""

    objective: Literal["gzip_bytes", "size_bytes", "latency_p50", "pareto"] = Field(
        "gzip_bytes",
        description="Minimised over trials that pass every gate (gzip_bytes, size_bytes, latency_p50), or pareto: "
        "a two-objective search over `pareto_size` and the metric.",
    )
    pareto_size: Literal["gzip_bytes", "size_bytes"] = Field(
        "gzip_bytes", description="The size axis of the Pareto front (and of objective: pareto)."
    )
    target: str | None = Field(None, description="Target whose artifact is scored (default: the first target).")
    space: dict[str, Dimension] = Field(
        default_factory=dict,
        max_length=256,
        description="`--set` path → one of {uniform: [low, high]}, {loguniform: [low, high]}, {sparsity: [low, high]} "
        "(density drawn on a log scale), {int: [low, high]}, {choice: [...]}; e.g. stages.0.target_sparsity: "
        "{sparsity: [0.3, 0.97]}.",
    )
    per_layer: PerLayer | None = Field(
        None,
        description="{stage: 0, low: 0.3, max_drop: 0.02, levels: [0.5, …, 0.98]}: one sparsity range per prunable "
        "layer of that prune stage, from low to the first level at which pruning the layer alone (one shot) lost "
        "more than max_drop (layer sensitivity, run before the trials); bisect: N first bisects one level for the "
        "whole model on those curves until the metric gate binds.",
    )
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="Optuna sampler: tpe (TPE), random, or grid (every dimension a `choice`)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the sampler.")
    trials: int = Field(16, ge=1, le=100_000, description="Trials to run (--trials overrides).")
    time_budget: float | None = Field(
        None, gt=0, description="Seconds after which no new trial starts (--time-budget)."
    )
    cpus_per_trial: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="CPUs (and TensorFlow threads) per trial (default: 2, or CPUs / --max-concurrent).",
    )

    early_stopping: EarlyStopping | None = Field(
        None,
        description="{scheduler: asha, grace_epochs: N, reduction_factor: 3}: stop trials whose training metric "
        "trails the others' at the same epoch; a stopped trial is recorded `stopped`, with no artifact.",
    )

    @model_validator(mode="after")
    def _grid_needs_choices(self):
        if self.sampler == "grid":
            ranged = [k for k, d in self.space.items() if d.kind != "choice"]
            if ranged or self.per_layer is not None:
                shown = ", ".join(ranged) or "per_layer"
                raise ValueError(f"sampler grid needs every dimension as a `choice`; not: {shown}")
        if not self.space and self.per_layer is None:
            raise ValueError("the search needs a `space` (or `per_layer`) to vary")
        return self
