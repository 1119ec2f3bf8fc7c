"""Layer-wise quantization error: how far each quantized op's output is from the float op's.

Two ways, both measured on real samples:

- ``debug_conversion`` runs inside the conversion worker (it needs the TFLite converter): the
  model is calibrated once, quantized with TFLite's NumericVerify instrumentation
  (``tf.lite.experimental.QuantizationDebugger``), and each quantized op's dequantized output is
  compared with the same op computed in float **on the same (dequantized) inputs**: the error an op
  adds by itself. The same calibrated model, quantized with some ops denylisted (kept in float),
  is what selective quantization writes (see ``selective.py``).
- ``compare_tensors`` needs only two .tflite files (``compressctl eval --layers``): the float32
  baseline and the quantized artifact run side by side through the interpreter, and every tensor
  that both have under one name is compared: the error accumulated up to that tensor.

Both give per op ``snr_db`` (10·log10 of float signal power over error power) and ``rmse`` (in the
tensor's float units), worst (lowest SNR) first.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from compressctl.core.internals import litert as litert_internals
from compressctl.core.internals import tensorflow as tf_internals

# Calibrated (not yet quantized) models, keyed by what they were calibrated from: selective
# quantization re-quantizes the same calibration with different ops kept in float.
_CALIBRATED: dict[tuple, bytes] = {}

# Ops that only move data between float and integer: never "kept in float" in a meaningful sense.
_TRANSIT_OPS = {"QUANTIZE", "DEQUANTIZE"}


def _snr_db(signal: float, error: float) -> float:
    if error <= 0:
        return 200.0  # exact: a finite stand-in for +inf that JSON can carry
    if signal <= 0:
        return -200.0
    return round(10 * math.log10(signal / error), 3)


def _calibrated_model(tf, spec: dict, make_converter) -> bytes:
    digest = hashlib.sha256(Path(spec["calibration"]).read_bytes()).hexdigest()
    # Every option build_converter reads that changes the calibrated graph is in the key: a sparse
    # request's calibration quantized for the dense fallback that follows wrote a model with no ops.
    flags = tuple(bool(spec.get(k)) for k in ("integer_only", "sparsity", "per_tensor_dense"))
    key = (spec["saved_model"], digest, spec.get("io_dtype"), *flags)
    if key not in _CALIBRATED:
        _CALIBRATED.clear()
        converter = make_converter()
        converter.experimental_new_quantizer = True
        tf_internals.calibrate_only(converter)
        _CALIBRATED[key] = converter.convert()
    return _CALIBRATED[key]


def _quantize(tf, calibrated: bytes, spec: dict, float_nodes: list[str], verify: bool) -> bytes:
    io_dtype = spec.get("io_dtype", "float32")
    kwargs = {}
    if io_dtype != "float32":
        kwargs = {"input_data_type": getattr(tf, io_dtype), "output_data_type": getattr(tf, io_dtype)}
    return tf_internals.mlir_quantize(
        calibrated,
        fully_quantize=io_dtype != "float32",
        enable_numeric_verify=verify,
        denylisted_nodes=list(float_nodes) or None,
        # The converter's own per-tensor Dense option (tf_internals.per_tensor_dense) is not seen here.
        disable_per_channel_for_dense_layers=bool(spec.get("per_tensor_dense")),
        **kwargs,
    )


def debug_conversion(tf, spec: dict, make_converter, samples: np.ndarray) -> tuple[bytes | None, dict]:
    """In the worker: the artifact (when float ops are asked for) and the layer-wise error.

    Returns ``(flatbuffer, info)``: ``flatbuffer`` is None when the plain conversion should write
    the artifact (no op kept in float); ``info`` has ``layer_errors`` (when asked for).
    """
    options = spec.get("quantization") or {}
    float_nodes = list(options.get("float_nodes") or [])
    calibrated = _calibrated_model(tf, spec, make_converter)
    # One calibration serves the artifact and its error table when the converter would quantize
    # the same way (float I/O, builtin ops, no sparse encoding): the converter's own int8 path is
    # this calibration followed by this quantizer, plus its metadata.
    plain = spec.get("io_dtype", "float32") == "float32" and not spec.get("integer_only") and not spec.get("sparsity")
    flatbuffer = _quantize(tf, calibrated, spec, float_nodes, verify=False) if float_nodes or plain else None
    info: dict = {}
    if options.get("layer_errors"):
        info["layer_errors"] = _layer_errors(tf, _quantize(tf, calibrated, spec, float_nodes, verify=True), samples)
    return flatbuffer, info


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    from compressctl.litert.interpreter import quantize_input as quantize

    return quantize(x, detail)


class _ErrorAccumulator:
    """Per-channel (last axis) float signal power and error power, summed over samples."""

    def __init__(self):
        self.signal: dict[str, np.ndarray] = {}
        self.error: dict[str, np.ndarray] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, reference: np.ndarray, approximate: np.ndarray) -> None:
        f = np.asarray(reference, np.float64)
        q = np.asarray(approximate, np.float64)
        if f.shape != q.shape:
            return
        channels = f.shape[-1] if f.ndim >= 2 else 1
        f, q = f.reshape(-1, channels), q.reshape(-1, channels)
        signal, error = np.sum(f**2, axis=0), np.sum((f - q) ** 2, axis=0)
        if name in self.signal:
            self.signal[name] += signal
            self.error[name] += error
            self.count[name] += len(f)
        else:
            self.signal[name], self.error[name], self.count[name] = signal, error, len(f)

    def row(self, name: str, op: str) -> dict:
        """SNR averaged over channels (so a channel of small values that quantizes to zero counts as much
        as a large one), and the RMSE over all values."""
        signal, error, count = self.signal[name], self.error[name], self.count[name]
        live = signal > 0
        if not live.any():
            snr = _snr_db(0.0, float(error.sum()))
        else:
            relative = float(np.mean(error[live] / signal[live]))
            snr = _snr_db(1.0, relative)
        rmse = math.sqrt(float(error.sum()) / (count * len(signal)))
        return {"name": name, "op": op, "snr_db": snr, "rmse": round(rmse, 6)}


def _layer_errors(tf, debug_model: bytes, samples: np.ndarray) -> list[dict]:
    """Run the NumericVerify-instrumented model: each verify op holds the quantized op's output and
    the float op's output on the same inputs."""
    interpreter = tf.lite.Interpreter(
        model_content=debug_model,
        experimental_preserve_all_tensors=True,
        # Without delegates, every op stays an op of its own (XNNPACK would fuse them into one node).
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    ops = tf_internals.interpreter_ops(interpreter)  # the NumericVerify ops are in no public listing
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    producer = {int(t): op["op_name"] for op in ops for t in op["outputs"]}
    verify = [op for op in ops if op["op_name"] == "NumericVerify"]
    detail = interpreter.get_input_details()[0]
    acc = _ErrorAccumulator()
    names = {}
    for k in range(len(samples)):
        interpreter.set_tensor(detail["index"], quantize_input(samples[k : k + 1], detail))
        interpreter.invoke()
        for op in verify:
            q_index, f_index = int(op["inputs"][0]), int(op["inputs"][1])
            q = tensors[q_index]
            scale, zero_point = q["quantization"]
            dequantized = (interpreter.get_tensor(q_index).astype(np.float64) - zero_point) * (scale or 1.0)
            # The instrumented model appends a digit to each quantized tensor's name; the quantizer's
            # denylist takes the name without it (the QuantizationDebugger's own convention).
            name = q["name"][:-1] if q["name"][-1:].isdigit() else q["name"]
            names[name] = producer.get(q_index, "?")
            acc.add(name, interpreter.get_tensor(f_index), dequantized)
    rows = [acc.row(name, op) for name, op in names.items()]
    return sorted(rows, key=lambda r: (r["snr_db"], -r["rmse"]))


def _constants(interpreter) -> set[int]:
    """Indices of tensors no op writes and the model does not take as input: weights and biases."""
    written = {int(t) for op in litert_internals.ops_details(interpreter) for t in op["outputs"]}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    return {d["index"] for d in interpreter.get_tensor_details() if d["index"] not in written | inputs}


def float_ops(path: str | Path, kept: dict[str, str] | None = None) -> list[dict]:
    """Ops of a quantized artifact that compute in float, each with the reason it is float.

    ``kept`` maps output tensor names that were kept in float on purpose to the reason.
    """
    from compressctl.litert import interpreter as runtime

    kept = kept or {}
    interpreter = runtime.load_interpreter(path, xnnpack=False)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    constants = _constants(interpreter)
    rows = []
    for op in litert_internals.ops_details(interpreter):  # the public API lists tensors, not ops
        if op["op_name"] in _TRANSIT_OPS or not len(op["outputs"]):
            continue
        out = tensors.get(int(op["outputs"][0]))
        if out is None or out["dtype"] != np.float32:
            continue
        weights = [tensors[int(i)] for i in op["inputs"] if int(i) in constants and int(i) in tensors]
        if out["name"] in kept:
            reason = kept[out["name"]]
        elif any(w["dtype"] in (np.int8, np.int16) for w in weights):
            reason = "int8 weights, float activations (dynamic-range kernel)"
        else:
            reason = "left in float by the converter (no int8 kernel used or no calibrated range)"
        rows.append({"name": out["name"], "op": op["op_name"], "reason": reason})
    return rows


# Tensor types that hold weights (INT32/INT64 constants are shapes, indices and int8 biases).
_WEIGHT_TYPES = {"FLOAT32", "FLOAT16", "INT8", "UINT8", "INT16", "INT4"}
# The TFLite converter's dynamic-range pass leaves tensors with fewer values than this in float.
DYNAMIC_MIN_ELEMENTS = 1024


def weight_precision(path: str | Path) -> list[dict]:
    """Every weight tensor of an artifact, in every subgraph (a recurrent layer's loop body too).

    Rows: ``name``, ``dtype``, ``elements``, ``bytes``, ``subgraph`` (0 is the main graph). Read
    from the flatbuffer itself, since the interpreter lists the main subgraph's tensors only.
    """
    from ai_edge_litert import schema_py_generated as schema

    data = Path(path).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    rows = []
    for index, subgraph in enumerate(model.subgraphs or []):
        for tensor in subgraph.tensors or []:
            buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
            if buffer is None:
                continue
            size = len(buffer.data) if buffer.data is not None else int(buffer.size or 0)
            dtype = type_names.get(tensor.type, str(tensor.type))
            elements = int(np.prod(tensor.shape)) if tensor.shape is not None and len(tensor.shape) else 1
            if not size or dtype not in _WEIGHT_TYPES or elements <= 8:
                continue
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            rows.append({"name": name, "dtype": dtype.lower(), "elements": elements, "bytes": size, "subgraph": index})
    return rows


def _why_float(weight: dict, scheme: str) -> str:
    where = "in a recurrent layer's loop subgraph, " if weight["subgraph"] > 0 else ""
    if scheme.startswith("dynamic") and weight["elements"] < DYNAMIC_MIN_ELEMENTS:
        # Measured: a GRU(64)'s 12,288-value recurrent kernel in the loop body is quantized; its
        # 768-value input kernel is not.
        return f"{where}{weight['elements']} values: dynamic-range quantization skips tensors under 1,024"
    if scheme.startswith("dynamic"):
        # Measured on a GRU(64) after QAT: the converter quantizes only the layers QAT annotated,
        # and QAT leaves recurrent layers unannotated (stages/quantize.py).
        return f"{where}not quantized by the converter (after QAT it quantizes only the layers QAT annotated)"
    return f"{where}not quantized by the converter"


def float_weight_summary(path: str | Path, scheme: str) -> tuple[float, str]:
    """The share of an artifact's weight bytes still float32, and a line naming the largest of them and why."""
    weights = weight_precision(path)
    total = sum(w["bytes"] for w in weights)
    floats = sorted((w for w in weights if w["dtype"] == "float32"), key=lambda w: -w["bytes"])
    float_bytes = sum(w["bytes"] for w in floats)
    names = "; ".join(f"{w['name']} ({w['bytes']:,} B: {_why_float(w, scheme)})" for w in floats[:4])
    more = f"; and {len(floats) - 4} more" if len(floats) > 4 else ""
    return (float_bytes / total if total else 0.0), (
        f"{float_bytes:,} of {total:,} weight bytes in float32: {names}{more}" if floats else ""
    )


def compare_tensors(float_path: str | Path, quant_path: str | Path, x: np.ndarray, samples: int = 100) -> list[dict]:
    """Float vs quantized artifact, tensor by tensor (same names), on up to ``samples`` inputs."""
    from compressctl.litert import interpreter as runtime

    module, _ = runtime.interpreter_module()

    def load(path):
        interpreter = module.Interpreter(
            model_path=str(path),
            experimental_preserve_all_tensors=True,
            # Without delegates every op keeps its own output tensor (XNNPACK fuses them away).
            experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        return interpreter

    f_int, q_int = load(float_path), load(quant_path)
    f_ops = {int(op["outputs"][0]): op["op_name"] for op in litert_internals.ops_details(f_int) if len(op["outputs"])}
    q_ops = {int(op["outputs"][0]): op["op_name"] for op in litert_internals.ops_details(q_int) if len(op["outputs"])}
    f_named = {d["name"]: d for d in f_int.get_tensor_details() if d["index"] in f_ops}
    q_named = {d["name"]: d for d in q_int.get_tensor_details() if d["index"] in q_ops}
    pairs = [(name, f_named[name], q) for name, q in q_named.items() if name in f_named]
    acc = _ErrorAccumulator()
    for k in range(min(samples, len(x))):
        for interpreter in (f_int, q_int):
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], runtime.quantize_input(x[k : k + 1], detail))  # noqa: SLF001
            interpreter.invoke()
        for name, fd, qd in pairs:
            quantized = runtime.dequantize_output(q_int.get_tensor(qd["index"]), qd)
            acc.add(name, f_int.get_tensor(fd["index"]), quantized)
    rows = [
        acc.row(name, q_ops[qd["index"]])
        for name, _, qd in pairs
        if q_ops[qd["index"]] not in _TRANSIT_OPS and name in acc.signal
    ]
    return sorted(rows, key=lambda r: (r["snr_db"], -r["rmse"]))


