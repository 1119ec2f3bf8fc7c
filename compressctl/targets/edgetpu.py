"""Edge TPU target: a fully integer TFLite model and where its ops will run on a Coral Edge TPU.

The artifact is the int8 model the Edge TPU compiler takes as input. Its ops are checked against
the documented Edge TPU op list and model requirements, which gives a predicted mapping (ops on
the TPU, ops on the CPU, and why). When ``edgetpu_compiler`` is on PATH it is run and its own
result replaces the prediction; the prediction stays in the report beside it.

Sources (the rules below paraphrase them):
- model requirements and supported operations: https://coral.ai/docs/edgetpu/models-intro/
  (its current table mirrored for the same chip at
  https://developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/,
  the rows from ResizeNearestNeighbor on from an earlier copy of the Coral table); Transpose from
  compiler 16 on (https://github.com/google-coral/edgetpu/issues/193), TransposeConv as listed in
  the table (https://github.com/google-coral/edgetpu/issues/684);
- compiler usage (``-s``, ``-o``) and output: https://coral.ai/docs/edgetpu/compiler/ and the
  outputs quoted in tests/targets/fixtures/edgetpu/README.md.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from compressctl.errors import StageError
from compressctl.params import StrictModel
from compressctl.targets.base import Conversion

# The compiler's own status strings (its .log and `-s` table), so a prediction and a compiler
# result read the same way and can be compared row by row.
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
AFTER_FALLBACK = "More than one subgraph is not supported"

COMPILER_NOT_FOUND = "compiler not found, prediction only"
COMPILER_SKIPPED = "compiler not run (compiler: never), prediction only"
ASSUMED_COMPILER = "edgetpu_compiler 16 (Edge TPU runtime 14+), default options: one Edge TPU subgraph"

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

SOFTMAX_MAX_ELEMENTS = 16_000
EIGHT_BIT = ("int8", "uint8")


class EdgeTpuTarget:
    """Full-integer TFLite for the Coral Edge TPU, with a predicted (or compiled) op mapping.

    There is no float fallback: the Edge TPU runs 8-bit integer ops only, so a model that cannot
    be converted fully to integers fails this target instead of yielding an artifact it cannot run.
    Latency in the report is the host CPU's: no Edge TPU is attached to the build host.
    """

    class Params(StrictModel):
        type: Literal["edgetpu"]
        name: str | None = Field(None, description="Folder and report name (default: the type).")
        calibration_samples: int = Field(
            200, ge=1, le=100_000, description="Train-split samples used to calibrate int8 activation ranges."
        )
        io_dtype: Literal["uint8", "int8"] = Field(
            "uint8",
            description="Input/output type. uint8 (default) takes camera pixels as they come and is what Coral's "
            "examples feed; int8 saves the two QUANTIZE ops at the model's edges.",
        )
        compiler: Literal["auto", "never"] = Field(
            "auto",
            description="auto: run edgetpu_compiler when it is on PATH and report its mapping; never: report the "
            "predicted mapping only.",
        )
        compiler_timeout_s: int = Field(
            600, ge=10, le=86_400, description="Seconds edgetpu_compiler may run before it is stopped."
        )

    def __init__(self, params: Params):
        self.params = params

    @property
    def name(self) -> str:
        return self.params.name or self.params.type

    def conversions(self) -> list[Conversion]:
        return [Conversion("int8", io_dtype=self.params.io_dtype, integer_only=True, label="full int8 (Edge TPU)")]

    def finish(self, path, folder, emit) -> dict:
        from compressctl.events import Event
        from compressctl.runtime import load_interpreter

        path, folder = Path(path), Path(folder)
        graph = graph_from_interpreter(load_interpreter(path, xnnpack=False))
        checks = check_artifact(graph)
        if checks["problems"]:
            raise StageError("not an Edge TPU model: " + "; ".join(checks["problems"]))
        predicted = predict_mapping(graph)
        emit(
            Event(
                "step",
                f"{self.name}: predicted {predicted['ops_on_tpu']} of {predicted['ops_total']} ops on the Edge TPU",
            )
        )
        record = {"compiled": False, "status": COMPILER_NOT_FOUND, "mapping": predicted, "predicted": predicted}
        executable = shutil.which("edgetpu_compiler")
        if self.params.compiler == "never":
            record["status"] = COMPILER_SKIPPED
        elif executable:
            emit(Event("step", f"{self.name}: running {executable}"))
            record.update(compile_model(executable, path, folder, self.params.compiler_timeout_s))
            if not record["compiled"]:
                emit(Event("warn", f"{self.name}: {record['status']}"))
        record["checks"] = checks
        record["mapping_file"] = f"{folder.name}/edgetpu_mapping.json"
        (folder / "edgetpu_mapping.json").write_text(json.dumps(record, indent=2) + "\n")
        return {"edgetpu": record, "latency_note": "timed on the host CPU; no Edge TPU is attached here"}


# --- the model as plain data -------------------------------------------------------------------


def graph_from_interpreter(interpreter) -> dict:
    """Ops (in execution order) and the tensors they touch, as plain data the rules can read.

    A tensor no op produces and that is not a model input is a constant (weights, bias, axes,
    shapes); small constants carry their values, since several documented limits are about them.
    Tensors no op references (kernel scratch space) are left out.
    """
    import numpy as np

    ops = [
        {
            "index": int(op["index"]),
            "op": op["op_name"],
            "inputs": [int(i) for i in op["inputs"] if i >= 0],
            "outputs": [int(i) for i in op["outputs"] if i >= 0],
        }
        for op in interpreter._get_ops_details()
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


def op_status(op: dict, graph: dict) -> tuple[str, str]:
    """The status one op would get on its own (before the one-subgraph rule), and why."""
    name = op["op"]
    if name not in SUPPORTED_OPS:
        return NOT_SUPPORTED, f"{name} is not in the Edge TPU's supported operations"
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

_LINE_FIELDS = {
    "compiler_version": (r"^Edge TPU Compiler version (\S+)", str),
    "compile_ms": (r"^Model compiled successfully in (\d+) ms", int),
    "input_model": (r"^Input model: (.+?)\s*$", str),
    "input_size": (r"^Input size: (.+?)\s*$", str),
    "output_model": (r"^Output model: (.+?)\s*$", str),
    "output_size": (r"^Output size: (.+?)\s*$", str),
    "on_chip_memory_used": (r"^On-chip memory used for caching model parameters: (.+?)\s*$", str),
    "on_chip_memory_remaining": (r"^On-chip memory remaining for caching model parameters: (.+?)\s*$", str),
    "off_chip_memory_used": (r"^Off-chip memory used for streaming uncached model parameters: (.+?)\s*$", str),
    "subgraphs": (r"^Number of Edge TPU subgraphs: (\d+)", int),
    "ops_total": (r"^Total number of operations: (\d+)", int),
    "operation_log": (r"^Operation log: (.+?)\s*$", str),
    "ops_on_tpu": (r"^Number of operations that will run on Edge TPU: (\d+)", int),
    "ops_on_cpu": (r"^Number of operations that will run on CPU: (\d+)", int),
}
_TABLE_HEADER = re.compile(r"^Operator\s+Count\s+Status\s*$")
_TABLE_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_ERROR = re.compile(r"^(ERROR:.*|Compilation failed.*|Internal compiler error.*|Invalid model.*)$")
_FATAL = ("Compilation failed", "Internal compiler error", "Invalid model")


def parse_operator_table(text: str) -> list[dict]:
    """The "Operator  Count  Status" table of the compiler's .log (or of its ``-s`` output)."""
    rows, inside = [], False
    for line in text.splitlines():
        if _TABLE_HEADER.match(line.strip()):
            inside = True
            continue
        match = _TABLE_ROW.match(line.strip()) if inside else None
        if match:
            rows.append({"operator": match[1], "count": int(match[2]), "status": match[3]})
    return rows


