"""Child process that runs the TensorFlow Lite Micro interpreter, one JSON request per line on stdin.

Same protocol as compressctl/backends/convert_worker.py: a TFLM interpreter that crashes (its C++
aborts on a malformed model) kills only this process, and the parent reports it in one line.
Requests (``op``):
- ``arena`` {model, out}: the smallest arena that allocates (compressctl.litert.tflm.smallest_arena),
  then one inference in it and the median time of 50 (a host figure); writes {"arena_bytes": n,
  "host_latency_ms": t} as JSON to ``out``.
- ``lut_one`` {model, row, arena, out, samples}: one tensor as a lookup table, kept or not and why
  (compressctl.litert.tflm.lut_one), as JSON to ``out``; one request a tensor, so that a TFLM crash on
  one encoding costs that tensor only.
- ``lut_all`` {model, rows, arena, out, model_out, samples}: the kept tensors together, written to
  ``model_out`` when the outputs stay identical; its arena and latency as JSON to ``out``.
- ``predict`` {model, inputs, out, arena}: the float outputs for the samples in the ``inputs`` .npy,
  run in an arena of ``arena`` bytes, written to the ``out`` .npy.
Each writes ``out`` whole or not at all and answers {"ok": true} or {"error": ...}.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

from compressctl.backends.convert_worker import serve
from compressctl.core import measure


def handle(spec: dict) -> dict:
    """Run one request; never raises."""
    from compressctl.litert import tflm

    try:
        model = Path(spec["model"]).read_bytes()
        if spec["op"] == "arena":
            arena = tflm.smallest_arena(model)
            tflm.invoke_once(model, arena)  # it also runs in that arena
            answer = {"arena_bytes": arena, "host_latency_ms": tflm.host_latency_ms(model, arena)}
            measure.write_whole(spec["out"], json.dumps(answer).encode())
        elif spec["op"] == "lut_one":
            samples = np.load(spec["samples"]) if spec.get("samples") else None
            answer = tflm.lut_one(model, spec["row"], int(spec["arena"]), samples)
            measure.write_whole(spec["out"], json.dumps(answer).encode())
        elif spec["op"] == "lut_all":
            samples = np.load(spec["samples"]) if spec.get("samples") else None
            found = tflm.lut_all(model, spec["rows"], int(spec["arena"]), samples)
            if found["model"] is not None:
                measure.write_whole(spec["model_out"], found["model"])
            answer = {"arena_bytes": found["arena"], "host_latency_ms": found["latency"]}
            measure.write_whole(spec["out"], json.dumps(answer).encode())
        elif spec["op"] == "predict":
            outputs = tflm.predict(model, np.load(spec["inputs"]), int(spec["arena"]))
            buffer = io.BytesIO()
            np.save(buffer, outputs)
            measure.write_whole(spec["out"], buffer.getvalue())
        else:
            return {"error": f"unknown request {spec['op']!r}"}
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one message
        lines = str(exc).strip().splitlines()
        return {"error": f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")}


def _import_runtime() -> None:
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401 - imported while the parent works


if __name__ == "__main__":
    sys.exit(serve(handle, _import_runtime))
