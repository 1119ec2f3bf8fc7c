"""Quantization-aware training, optionally preserving sparsity and clusters (PQAT, CQAT, PCQAT)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from compressctl.core.errors import StageError, first_line
from compressctl.core.internals import tfmot as tfmot_internals
from compressctl.model.distribute import replica_note
from compressctl.model.params import FineTune, LayerSelection
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    clone_with,
    kernel_weights,
    measure_sparsity,
    measure_unique,
    model_layers,
    nested_model,
    require_keras,
)
from compressctl.stages.qat_configs import output_only, own_config, rewrite
from compressctl.stages.qat_hold import forget, held, release
from compressctl.stages.qat_ranges import calibrate

# Training samples the activation ranges are measured on before QAT trains (stages/qat_ranges.py).
RANGE_SAMPLES = 256


class Quantize(Stage):
    """Fine-tune with fake-quantized weights and activations so int8 conversion loses little."""

    type = "quantize"
    order = 3
    once = "QAT runs once, as the last training stage"
    leaves = "the fake-quant wrappers"
    blocks = "QAT wraps layers in fake-quant wrappers that {kind} cannot wrap"
    figures = (
        Figure("sparsity", "float", "sparsity {pct:.1f} %"),
        Figure("unique_weights", "int", "≤ {value} unique weights per layer"),
        Figure("quantized_layers", "int", "{value} layers quantization-aware"),
    )
    layer_figures = (
        Figure("sparsity", "float", "{pct:.2f} %"),
        Figure("unique_weights", "int", heading="unique weights"),
    )

    class Params(LayerSelection, FineTune):
        type: Literal["quantize"]
        preserve: list[Literal["sparsity", "clusters"]] = Field(
            default_factory=list,
            description="What earlier stages made that QAT must keep: sparsity (PQAT), clusters (CQAT), both (PCQAT).",
        )

    @classmethod
    def supports(cls, layer) -> bool | str:
        """True when TFMOT's default 8-bit QAT can annotate ``layer``, else why not.

        ``inspect``, ``init`` and ``apply`` all ask this, so a layer refused here is left
        unannotated (it trains and converts as float, and the int8 conversion still quantizes it
        where the converter can) instead of failing QAT.
        """
        kind = type(layer).__name__
        if output_only(layer):
            return True
        if nested_model(layer):
            return "nested model: compress it separately"
        if kind == "BatchNormalization":
            # No QAT config of its own: TFMOT folds it into the convolution before it.
            return True
        if _is_preprocessing(layer):
            return f"no QAT support for {kind}: a preprocessing layer, which TFMOT has no quantize config for"
        from compressctl.core.env import keras

        if isinstance(layer, keras().layers.RNN):
            return f"no QAT support for {kind}: TFMOT has no quantize config for recurrent layers"
        if not _is_builtin(layer):
            return f"no QAT support for {kind}: a custom layer, which TFMOT has no quantize config for"
        if _registry().supports(layer):
            return True
        return f"no QAT support for {kind}"

    def scheme(self, mot):
        preserve = set(self.params.preserve)
        combine = mot.experimental.combine
        if "clusters" in preserve:
            scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity="sparsity" in preserve)
        elif "sparsity" in preserve:
            scheme = combine.Default8BitPrunePreserveQuantizeScheme()
        else:
            scheme = mot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
        return _guarded(scheme, mot)

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "quantize")
        from compressctl.core.env import tfmot

        mot = tfmot()
        qk = mot.quantization.keras
        skipped, refused = [], set()

        # TFMOT only says which layer it cannot quantize when quantize_apply fails; drop that
        # layer's annotation, list it, and try again.
        for _attempt in range(len(model.layers) + 1):
            annotated = []

            def wrap(layer, annotated=annotated):
                if not self.params.selects(layer.name) or layer.name in refused:
                    return _unannotated(layer)
                supported = self.supports(layer)
                if supported is not True:
                    if layer.weights:
                        skipped.append({"layer": layer.name, "reason": supported})
                    return _unannotated(layer)
                annotated.append(layer.name)
                if output_only(layer):  # the registry below gives the rest their configs
                    return qk.quantize_annotate_layer(rewrite(layer), own_config(layer, _registry()))
                return qk.quantize_annotate_layer(layer)

            skipped_before = len(skipped)
            annotated_model = clone_with(model, wrap, "quantize")
            if not annotated:
                return StageResult(model=model, skipped_layers=skipped, notes=["no layer was selected for QAT"])
            try:
                with qk.quantize_scope():
                    qat = release(qk.quantize_apply(annotated_model, self.scheme(mot)))
                break
            except Exception as exc:  # noqa: BLE001
                forget()
                message = first_line(exc)
                culprit = next((name for name in annotated if _names_layer(message, name)), None)
                if culprit is None:
                    raise StageError(f"stage quantize: TFMOT could not apply QAT: {message}") from None
                refused.add(culprit)
                del skipped[skipped_before:]
                skipped.append({"layer": culprit, "reason": f"TFMOT refused it: {message}"})
        else:  # pragma: no cover - every layer refused
            raise StageError("stage quantize: TFMOT could not quantize any selected layer")
        _refresh_preprocessing(qat)
        samples = ctx.data.calibration(RANGE_SAMPLES, ctx.seed)
        calibrated = calibrate(model, qat, samples)
        holder = _zero_holder(qat) if "sparsity" in self.params.preserve else None
        # TFMOT does not support QAT under tf.distribute: it trains on one device whatever the strategy.
        ctx.fit(
            qat,
            self.params.epochs,
            self.params.learning_rate,
            self.params.batch_size,
            "quantize",
            callbacks=[holder] if holder else (),
            distribute=False,
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
        notes = [f"activation ranges start from {calibrated} measured on {len(samples)} training samples"]
        if ctx.strategy is not None:
            notes.append(replica_note(ctx.strategy, "TFMOT does not support QAT under tf.distribute"))
        return StageResult(model=qat, measured=measured, layers=layers, skipped_layers=skipped, notes=notes)


# A kernel with at least this share of exact zeros was pruned: its zeros are held through QAT.
PRUNED_ZEROS = 0.01


def _zero_holder(model):
    """A callback that puts every pruned kernel's zeros back after each training batch.

    TFMOT's sparsity-preserving schemes hold the zeros of Conv2D and Dense kernels only; a
    depthwise kernel gets plain QAT (their registry says so), and so does every layer TFMOT does
    not annotate, and training moves their zeros off zero. The masks are taken before training.
    """
    from compressctl.core.env import keras, tf

    held = []
    for layer in model_layers(model):
        for weight in kernel_weights(layer):
            zeros = weight.numpy() == 0
            if zeros.size and zeros.mean() >= PRUNED_ZEROS:
                held.append((weight, tf().constant((~zeros).astype(weight.numpy().dtype))))
    if not held:
        return None

    class HoldZeros(keras().callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for weight, mask in held:
                weight.assign(weight * mask)

    return HoldZeros()


def _names_layer(message: str, name: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


_REGISTRY = []


def _registry():
    """TFMOT's default 8-bit registry (built once; TensorFlow is imported only when asked)."""
    if not _REGISTRY:
        _REGISTRY.append(tfmot_internals.default_8bit_registry())
    return _REGISTRY[0]


