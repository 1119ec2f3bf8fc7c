"""The documented Edge TPU op list and model requirements, and the mapping they predict.

Sources (the rules below paraphrase them): https://coral.ai/docs/edgetpu/models-intro/ (its current
table mirrored for the same chip at
https://developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/, the
rows from ResizeNearestNeighbor on from an earlier copy of the Coral table); Transpose from
compiler 16 on (https://github.com/google-coral/edgetpu/issues/193), TransposeConv as listed in the
table (https://github.com/google-coral/edgetpu/issues/684).
"""

from __future__ import annotations

import math

ASSUMED_COMPILER = "edgetpu_compiler 16 (Edge TPU runtime 14+), default options: one Edge TPU subgraph"

# The compiler's own status strings (its .log and `-s` table), so a prediction and a compiler
# result read the same way and can be compared row by row.
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
AFTER_FALLBACK = "More than one subgraph is not supported"


# TFLite builtin op -> the documented known limitation ("" when none is documented). An op whose
# row could not be read from a copy of the table is left out: predicting CPU for an op the Edge
# TPU runs costs a surprise in the good direction, the reverse a wrong deployment decision.
SUPPORTED_OPS: dict[str, str] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "No fused activation function.",
    "CONCATENATION": "No fused activation function. A compile-time constant input is allowed only with exactly "
    "2 inputs and all zeros (a zero-padding op).",
    "CONV_2D": "Same dilation in x and y.",
    "DEPTHWISE_CONV_2D": "Same dilation in x and y.",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "Default weights format only. Output tensor is one-dimensional.",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "Unidirectional LSTM only.",
    "MAXIMUM": "",
    "MAX_POOL_2D": "No fused activation function.",
    "MEAN": "No reduction in the batch dimension. A z-reduction needs a z-dimension that is a multiple of 4.",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "No packing in the batch dimension.",
    "PAD": "No padding in the batch dimension.",
    "PRELU": "Alpha must be 1-dimensional (only the innermost dimension may be > 1).",
    "QUANTIZE": "",
    "REDUCE_MAX": "Cannot operate on the batch dimension.",
    "REDUCE_MIN": "Cannot operate on the batch dimension.",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "Certain reshapes might not be mapped for large tensor sizes.",
    "RESIZE_BILINEAR": "3-dimensional input/output; may stay on the CPU to avoid a loss of precision.",
    "RESIZE_NEAREST_NEIGHBOR": "3-dimensional input/output; may stay on the CPU to avoid a loss of precision.",
    "SLICE": "",
    "SOFTMAX": "1-D input tensor with at most 16,000 elements.",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "No splitting in the batch dimension.",
    "SQUEEZE": "Only leading 1s removed (no relayout): [1,5,10] is fine, [5,1,10] is not.",
    "STRIDED_SLICE": "All strides equal to 1; no ellipsis or new-axis mask.",
    "SUB": "",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}

# Limitations that depend on op options, which the interpreter does not expose: reported as
# unchecked rather than guessed.
UNCHECKED = {
    "AVERAGE_POOL_2D": "fused activation",
    "MAX_POOL_2D": "fused activation",
    "CONCATENATION": "fused activation",
    "CONV_2D": "dilation",
    "DEPTHWISE_CONV_2D": "dilation",
    "FULLY_CONNECTED": "weights format",
    "PACK": "axis",
    "STRIDED_SLICE": "ellipsis and new-axis masks",
    "RESHAPE": "size limit (undocumented)",
    "RESIZE_BILINEAR": "precision rule (undocumented)",
    "RESIZE_NEAREST_NEIGHBOR": "precision rule (undocumented)",
}

# Op versions: edgetpu_compiler 16.0 came out with TFLite 2.5's runtime (pycoral 2.0.0 pairs it with
# tflite_runtime 2.5.0.post1, https://github.com/google-coral/pycoral/releases/tag/v2.0.0), and a
# compiler reads only the op versions its TFLite knew. So an op version that TFLite's op-version
# table (compressctl/litert/op_versions.py) dates after 2.5.0 is predicted to stay on the CPU.
COMPILER_TFLITE = "2.5.0"

SOFTMAX_MAX_ELEMENTS = 16_000
EIGHT_BIT = ("int8", "uint8")


