"""The TFLite interpreter: LiteRT (ai-edge-litert) first, tflite-runtime as a fallback for edge boards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compressctl.core.errors import StageError, UserError
from compressctl.core.internals import litert as litert_internals


def interpreter_module():
    try:
        from ai_edge_litert import interpreter as module

        return module, "ai-edge-litert"
    except ImportError:  # pragma: no cover - exercised on boards without LiteRT
        try:
            from tflite_runtime import interpreter as module

            return module, "tflite-runtime"
        except ImportError:
            raise UserError("no TFLite runtime found: install ai-edge-litert (or tflite-runtime)") from None


def runtime_name() -> str:
    return interpreter_module()[1]


def load_interpreter(path: str | Path, threads: int = 1, xnnpack: bool = True):
    """An allocated interpreter for a .tflite file (XNNPACK on unless ``xnnpack`` is False)."""
    module, _ = interpreter_module()
    kwargs = {"model_path": str(path), "num_threads": threads}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = module.Interpreter(**kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise StageError(f"{path}: the TFLite interpreter could not load this model: {exc}") from None
    return interpreter


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8, np.int16):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    y = y.astype(np.float32)
    if detail["dtype"] in (np.int8, np.uint8, np.int16):
        scale, zero_point = detail["quantization"]
        y = (y - zero_point) * scale
    return y


def predict(interpreter, x: np.ndarray) -> np.ndarray:
    """Run samples one at a time (the artifacts have batch 1) and return float outputs."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for k in range(len(x)):
        interpreter.set_tensor(inp["index"], quantize_input(x[k : k + 1], inp))
        interpreter.invoke()
        results.append(dequantize_output(interpreter.get_tensor(out["index"]), out)[0])
    return np.asarray(results)


def smoke_test(path: str | Path, sample: np.ndarray, threads: int = 1) -> dict:
    """Load and invoke once, with and without XNNPACK; report what works.

    An artifact is only called good once it has run. Returns ``{"xnnpack": bool, "reference": bool,
    "error": str | None}``; raises StageError when it runs under neither.
    """
    status = {"xnnpack": False, "reference": False, "error": None}
    for key, xnnpack in (("xnnpack", True), ("reference", False)):
        try:
            interpreter = load_interpreter(path, threads=threads, xnnpack=xnnpack)
            output = predict(interpreter, sample[:1])
            if not np.all(np.isfinite(output)):
                raise StageError(f"{path}: produced non-finite output")
            status[key] = True
        except (StageError, ValueError, RuntimeError) as exc:
            status["error"] = str(exc)
    if not (status["xnnpack"] or status["reference"]):
        raise StageError(f"{path}: the artifact does not run in the TFLite interpreter: {status['error']}")
    return status


def tensor_types(path: str | Path) -> dict:
    """Input/output dtypes and the set of op names of a .tflite file."""
    interpreter = load_interpreter(path, xnnpack=False)
    ops = sorted({op["op_name"] for op in litert_internals.ops_details(interpreter)})
    return {
        "input_dtype": np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
        "output_dtype": np.dtype(interpreter.get_output_details()[0]["dtype"]).name,
        "ops": ops,
    }
