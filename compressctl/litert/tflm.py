"""TensorFlow Lite for Microcontrollers (the ``tflite-micro`` package): what its interpreter registers,
the smallest tensor arena a model allocates in, its outputs, and the C sources a firmware compiles.

The functions that construct a TFLM interpreter (``smallest_arena``, ``predict``) run in the child
process of ``compressctl/backends/tflm_worker.py``, never in the caller: a TFLM crash then ends that
process only. The rest is pure Python over the .tflite bytes and the package's files.

How the package is read (it has no Python API for either):
- registered ops: the Python interpreter's op resolver registers every builtin kernel linked into
  ``_runtime.so``; each is a ``tflite::micro::Register_<OP>()`` function, so the exported symbol
  names list them (``_ZN6tflite5micro<len>Register_<OP>Ev``).
- arena: ``Interpreter.from_bytes(model, arena_size=N)`` allocates every tensor in its constructor
  and raises when N bytes are too few; the smallest N that allocates is found by bisection on
  multiples of 16 (TFLM aligns arena allocations to 16 bytes).
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGE = "tflite-micro"
ALIGNMENT = 16  # bytes: TFLM's arena alignment, and the model array's in model_data.cc
MAX_ARENA = 1 << 30  # bisection gives up above 1 GiB: no microcontroller has it

# Builtin op → MicroMutableOpResolver method, where it is not the op's name in CamelCase
# (tensorflow/lite/micro/micro_mutable_op_resolver.h).
_METHODS = {
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D",
    "L2_POOL_2D": "AddL2Pool2D",
    "L2_NORMALIZATION": "AddL2Normalization",
    "RELU6": "AddRelu6",
    "RELU_N1_TO_1": "AddReluN1To1",
    "BATCH_MATMUL": "AddBatchMatMul",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "SVDF": "AddSvdf",
    "PRELU": "AddPrelu",
    "PADV2": "AddPadV2",
    "SELECT_V2": "AddSelectV2",
    "REVERSE_V2": "AddReverseV2",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "GATHER_ND": "AddGatherNd",
    "ADD_N": "AddAddN",
    "SPLIT_V": "AddSplitV",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "SUM": "AddSum",
    "CUSTOM:TFLM_DECODE": "AddDecode",  # the lookup tables' DECODE, registered as custom op TFLM_DECODE
}
# Custom ops the interpreter registers under a builtin kernel's name.
_CUSTOM = {"CUSTOM:TFLM_DECODE": "DECODE"}


def version() -> str:
    """``tflite-micro <version>``, as the report names the runtime."""
    return f"{PACKAGE} {metadata.version(PACKAGE)}"


def _runtime_library() -> Path:
    import tflite_micro

    return Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "_runtime.so"


_SYMBOL = re.compile(rb"_ZN6tflite5micro(\d+)(Register_[A-Z0-9_]+)Ev")


@functools.cache
def registered_ops() -> frozenset[str]:
    """The builtin ops the TFLM Python interpreter registers (``CONV_2D``, …), read from its library."""
    blob = _runtime_library().read_bytes()
    names = set()
    for match in _SYMBOL.finditer(blob):
        length, symbol = int(match.group(1)), match.group(2)
        if len(symbol) == length:  # tflite::micro::Register_X(), not a nested namespace's
            names.add(symbol.decode().removeprefix("Register_"))
    return frozenset(names)


def resolver_method(op: str) -> str:
    """The ``MicroMutableOpResolver`` method that registers builtin ``op``: CONV_2D → AddConv2D."""
    return _METHODS.get(op) or "Add" + "".join(part.capitalize() for part in op.split("_"))


def layer_of(tensor_name: str) -> str:
    """The Keras layer a TFLite tensor name comes from: ``model/quant_layer/op;...`` → ``layer``."""
    parts = tensor_name.split(";")[0].split("/")
    scope = parts[1:-1] if len(parts) > 2 else parts[:-1] or parts
    return "/".join(scope).removeprefix("quant_")


def model_ops(path: str | Path) -> list[dict]:
    """Each distinct op of the model's subgraphs in first use order: ``{op, version, layer}``."""
    from compressctl.litert.compat import read_operators

    seen: dict[tuple[str, int], dict] = {}
    for operator in read_operators(path):
        key = (operator["op"], operator["version"])
        if key not in seen:
            name = operator["outputs"][0] if operator["outputs"] else ""
            seen[key] = {"op": operator["op"], "version": operator["version"], "layer": layer_of(name)}
    return list(seen.values())


def missing_ops(ops: list[dict], registered: frozenset[str] | None = None) -> list[dict]:
    """The ops of ``ops`` (``model_ops``) the TFLM interpreter does not register."""
    registered = registered_ops() if registered is None else registered
    return [row for row in ops if _CUSTOM.get(row["op"], row["op"]) not in registered]


# --- in the worker process only: these construct TFLM interpreters -----------------------------------


def _interpreter(model: bytes, arena: int, alt_decompression: int = 0):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena, alt_decompression_memory_size=alt_decompression)


def allocates(model: bytes, arena: int) -> bool:
    try:
        _interpreter(model, arena)
    except RuntimeError:
        return False
    return True


