"""Runtime compatibility of a .tflite file: its op codes with versions, and the oldest TFLite runtime
able to run them (from TFLite's published op-version table, compressctl/litert/op_versions.py).

The op versions come from the flatbuffer's ``operator_codes`` (the interpreter's op details give
names only), read with the schema bindings ai-edge-litert ships, so no TensorFlow import is needed.
A table lookup is a prediction; a real load-and-invoke in another runtime (compressctl/run/runtime_check.py,
``make runtime-check``) fills ``checked``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from compressctl.core.strict import StrictModel
from compressctl.litert.op_versions import KNOWN_RELEASES, MIN_RUNTIME, NEWEST, SOURCE, version_key

RUNTIME_HELP = 'The TFLite runtime the artifact must run on, e.g. {package: tflite-runtime, version: "2.14"}.'

__all__ = [
    "SOURCE",
    "RuntimeRequirement",
    "describe",
    "op_versions",
    "probe",
    "read_operators",
    "requirement_problem",
]


class RuntimeRequirement(StrictModel):
    """The TFLite runtime an artifact must run on (a target's ``runtime:`` mapping)."""

    package: Literal["tflite-runtime", "tensorflow"] = Field(
        "tflite-runtime", description="The runtime package on the device (TFLite op versions follow its release)."
    )
    version: str = Field(description='Its release, e.g. "2.14" (1.5 to the newest release in the op-version table).')

    @field_validator("version", mode="before")
    @classmethod
    def _known_release(cls, value):
        if isinstance(value, float):  # YAML reads 2.10 as 2.1: only a string keeps the release
            raise ValueError(f'write the version as a string, e.g. "{value}"')
        text = str(value)
        match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", text)
        if not match or f"{match[1]}.{match[2]}" not in KNOWN_RELEASES:
            raise ValueError(
                f"TFLite runtime version {text!r} is not in the op-version table "
                f"(known: {KNOWN_RELEASES[0]} to {KNOWN_RELEASES[-1]})"
            )
        return text

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def read_operators(path: str | Path, subgraph: int | None = None) -> list[dict]:
    """Every operator of every subgraph (or of ``subgraph`` alone, in execution order):
    ``{op, version, outputs, inputs, output_types}``.

    ``outputs`` are tensor names; ``inputs`` are ``{name, type, constant}`` (constant: the tensor
    holds data in the file, as weights do).
    """
    from ai_edge_litert import schema_py_generated as schema

    buffer = Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(buffer, 0)
    names = _builtin_names()
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # The schema keeps small codes in an int8 field and larger ones in builtin_code; the larger wins.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode(errors='replace')}"
        codes.append((name, code.Version()))
    operators = []
    for s in range(model.SubgraphsLength()) if subgraph is None else [subgraph]:
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            op, version = codes[operator.OpcodeIndex()]
            outputs, inputs, output_types = [], [], []
            for k in range(operator.OutputsLength()):
                index = operator.Outputs(k)
                if index >= 0:
                    tensor = subgraph.Tensors(index)
                    outputs.append((tensor.Name() or b"").decode(errors="replace"))
                    output_types.append(types.get(tensor.Type(), str(tensor.Type())))
            for k in range(operator.InputsLength()):
                index = operator.Inputs(k)
                if index < 0:
                    continue
                tensor = subgraph.Tensors(index)
                data = model.Buffers(tensor.Buffer()) if tensor.Buffer() > 0 else None
                inputs.append(
                    {
                        "name": (tensor.Name() or b"").decode(errors="replace"),
                        "type": types.get(tensor.Type(), str(tensor.Type())),
                        "constant": bool(data is not None and (data.DataLength() > 0 or data.Offset() > 0)),
                    }
                )
            operators.append(
                {"op": op, "version": version, "outputs": outputs, "inputs": inputs, "output_types": output_types}
            )
    return operators


def op_versions(path: str | Path) -> list[dict]:
    """``[{op, version, count}]`` (``declared`` added where the tensor types imply a newer version), sorted."""
    return _counted(read_operators(path))


def _counted(operators: list[dict]) -> list[dict]:
    counts = Counter()
    for operator in operators:
        implied = implied_version(operator)
        version = max(operator["version"], implied) if isinstance(implied, int) else operator["version"]
        counts[(operator["op"], version, operator["version"] if version != operator["version"] else None)] += 1
    return [
        {"op": op, "version": v, "count": n, **({"declared": d} if d is not None else {})}
        for (op, v, d), n in sorted(counts.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0))
    ]


