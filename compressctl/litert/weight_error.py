"""Each weight op's own quantization error, read from two .tflite files: the float one and its quantized artifact.

For weight-only and dynamic schemes the error an op adds by itself is its weights' error (its inputs are
the same float values in both files), so the weights are compared directly: the artifact's INT4 / INT8
weight (the input of its DEQUANTIZE, or the op's own weight input) is dequantized with its scales and
zero points and compared with the float file's weight of the op with the same output name. ``snr_db``:
10·log10 of the weight's power over the error's, averaged over output channels like quant_debug's
layer errors; ``rmse`` in the weight's float units. Pure: only the flatbuffer schema ai-edge-litert ships.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL", "EMBEDDING_LOOKUP")
_INPUT = {"TRANSPOSE_CONV": 1, "EMBEDDING_LOOKUP": 1}  # the weight input (index 1 for every op listed)


def _unpack_int4(data: bytes, count: int) -> np.ndarray:
    """TFLite's packed INT4: two values a byte, the first in the low nibble, two's complement."""
    raw = np.frombuffer(data, np.uint8)
    nibbles = np.empty(raw.size * 2, np.int8)
    nibbles[0::2] = (raw & 0x0F).astype(np.int8)
    nibbles[1::2] = (raw >> 4).astype(np.int8)
    nibbles[nibbles > 7] -= 16
    return nibbles[:count]


def _values(model, subgraph, index: int) -> np.ndarray | None:
    """The float values of constant tensor ``index`` (dequantized when it is INT8 / INT4), else None."""
    from ai_edge_litert import schema_py_generated as schema

    tensor = subgraph.Tensors(index)
    buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() > 0 else None
    if buffer is None or not buffer.DataLength():
        return None
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    count = int(np.prod(shape)) if shape else 1
    data = buffer.DataAsNumpy().tobytes()
    kind = tensor.Type()
    if kind == schema.TensorType.FLOAT32:
        return np.frombuffer(data, np.float32)[:count].reshape(shape)
    if kind == schema.TensorType.INT8:
        values = np.frombuffer(data, np.int8)[:count]
    elif kind == schema.TensorType.INT4:
        values = _unpack_int4(data, count)
    else:
        return None
    q = tensor.Quantization()
    if q is None or not q.ScaleLength():  # blockwise scales live elsewhere: not read here
        return None
    scale = q.ScaleAsNumpy().astype(np.float64)
    zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros_like(scale)
    values = values.reshape(shape).astype(np.float64)
    if scale.size > 1:
        axis = q.QuantizedDimension()
        view = [1] * len(shape)
        view[axis] = scale.size
        scale, zero = scale.reshape(view), zero.reshape(view)
    return ((values - zero) * scale).astype(np.float32)


def _weights(path: str | Path) -> dict[str, tuple[str, np.ndarray | None, bool]]:
    """Output name → (op, the op's weight as float values or None, whether it is stored quantized)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        codes.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), ""))
    found = {}
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        producer = {}
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            for k in range(operator.OutputsLength()):
                producer[operator.Outputs(k)] = operator
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            op = codes[operator.OpcodeIndex()]
            if op not in WEIGHT_OPS or operator.InputsLength() < 2 or not operator.OutputsLength():
                continue
            index = operator.Inputs(_INPUT.get(op, 1))
            source = producer.get(index)
            if source is not None and codes[source.OpcodeIndex()] == "DEQUANTIZE":
                index = source.Inputs(0)
            name = (subgraph.Tensors(operator.Outputs(0)).Name() or b"").decode(errors="replace")
            quantized = index >= 0 and subgraph.Tensors(index).Type() != schema.TensorType.FLOAT32
            found[name] = (op, _values(model, subgraph, index) if index >= 0 else None, quantized)
    return found


def weight_errors(float_path: str | Path, quant_path: str | Path) -> list[dict]:
    """``{name, op, snr_db, rmse}`` per weight op of ``quant_path`` whose weight was quantized, worst first.

    ``name`` is the op's output tensor name (what the LiteRT Quantizer's overrides match). Ops whose
    weights cannot be read on both sides (blockwise scales, a weight left float32) are left out.
    """
    reference = _weights(float_path)
    rows = []
    for name, (op, approximate, quantized) in _weights(quant_path).items():
        exact = reference.get(name, (None, None, None))[1]
        if not quantized or approximate is None or exact is None or exact.shape != approximate.shape:
            continue
        f, q = exact.astype(np.float64), approximate.astype(np.float64)
        # Output channels: the first axis of FULLY_CONNECTED / CONV_2D / TRANSPOSE_CONV weights, the last of a
        # depthwise kernel.
        axis = f.ndim - 1 if op == "DEPTHWISE_CONV_2D" else 0
        f2 = np.moveaxis(f, axis, 0).reshape(f.shape[axis], -1)
        q2 = np.moveaxis(q, axis, 0).reshape(f.shape[axis], -1)
        signal, error = np.sum(f2**2, axis=1), np.sum((f2 - q2) ** 2, axis=1)
        live = signal > 0
        relative = float(np.mean(error[live] / signal[live])) if live.any() else 0.0
        snr = 200.0 if relative <= 0 else round(10 * math.log10(1 / relative), 3)
        rows.append({"name": name, "op": op, "snr_db": snr, "rmse": round(math.sqrt(float(np.mean((f - q) ** 2))), 6)})
    return sorted(rows, key=lambda r: (r["snr_db"], -r["rmse"]))