def smallest_arena(model: bytes) -> int:
    """The smallest arena (a multiple of 16 bytes) in which the TFLM interpreter allocates ``model``."""
    high = 64 * 1024
    while not allocates(model, high):
        if high >= MAX_ARENA:
            raise RuntimeError(f"the model does not allocate in a {MAX_ARENA:,}-byte arena")
        high *= 2
    low = 0  # in units of ALIGNMENT: low fails (or is nothing), high allocates
    high //= ALIGNMENT
    while high - low > 1:
        middle = (low + high) // 2
        if allocates(model, middle * ALIGNMENT):
            high = middle
        else:
            low = middle
    return high * ALIGNMENT


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    params = detail["quantization_parameters"]
    if dtype in (np.int8, np.uint8, np.int16) and len(params["scales"]):
        info = np.iinfo(dtype)
        q = np.round(x / params["scales"][0] + params["zero_points"][0])
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    params = detail["quantization_parameters"]
    y = y.astype(np.float32)
    if detail["dtype"] in (np.int8, np.uint8, np.int16) and len(params["scales"]):
        y = (y - params["zero_points"][0]) * params["scales"][0]
    return y


def invoke_once(model: bytes, arena: int) -> None:
    """One inference on a zero input in an arena of ``arena`` bytes (raises when it fails)."""
    interpreter = _interpreter(model, arena)
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interpreter.invoke()


def host_latency_ms(model: bytes, arena: int, runs: int = 50) -> float:
    """Median milliseconds per inference (zero input) in the TFLM interpreter on this host: not a device figure."""
    import time

    interpreter = _interpreter(model, arena)
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interpreter.invoke()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 4)


def predict(model: bytes, x: np.ndarray, arena: int) -> np.ndarray:
    """Float outputs of ``model`` for samples ``x`` (one at a time: batch 1), run by the TFLM interpreter."""
    interpreter = _interpreter(model, arena)
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    results = []
    for k in range(len(x)):
        interpreter.set_input(_quantize(x[k : k + 1], inp), 0)
        interpreter.invoke()
        results.append(_dequantize(interpreter.get_output(0), out)[0])
    return np.asarray(results)


# --- lookup tables (TFLM's LUT compression, decoded by DECODE ops into the arena) ----------------------


def lut_candidates(model: bytes) -> list[dict]:
    """Constant int8 tensors whose values fit in 1-7 bits at the granularity of their quantization.

    ``{tensor, name, bits, granularity, axis, bytes_before}``: one value table per channel along the
    quantized axis for a tensor quantized per channel, one for the tensor otherwise; TFLM decodes a
    table of the other granularity without error but to the wrong values.
    """
    import math

    from ai_edge_litert import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    graph, rows = root.Subgraphs(0), []
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        buffer = root.Buffers(tensor.Buffer()) if tensor.Buffer() > 0 else None
        if tensor.Type() != schema.TensorType.INT8 or buffer is None or buffer.DataLength() < 64:
            continue
        values = buffer.DataAsNumpy().view(np.int8).reshape(tensor.ShapeAsNumpy())
        quantization = tensor.Quantization()
        per_channel = quantization is not None and quantization.ScaleLength() > 1
        axis = quantization.QuantizedDimension() if per_channel else None
        tables = np.moveaxis(values, axis, 0) if per_channel else [values]
        distinct = max(len(np.unique(table)) for table in tables)
        bits = max(1, math.ceil(math.log2(distinct)))
        if bits <= 7:
            rows.append(
                {
                    "tensor": index,
                    "name": (tensor.Name() or b"").decode(errors="replace"),
                    "bits": bits,
                    "granularity": f"per-channel (axis {axis})" if per_channel else "per-tensor",
                    "axis": axis,
                    "bytes_before": int(buffer.DataLength()),
                }
            )
    return rows


def lut_encode(model: bytes, rows: list[dict]) -> bytes:
    """``model`` with the tensors of ``rows`` stored as lookup tables (tflite-micro's compression library)."""
    from tflite_micro.tensorflow.lite.micro.compression import spec
    from tflite_micro.tensorflow.lite.micro.compression.compress import compress

    specs = [
        spec.Tensor(
            subgraph=0,
            tensor=row["tensor"],
            compression=[
                spec.LookUpTableCompression(
                    index_bitwidth=row["bits"],
                    mode=spec.PerTensor() if row["axis"] is None else spec.PerChannel(axis=row["axis"]),
                )
            ],
        )
        for row in rows
    ]
    return bytes(compress(model, specs))


def raw_outputs(model: bytes, inputs: np.ndarray, arena: int) -> np.ndarray:
    """The output tensor's raw values for each of ``inputs`` (already of the input's dtype)."""
    interpreter = _interpreter(model, arena)
    results = []
    for k in range(len(inputs)):
        interpreter.set_input(inputs[k : k + 1], 0)
        interpreter.invoke()
        results.append(np.array(interpreter.get_output(0)))
    return np.asarray(results)


