"""Quantization-aware training, optionally preserving sparsity and clusters (PQAT, CQAT, PCQAT)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from compressctl.distribute import replica_note
from compressctl.errors import StageError
from compressctl.params import FineTune, LayerSelection
from compressctl.stages.base import StageContext, StageResult, clone_with, require_keras
from compressctl.stages.cluster import measure_unique
from compressctl.stages.prune import measure_sparsity


class Quantize:
    """Fine-tune with fake-quantized weights and activations so int8 conversion loses little."""

    class Params(LayerSelection, FineTune):
        type: Literal["quantize"]
        preserve: list[Literal["sparsity", "clusters"]] = Field(
            default_factory=list,
            description="What earlier stages made that QAT must keep: sparsity (PQAT), clusters (CQAT), both (PCQAT).",
        )

    def __init__(self, params: Params):
        self.params = params

    def scheme(self, mot):
        preserve = set(self.params.preserve)
        combine = mot.experimental.combine
        if "clusters" in preserve:
            return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity="sparsity" in preserve)
        if "sparsity" in preserve:
            return combine.Default8BitPrunePreserveQuantizeScheme()
        return mot.quantization.keras.default_8bit.Default8BitQuantizeScheme()

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "quantize")
        from compressctl.tfenv import tfmot

        mot = tfmot()
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry as registry_module,
        )

        registry = registry_module.Default8BitQuantizeRegistry()
        qk = mot.quantization.keras
        skipped, refused = [], set()

        def annotatable(layer) -> bool:
            # BatchNormalization has no QAT config of its own: TFMOT folds it into the convolution
            # before it, so it must be annotated along with that convolution.
            return registry.supports(layer) or type(layer).__name__ == "BatchNormalization"

        # TFMOT only says which layer it cannot quantize when quantize_apply fails; drop that
        # layer's annotation, list it, and try again.
        for _attempt in range(len(model.layers) + 1):
            annotated = []

            def wrap(layer, annotated=annotated):
                if not self.params.selects(layer.name) or layer.name in refused:
                    return layer
                if not annotatable(layer):
                    if layer.weights:
                        skipped.append({"layer": layer.name, "reason": f"no QAT support for {type(layer).__name__}"})
                    return layer
                annotated.append(layer.name)
                return qk.quantize_annotate_layer(layer)

            skipped_before = len(skipped)
            annotated_model = clone_with(model, wrap, "quantize")
            if not annotated:
                return StageResult(model=model, skipped_layers=skipped, notes=["no layer was selected for QAT"])
            try:
                with qk.quantize_scope():
                    qat = qk.quantize_apply(annotated_model, self.scheme(mot))
                break
            except Exception as exc:  # noqa: BLE001
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                culprit = next((name for name in annotated if _names_layer(message, name)), None)
                if culprit is None:
                    raise StageError(f"stage quantize: TFMOT could not apply QAT: {message}") from None
                refused.add(culprit)
                del skipped[skipped_before:]
                skipped.append({"layer": culprit, "reason": f"TFMOT refused it: {message}"})
        else:  # pragma: no cover - every layer refused
            raise StageError("stage quantize: TFMOT could not quantize any selected layer")
        # TFMOT does not support QAT under tf.distribute: it trains on one device whatever the strategy.
        ctx.fit(
            qat, self.params.epochs, self.params.learning_rate, self.params.batch_size, "quantize", distribute=False
        )
        measured = {"quantized_layers": len(annotated)}
        layers = []
        sparsity = measure_sparsity(qat)
        unique = {row["layer"]: row["unique_weights"] for row in measure_unique(qat)["layers"]}
        for row in sparsity["layers"]:
            row["unique_weights"] = unique.get(row["layer"])
            layers.append(row)
        if "sparsity" in self.params.preserve:
            measured["sparsity"] = sparsity["measured"]["sparsity"]
        notes = (
            [replica_note(ctx.strategy, "TFMOT does not support QAT under tf.distribute")]
            if ctx.strategy is not None
            else []
        )
        return StageResult(model=qat, measured=measured, layers=layers, skipped_layers=skipped, notes=notes)


def _names_layer(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None
