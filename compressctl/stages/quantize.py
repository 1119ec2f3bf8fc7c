"""Quantization-aware training, optionally preserving sparsity and clusters (PQAT, CQAT, PCQAT)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from compressctl.errors import StageError, first_line
from compressctl.params import FineTune, LayerSelection
from compressctl.stages.base import (
    Stage,
    StageContext,
    StageResult,
    clone_with,
    measure_sparsity,
    measure_unique,
    nested_model,
    require_keras,
)


class Quantize(Stage):
    """Fine-tune with fake-quantized weights and activations so int8 conversion loses little."""

    type = "quantize"
    order = 3
    once = "QAT runs once, as the last training stage"
    leaves = "the fake-quant wrappers"
    blocks = "QAT wraps layers in fake-quant wrappers that {kind} cannot wrap"
    columns = ("sparsity", "unique_weights")

    class Params(LayerSelection, FineTune):
        type: Literal["quantize"]
        preserve: list[Literal["sparsity", "clusters"]] = Field(
            default_factory=list,
            description="What earlier stages made that QAT must keep: sparsity (PQAT), clusters (CQAT), both (PCQAT).",
        )

    @classmethod
    def supports(cls, layer) -> bool | str:
        if nested_model(layer):
            return "nested model: compress it separately"
        # BatchNormalization has no QAT config of its own: TFMOT folds it into the convolution
        # before it, so it is annotated along with that convolution.
        if type(layer).__name__ == "BatchNormalization" or _registry().supports(layer):
            return True
        return f"no QAT support for {type(layer).__name__}"

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
        qk = mot.quantization.keras
        skipped, refused = [], set()

        # TFMOT only says which layer it cannot quantize when quantize_apply fails; drop that
        # layer's annotation, list it, and try again.
        for _attempt in range(len(model.layers) + 1):
            annotated = []

            def wrap(layer, annotated=annotated):
                if not self.params.selects(layer.name) or layer.name in refused:
                    return layer
                supported = self.supports(layer)
                if supported is not True:
                    if layer.weights:
                        skipped.append({"layer": layer.name, "reason": supported})
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
                message = first_line(exc)
                culprit = next((name for name in annotated if _names_layer(message, name)), None)
                if culprit is None:
                    raise StageError(f"stage quantize: TFMOT could not apply QAT: {message}") from None
                refused.add(culprit)
                del skipped[skipped_before:]
                skipped.append({"layer": culprit, "reason": f"TFMOT refused it: {message}"})
        else:  # pragma: no cover - every layer refused
            raise StageError("stage quantize: TFMOT could not quantize any selected layer")
        ctx.fit(qat, self.params.epochs, self.params.learning_rate, self.params.batch_size, "quantize")
        measured = {"quantized_layers": len(annotated)}
        layers = []
        sparsity = measure_sparsity(qat)
        unique = {row["layer"]: row["unique_weights"] for row in measure_unique(qat)["layers"]}
        for row in sparsity["layers"]:
            row["unique_weights"] = unique.get(row["layer"])
            layers.append(row)
        if "sparsity" in self.params.preserve:
            measured["sparsity"] = sparsity["measured"]["sparsity"]
        return StageResult(model=qat, measured=measured, layers=layers, skipped_layers=skipped)


def _names_layer(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


def _registry():
    from compressctl.tfenv import tfmot

    tfmot()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry.Default8BitQuantizeRegistry()
