"""Child process that runs TFLite conversions, one JSON request per line on stdin.

The converter can kill its process (a calibrated int8 conversion of a GRU segfaulted), so the
pipeline converts here, in a process of its own, and turns a crash into a message. The worker
stays warm between requests (TensorFlow is imported once) and is restarted after a crash.
Each request writes request["out"] whole or not at all and answers {"ok": true} or {"error": ...}.
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
    if spec.get("per_tensor_dense"):
        # One scale per Dense kernel instead of one per output channel: the quantized FULLY_CONNECTED
        # then keeps an op version older runtimes know (see compressctl/runtime_compat.py).
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
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


def handle(spec: dict) -> dict:
    """Run one conversion; never raises."""
    try:
        from compressctl.tfenv import tf

        flatbuffer = build_converter(tf(), spec).convert()
        tmp = spec["out"] + ".part"
        with open(tmp, "wb") as f:
            f.write(flatbuffer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, spec["out"])
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one message
        text = str(exc).strip()
        lines = [line for line in text.splitlines() if "error:" in line.lower()] or text.splitlines()[:1]
        message = "; ".join(line.strip() for line in lines[:3]) or type(exc).__name__
        return {"error": f"{type(exc).__name__}: {message}"}


def _import_tensorflow() -> None:
    from compressctl.tfenv import tf

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
