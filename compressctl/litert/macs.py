"""Multiply-accumulates (MACs) per inference, from shapes: per op of a .tflite file (per Keras layer: model/macs.py).

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


def product(values) -> int:
    """The product of a shape's dimensions as a Python int (1 for an empty shape)."""
    return int(np.prod(values, dtype=np.int64)) if len(values) else 1


def op_macs(op: str, inputs: list[tuple], outputs: list[tuple]) -> int:
    """MACs of one TFLite op from its tensors' shapes (0 for ops that are not counted)."""
    if not outputs or not inputs:
        return 0
    out = outputs[0]
    if op == "CONV_2D" and len(inputs) >= 2:
        # filter (out, kh, kw, in / groups)
        return product(out) * product(inputs[1][1:])
    if op == "CONV_3D" and len(inputs) >= 2:
        # filter (kd, kh, kw, in, out)
        return product(out) * product(inputs[1][:-1])
    if op == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:
        # filter (1, kh, kw, out)
        return product(out) * product(inputs[1][1:-1])
    if op == "FULLY_CONNECTED" and len(inputs) >= 2:
        # weights (units, in); the output holds rows × units values
        return product(out) * inputs[1][-1]
    if op == "BATCH_MATMUL" and len(inputs) >= 2:
        # (…, M, K) × (…, K, N): each output value sums K products
        return product(out) * inputs[0][-1]
    if op == "TRANSPOSE_CONV" and len(inputs) >= 3:
        # inputs: output shape, filter (out, kh, kw, in), input (1, h, w, in)
        return product(inputs[2][:-1]) * product(inputs[1])
    return 0


def tflite_macs(path: str | Path) -> dict:
    """{"total": MACs, "ops": [{"index", "op", "macs"}]} of a .tflite file, from its tensors' shapes.

    The file is read by the interpreter without delegates, so every op appears as written.
    """
    from compressctl.core.internals import litert as litert_internals
    from compressctl.litert.interpreter import load_interpreter

    interpreter = load_interpreter(path, xnnpack=False)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()}
    rows = []
    for op in litert_internals.ops_details(interpreter):
        name = op["op_name"]
        if name not in TFLITE_OPS:
            continue
        ins = [shapes.get(int(i), ()) for i in op["inputs"] if int(i) >= 0]
        outs = [shapes.get(int(i), ()) for i in op["outputs"] if int(i) >= 0]
        rows.append({"index": int(op["index"]), "op": name, "macs": int(op_macs(name, ins, outs))})
    return {"total": int(sum(r["macs"] for r in rows)), "ops": rows}
