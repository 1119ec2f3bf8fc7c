"""Magnitude pruning (Zhu & Gupta's gradual schedule, as in Han et al.'s Deep Compression) via TFMOT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compressctl.core.errors import first_line
from compressctl.core.internals import tfmot as tfmot_internals
from compressctl.model.params import FineTune, LayerSelection, check_per_layer, first_match
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    clone_with,
    kernel_arrays,
    measure_sparsity,
    model_layers,
    nested_model,
    require_keras,
    steps_per_epoch,
    unweighted,
)

__all__ = ["Prune", "measure_sparsity"]


class Prune(Stage):
    """Zero the smallest-magnitude weights of each selected layer, fine-tuning as sparsity rises."""

    type = "prune"
    order = 1
    leaves = "the pruned zeros"
    figures = (Figure("sparsity", "float", "sparsity {pct:.1f} %"),)
    layer_figures = (
        Figure("sparsity", "float", "{pct:.2f} %"),
        Figure("target", "float", "{pct:.2f} %", "target sparsity"),
    )

    class Params(LayerSelection, FineTune):
        type: Literal["prune"]
        target_sparsity: float = Field(
            0.5, ge=0, lt=1, description="Fraction of each layer's weights set to zero (layers not in `layers`)."
        )
        layers: dict[str, float] = Field(
            default_factory=dict,
            description="Per-layer sparsity: layer selector (name regex, type:, role:, feeds:) → sparsity; "
            "the first match in recipe order wins.",
        )
        schedule: Literal["polynomial", "constant"] = Field(
            "polynomial", description="polynomial: rise from 0 over 70 % of the steps; constant: from the start."
        )
        pattern: Literal["unstructured", "2:4"] = Field(
            "unstructured", description="2:4 keeps two of every four consecutive weights (structured sparsity)."
        )

        @field_validator("layers")
        @classmethod
        def _layer_targets(cls, value):
            return check_per_layer(value, lambda s: 0 <= s < 1, "sparsity", "[0, 1)")

    @classmethod
    def supports(cls, layer) -> bool | str:
        reason = unweighted(layer, "prune")
        if reason:
            return reason
        from compressctl.core.env import tfmot

        mot = tfmot()
        if tfmot_internals.can_prune(layer) or isinstance(layer, mot.sparsity.keras.PrunableLayer):
            return True
        return f"TFMOT cannot prune {type(layer).__name__}"

    def target_for(self, layer_name: str) -> float | None:
        """The sparsity this layer is pruned to, or None when the stage leaves it alone."""
        if not self.params.selects(layer_name):
            return None
        if self.params.pattern == "2:4":
            return 0.5
        target = first_match(self.params.layers, layer_name)
        target = self.params.target_sparsity if target is None else target
        return target if target > 0 else None

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "prune")
        from compressctl.core.env import tfmot

        mot = tfmot()
        p = self.params
        total_steps = p.epochs * steps_per_epoch(ctx, p.batch_size)
        end_step = max(1, int(total_steps * 0.7))
        # TFMOT's default prunes every 100 steps, which on a short fine-tune never prunes at all.
        frequency = max(1, min(100, end_step // 10))
        skipped, targets = [], {}

        def schedule(sparsity: float):
            if p.schedule == "constant" or p.pattern == "2:4":
                return mot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=frequency)
            return mot.sparsity.keras.PolynomialDecay(0.0, sparsity, 0, end_step, frequency=frequency)

        def wrap(layer):
            target = self.target_for(layer.name)
            if target is None or not kernel_arrays(layer):
                return layer
            supported = self.supports(layer)
            if supported is not True:
                skipped.append({"layer": layer.name, "reason": supported})
                return layer
            kwargs = {"pruning_schedule": schedule(target)}
            if p.pattern == "2:4":
                kwargs["sparsity_m_by_n"] = (2, 4)
            try:
                wrapped = mot.sparsity.keras.prune_low_magnitude(layer, **kwargs)
            except (ValueError, TypeError) as exc:
                skipped.append({"layer": layer.name, "reason": first_line(exc)})
                return layer
            targets[layer.name] = target
            return wrapped

        for layer in model_layers(model):
            if nested_model(layer) and self.params.selects(layer.name):
                skipped.append({"layer": layer.name, "reason": "nested model: its inner layers are not pruned"})
        wrapped = clone_with(model, wrap, "prune")
        if not targets:
            return StageResult(model=model, skipped_layers=skipped, notes=["no layer was selected for pruning"])
        ctx.fit(
            wrapped,
            p.epochs,
            p.learning_rate,
            p.batch_size,
            "prune",
            callbacks=[mot.sparsity.keras.UpdatePruningStep()],
        )
        stripped = mot.sparsity.keras.strip_pruning(wrapped)
        return StageResult(model=stripped, skipped_layers=skipped, **measure_sparsity(stripped, targets))
