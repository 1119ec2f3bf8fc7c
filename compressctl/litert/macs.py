"""Multiply-accumulates (MACs) per inference, from shapes: per layer of a Keras model, per op of a .tflite file.

One MAC is one multiplication added into an accumulator, the unit convolution and matrix
products are counted in. Only the layers and ops that do them are counted (convolutions,
depthwise convolutions, fully connected layers, matrix products); element-wise ops, pooling and
activations cost comparatively little and are left out, in the Keras and the TFLite count alike,
so the two agree on the same model. Counts are for one sample (batch 1, the artifacts' batch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# TFLite builtin ops counted, by the name the interpreter reports.
TFLITE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV", "CONV_3D")


def _shape(value) -> tuple:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return tuple(1 if d is None else int(d) for d in value)


def _prod(values) -> int:
    return int(np.prod(values, dtype=np.int64)) if len(values) else 1


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
        return _prod(out[:-1]) * kernel[0] * kernel[1]
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        # kernel (*window, in / groups, filters): each output value sums window × in/groups products.
        return _prod(out) * _prod(kernel[:-1])
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        # kernel (*window, in, multiplier): each output value sums one window.
        return _prod(out) * _prod(kernel[:-2])
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        depthwise, pointwise = weights[0].shape, weights[1].shape
        spatial = _prod(out[:-1])
        return spatial * _prod(depthwise) + spatial * pointwise[-2] * pointwise[-1]
    if kind in ("Conv2DTranspose", "Conv1DTranspose"):
        # kernel (*window, filters, in): every input value is spread over a window of outputs.
        spatial_in = _prod(_shape(layer.input_shape)[1:-1])
        return spatial_in * _prod(kernel)
    return 0


def keras_macs(model) -> dict:
    """{"total": MACs, "layers": {name: MACs}} for a Keras model (layers that do none are left out)."""
    per_layer = {}
    for layer in model.layers:
        count = layer_macs(layer)
        if count:
            per_layer[layer.name] = int(count)
    return {"total": int(sum(per_layer.values())), "layers": per_layer}


def op_macs(op: str, inputs: list[tuple], outputs: list[tuple]) -> int:
    """MACs of one TFLite op from its tensors' shapes (0 for ops that are not counted)."""
    if not outputs or not inputs:
        return 0
    out = outputs[0]
    if op == "CONV_2D" and len(inputs) >= 2:
        # filter (out, kh, kw, in / groups)
        return _prod(out) * _prod(inputs[1][1:])
    if op == "CONV_3D" and len(inputs) >= 2:
        # filter (kd, kh, kw, in, out)
        return _prod(out) * _prod(inputs[1][:-1])
    if op == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:
        # filter (1, kh, kw, out)
        return _prod(out) * _prod(inputs[1][1:-1])
    if op == "FULLY_CONNECTED" and len(inputs) >= 2:
        # weights (units, in); the output holds rows × units values
        return _prod(out) * inputs[1][-1]
    if op == "BATCH_MATMUL" and len(inputs) >= 2:
        # (…, M, K) × (…, K, N): each output value sums K products
        return _prod(out) * inputs[0][-1]
    if op == "TRANSPOSE_CONV" and len(inputs) >= 3:
        # inputs: output shape, filter (out, kh, kw, in), input (1, h, w, in)
        return _prod(inputs[2][:-1]) * _prod(inputs[1])
    return 0


def tflite_macs(path: str | Path) -> dict:
    """{"total": MACs, "ops": [{"index", "op", "macs"}]} of a .tflite file, from its tensors' shapes.

    The file is read by the interpreter without delegates, so every op appears as written.
    """
    from compressctl.litert.interpreter import load_interpreter

    interpreter = load_interpreter(path, xnnpack=False)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()}
    rows = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the interpreter's only op listing
        name = op["op_name"]
        if name not in TFLITE_OPS:
            continue
        ins = [shapes.get(int(i), ()) for i in op["inputs"] if int(i) >= 0]
        outs = [shapes.get(int(i), ()) for i in op["outputs"] if int(i) >= 0]
        rows.append({"index": int(op["index"]), "op": name, "macs": int(op_macs(name, ins, outs))})
    return {"total": int(sum(r["macs"] for r in rows)), "ops": rows}