def graph_from_interpreter(interpreter) -> dict:
    """Ops (in execution order) and the tensors they touch, as plain data the rules can read.

    A tensor no op produces and that is not a model input is a constant (weights, bias, axes,
    shapes); small constants carry their values, since several documented limits are about them.
    Tensors no op references (kernel scratch space) are left out.
    """
    import numpy as np

    from compressctl.core.internals import litert as litert_internals

    ops = [
        {
            "index": int(op["index"]),
            "op": op["op_name"],
            "inputs": [int(i) for i in op["inputs"] if i >= 0],
            "outputs": [int(i) for i in op["outputs"] if i >= 0],
        }
        for op in litert_internals.ops_details(interpreter)
    ]
    produced = {i for op in ops for i in op["outputs"]}
    inputs = [int(d["index"]) for d in interpreter.get_input_details()]
    outputs = [int(d["index"]) for d in interpreter.get_output_details()]
    used = produced | {i for op in ops for i in op["inputs"]} | set(inputs) | set(outputs)
    tensors = {}
    for detail in interpreter.get_tensor_details():
        index = int(detail["index"])
        if index not in used:
            continue
        constant = index not in produced and index not in inputs
        tensor = {
            "name": detail["name"],
            "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(d) for d in detail["shape"]],
            "shape_signature": [int(d) for d in detail.get("shape_signature", detail["shape"])],
            "constant": constant,
            "zero_point": int(detail["quantization"][1]),
        }
        if constant:
            try:
                value = interpreter.get_tensor(index)
            except ValueError:  # a variable or an empty buffer: no value to read
                value = None
            if value is not None:
                tensor["all_zero"] = bool(np.all(value.astype(np.int64) == tensor["zero_point"]))
                if value.size <= 64:
                    tensor["value"] = value.reshape(-1).tolist()
        tensors[index] = tensor
    return {"ops": ops, "tensors": tensors, "inputs": inputs, "outputs": outputs}


def check_artifact(graph: dict) -> dict:
    """The whole-model requirements: integer tensors only, static shapes, batch 1.

    ``problems`` make the model unfit for the compiler at all; ``warnings`` (non-8-bit integer
    tensors, such as an int8 LSTM's int16 cell state) only keep the ops that hold them on the CPU.
    """
    tensors = graph["tensors"]
    problems, warnings = [], []
    floats = sorted({t["name"] or f"#{i}" for i, t in tensors.items() if t["dtype"].startswith(("float", "complex"))})
    if floats:
        problems.append(f"{len(floats)} float tensor(s), e.g. {floats[0]!r}: the model is not fully integer")
    for role, indices in (("input", graph["inputs"]), ("output", graph["outputs"])):
        for index in indices:
            t = tensors[index]
            if t["dtype"] not in EIGHT_BIT:
                problems.append(f"{role} {t['name']!r} is {t['dtype']}, not int8 or uint8")
            if not t["shape"] or t["shape"][0] != 1:
                problems.append(f"{role} {t['name']!r} has shape {t['shape']}, not batch 1")
    dynamic = sorted({t["name"] or f"#{i}" for i, t in tensors.items() if -1 in t["shape_signature"]})
    if dynamic:
        problems.append(f"{len(dynamic)} tensor(s) with a dynamic size, e.g. {dynamic[0]!r}")
    wide = sorted(
        f"{t['name'] or f'#{i}'} ({t['dtype']})"
        for i, t in tensors.items()
        if not _allowed_dtype(t) and not t["dtype"].startswith(("float", "complex"))
    )
    if wide:
        warnings.append(f"not 8-bit, kept on the CPU: {', '.join(wide[:5])}" + (" ..." if len(wide) > 5 else ""))
    first_in, first_out = tensors[graph["inputs"][0]], tensors[graph["outputs"][0]]
    return {
        "fully_integer": not floats,
        "static_shapes": not dynamic,
        "batch_1": all(tensors[i]["shape"][:1] == [1] for i in graph["inputs"] + graph["outputs"]),
        "input_dtype": first_in["dtype"],
        "output_dtype": first_out["dtype"],
        "problems": problems,
        "warnings": warnings,
    }


def _allowed_dtype(tensor: dict) -> bool:
    # int32 only as a constant: biases, shapes, axes and paddings are int32 in an int8 model.
    return tensor["dtype"] in EIGHT_BIT or (tensor["dtype"] == "int32" and tensor["constant"])


# --- the prediction ------------------------------------------------------------------------------


