"""Building artifacts: the float32 baseline, and each target through its backend's conversions in
order (compressctl/backends/steps.py) until one loads and runs, with its quantization record."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compressctl import targets
from compressctl.core import measure
from compressctl.core.errors import StageError
from compressctl.core.events import Event
from compressctl.litert import interpreter as runtime
from compressctl.report.record import BASELINE_ARTIFACT
from compressctl.run.state import RunState


@dataclass
class Built:
    """One target's artifact as converted and checked, before it is evaluated and timed."""

    path: Path  # the .tflite file in the staging directory
    fields: dict  # the artifact record's conversion facts (target, path, conversion, sizes, ...)
    xnnpack: bool  # whether it runs with XNNPACK (else it is evaluated and timed without)
    target: object = None  # the Target that built it (its ``evaluate`` may measure the metric in its own runtime)


def convert_baseline(ctx: RunState) -> tuple[Path, Path, float, bool]:
    """The float32 baseline: exported SavedModel, TFLite file, Keras metric, whether it runs with XNNPACK."""
    from compressctl.model.loading import export_saved_model

    data, emit = ctx.data, ctx.emit
    # The baseline is exported before any stage runs: stages share (and train) the original layers.
    emit(Event("step", "exporting the float32 baseline"))
    baseline_sm = export_saved_model(ctx.handle, ctx.work / "baseline_savedmodel", data.sample_shape)
    emit(Event("step", f"evaluating the Keras baseline on {data.test_samples} test samples"))
    keras_metric = data.score(ctx.handle.predict, ctx.task)  # streamed batch by batch
    baseline_path = ctx.staging / BASELINE_ARTIFACT
    baseline_path.parent.mkdir()
    emit(Event("step", "converting the baseline to float32 TFLite"))

    def convert():
        ctx.converter.convert(baseline_sm, baseline_path, "float32", ctx.work)

    if ctx.cache is not None:  # search trials share one baseline conversion (a shared cache only)
        ctx.cache.reuse_file("baseline.tflite", baseline_path, convert)
    else:
        convert()
    status = runtime.smoke_test(baseline_path, data.head(1))
    return baseline_sm, baseline_path, keras_metric, status["xnnpack"]


def build_targets(ctx: RunState, saved_model: Path) -> tuple[list[Built], list[dict]]:
    """Every target's artifact; a target that fails is recorded and the others still finish."""
    built, failed = [], []
    for params in ctx.recipe.targets:
        target = targets.build(params)
        target.recipe_name = ctx.recipe.name or Path(ctx.recipe_info.get("path") or "model").stem
        try:
            built.append(_build_target(ctx, target, saved_model))
        except StageError as exc:
            failed.append({"target": target.name, "error": str(exc)})
            ctx.emit(Event("warn", f"target {target.name} failed: {exc}"))
    return built, failed


