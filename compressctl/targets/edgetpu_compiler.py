"""Running ``edgetpu_compiler`` and reading what it reports.

Usage (``-s``, ``-o``) and output format: https://coral.ai/docs/edgetpu/compiler/ and the outputs
quoted in tests/targets/fixtures/edgetpu/README.md.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from compressctl.targets.edgetpu_ops import MAPPED

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
    from compressctl.core import measure

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