def parse_compiler_output(stdout: str, log_text: str | None) -> dict:
    """What edgetpu_compiler reported: version, files, subgraphs, op counts and the per-op table.

    The op table comes from the .log when there is one, else from stdout (printed with ``-s``).
    The compiler prints the two "will run on" counts only when some ops stay on the CPU; without
    them the counts are summed from the table, and with neither a successful compile maps all.
    """
    result: dict = {key: None for key in _LINE_FIELDS}
    for line in stdout.splitlines():
        for key, (pattern, kind) in _LINE_FIELDS.items():
            match = re.match(pattern, line.strip())
            if match and result[key] is None:
                result[key] = kind(match[1])
    result["errors"] = [m[1] for line in stdout.splitlines() if (m := _ERROR.match(line.strip()))]
    result["compiled"] = result["compile_ms"] is not None and not any(e.startswith(_FATAL) for e in result["errors"])
    table = parse_operator_table(log_text) if log_text else []
    result["table_from"] = "log" if table else None
    if not table:
        table = parse_operator_table(stdout)
        result["table_from"] = "stdout" if table else None
    result["table"] = table
    if log_text:
        result["compiler_version"] = result["compiler_version"] or _first(r"^Edge TPU Compiler version (\S+)", log_text)
    if result["ops_on_tpu"] is not None and result["ops_on_cpu"] is not None:
        result["counts_from"] = "stdout"
    elif table:
        result["ops_on_tpu"] = sum(r["count"] for r in table if r["status"] == MAPPED)
        result["ops_on_cpu"] = sum(r["count"] for r in table if r["status"] != MAPPED)
        result["counts_from"] = "table"
    elif result["compiled"] and result["ops_total"] is not None and "not all operations" not in stdout:
        result["ops_on_tpu"], result["ops_on_cpu"] = result["ops_total"], 0
        result["counts_from"] = "all mapped"
    else:
        result["counts_from"] = None
    if result["ops_total"] is None and result["ops_on_tpu"] is not None:
        result["ops_total"] = result["ops_on_tpu"] + result["ops_on_cpu"]
    return result


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.MULTILINE)
    return match[1] if match else None