def _build_target(ctx: RunState, target, saved_model: Path) -> Built:
    """Try the target's conversions in order; keep the first artifact that loads and runs.

    The target's folder (``<run>/<target name>/``) is created here and handed to the target's
    ``finish``, the only place a target writes.
    """
    from compressctl.backends import steps as backend_steps

    data, emit = ctx.data, ctx.emit
    folder = ctx.staging / target.name
    folder.mkdir()
    path = folder / "model.tflite"
    tried = []
    calibration = None
    # A target that must run on an older runtime also tries conversions within it (runtime_compat).
    for conversion in backend_steps.conversions_for(target):
        if backend_steps.needs_calibration(conversion) and calibration is None:
            calibration = _calibration_samples(ctx, target)
            target.calibration = calibration
        emit(Event("step", f"converting {target.name}: {conversion.label}"))
        try:
            quantization, notes, requantized = {}, [], None
            if conversion.backend != "converter":
                backend_steps.quantize(ctx, conversion, saved_model, path, calibration)
            else:
                # Full int8 also measures each op's int8 error in the conversion worker (litert/quant_debug.py).
                _convert(ctx, conversion, saved_model, path, calibration if conversion.mode == "int8" else None)
            if conversion.backend == "converter" and conversion.mode == "dynamic":
                # Weights the converter's dynamic-range pass left in float32 (a recurrent layer after QAT,
                # tensors under 1,024 values): the LiteRT Quantizer may quantize them (backends/steps.py).
                def probe(file: Path) -> str | None:
                    return _requantized_problem(ctx, target, file, path)

                conversion, requantized = backend_steps.requantize_dynamic(
                    ctx, target, conversion, saved_model, path, probe
                )
            # Layer errors; ops kept in float while full int8 is over the metric budget (litert/selective.py).
            try:
                quantization, notes = _quantization(ctx, target, conversion, saved_model, path, calibration)
            except StageError:
                raise
            except Exception as exc:  # noqa: BLE001 - the analysis must not cost the run its artifact
                quantization = {"error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}
            if requantized:
                notes.insert(0, requantized)
            if target.params.strip_strings:
                notes.append(_strip(path, data.head(2)))
            status = runtime.smoke_test(path, data.head(1))
            if conversion.sparsity and not status["xnnpack"]:
                # The default interpreter applies XNNPACK, so an artifact that fails there fails for
                # most users even though the reference kernels run it.
                raise StageError(f"it runs only without XNNPACK, the default delegate ({status['error']})")
            # A target may check the artifact further and write companion files into its folder
            # (the Edge TPU target's op mapping and compiled model); what it returns joins the record.
            extra = target.finish(path, folder, emit)
            # Op versions, the oldest runtime that runs them, and the runtimes that ran it (runtime_compat).
            described = backend_steps.describe_artifact(target, conversion, path, status, emit)
        except StageError as exc:
            tried.append(f"{conversion.label}: {exc}")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            emit(Event("warn", f"{target.name}: {conversion.label} failed: {exc}"))
            continue
        undeclared = sorted(set(extra) - set(target.report_fields))
        if undeclared:
            raise TypeError(f"target {target.params.type} returned undeclared report fields {undeclared}")
        fields = {
            "target": target.name,
            "type": target.params.type,
            "path": f"{target.name}/model.tflite",
            "conversion": conversion.label,
            "fallback": ({"reason": conversion.fallback_reason, "tried": tried} if tried else None),
            **measure.file_facts(path),
            "runs_under": {"xnnpack": status["xnnpack"], "reference": status["reference"]},
            **runtime.tensor_types(path),
            **extra,
            "runtime": described["runtime"],
            "notes": notes,
        }
        if conversion.mode != "float32":
            # The converter's own analysis (layer errors, ops kept in float) when it ran, else the backend's.
            fields["quantization"] = {**described["quantization"], **quantization}
            if conversion.per_tensor_dense:  # the backend's scheme names the runtime fallback
                fields["quantization"]["scheme"] = described["quantization"]["scheme"]
        return Built(path=path, fields=fields, xnnpack=status["xnnpack"], target=target)
    shutil.rmtree(folder, ignore_errors=True)
    raise StageError("; ".join(tried) or "no conversion was tried")


def _strip(path: Path, sample: np.ndarray) -> str:
    """Strip ``path``'s debug strings (litert/strip.py), checked to compute exactly what it did before."""
    from compressctl.litert.strip import strip_file

    before = runtime.predict(runtime.load_interpreter(path, xnnpack=False), sample)
    saved = strip_file(path)
    after = runtime.predict(runtime.load_interpreter(path, xnnpack=False), sample)
    if not np.array_equal(before, after):  # pragma: no cover - a flatbuffer rewrite that changed the model
        raise StageError("stripping its tensor names changed the artifact's outputs")
    return f"strip_strings: tensor names and descriptions removed, {saved:,} bytes of the file"


def _calibration_samples(ctx: RunState, target) -> np.ndarray:
    """The train samples an int8 conversion calibrates on, as many as the target asks for."""
    # Each target draws its calibration samples afresh from the seed: a target's artifact does
    # not depend on which targets come before it.
    n = min(target.calibration_size(), ctx.data.train_samples)
    ctx.emit(Event("step", f"calibrating {target.name}: int8 activation ranges from {n} train samples"))
    return ctx.data.calibration(n, ctx.recipe.seed)


def _quantization(ctx: RunState, target, conversion, saved_model: Path, path: Path, calibration) -> tuple[dict, list]:
    """issue 10: ``artifacts[].quantization`` and notes; may re-convert ``path`` with ops kept in float."""
    from compressctl.backends import bit_budget
    from compressctl.backends import steps as backend_steps
    from compressctl.litert import quant_debug, selective

    scheme = {"int8": "int8", "dynamic": "dynamic-range int8", "float16": "float16"}.get(conversion.mode)
    if conversion.mode == "float32":
        return {}, []
    if conversion.backend != "converter" or conversion.mode != "int8":
        # No calibration to debug with: compare the artifact with its float TFLite tensor by tensor (the
        # baseline for the converter, the file the LiteRT Quantizer quantized for that backend).
        converter = conversion.backend == "converter"
        reference = ctx.staging / BASELINE_ARTIFACT if converter else backend_steps.float_tflite(ctx, saved_model)
        chosen, notes = None, []
        budget = selective.budget_for(target, ctx.recipe)
        if budget is not None and bit_budget.applies(conversion):
            # int4 over the budget: its worst ops at 8 bits, as selective int8 keeps them in float.
            chosen, notes = bit_budget.within_budget(ctx, target, conversion, saved_model, path, budget)
        record = {
            "layer_errors": quant_debug.compare_tensors(reference, path, ctx.data.calibration(100, ctx.recipe.seed)),
            "layer_errors_method": f"{'float32 baseline' if converter else 'the float32 TFLite it quantized'} vs "
            "artifact through the interpreter, tensors of the same name (error accumulated up to each tensor), "
            "on train samples",
        }
        if converter:  # float16 computes every op in float by design; dynamic-range lists its float-activation ops
            record.update(
                backend="converter",
                scheme=scheme,
                float_ops=quant_debug.float_ops(path) if conversion.mode == "dynamic" else [],
            )
        if chosen is not None:
            record["selective"] = chosen
        return record, notes
    notes: list[str] = []
    answer = ctx.converter.last_answer
    budget = selective.budget_for(target, ctx.recipe) if conversion.io_dtype == "float32" else None
    chosen = None
    if budget is not None and not conversion.integer_only and not conversion.sparsity:

        def convert(quantization):
            ctx.converter.convert(
                saved_model, path, "int8", ctx.work, calibration=calibration, quantization=quantization
            )
            return ctx.converter.last_answer

        chosen, notes = selective.within_budget(
            convert=convert,
            path=path,
            answer=answer,
            budget=budget,
            baseline_path=ctx.staging / BASELINE_ARTIFACT,
            data=ctx.data,
            task=ctx.task,
            seed=ctx.recipe.seed,
            emit=ctx.emit,
            label=target.name,
        )
        answer = ctx.converter.last_answer
    record = selective.record(path, answer, scheme, selective.kept_reasons(chosen))
    if chosen is not None:
        record["selective"] = chosen
    return record, notes


def _requantized_problem(ctx: RunState, target, candidate: Path, current: Path) -> str | None:
    """Why the LiteRT Quantizer's file may not replace the converter's (None: it may): it must run, and
    stay within the target's metric budget unless the converter's file is over it too."""
    from compressctl.core import metrics
    from compressctl.litert import selective
    from compressctl.litert.evaluate import evaluate_tflite

    runtime.smoke_test(candidate, ctx.data.head(1))
    budget = selective.budget_for(target, ctx.recipe)
    if budget is None:
        return None
    x, y = ctx.data.labeled_sample(selective.SELECTION_SAMPLES, ctx.recipe.seed + 1)
    reference = evaluate_tflite(ctx.staging / BASELINE_ARTIFACT, x, y, ctx.task)

    def drop(path: Path) -> float:
        return metrics.drop(ctx.task.metric, reference, evaluate_tflite(path, x, y, ctx.task))

    worse = drop(candidate)
    if worse <= budget.max_drop or worse <= drop(current):
        return None
    return f"it loses {100 * worse:.2f} points on train samples, over the {100 * budget.max_drop:g}-point budget"


def _convert(ctx: RunState, conversion, saved_model: Path, path: Path, calibration) -> None:
    """Write ``path`` with the backend the conversion names."""
    ctx.converter.convert(
        saved_model,
        path,
        conversion.mode,
        ctx.work,
        calibration=calibration,
        io_dtype=conversion.io_dtype,
        integer_only=conversion.integer_only,
        sparsity=conversion.sparsity,
        per_tensor_dense=conversion.per_tensor_dense,
        quantization={"layer_errors": True} if conversion.mode == "int8" else None,
    )
