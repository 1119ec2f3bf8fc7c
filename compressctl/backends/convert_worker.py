"""Child process that runs TFLite conversions, one JSON request per line on stdin.

The converter can kill its process (a calibrated int8 conversion of a GRU segfaulted), so the
pipeline converts here, in a process of its own, and turns a crash into a message. The worker
stays warm between requests (TensorFlow is imported once) and is restarted after a crash.
Each request writes request["out"] whole or not at all and answers {"ok": true} or {"error": ...}.
An int8 request may carry ``quantization`` {``layer_errors``: bool, ``float_nodes``: [tensor names]}:
the answer then adds ``quantization`` {``layer_errors``: [...]} (see litert/quant_debug.py).
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

from compressctl.core import measure
from compressctl.core.internals import tensorflow as tf_internals


def build_converter(tf, spec: dict):
    converter = tf.lite.TFLiteConverter.from_saved_model(spec["saved_model"])
    mode = spec["mode"]
    optimizations = []
    if mode in ("dynamic", "int8", "float16"):
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if spec.get("sparsity"):
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if spec.get("per_tensor_dense"):
        # One scale per Dense kernel instead of one per output channel: the quantized FULLY_CONNECTED
        # then keeps an op version older runtimes know (see compressctl/litert/compat.py).
        tf_internals.per_tensor_dense(converter)
    if mode == "int8":
        samples = np.load(spec["calibration"]).astype(spec.get("input_dtype", "float32"))

        def representative_dataset():
            for k in range(len(samples)):
                yield [samples[k : k + 1]]

        converter.representative_dataset = representative_dataset
        if spec.get("integer_only"):
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_dtype = spec.get("io_dtype", "float32")
        if io_dtype != "float32":
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def _debug(tf, spec: dict):
    from compressctl.litert.quant_debug import debug_conversion

    samples = np.load(spec["calibration"]).astype(spec.get("input_dtype", "float32"))
    return debug_conversion(tf, spec, lambda: build_converter(tf, spec), samples)


def handle(spec: dict) -> dict:
    """Run one conversion; never raises."""
    try:
        from compressctl.core.env import tf

        answer = {"ok": True}
        flatbuffer = None
        options = spec.get("quantization") if spec["mode"] == "int8" else None
        if options and options.get("float_nodes"):
            # Ops kept in float on purpose (issue 10, litert/selective.py): litert/quant_debug.py quantizes the
            # calibrated model with them denylisted, and measures the layer-wise error of the rest.
            flatbuffer, answer["quantization"] = _debug(tf(), spec)
        elif options and options.get("layer_errors"):
            # The artifact and its layer-wise error from one calibration where quant_debug can;
            # if the analysis fails, the plain conversion still writes the artifact.
            try:
                flatbuffer, answer["quantization"] = _debug(tf(), spec)
            except Exception as exc:  # noqa: BLE001 - the report says why there is no table
                answer["quantization"] = {"error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}
            if flatbuffer is None:
                flatbuffer = build_converter(tf(), spec).convert()
        else:
            flatbuffer = build_converter(tf(), spec).convert()
        measure.write_whole(spec["out"], flatbuffer)
        return answer
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one message
        return {"error": converter_message(exc)}


_MLIR_OP = re.compile(r"'((?:tfl|tf|stablehlo|vhlo)\.\w+)' op ([^:!\n]+)")
_MLIR_LOC = re.compile(r'fused\["[^"]*",\s*"([^"@]+)')


def converter_message(exc: BaseException) -> str:
    """One readable line for a converter failure: each failing op with the layer it came from and why.

    The converter's MLIR diagnostics repeat one error with call-site locations; this keeps
    ``op 'tfl.average_pool_2d' (layer pool2_pool): quantization parameters violate the same scale
    constraint`` and drops the location dump. Other failures keep their first error lines.
    """
    text = str(exc).strip()
    found = []
    for line in text.splitlines():
        op = _MLIR_OP.search(line)
        if not op:
            continue
        where = _MLIR_LOC.search(line)
        layer = ""
        if where:
            parts = where.group(1).split("/")
            name = parts[-2] if len(parts) > 1 else parts[0]
            layer = f" (layer {name.removeprefix('quant_')})"
        item = f"op '{op.group(1)}'{layer}: {op.group(2).strip()}"
        if item not in found:
            found.append(item)
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        return f"{type(exc).__name__}: " + "; ".join(found[:3]) + more
    lines = [line for line in text.splitlines() if "error:" in line.lower()] or text.splitlines()[:1]
    message = "; ".join(line.strip()[:300] for line in lines[:3]) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def _import_tensorflow() -> None:
    from compressctl.core.env import tf

    tf()


def serve(handler=handle, warm=_import_tensorflow) -> int:
    # Answers go to a private copy of stdout; anything else printed (C++ included) goes to the log.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    warm()  # import while the parent is still loading its model
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if line.strip():
            answers.write(json.dumps(handler(json.loads(line))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(serve())