def compile_model(executable: str, path: Path, folder: Path, timeout_s: float) -> dict:
    """Run edgetpu_compiler on ``path`` into ``folder``; a failure is recorded, never raised.

    Returns the keys that replace the prediction's when compilation succeeded (``compiled``,
    ``status``, ``mapping``, ``compiler``, ``compiled_artifact``), else ``compiled: False`` with
    the reason in ``status`` and what the compiler said in ``compiler``.
    """
    command = [executable, "-s", "-o", str(folder), path.name]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command, cwd=path.parent, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {"compiled": False, "status": f"compiler timed out after {timeout_s:g} s, prediction only"}
    except OSError as exc:
        return {"compiled": False, "status": f"compiler could not be started ({exc}), prediction only"}
    seconds = round(time.perf_counter() - started, 3)
    log_path = folder / f"{path.stem}_edgetpu.log"
    log_text = log_path.read_text(errors="replace") if log_path.is_file() else None
    parsed = parse_compiler_output(proc.stdout, log_text)
    compiler = {
        "command": ["edgetpu_compiler", *command[1:3], folder.name, path.name],
        "version": parsed["compiler_version"],
        "returncode": proc.returncode,
        "seconds": seconds,
        "log": f"{folder.name}/{log_path.name}" if log_text is not None else None,
        "errors": parsed["errors"] or [line for line in proc.stderr.splitlines() if line.strip()][-3:],
    }
    compiled_path = folder / f"{path.stem}_edgetpu.tflite"
    failure = None
    if proc.returncode != 0:
        failure = f"exit status {proc.returncode}"
    elif not parsed["compiled"]:
        failure = "it did not report a compiled model"
    elif not compiled_path.is_file():
        failure = f"it wrote no {compiled_path.name}"
    elif parsed["ops_on_tpu"] is None:
        failure = "its op counts could not be read"
    if failure:
        detail = f": {compiler['errors'][0]}" if compiler["errors"] else ""
        status = f"compiler failed ({failure}{detail}), prediction only"
        return {"compiled": False, "status": status, "compiler": compiler}
    from compressctl import measure

    facts = measure.file_facts(compiled_path)
    mapping = {
        "source": "edgetpu_compiler",
        "compiler_version": parsed["compiler_version"],
        "ops_total": parsed["ops_total"],
        "ops_on_tpu": parsed["ops_on_tpu"],
        "ops_on_cpu": parsed["ops_on_cpu"],
        "subgraphs": parsed["subgraphs"],
        "counts_from": parsed["counts_from"],
        "table": parsed["table"],
        "memory": {
            "on_chip_used": parsed["on_chip_memory_used"],
            "on_chip_remaining": parsed["on_chip_memory_remaining"],
            "off_chip_used": parsed["off_chip_memory_used"],
        },
    }
    return {
        "compiled": True,
        "status": "compiled",
        "mapping": mapping,
        "compiler": compiler,
        "compiled_artifact": {
            "path": f"{folder.name}/{compiled_path.name}",
            "size_bytes": facts["size_bytes"],
            "sha256": facts["sha256"],
        },
    }


# --- Keras layers, for `compressctl inspect` -----------------------------------------------------

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
