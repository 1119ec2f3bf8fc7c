"""``demo_round``: rounds every kernel weight to ``decimals`` decimal places; reports how much it moved them."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from compressctl.core.strict import StrictModel
from compressctl.stages.base import Figure, Stage, StageResult, kernel_weights, model_layers


class RoundWeights(Stage):
    """Round kernels to a few decimals (a stand-in for a new technique)."""

    type = "demo_round"
    order = 2  # after pruning, before QAT, like clustering
    figures = (
        Figure("rounded_layers", "int", "{value} layers rounded"),
        Figure("max_change", "float", "largest change {value:.3g}"),
        Figure("decimals", "int", "to {value} decimals"),
    )
    layer_figures = (Figure("max_change", "float", "{value:.3g}", heading="largest change"),)

    class Params(StrictModel):
        type: Literal["demo_round"]
        decimals: int = Field(2, ge=0, le=8, description="Decimal places every kernel weight is rounded to.")

    @classmethod
    def supports(cls, layer) -> bool | str:
        return True if kernel_weights(layer) else "no kernel to round"

    def apply(self, model, ctx) -> StageResult:
        rows, worst = [], 0.0
        for layer in model_layers(model):
            weights = kernel_weights(layer)
            if not weights:
                continue
            change = 0.0
            for w in weights:
                before = w.numpy()
                after = np.round(before, self.params.decimals)
                w.assign(after)
                change = max(change, float(np.abs(after - before).max()))
            worst = max(worst, change)
            params = sum(int(w.numpy().size) for w in weights)
            rows.append({"layer": layer.name, "params": params, "max_change": change})
        measured = {"rounded_layers": len(rows), "max_change": worst, "decimals": self.params.decimals}
        return StageResult(model=model, measured=measured, layers=rows)