def predict_mapping(graph: dict) -> dict:
    """Which ops the Edge TPU compiler will map, from the documented op list and limits.

    The compiler (without ``-a``) maps one Edge TPU subgraph: from the first op it cannot map on,
    that op and every op after it run on the CPU, even ops it supports.
    """
    rows, first = [], None
    for op in graph["ops"]:
        status, reason = op_status(op, graph)
        if status == MAPPED and first is not None:
            status = AFTER_FALLBACK
            reason = f"after {first['op']} (op {first['index']}) everything runs on the CPU"
        row = {"index": op["index"], "op": op["op"], "status": status}
        if reason:
            row["reason"] = reason
        if op["op"] in UNCHECKED and status == MAPPED:
            row["unchecked"] = UNCHECKED[op["op"]]
        rows.append(row)
        if status != MAPPED and first is None:
            first = row
    on_tpu = sum(row["status"] == MAPPED for row in rows)
    return {
        "source": "prediction",
        "assumes": ASSUMED_COMPILER,
        "ops_total": len(rows),
        "ops_on_tpu": on_tpu,
        "ops_on_cpu": len(rows) - on_tpu,
        "first_cpu_op": first,
        "table": operator_table(rows),
        "ops": rows,
    }


def operator_table(rows: list[dict]) -> list[dict]:
    """Rows grouped by (operator, status) in order of first appearance, like the compiler's table."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["op"], row["status"])
        counts[key] = counts.get(key, 0) + 1
    return [{"operator": op, "count": n, "status": status} for (op, status), n in counts.items()]


def add_op_versions(graph: dict, operators: list[dict]) -> dict:
    """Give each op of ``graph`` its version from the flatbuffer (runtime_compat.read_operators of
    the primary subgraph, whose order the interpreter's op indices follow)."""
    for op in graph["ops"]:
        if op["index"] < len(operators) and operators[op["index"]]["op"] == op["op"]:
            op["version"] = operators[op["index"]]["version"]
    return graph


def _version_too_new(op: dict) -> str:
    from compressctl.litert.op_versions import MIN_RUNTIME, version_key

    version = op.get("version")
    needs = MIN_RUNTIME.get((op["op"], version)) if version else None
    if needs and version_key(needs) > version_key(COMPILER_TFLITE):
        return (
            f"{op['op']} version {version} needs TFLite {needs}; edgetpu_compiler 16 reads op versions up to "
            f"TFLite {COMPILER_TFLITE}"
        )
    return ""


def op_status(op: dict, graph: dict) -> tuple[str, str]:
    """The status one op would get on its own (before the one-subgraph rule), and why."""
    name = op["op"]
    if name not in SUPPORTED_OPS:
        return NOT_SUPPORTED, f"{name} is not in the Edge TPU's supported operations"
    too_new = _version_too_new(op)
    if too_new:
        return NOT_SUPPORTED, too_new
    tensors = graph["tensors"]
    for index in op["inputs"] + op["outputs"]:
        t = tensors[index]
        if not _allowed_dtype(t):
            kind = "constant" if t["constant"] else "tensor"
            return UNSUPPORTED_TYPE, f"{kind} {t['name']!r} is {t['dtype']}; the Edge TPU computes in 8 bits"
    for index in op["inputs"] + op["outputs"]:
        t = tensors[index]
        if not t["constant"] and len(t["shape"]) > 3 and any(d > 1 for d in t["shape"][:-3]):
            return LIMITATION, f"tensor {t['name']!r} {t['shape']}: only the 3 innermost dimensions may exceed 1"
    reason = _op_limit(name, [tensors[i] for i in op["inputs"]], [tensors[i] for i in op["outputs"]])
    if reason:
        return LIMITATION, reason
    return MAPPED, ""


def _axes(tensor: dict, rank: int) -> list[int] | None:
    if "value" not in tensor:
        return None
    return [a % rank if rank else a for a in tensor["value"]]


def _strip_leading_ones(shape: list[int]) -> list[int]:
    k = 0
    while k < len(shape) and shape[k] == 1:
        k += 1
    return shape[k:]


def _op_limit(name: str, ins: list[dict], outs: list[dict]) -> str:
    """The documented per-op limits that can be read from shapes and constant values."""
    if name == "SOFTMAX":
        shape = ins[0]["shape"]
        if sum(d > 1 for d in shape) > 1:
            return f"Softmax takes a 1-D input only, this one is {shape}"
        if math.prod(shape) > SOFTMAX_MAX_ELEMENTS:
            return f"Softmax takes at most {SOFTMAX_MAX_ELEMENTS} elements, this one {math.prod(shape)}"
    elif name == "FULLY_CONNECTED":
        shape = outs[0]["shape"]
        if sum(d > 1 for d in shape) > 1:
            return f"FullyConnected output must be one-dimensional, this one is {shape}"
    elif name in ("MEAN", "REDUCE_MAX", "REDUCE_MIN") and len(ins) > 1:
        shape = ins[0]["shape"]
        axes = _axes(ins[1], len(shape))
        if axes is not None and 0 in axes and len(shape) > 1:
            return f"{name} over the batch dimension is not supported"
        if name == "MEAN" and axes is not None and len(shape) - 1 in axes and shape[-1] % 4:
            return f"Mean over z needs a z-dimension that is a multiple of 4, this one is {shape[-1]}"
    elif name == "PAD" and len(ins) > 1 and "value" in ins[1]:
        if any(ins[1]["value"][:2]):
            return "padding in the batch dimension is not supported"
    elif name == "SPLIT" and ins and "value" in ins[0] and len(ins) > 1:
        axis = _axes(ins[0], len(ins[1]["shape"]))
        if axis == [0]:
            return "splitting in the batch dimension is not supported"
    elif name == "CONCATENATION":
        constants = [t for t in ins if t["constant"]]
        if constants and (len(ins) != 2 or not all(t.get("all_zero") for t in constants)):
            return "a constant Concatenation input is allowed only with 2 inputs and all zeros"
    elif name == "STRIDED_SLICE" and len(ins) > 3 and "value" in ins[3]:
        if any(s != 1 for s in ins[3]["value"]):
            return f"StridedSlice needs all strides equal to 1, these are {ins[3]['value']}"
    elif name == "SQUEEZE":
        before, after = _strip_leading_ones(ins[0]["shape"]), _strip_leading_ones(outs[0]["shape"])
        if before != after:
            return f"Squeeze of {ins[0]['shape']} removes a 1 that is not leading, which needs a relayout"
    elif name == "PRELU" and len(ins) > 1:
        alpha = ins[1]["shape"]
        if any(d > 1 for d in alpha[:-1]):
            return f"PReLU alpha must be 1-dimensional, this one is {alpha}"
    return ""


# --- the compiler ---------------------------------------------------------------------------------


_ACTIVATIONS_ON_TPU = {"linear", "relu", "relu6", "sigmoid", "tanh", "softmax"}
_LAYERS_ON_TPU = {
    # layer class -> the Edge TPU op(s) it becomes (documentation only; the rules read the class)
    "Conv2D": "CONV_2D",
    "Conv1D": "CONV_2D",
    "DepthwiseConv2D": "DEPTHWISE_CONV_2D",
    "DepthwiseConv1D": "DEPTHWISE_CONV_2D",
    "SeparableConv2D": "DEPTHWISE_CONV_2D + CONV_2D",
    "SeparableConv1D": "DEPTHWISE_CONV_2D + CONV_2D",
    "Conv2DTranspose": "TRANSPOSE_CONV",
    "Dense": "FULLY_CONNECTED",
    "MaxPooling1D": "MAX_POOL_2D",
    "MaxPooling2D": "MAX_POOL_2D",
    "AveragePooling1D": "AVERAGE_POOL_2D",
    "AveragePooling2D": "AVERAGE_POOL_2D",
    "GlobalAveragePooling1D": "MEAN",
    "GlobalAveragePooling2D": "MEAN",
    "GlobalMaxPooling1D": "REDUCE_MAX",
    "GlobalMaxPooling2D": "REDUCE_MAX",
    "Flatten": "RESHAPE",
    "Reshape": "RESHAPE",
    "Permute": "TRANSPOSE",
    "Add": "ADD",
    "Subtract": "SUB",
    "Multiply": "MUL",
    "Average": "ADD + MUL",
    "Maximum": "MAXIMUM",
    "Minimum": "MINIMUM",
    "Concatenate": "CONCATENATION",
    "ZeroPadding1D": "PAD",
    "ZeroPadding2D": "PAD",
    "Cropping1D": "STRIDED_SLICE",
    "Cropping2D": "STRIDED_SLICE",
    "UpSampling2D": "RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR",
    "BatchNormalization": "folded into the convolution before it, or MUL + ADD",
    "Rescaling": "MUL + ADD",
    "Normalization": "SUB + MUL",
    "Softmax": "SOFTMAX",
    "ReLU": "RELU / RELU6",
    "PReLU": "PRELU",
    "Activation": "the activation's op",
    # No op at inference:
    "Dropout": "",
    "SpatialDropout1D": "",
    "SpatialDropout2D": "",
    "GaussianNoise": "",
    "GaussianDropout": "",
    "AlphaDropout": "",
    "ActivityRegularization": "",
}
_LAYERS_OFF_TPU = {
    "GRU": "GRU has no Edge TPU op (and its full-int8 conversion crashes the TFLite converter)",
    "SimpleRNN": "SimpleRNN has no Edge TPU op",
    "LSTM": "the Edge TPU maps unidirectional LSTM with 8-bit tensors only, and the int8 LSTM the converter "
    "writes keeps an int16 cell state: expect it on the CPU",
    "Bidirectional": "the Edge TPU maps unidirectional LSTM only",
    "ConvLSTM2D": "ConvLSTM2D has no Edge TPU op",
    "Embedding": "Embedding becomes GATHER, which is not in the Edge TPU's supported operations",
    "LeakyReLU": "LeakyReLU becomes LEAKY_RELU, which is not in the Edge TPU's supported operations (PReLU is)",
    "ELU": "ELU is not in the Edge TPU's supported operations",
    "ThresholdedReLU": "ThresholdedReLU is not in the Edge TPU's supported operations",
    "LayerNormalization": "LayerNormalization becomes ops outside the Edge TPU's documented list",
    "Conv3D": "CONV_3D is not in the Edge TPU's supported operations",
    "Conv3DTranspose": "3-D convolutions are not in the Edge TPU's supported operations",
    "MaxPooling3D": "3-D pooling is not in the Edge TPU's supported operations",
    "AveragePooling3D": "3-D pooling is not in the Edge TPU's supported operations",
    "Attention": "attention becomes BATCH_MATMUL, which is not in the Edge TPU's supported operations",
    "MultiHeadAttention": "attention becomes BATCH_MATMUL, which is not in the Edge TPU's supported operations",
    "Dot": "Dot becomes BATCH_MATMUL, which is not in the Edge TPU's supported operations",
}


def keras_layer_support(layer) -> bool | str:
    """Whether the Edge TPU can run the op(s) a Keras layer becomes: True, or why not (or unknown).

    A prediction from the layer class and its settings; the compiler's log is the authority.
    """
    kind = type(layer).__name__
    if hasattr(layer, "layers"):
        return "nested model: inspect it separately"
    if kind in _LAYERS_OFF_TPU:
        return _LAYERS_OFF_TPU[kind]
    if kind in ("Lambda", "TFOpLambda", "SlicingOpLambda", "TimeDistributed"):
        return f"unknown: a {kind} layer can become any op; check the compiler's log"
    if kind not in _LAYERS_ON_TPU:
        return f"unknown: no rule for {kind}; check the compiler's log"
    activation = getattr(layer, "activation", None)
    if kind != "Activation" and activation is not None:
        name = getattr(activation, "__name__", str(activation))
        if name not in _ACTIVATIONS_ON_TPU:
            return f"activation {name!r} becomes ops outside the Edge TPU's supported operations"
    if kind == "Activation":
        name = getattr(layer.activation, "__name__", str(layer.activation))
        if name not in _ACTIVATIONS_ON_TPU:
            return f"activation {name!r} becomes ops outside the Edge TPU's supported operations"
    dilation = getattr(layer, "dilation_rate", None)
    if isinstance(dilation, tuple | list) and len(set(dilation)) > 1:
        return f"dilation {tuple(dilation)}: the Edge TPU needs the same dilation in x and y"
    if kind == "ReLU" and (getattr(layer, "negative_slope", 0) or getattr(layer, "threshold", 0)):
        return "ReLU with a negative slope or threshold is not in the Edge TPU's supported operations"
    if kind == "ReLU" and getattr(layer, "max_value", None) not in (None, 6, 6.0):
        return f"ReLU capped at {layer.max_value} is not RELU or RELU6"
    shape = _output_shape(layer)
    if kind == "Dense" and shape is not None and sum((d or 2) > 1 for d in shape[1:]) > 1:
        return f"Dense on a {len(shape) - 1}-D input: FullyConnected output must be one-dimensional"
    if (kind == "Softmax" or getattr(activation, "__name__", "") == "softmax") and shape is not None:
        inner = [d for d in shape[1:] if d != 1]
        if len(inner) > 1:
            return "Softmax takes a 1-D input only"
        if inner and inner[0] is not None and inner[0] > SOFTMAX_MAX_ELEMENTS:
            return f"Softmax takes at most {SOFTMAX_MAX_ELEMENTS} elements"
    if kind == "PReLU":
        alpha = getattr(layer, "alpha", None)
        alpha_shape = list(getattr(alpha, "shape", []) or [])
        if any(int(d) > 1 for d in alpha_shape[:-1]):
            return "PReLU alpha must be 1-dimensional: set shared_axes to every axis but the channels"
    return True


def _output_shape(layer):
    try:
        shape = layer.output_shape
    except (AttributeError, RuntimeError):
        return None
    if isinstance(shape, list):  # several outputs: no single shape to judge
        return None
    return list(shape)