def check_inputs(model: bytes, count: int = 32, seed: int = 0) -> np.ndarray:
    """``count`` seeded random inputs over the whole range of the model's (integer) input type."""
    detail = _interpreter(model, 1 << 24).get_input_details(0)
    dtype, shape = np.dtype(detail["dtype"]), [1, *detail["shape"][1:]]
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    rng = np.random.default_rng(seed)
    if info is None:
        return rng.uniform(-1, 1, [count, *shape[1:]]).astype(dtype)
    return rng.integers(info.min, info.max + 1, [count, *shape[1:]]).astype(dtype)


def _inputs(model: bytes, arena: int, samples: np.ndarray | None) -> np.ndarray:
    """``samples`` (float) quantized as the model's input; ``check_inputs`` when there are none."""
    if samples is None:
        return check_inputs(model)
    detail = _interpreter(model, arena).get_input_details(0)
    return np.stack([_quantize(samples[k : k + 1], detail) for k in range(len(samples))])[:, 0]


def lut_one(model: bytes, row: dict, arena: int, samples: np.ndarray | None = None) -> dict:
    """``row``'s tensor encoded alone: kept when the file shrinks and TFLM's outputs stay bit-identical on the
    first 8 ``samples`` (a wrong table garbles every output). ``{kept, bytes_after, arena_bytes_added, why}``."""
    inputs = _inputs(model, arena, samples)[:8]
    single = lut_encode(model, [row])
    single_arena = smallest_arena(single)
    if not np.array_equal(raw_outputs(single, inputs, single_arena), raw_outputs(model, inputs, arena)):
        return {"kept": False, "why": "the outputs change"}
    saved = len(model) - len(single)
    if saved <= 0:
        return {"kept": False, "why": f"the file grows by {-saved} bytes"}
    return {"kept": True, "bytes_after": row["bytes_before"] - saved, "arena_bytes_added": single_arena - arena}


def lut_all(model: bytes, rows: list[dict], arena: int, samples: np.ndarray | None = None) -> dict:
    """The tensors of ``rows`` encoded together, kept when TFLM's outputs stay bit-identical on every sample.
    ``{"model": bytes | None, "arena": n, "latency": ms}``."""
    inputs = _inputs(model, arena, samples)
    encoded = lut_encode(model, rows)
    encoded_arena = smallest_arena(encoded)
    if not np.array_equal(raw_outputs(encoded, inputs, encoded_arena), raw_outputs(model, inputs, arena)):
        return {"model": None, "arena": None, "latency": None}
    return {"model": encoded, "arena": encoded_arena, "latency": host_latency_ms(encoded, encoded_arena)}


# --- the C sources a firmware compiles ---------------------------------------------------------------


def c_identifier(name: str) -> str:
    """``name`` as a C identifier: other characters become ``_``, and a leading digit gets one before it."""
    ident = re.sub(r"\W", "_", name, flags=re.ASCII) or "model"
    return f"_{ident}" if ident[0].isdigit() else ident


def model_sources(model: bytes, name: str) -> tuple[str, str]:
    """``(model_data.cc, model_data.h)``: ``model`` as a 16-byte-aligned ``const unsigned char`` array
    ``g_<name>_model_data`` and its length ``g_<name>_model_data_len``."""
    array = f"g_{c_identifier(name)}_model_data"
    guard = f"{c_identifier(name).upper()}_MODEL_DATA_H_"
    header = (
        f"// The {name} model for TensorFlow Lite Micro, written by compressctl.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {array}[];\n"
        f"extern const unsigned int {array}_len;\n\n"
        f"#endif  // {guard}\n"
    )
    rows = []
    for start in range(0, len(model), 12):
        rows.append("  " + ", ".join(f"0x{b:02x}" for b in model[start : start + 12]) + ",")
    source = (
        f"// The {name} model for TensorFlow Lite Micro ({len(model)} bytes), written by compressctl.\n"
        '#include "model_data.h"\n\n'
        f"// TFLM reads the flatbuffer in place: it must be aligned to {ALIGNMENT} bytes.\n"
        f"alignas({ALIGNMENT}) const unsigned char {array}[] = {{\n" + "\n".join(rows) + "\n};\n"
        f"const unsigned int {array}_len = {len(model)};\n"
    )
    return source, header


def op_resolver_source(ops: list[dict], name: str) -> str:
    """``op_resolver.h``: a ``MicroMutableOpResolver<N>`` with exactly the model's N distinct ops."""
    kind = "".join(part[:1].upper() + part[1:] for part in c_identifier(name).split("_")) + "OpResolver"
    methods = sorted({resolver_method(row["op"]) for row in ops})
    guard = f"{c_identifier(name).upper()}_OP_RESOLVER_H_"
    body = "\n".join(f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods)
    return (
        f"// The ops of the {name} model, for TensorFlow Lite Micro; written by compressctl.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"using {kind} = tflite::MicroMutableOpResolver<{len(methods)}>;\n\n"
        f"// Registers the model's {len(methods)} ops: {', '.join(sorted({row['op'] for row in ops}))}.\n"
        f"inline TfLiteStatus RegisterOps({kind}& resolver) {{\n"
        f"{body}\n  return kTfLiteOk;\n}}\n\n"
        f"#endif  // {guard}\n"
    )
