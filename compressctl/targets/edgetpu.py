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
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from compressctl.core.errors import StageError
from compressctl.litert.compat import read_operators
from compressctl.targets.base import Conversion, QuantizedTargetParams, Target
from compressctl.targets.edgetpu_compiler import compile_model, parse_compiler_output, parse_operator_table
from compressctl.targets.edgetpu_ops import (
    AFTER_FALLBACK,
    LIMITATION,
    MAPPED,
    NOT_SUPPORTED,
    UNSUPPORTED_TYPE,
    add_op_versions,
    check_artifact,
    graph_from_interpreter,
    keras_layer_support,
    op_status,
    operator_table,
    predict_mapping,
)

__all__ = [
    "AFTER_FALLBACK",
    "LIMITATION",
    "MAPPED",
    "NOT_SUPPORTED",
    "UNSUPPORTED_TYPE",
    "add_op_versions",
    "EdgeTpuTarget",
    "check_artifact",
    "compile_model",
    "graph_from_interpreter",
    "keras_layer_support",
    "op_status",
    "operator_table",
    "parse_compiler_output",
    "parse_operator_table",
    "predict_mapping",
]

COMPILER_NOT_FOUND = "compiler not found, prediction only"
COMPILER_SKIPPED = "compiler not run (compiler: never), prediction only"


class EdgeTpuTarget(Target):
    """Full-integer TFLite for the Coral Edge TPU, with a predicted (or compiled) op mapping.

    There is no float fallback: the Edge TPU runs 8-bit integer ops only, so a model that cannot
    be converted fully to integers fails this target instead of yielding an artifact it cannot run.
    Latency in the report is the host CPU's: no Edge TPU is attached to the build host.
    """

    type = "edgetpu"

    class Params(QuantizedTargetParams):
        type: Literal["edgetpu"]
        # The Edge TPU takes integer I/O only, so this narrows the shared field's choices and default.
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

    report_fields = ("edgetpu", "latency_note")

    @classmethod
    def supports(cls, layer) -> bool | str:
        # Predicted from the layer class and settings against the Edge TPU's documented ops; the
        # target's mapping (or the compiler's log) is the authority on a converted model.
        return keras_layer_support(layer)

    def conversions(self) -> list[Conversion]:
        return [Conversion("int8", io_dtype=self.params.io_dtype, integer_only=True, label="full int8 (Edge TPU)")]

    def finish(self, path, folder, emit) -> dict:
        from compressctl.core.events import Event
        from compressctl.litert.interpreter import load_interpreter

        path, folder = Path(path), Path(folder)
        graph = graph_from_interpreter(load_interpreter(path, xnnpack=False))
        checks = check_artifact(graph)
        if checks["problems"]:
            floats = float_ops(graph)
            if floats:
                checks["problems"].append(f"in float: {describe(floats)}")
            raise StageError("not an Edge TPU model: " + "; ".join(checks["problems"]))
        add_op_versions(graph, read_operators(path, subgraph=0))  # versions the compiler may not read
        predicted = predict_mapping(graph)
        name_layers(predicted, graph)
        emit(
            Event(
                "step",
                f"{self.name}: predicted {predicted['ops_on_tpu']} of {predicted['ops_total']} ops on the Edge TPU",
            )
        )
        first = predicted["first_cpu_op"]
        if first is not None:
            on_cpu = f"{predicted['ops_on_cpu']} of {predicted['ops_total']} ops run on the CPU"
            emit(
                Event("warn", f"{self.name}: from {first['op']} (op {first['index']}) on, {on_cpu}: {first['reason']}")
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


# --- naming the Keras layer behind a TFLite op --------------------------------------------------

# What to do about an op the Edge TPU lacks that common activations become.
REMEDIES = {
    "HARD_SWISH": "add a quantize stage before this target: QAT keeps hard-swish as ADD (with a fused ReLU6) and "
    "MUL, which the Edge TPU runs, where post-training conversion fuses it into HARD_SWISH",
    "GELU": "the Edge TPU has no GELU; swish (LOGISTIC and MUL) or ReLU maps",
    "LEAKY_RELU": "the Edge TPU has no LEAKY_RELU; ReLU or PReLU maps",
}


def layer_of(tensor_name: str) -> str:
    """The Keras layer a TFLite tensor name comes from: ``model/quant_layer/op;...`` → ``layer``.

    The name is the TensorFlow name scope of the op that made the tensor (its first part, before
    fused ops' ``;``): the model's scope, the layer's (``quant_`` added by QAT), then the op.
    """
    parts = tensor_name.split(";")[0].split("/")
    scope = parts[1:-1] if len(parts) > 2 else parts[:-1] or parts
    name = "/".join(scope)
    return name.removeprefix("quant_")


def _output_name(op: dict, graph: dict) -> str:
    tensors = graph["tensors"]
    for index in op["outputs"]:
        if index in tensors and tensors[index]["name"]:
            return tensors[index]["name"]
    return ""


def float_ops(graph: dict) -> list[dict]:
    """Ops that read or write a float tensor, with the layer each comes from."""
    tensors, rows = graph["tensors"], []
    for op in graph["ops"]:
        if any(tensors[i]["dtype"].startswith("float") for i in op["inputs"] + op["outputs"] if i in tensors):
            rows.append({"index": op["index"], "op": op["op"], "layer": layer_of(_output_name(op, graph))})
    return rows


def describe(rows: list[dict], limit: int = 5) -> str:
    text = ", ".join(f"{row['op']} (op {row['index']}, layer {row['layer']!r})" for row in rows[:limit])
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def name_layers(mapping: dict, graph: dict) -> None:
    """Give each op the Edge TPU cannot map its layer, in its row and reason (and a remedy where one is known)."""
    ops = {op["index"]: op for op in graph["ops"]}
    for row in mapping["ops"]:
        if row["status"] in (MAPPED, AFTER_FALLBACK) or row["index"] not in ops:
            continue
        row["layer"] = layer_of(_output_name(ops[row["index"]], graph))
        row["reason"] = f"{row.get('reason') or row['status']} (layer {row['layer']!r})"
        if row["op"] in REMEDIES:
            row["reason"] += f"; {REMEDIES[row['op']]}"


# --- the model as plain data -------------------------------------------------------------------
