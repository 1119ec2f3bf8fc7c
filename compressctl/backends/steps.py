"""What the pipeline asks of a target's backend and runtime: the conversions to try, the LiteRT
Quantizer run, and each artifact's runtime and quantization record.

Kept apart from run/building.py so building a target there stays one loop over conversions.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from compressctl.core.errors import StageError
from compressctl.core.events import Event
from compressctl.litert import compat as runtime_compat


def requirement(target):
    return getattr(target.params, "runtime", None)


def conversions_for(target) -> list:
    return runtime_compat.within(target.conversions(), requirement(target))


def needs_calibration(conversion) -> bool:
    from compressctl.backends import litert_quantizer

    if conversion.backend == litert_quantizer.NAME:
        return conversion.mode in litert_quantizer.CALIBRATED
    return conversion.mode == "int8"


def float_tflite(ctx, saved_model: Path) -> Path:
    """The float TFLite file the LiteRT Quantizer starts from: the baseline when no stage changed
    the model, else the compressed model converted to float32 once per run."""
    from compressctl.report.record import BASELINE_ARTIFACT

    if saved_model.name == "baseline_savedmodel":
        return ctx.staging / BASELINE_ARTIFACT
    if ctx.float_tflite is None:
        out = ctx.work / "final_float32.tflite"
        ctx.emit(Event("step", "converting the compressed model to float32 TFLite for the LiteRT Quantizer"))
        ctx.converter.convert(saved_model, out, "float32", ctx.work)
        ctx.float_tflite = out
    return ctx.float_tflite


def quantize(ctx, conversion, saved_model: Path, out: Path, calibration) -> Path:
    from compressctl.backends.litert_quantizer import CALIBRATED, LitertQuantizer

    source = float_tflite(ctx, saved_model)
    if ctx.quantizer is None:
        ctx.quantizer = LitertQuantizer()
    return ctx.quantizer.quantize(
        source,
        out,
        conversion.mode,
        conversion.options,
        ctx.work,
        calibration=calibration if conversion.mode in CALIBRATED else None,
    )


# A converter dynamic-range artifact with more than this share of its weight bytes in float32 is
# quantized again by the LiteRT Quantizer (requantize_dynamic).
FLOAT_SHARE = 0.5


def requantize_dynamic(ctx, target, conversion, saved_model: Path, path: Path, probe):
    """The TFLite converter's dynamic-range pass leaves weights in float32 that the LiteRT Quantizer
    quantizes: tensors under 1,024 values, and in a quantization-aware-trained model every layer QAT
    did not annotate (a recurrent layer's loop body). When over half of the artifact's weight bytes
    stayed float32, the LiteRT Quantizer's dynamic int8 quantizes the float model again; its file
    replaces ``path`` when it is smaller and ``probe(file)`` finds that it runs.

    Returns ``(conversion, note)``: the conversion that wrote ``path`` now, and one line for the
    report (None when nothing was tried).
    """
    from dataclasses import replace

    from compressctl.backends import litert_quantizer
    from compressctl.litert.quant_debug import float_weight_summary

    share, summary = float_weight_summary(path, conversion.mode)
    if share <= FLOAT_SHARE:
        return conversion, None
    left = f"the TFLite converter's dynamic-range pass left {summary}"
    if requirement(target) is not None:
        required = requirement(target).label
        return conversion, f"{left}; not re-quantized with the LiteRT Quantizer: the target requires {required}"
    candidate = path.with_name("requantized.tflite")
    again = replace(
        conversion,
        backend=litert_quantizer.NAME,
        options=litert_quantizer.Options().model_dump(),
        label=f"{conversion.label}, re-quantized by the LiteRT Quantizer",
    )
    ctx.emit(Event("step", f"{target.name}: {left}; quantizing again with the LiteRT Quantizer"))
    try:
        quantize(ctx, again, saved_model, candidate, None)
        problem = probe(candidate)
    except StageError as exc:
        problem = str(exc)
    if problem is None and candidate.stat().st_size >= path.stat().st_size:
        problem = f"its file was not smaller ({candidate.stat().st_size:,} bytes)"
    if problem:
        candidate.unlink(missing_ok=True)
        return conversion, f"{left}; the LiteRT Quantizer's dynamic int8 was tried and not kept: {problem}"
    before = path.stat().st_size
    candidate.replace(path)
    return again, (
        f"{left}; re-quantized by the LiteRT Quantizer's dynamic int8, which quantizes every weight tensor: "
        f"{before:,} → {path.stat().st_size:,} bytes"
    )


def _quantization_record(conversion, path: Path) -> dict:
    from compressctl.backends import litert_quantizer

    if conversion.backend == litert_quantizer.NAME:
        options = litert_quantizer.Options(**conversion.options)
        try:
            floats = litert_quantizer.check_quantized(path, conversion.options)
        except ValueError as exc:
            raise StageError(str(exc)) from None
        return {
            "backend": litert_quantizer.NAME,
            "scheme": litert_quantizer.scheme_label(conversion.mode, options),
            "float_ops": floats,
        }
    scheme = litert_quantizer.scheme_name(conversion.mode)  # the one table of scheme labels
    if conversion.per_tensor_dense:
        scheme += ", per-tensor Dense weights"
    return {"backend": "converter", "scheme": scheme}


def tflite_runtime_python() -> str | None:
    """The Python of an isolated tflite-runtime install, when one is at hand.

    ``COMPRESSCTL_TFLITE_RUNTIME_PYTHON`` names it; otherwise ``.venv-tflite-runtime`` in the
    working directory (what ``make runtime-check`` builds) is used when it exists.
    """
    named = os.environ.get("COMPRESSCTL_TFLITE_RUNTIME_PYTHON")
    if named:
        return named
    local = Path(".venv-tflite-runtime/bin/python")
    return str(local) if local.exists() else None


def describe_artifact(target, conversion, path: Path, status: dict, emit) -> dict:
    """report.json's ``runtime`` and ``quantization`` for one artifact; a StageError when the
    artifact cannot run on the runtime the target requires (the next conversion is then tried)."""
    quantization = _quantization_record(conversion, path)
    name = runtime_name_version()
    checked = [{"runtime": name, "loads": bool(status["xnnpack"] or status["reference"]), "error": status["error"]}]
    required = requirement(target)
    record = runtime_compat.describe(path, checked)
    if required is not None:
        record["required"] = required.label
        if required.package == "tflite-runtime":
            python = tflite_runtime_python()
            if python:
                emit(Event("step", f"{target.name}: loading the artifact with {required.label} ({python})"))
                record["checked"].append(runtime_compat.probe(path, python))
            else:
                record["note"] = (
                    "no tflite-runtime at hand: checked against the op-version table only "
                    "(`make runtime-check` loads it for real)"
                )
        problem = runtime_compat.requirement_problem(record, required)
        if problem:
            raise StageError(problem)
    if conversion.backend != "converter":
        record["note"] = (
            "the LiteRT Quantizer writes version 1 for every op, whatever its types need: the versions here "
            "follow the tensor types where TFLite numbers INT4 kernels (`declared` keeps the file's), and only "
            "a real load (`checked`) proves the rest"
        )
    return {"runtime": record, "quantization": quantization}


def runtime_name_version() -> str:
    from compressctl.litert.interpreter import runtime_name

    name = runtime_name()
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:  # pragma: no cover
        return name
