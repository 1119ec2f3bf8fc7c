"""Each weight op's own quantization error, read from two .tflite files: the float one and its quantized artifact.

For weight-only and dynamic schemes the error an op adds by itself is its weights' error (its inputs are
the same float values in both files), so the weights are compared directly: the artifact's INT4 / INT8
weight (the input of its DEQUANTIZE, or the op's own weight input; per-channel or blockwise scales) is
dequantized and compared with the float file's weight of the op with the same output name, each value
weighted by the mean square of the input channel it multiplies, measured in the float file on samples.
``snr_db``: 10·log10 of the weighted weight power over the weighted error's, averaged over output channels
like quant_debug's layer errors; ``rmse`` in the weight's float units.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL", "EMBEDDING_LOOKUP")
# The data input each op multiplies its weight (input 1) with, when its last axis meets the weight's last axis.
_DATA = {"FULLY_CONNECTED": 0, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 0, "TRANSPOSE_CONV": 2}


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
    if kind in (schema.TensorType.FLOAT32, schema.TensorType.FLOAT16):
        dtype = np.float32 if kind == schema.TensorType.FLOAT32 else np.float16
        return np.frombuffer(data, dtype)[:count].reshape(shape).astype(np.float32)
    if kind == schema.TensorType.INT8:
        values = np.frombuffer(data, np.int8)[:count]
    elif kind == schema.TensorType.INT4:
        values = _unpack_int4(data, count)
    else:
        return None
    q = tensor.Quantization()
    if q is not None and q.DetailsType() == schema.QuantizationDetails.BlockwiseQuantization:
        return _blockwise(model, subgraph, q, values.reshape(shape))
    if q is None or not q.ScaleLength():
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


def _blockwise(model, subgraph, q, values: np.ndarray) -> np.ndarray | None:
    """Blockwise weights ([out, in], one float16 scale per ``block_size`` inputs, in a tensor of their own)."""
    from ai_edge_litert import schema_py_generated as schema

    details = schema.BlockwiseQuantization()
    details.Init(q.Details().Bytes, q.Details().Pos)
    scales = _values(model, subgraph, details.Scales()) if details.Scales() >= 0 else None
    if scales is None or values.ndim != 2 or details.ZeroPoints() >= 0:
        return None
    block = np.repeat(scales.astype(np.float64), details.BlockSize(), axis=-1)[..., : values.shape[-1]]
    return (values * block).astype(np.float32) if block.shape == values.shape else None


def _weights(path: str | Path) -> dict[str, tuple[str, np.ndarray | None, bool, int]]:
    """Output name → (op, its weight as float values or None, whether it is stored quantized, its data input's
    tensor index in the main graph or -1)."""
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
            index = operator.Inputs(1)
            source = producer.get(index)
            if source is not None and codes[source.OpcodeIndex()] == "DEQUANTIZE":
                index = source.Inputs(0)
            name = (subgraph.Tensors(operator.Outputs(0)).Name() or b"").decode(errors="replace")
            quantized = index >= 0 and subgraph.Tensors(index).Type() != schema.TensorType.FLOAT32
            data = operator.Inputs(_DATA[op]) if s == 0 and op in _DATA else -1
            found[name] = (op, _values(model, subgraph, index) if index >= 0 else None, quantized, data)
    return found


def _input_energy(path: str | Path, inputs: dict[str, int], x: np.ndarray) -> dict[str, np.ndarray]:
    """Output name → the mean square of each channel (last axis) of the op's data input, over the samples ``x``."""
    from compressctl.litert import interpreter as runtime

    module, _ = runtime.interpreter_module()
    interpreter = module.Interpreter(
        model_path=str(path),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    sums: dict[str, np.ndarray] = {}
    for k in range(len(x)):
        interpreter.set_tensor(detail["index"], runtime.quantize_input(x[k : k + 1], detail))
        interpreter.invoke()
        for name, index in inputs.items():
            values = np.asarray(interpreter.get_tensor(index), np.float64)
            energy = np.mean(values.reshape(-1, values.shape[-1]) ** 2, axis=0)
            sums[name] = sums.get(name, 0) + energy
    return {name: total / max(len(x), 1) for name, total in sums.items()}


def weight_errors(float_path: str | Path, quant_path: str | Path, x: np.ndarray | None = None) -> list[dict]:
    """``{name, op, snr_db, rmse}`` per weight op of ``quant_path`` whose weight was quantized, worst first.

    ``name`` is the op's output tensor name (what the LiteRT Quantizer's overrides match). With samples ``x``,
    each weight's error and power are weighted by the mean square of the input it multiplies (the diagonal of
    the op's output error: a large weight on an input that is always zero costs nothing), measured in the float
    file; without, the weights alone. Ops whose weights cannot be read on both sides are left out.
    """
    reference = _weights(float_path)
    energy = {}
    if x is not None and len(x):
        inputs = {name: row[3] for name, row in reference.items() if row[3] >= 0}
        energy = _input_energy(float_path, inputs, x)
    rows = []
    for name, (op, approximate, quantized, _) in _weights(quant_path).items():
        exact = reference.get(name, (None, None, None, -1))[1]
        if not quantized or approximate is None or exact is None or exact.shape != approximate.shape:
            continue
        f, q = exact.astype(np.float64), approximate.astype(np.float64)
        weight = np.ones_like(f)
        e = energy.get(name)
        if e is not None and f.shape[-1] % e.size == 0:  # a depthwise kernel: each input feeds `multiplier` columns
            weight = np.broadcast_to(np.repeat(e, f.shape[-1] // e.size), f.shape)
        # Output channels: the first axis of FULLY_CONNECTED / CONV_2D / TRANSPOSE_CONV weights, the last of a
        # depthwise kernel.
        axis = f.ndim - 1 if op == "DEPTHWISE_CONV_2D" else 0

        signal = np.sum(np.moveaxis(f**2 * weight, axis, 0).reshape(f.shape[axis], -1), axis=1)
        error = np.sum(np.moveaxis((f - q) ** 2 * weight, axis, 0).reshape(f.shape[axis], -1), axis=1)
        live = signal > 0
        relative = float(np.mean(error[live] / signal[live])) if live.any() else 0.0
        snr = 200.0 if relative <= 0 else round(10 * math.log10(1 / relative), 3)
        rows.append({"name": name, "op": op, "snr_db": snr, "rmse": round(math.sqrt(float(np.mean((f - q) ** 2))), 6)})
    return sorted(rows, key=lambda r: (r["snr_db"], -r["rmse"]))
