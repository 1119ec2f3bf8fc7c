"""Magnitude pruning (Zhu & Gupta's gradual schedule, as in Han et al.'s Deep Compression) via TFMOT."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from compressctl.params import FineTune, LayerSelection, _check_patterns, first_match
from compressctl.stages.base import (
    StageContext,
    StageResult,
    clone_with,
    kernel_arrays,
    model_layers,
    require_keras,
    steps_per_epoch,
)


class Prune:
    """Zero the smallest-magnitude weights of each selected layer, fine-tuning as sparsity rises."""

    class Params(LayerSelection, FineTune):
        type: Literal["prune"]
        target_sparsity: float = Field(
            0.5, ge=0, lt=1, description="Fraction of each layer's weights set to zero (layers not in `layers`)."
        )
        layers: dict[str, float] = Field(
            default_factory=dict,
            description="Per-layer sparsity: layer-name regex → sparsity; the first match in recipe order wins.",
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
            _check_patterns(value)
            for pattern, sparsity in value.items():
                if not 0 <= sparsity < 1:
                    raise ValueError(f"sparsity for {pattern!r} must be in [0, 1), got {sparsity}")
            return value

    def __init__(self, params: Params):
        self.params = params

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
        from compressctl.tfenv import tfmot

        mot = tfmot()
        from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

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
            if not prune_registry.PruneRegistry.supports(layer) and not isinstance(
                layer, mot.sparsity.keras.PrunableLayer
            ):
                skipped.append({"layer": layer.name, "reason": f"TFMOT cannot prune {type(layer).__name__}"})
                return layer
            kwargs = {"pruning_schedule": schedule(target)}
            if p.pattern == "2:4":
                kwargs["sparsity_m_by_n"] = (2, 4)
            try:
                wrapped = mot.sparsity.keras.prune_low_magnitude(layer, **kwargs)
            except (ValueError, TypeError) as exc:
                skipped.append({"layer": layer.name, "reason": str(exc).splitlines()[0]})
                return layer
            targets[layer.name] = target
            return wrapped

        for layer in model_layers(model):
            if hasattr(layer, "layers") and self.params.selects(layer.name):
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


def measure_sparsity(model, targets: dict[str, float] | None = None) -> dict:
    """Per-layer and overall zero fraction of kernel weights, measured on the weights themselves."""
    rows, zeros, total = [], 0, 0
    for layer in model_layers(model):
        arrays = kernel_arrays(layer)
        if not arrays:
            continue
        n = sum(a.size for a in arrays)
        z = sum(int(np.count_nonzero(a == 0)) for a in arrays)
        zeros, total = zeros + z, total + n
        row = {"layer": layer.name, "params": n, "sparsity": round(z / n, 6)}
        if targets is not None:
            row["target"] = targets.get(layer.name)
        rows.append(row)
    return {"measured": {"sparsity": round(zeros / total, 6) if total else 0.0}, "layers": rows}
