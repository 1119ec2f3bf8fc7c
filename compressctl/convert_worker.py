"""Child process that runs one TFLite conversion.

The converter can kill its process (a calibrated int8 conversion of a GRU segfaulted), so the
pipeline runs each conversion here, in a process of its own, and turns a crash into a message.
Usage: ``python -m compressctl.convert_worker SPEC.json``; writes SPEC["out"] whole or not at all,
and on a Python-level failure writes {"error": ...} to SPEC["result"] and exits 1.
"""

from __future__ import annotations

import json
import os
import sys


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
    if mode == "int8":
        import numpy as np

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


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    try:
        from compressctl.tfenv import tf

        tensorflow = tf()
        flatbuffer = build_converter(tensorflow, spec).convert()
        tmp = spec["out"] + ".part"
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, spec["out"])
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one message
        text = str(exc).strip()
        lines = [line for line in text.splitlines() if "error:" in line.lower()] or text.splitlines()[:1]
        message = "; ".join(line.strip() for line in lines[:3]) or type(exc).__name__
        with open(spec["result"], "w") as f:
            json.dump({"error": f"{type(exc).__name__}: {message}"}, f)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