def _is_preprocessing(layer) -> bool:
    module = type(layer).__module__
    return ".preprocessing." in module or any(
        base.__name__ in ("PreprocessingLayer", "TextVectorization") for base in type(layer).__mro__
    )


def _unannotated(layer):
    """``layer`` as QAT leaves it: TFMOT rebuilds every layer from its config, which a custom one may not survive."""
    return layer if _is_builtin(layer) else held(layer)


def _is_builtin(layer) -> bool:
    """A Keras or TFMOT layer class (not a custom one, nor one revived from a SavedModel without its code)."""
    kind = type(layer)
    if any(base.__name__ in ("RevivedLayer", "RevivedNetwork") for base in kind.__mro__):
        return False
    return kind.__module__.startswith(("keras.", "tf_keras.", "tensorflow.", "tensorflow_model_optimization."))


def _refresh_preprocessing(model) -> None:
    """Recompute adapted preprocessing state in the QAT model.

    quantize_apply clones the model and copies weights with set_weights; an adapted
    Normalization layer derives the mean and variance it applies in ``finalize_state`` and keeps
    the values from before the copy (zero mean, unit variance) until that is called again.
    """
    for layer in model.layers:
        if _is_preprocessing(layer) and hasattr(layer, "finalize_state") and layer.built:
            layer.finalize_state()


def _guarded(scheme, mot):
    """``scheme`` with a registry that also refuses what ``Quantize.supports`` refuses.

    The sparsity- and cluster-preserving registries call every layer without trainable weights
    supported, Normalization included, and then ask the default registry for its config, which
    raises; a layer that feeds a quantized one is asked even when it was not annotated.

    Each layer's config comes from a registry of its own: the cluster-preserving registry hands
    every Conv2D one shared weight quantizer, which turns its ``preserve_sparsity`` off for good
    when it meets a layer without zeros, so every convolution after that one lost its zeros in
    PCQAT (EfficientNet: 2 % of the 81 % left after QAT).
    """
    base_registry = scheme.get_quantize_registry()

    class GuardedRegistry(mot.quantization.keras.QuantizeRegistry):
        def supports(self, layer):
            return Quantize.supports(layer) is True and (output_only(layer) or base_registry.supports(layer))

        def get_quantize_config(self, layer):
            own = scheme.get_quantize_registry()  # fresh quantizers: no state shared between layers
            return own_config(layer, own) or own.get_quantize_config(layer)

    class GuardedScheme(mot.quantization.keras.QuantizeScheme):
        def get_layout_transformer(self):
            return scheme.get_layout_transformer()

        def get_quantize_registry(self):
            return GuardedRegistry()

    return GuardedScheme()
