"""Load and invoke one .tflite file in another TFLite runtime; print one JSON line.

Run as a script by that runtime's own Python (e.g. the isolated ``.venv-tflite-runtime`` that
``make runtime-check`` builds, with tflite-runtime 2.14 and NumPy < 2): it imports only the
standard library, NumPy and the runtime, never compressctl's dependencies. One file per process,
so a runtime that crashes on a model takes only that check with it.

    python runtime_probe.py MODEL.tflite   →   {"runtime": "tflite-runtime 2.14.0", "loads": true, "error": null}
"""

import json
import sys


def _runtime():
    try:
        from importlib import metadata

        from tflite_runtime import interpreter

        return interpreter, f"tflite-runtime {metadata.version('tflite-runtime')}"
    except ImportError:
        from importlib import metadata

        from ai_edge_litert import interpreter

        return interpreter, f"ai-edge-litert {metadata.version('ai-edge-litert')}"


def probe(path: str) -> dict:
    import numpy as np

    module, name = _runtime()
    try:
        interpreter = module.Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            dtype = detail["dtype"]
            if np.issubdtype(dtype, np.integer):
                sample = np.zeros(detail["shape"], dtype)
            else:
                sample = np.random.default_rng(0).random(detail["shape"]).astype(dtype)
            interpreter.set_tensor(detail["index"], sample)
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            output = interpreter.get_tensor(detail["index"])
            if np.issubdtype(output.dtype, np.floating) and not np.all(np.isfinite(output)):
                raise ValueError("non-finite output")
        return {"runtime": name, "loads": True, "error": None}
    except Exception as exc:  # noqa: BLE001 - the answer is the message
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        return {"runtime": name, "loads": False, "error": lines[0] if lines else type(exc).__name__}


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