def format_table(rows: list[dict], limit: int | None = None) -> list[str]:
    """The layer-error table as aligned text lines (worst first)."""
    shown = rows[:limit] if limit else rows
    width = max([len(r["name"][:60]) for r in shown] + [5])
    lines = [f"{'layer':<{width}}  {'op':<18}  {'SNR dB':>8}  {'RMSE':>10}"]
    for r in shown:
        lines.append(f"{r['name'][:60]:<{width}}  {r['op']:<18}  {r['snr_db']:>8.2f}  {r['rmse']:>10.4g}")
    return lines


def not_smaller_note(path: str | Path, ratio: float, scheme: str) -> str | None:
    """A note when a quantized artifact is under 1.5× smaller than float32: which weights stayed float, and why."""
    if ratio >= 1.5:
        return None
    _, summary = float_weight_summary(path, scheme)
    if not summary:
        total = sum(w["bytes"] for w in weight_precision(path))
        return (
            f"{scheme} artifact only {ratio:.2f}× smaller than float32: every weight is quantized, but the weights "
            f"are {total:,} bytes of the file; the rest is the model's structure and metadata"
        )
    summary = summary.replace(" in float32:", " stayed float32:")
    return f"{scheme} artifact only {ratio:.2f}× smaller than float32: {summary}"


