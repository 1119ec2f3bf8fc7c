"""Multiply-accumulates (MACs) per inference of a Keras model, per layer, from its weights and output shapes.

Counted as litert/macs.py counts a .tflite file's ops (convolutions, depthwise convolutions, fully
connected layers, matrix products; the rest left out), so the two agree on the same model. Counts
are for one sample (batch 1, the artifacts' batch).
"""

from __future__ import annotations

from compressctl.litert.macs import product


def _shape(value) -> tuple:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return tuple(1 if d is None else int(d) for d in value)


def layer_macs(layer) -> int:
    """MACs of one Keras layer for one sample, from its weights and output shape (0 for uncounted layers)."""
    kind = type(layer).__name__
    if hasattr(layer, "layers"):
        return sum(layer_macs(inner) for inner in layer.layers)
    try:
        out = _shape(layer.output_shape)[1:]
    except (AttributeError, RuntimeError, ValueError):
        return 0
    weights = layer.get_weights()
    if not weights:
        return 0
    kernel = weights[0].shape
    if kind == "Dense":
        # kernel (in, units), applied at every position of the leading axes.
        return product(out[:-1]) * kernel[0] * kernel[1]
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        # kernel (*window, in / groups, filters): each output value sums window × in/groups products.
        return product(out) * product(kernel[:-1])
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        # kernel (*window, in, multiplier): each output value sums one window.
        return product(out) * product(kernel[:-2])
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        depthwise, pointwise = weights[0].shape, weights[1].shape
        spatial = product(out[:-1])
        return spatial * product(depthwise) + spatial * pointwise[-2] * pointwise[-1]
    if kind in ("Conv2DTranspose", "Conv1DTranspose"):
        # kernel (*window, filters, in): every input value is spread over a window of outputs.
        spatial_in = product(_shape(layer.input_shape)[1:-1])
        return spatial_in * product(kernel)
    return 0


def keras_macs(model) -> dict:
    """{"total": MACs, "layers": {name: MACs}} for a Keras model (layers that do none are left out)."""
    per_layer = {}
    for layer in model.layers:
        count = layer_macs(layer)
        if count:
            per_layer[layer.name] = int(count)
    return {"total": int(sum(per_layer.values())), "layers": per_layer}