def implied_version(operator: dict) -> int | str | None:
    """The op version TFLite gives an op with these tensor types, when it involves INT4 tensors.

    From ``GetBuiltinOperatorVersion`` (tensorflow/lite/tools/versioning/op_version.cc): TFLite
    numbers INT4 kernels as versions of their own, and a writer that does not (the LiteRT Quantizer
    0.10 writes CONV_2D v1 with INT4 weights) would otherwise claim a runtime that refuses the file.
    A combination that table gives no version (a float op with INT4 weights) comes back as a string
    saying so; None when no INT4 tensor is involved.
    """
    inputs = [i["type"] for i in operator["inputs"]]
    outputs = operator.get("output_types") or []
    if "INT4" not in inputs and "INT4" not in outputs:
        return None
    op = operator["op"]
    first, second = (inputs + [None, None])[:2]
    out = outputs[0] if outputs else None
    if op == "DEQUANTIZE" and first == "INT4":
        return 6
    if op == "QUANTIZE":
        return 4
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and (first, second, out) == ("INT8", "INT4", "INT8"):
        return 7
    if op == "FULLY_CONNECTED" and (first, second, out) in (("INT8", "INT4", "INT8"), ("INT16", "INT4", "INT16")):
        return 10 if first == "INT8" else 13
    if op == "EMBEDDING_LOOKUP" and second == "INT4":
        return 4
    if op == "GATHER" and first == "INT4":
        return 7
    return f"{op} with INT4 {'weights' if second == 'INT4' else 'tensors'} and {first} input"


def min_runtime(ops: list[dict]) -> tuple[str | None, list[str]]:
    """The oldest runtime that runs every op (None when one is not in the table) and the ops it lacks."""
    unknown = [f"{o['op']} v{o['version']}" for o in ops if (o["op"], o["version"]) not in MIN_RUNTIME]
    if unknown:
        return None, unknown
    versions = [MIN_RUNTIME[(o["op"], o["version"])] for o in ops]
    return (max(versions, key=version_key) if versions else None), []


def describe(path: str | Path, checked: list[dict] | None = None) -> dict:
    """report.json's ``artifacts[].runtime``: ops with versions, the minimum runtime, real checks."""
    operators = read_operators(path)
    ops = _counted(operators)
    minimum, unknown = min_runtime(ops)
    # INT4 combinations TFLite's versioning has no number for: no runtime can be promised.
    untabled = sorted({v for o in operators if isinstance(v := implied_version(o), str)})
    if untabled:
        minimum, unknown = None, unknown + [f"{what} (no op version in TFLite's versioning)" for what in untabled]
    record = {"ops": ops, "min_tflite_version": minimum, "checked": list(checked or []), "table": SOURCE}
    if unknown:
        record["not_in_table"] = unknown
    return record


def requirement_problem(record: dict, requirement: RuntimeRequirement) -> str | None:
    """Why an artifact (its ``describe`` record) may not run on ``requirement``; None when it will."""
    wanted = version_key(requirement.version)[:2]
    too_new = [
        f"{o['op']} v{o['version']} needs {MIN_RUNTIME[(o['op'], o['version'])]}"
        for o in record["ops"]
        if (o["op"], o["version"]) in MIN_RUNTIME and version_key(MIN_RUNTIME[(o["op"], o["version"])])[:2] > wanted
    ]
    if too_new:
        return f"{', '.join(too_new)}; the target requires {requirement.label}"
    if record.get("not_in_table"):
        return (
            f"{', '.join(record['not_in_table'])} not in TFLite's op-version table (newest entry {NEWEST}); "
            f"the target requires {requirement.label}"
        )
    for check in record["checked"]:
        if check["runtime"].startswith(requirement.package + " ") and not check["loads"]:
            return f"{check['runtime']} could not run it: {check['error']}"
    return None


def within(conversions: list, requirement: RuntimeRequirement | None) -> list:
    """The conversions to try for a target that must run on ``requirement``.

    Per-channel dynamic-range Dense kernels give FULLY_CONNECTED v12 (TFLite 2.17); one scale per
    kernel gives v9 (2.3). So each converter conversion that quantizes weights is followed by its
    per-tensor variant, tried when the first needs a newer runtime than the target allows.
    """
    if requirement is None:
        return conversions
    out = []
    for conversion in conversions:
        out.append(conversion)
        if conversion.backend == "converter" and conversion.mode in ("dynamic", "int8"):
            out.append(
                replace(
                    conversion,
                    per_tensor_dense=True,
                    label=conversion.label + ", per-tensor Dense weights",
                    fallback_reason=f"the per-channel artifact needs a newer runtime than {requirement.label}",
                )
            )
    return out


# Loading an artifact for real under another runtime: runtime_probe.py, run by that runtime's Python.
PROBE = Path(__file__).resolve().parent / "runtime_probe.py"


def probe(path: str | Path, python: str, timeout_s: float = 300) -> dict:
    """``{runtime, loads, error}`` from loading and invoking ``path`` under ``python``."""
    try:
        done = subprocess.run(
            [python, str(PROBE), str(path)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        return {"runtime": python, "loads": False, "error": f"{python}: not found"}
    except subprocess.TimeoutExpired:
        return {"runtime": python, "loads": False, "error": f"did not finish in {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode < 0:
        name = json.loads(lines[-1])["runtime"] if lines else python
        return {"runtime": name, "loads": False, "error": f"crashed ({signal.Signals(-done.returncode).name})"}
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        return {"runtime": python, "loads": False, "error": tail}
    return json.loads(lines[-1])