def metric_loss_note(quantization: dict, metric: str, baseline: float, value: float, target_type: str) -> str | None:
    """A note when a quantized artifact lost much of the metric: its worst layers, and what would help.

    Much: over 5 points of an accuracy-like metric, or a fifth of the baseline's value of an error metric.
    """
    from compressctl.core.metrics import drop, format_delta, is_fraction

    lost = drop(metric, baseline, value)
    if not quantization.get("scheme") or lost <= (0.05 if is_fraction(metric) else 0.2 * abs(baseline)):
        return None
    errors = [e if isinstance(e, dict) else e.model_dump() for e in quantization.get("layer_errors") or []]
    worst = [e for e in errors if e.get("snr_db") is not None][:3]
    where = ", ".join(f"{e['name']} ({e['op']}, SNR {e['snr_db']:.1f} dB)" for e in worst)
    where = f"; largest quantization errors at {where}" if where else ""
    if quantization.get("selective"):
        advice = "selective quantization could not bring it within its budget"
    elif target_type == "edgetpu":
        advice = (
            "the Edge TPU runs int8 ops only, so inputs of very different scales (raw tabular features, say) lose "
            "most: scale them before the model, or use a cpu target, whose int8 keeps such ops float within a "
            "max_metric_drop"
        )
    else:
        advice = "set max_metric_drop (in gates or on the target) and int8 keeps the worst ops float until within it"
    change = format_delta(metric, value - baseline)
    return f"{quantization['scheme']} artifact changed {metric} by {change} against the baseline{where}; {advice}"


def eval_layers(artifact: Path, baseline: str | None, x: np.ndarray, samples: int = 100) -> dict:
    """``compressctl eval --layers``: the artifact against its float32 baseline, tensor by tensor.

    The baseline is ``--baseline``, else the run directory's ``baseline/model_float32.tflite``
    beside the artifact's folder.
    """
    from compressctl.core.errors import UserError

    if baseline:
        float_path = Path(baseline)
        if not float_path.is_file():
            raise UserError(f"{baseline}: --baseline: file not found")
    else:
        float_path = artifact.resolve().parent.parent / "baseline" / "model_float32.tflite"
        if not float_path.is_file():
            raise UserError(
                f"{artifact}: --layers needs the float32 baseline; none at ../baseline/model_float32.tflite "
                "beside the artifact: pass --baseline FILE"
            )
    rows = compare_tensors(float_path, artifact, x, samples)
    return {
        "baseline": str(float_path),
        "samples": int(min(samples, len(x))),
        "method": "float32 baseline vs artifact through the interpreter, tensors of the same name (error "
        "accumulated up to each tensor), on test samples",
        "layer_errors": rows,
    }
