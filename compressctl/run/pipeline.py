"""One compression run, start to finish. The only module that writes a run directory.

Everything is written into a hidden sibling of the output directory and moved into place when
complete, so a run directory appears whole or not at all, and an earlier run there survives a
failed or interrupted one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from compressctl import __version__, stages, targets
from compressctl.backends.convert import Converter
from compressctl.core import logs, measure
from compressctl.core.cpu_features import cpu_features, int8_slower_note
from compressctl.core.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_STAGE_FAILED, StageError, UserError
from compressctl.core.events import Emit, Event, EventLog, ignore
from compressctl.core.metrics import is_regression
from compressctl.datasets import DataSource, open_source
from compressctl.datasets.npz import for_task
from compressctl.litert import bench, macs, storage
from compressctl.litert import interpreter as runtime
from compressctl.litert.evaluate import TaskInfo, evaluate_tflite_source
from compressctl.model.distribute import check_tf_config, make_strategy
from compressctl.model.selectors import layer_table, needs_binding
from compressctl.recipe.schema import Recipe, Source, bind_selectors, check_layer_names, check_stages, to_yaml
from compressctl.report import render_markdown
from compressctl.report.record import BASELINE_ARTIFACT, SCHEMA_VERSION, Artifact, Baseline, RunRecord
from compressctl.run import manifest
from compressctl.run.cache import StageCache
from compressctl.run.gates import evaluate_gates


@dataclass
class RunResult:
    out: Path
    record: RunRecord

    @property
    def report(self) -> dict:
        """report.json's contents as plain data."""
        return self.record.to_dict()

    @property
    def exit_code(self) -> int:
        if self.record.failed_targets:
            return EXIT_STAGE_FAILED
        return EXIT_OK if self.record.passed else EXIT_GATE_FAILED


@dataclass
class _Run:
    """What one run works with; built in ``run`` and passed to each step."""

    recipe: Recipe
    data: DataSource  # npz or a streaming source (compressctl.datasets)
    converter: Converter
    emit: Emit
    staging: Path
    work: Path
    handle: object = None
    params: int | None = None  # counted at load: stages share, wrap and replace the original layers
    task: TaskInfo | None = None
    cache: StageCache | None = None
    resume: bool = False
    recipe_info: dict = field(default_factory=dict)  # name, path and sha256 of the recipe file
    started: float = 0.0  # perf_counter at the start of the run
    strategy: object = None  # tf.distribute strategy of the training stages (compressctl.model.distribute), or None
    devices: str = "one device"  # what the training stages ran on, for the report
    # The LiteRT Quantizer backend's worker and its float input (compressctl/backends/steps.py).
    quantizer: object = None
    float_tflite: Path | None = None


@dataclass
class _Built:
    """One target's artifact as converted and checked, before it is evaluated and timed."""

    path: Path  # the .tflite file in the staging directory
    fields: dict  # the artifact record's conversion facts (target, path, conversion, sizes, ...)
    xnnpack: bool  # whether it runs with XNNPACK (else it is evaluated and timed without)


def check_out_dir(out: Path) -> None:
    """Refuse to replace anything that is not an earlier run (or empty)."""
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: output path exists and is not a directory")
        if any(out.iterdir()) and not (out / "report.json").exists():
            raise UserError(f"{out}: output directory is not empty and holds no earlier run; choose another --out")


def publish(staging: Path, out: Path) -> None:
    """Move a complete run into place, replacing an earlier run only once the new one is whole."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C for the length of a run, so the staging directory is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(
    recipe: Recipe,
    *,
    recipe_path: str = "",
    recipe_sha256: str = "",
    trust_model: bool = False,
    sign_key: str | None = None,
    resume: bool = False,
    custom_objects: str | None = None,
    emit: Emit = ignore,
    source: Source | None = None,
    cache_root: str | Path | None = None,  # a stage cache shared by several runs (search trials)
) -> RunResult:
    from compressctl.core.env import keras, seed_everything
    from compressctl.model.loading import detect_format, load_model, task_info

    started = time.perf_counter()
    log_start, emit = logs.log_offset(), EventLog(emit)
    if not recipe.model:
        raise UserError(f"{recipe_path or 'recipe'}: no model; set `model:` in the recipe or pass --model")
    if not recipe.data:
        raise UserError(f"{recipe_path or 'recipe'}: no data; set `data:` in the recipe or pass --data")
    out = Path(recipe.out or f"runs/{recipe.name or 'run'}")
    check_out_dir(out)
    manifest.check_signing_key(sign_key)
    detect_format(Path(recipe.model))  # a missing or unsupported model is reported before any work
    if recipe.stages and recipe.training.strategy == "multi_worker":
        check_tf_config()  # a missing or malformed TF_CONFIG is bad input, reported before any work
    # Float labels may be regression targets; which they are is known once the model is (task_info).
    # Float labels may be regression targets; which they are is known once the model is (task_info).
    regression_possible = recipe.task.metric is None or is_regression(recipe.task.metric)
    data = open_source(recipe.data, keep_float_labels=regression_possible)  # paths, columns, specs checked now
    with _terminate_as_interrupt(), Converter() as converter:  # its TensorFlow import overlaps ours
        # A multi-worker strategy must exist before TensorFlow runs anything else in the process.
        strategy, devices = make_strategy(recipe.training.strategy) if recipe.stages else (None, "no training")
        # Fresh Keras name counters: a layer named quant_dense_3 in a second run of one process would
        # change the flatbuffer's tensor names, and with them the artifact's sha256.
        keras().backend.clear_session()
        # A Keras 3 file's conversion is checked on train samples (compressctl.model.keras3).
        handle = load_model(
            recipe.model, trust_model=trust_model, custom_objects=custom_objects, samples=data.head(64, "train")
        )
        labels = getattr(data, "y_train", None)  # an npz's labels tell a regression task from classes
        task = task_info(handle, data.head(64, "train"), recipe.task.metric, recipe.task.top_k, labels=labels)
        data = for_task(data, task.regression)
        data.check_against_model(handle.input_shape, handle.output_units, str(handle.path))
        check_metric_defined(task, data)
        if handle.keras is not None:
            names = [layer.name for layer in handle.keras.layers if type(layer).__name__ != "InputLayer"]
            table = layer_table(handle.keras) if any(needs_binding(p) for p in recipe.stages) else None
            check_layer_names(recipe, names, source, str(handle.path), table)
        if recipe.stages and not handle.trainable:
            kinds = ", ".join(s.type for s in recipe.stages)
            raise UserError(
                f"{handle.path}: an inference-only SavedModel (no Keras metadata) cannot be fine-tuned, but the "
                f"recipe has stage(s) {kinds}; drop the stages (post-training targets only) or give the Keras model"
            )
        # Stage fields that depend on the model (channel counts, ratios), before any training.
        check_stages(recipe, handle.keras, recipe_path, source)
        # Only now, with every input checked, does the run start talking: bad input is one line.
        emit(Event("step", f"loaded {handle.path} ({handle.format}); data {data.label}"))
        seed_everything(recipe.seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        cache = None
        if recipe.stages:
            settings = {"seed": recipe.seed, "task": recipe.task.model_dump(), "training": recipe.training.model_dump()}
            cache = StageCache(out, handle.path, data.fingerprint(), settings, root=cache_root)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        work = Path(tempfile.mkdtemp(prefix="compressctl-work-"))
        params = int(handle.keras.count_params()) if handle.keras is not None else None
        info = {"name": recipe.name, "path": recipe_path, "sha256": recipe_sha256}
        ctx = _Run(recipe, data, converter, emit, staging, work, handle, params, task, cache, resume, info, started)
        ctx.strategy, ctx.devices = strategy, devices
        try:
            record = _measure_run(ctx)
            _write_reports(staging, recipe, record)
            _write_log(staging, emit.lines, logs.log_since(log_start))
            manifest.write_manifest(staging, sign_key)
            publish(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            if ctx.quantizer is not None:
                ctx.quantizer.close()
            shutil.rmtree(work, ignore_errors=True)
    if cache is not None and cache_root is None:  # a shared cache keeps every run's chain
        cache.prune_others()
    return RunResult(out=out, record=record)


def check_metric_defined(task: TaskInfo, data: DataSource) -> None:
    """AUC needs both classes (or several) among the test labels; refuse before any work."""
    if task.metric == "auc" and data.in_memory and len(np.unique(data.y_test)) < 2:
        raise UserError(f"{data.label}: task.metric auc needs at least two classes in y_test, which holds one")


def _measure_run(ctx: _Run) -> RunRecord:
    """Baseline, stages, targets, then the measurements of every file written, as one record."""
    baseline_sm, baseline_path, keras_metric, baseline_xnnpack = _convert_baseline(ctx)
    model, stage_rows = _run_stages(ctx)
    final_sm = _export_compressed(ctx, model, baseline_sm)
    built, failed = _build_targets(ctx, final_sm)
    metrics = _evaluate_artifacts(ctx, built)
    latency = _time_models(ctx, baseline_path, baseline_xnnpack, built)
    baseline = _baseline_record(ctx, baseline_path, keras_metric, latency[BASELINE_ARTIFACT], baseline_xnnpack)
    artifacts = [
        _artifact_record(ctx, b, baseline, metrics[b.fields["path"]], latency[b.fields["path"]]) for b in built
    ]
    return _run_record(ctx, baseline, stage_rows, artifacts, failed)


def _convert_baseline(ctx: _Run) -> tuple[Path, Path, float, bool]:
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

    def convert_baseline():
        ctx.converter.convert(baseline_sm, baseline_path, "float32", ctx.work)

    if ctx.cache is not None:  # search trials share one baseline conversion (a shared cache only)
        ctx.cache.reuse_file("baseline.tflite", baseline_path, convert_baseline)
    else:
        convert_baseline()
    status = runtime.smoke_test(baseline_path, data.head(1))
    return baseline_sm, baseline_path, keras_metric, status["xnnpack"]


def _export_compressed(ctx: _Run, model, baseline_sm: Path) -> Path:
    """The SavedModel the targets convert: the stages' output, or the baseline's when there are none."""
    from compressctl.model.loading import export_saved_model

    if not ctx.recipe.stages:
        return baseline_sm
    ctx.emit(Event("step", "exporting the compressed model"))
    return export_saved_model(ctx.handle, ctx.work / "final_savedmodel", ctx.data.sample_shape, model=model)


def _build_targets(ctx: _Run, saved_model: Path) -> tuple[list[_Built], list[dict]]:
    """Every target's artifact; a target that fails is recorded and the others still finish."""
    built, failed = [], []
    for params in ctx.recipe.targets:
        target = targets.build(params)
        try:
            built.append(_build_target(ctx, target, saved_model))
        except StageError as exc:
            failed.append({"target": target.name, "error": str(exc)})
            ctx.emit(Event("warn", f"target {target.name} failed: {exc}"))
    return built, failed


def _evaluate_artifacts(ctx: _Run, built: list[_Built]) -> dict[str, float]:
    """The metric of each artifact on the test split, by its path in the run directory."""
    data, metrics = ctx.data, {}
    for b in built:
        ctx.emit(Event("step", f"evaluating {b.fields['target']} on {data.test_samples} test samples"))
        metrics[b.fields["path"]] = evaluate_tflite_source(b.path, data, ctx.task, xnnpack=b.xnnpack)
    return metrics


def _time_models(ctx: _Run, baseline_path: Path, baseline_xnnpack: bool, built: list[_Built]) -> dict[str, dict]:
    """Latency of the baseline and every artifact, timed alternately, by path in the run directory."""
    b = ctx.recipe.bench
    ctx.emit(Event("step", f"timing {len(built) + 1} model(s), alternating"))
    models = {BASELINE_ARTIFACT: baseline_path, **{a.fields["path"]: a.path for a in built}}
    xnnpack = {BASELINE_ARTIFACT: baseline_xnnpack, **{a.fields["path"]: a.xnnpack for a in built}}
    with bench.timing_lock():  # concurrent search trials on one machine time one at a time
        return bench.bench_alternating(
            models, ctx.data.head(1), b.runs, b.warmup, b.rounds, b.threads, xnnpack=xnnpack, emit=ctx.emit
        )


def _baseline_record(ctx: _Run, path: Path, keras_metric: float, latency: dict, xnnpack: bool) -> Baseline:
    data = ctx.data
    ctx.emit(Event("step", f"evaluating the float32 baseline TFLite on {data.test_samples} test samples"))
    return Baseline(
        artifact=BASELINE_ARTIFACT,
        **measure.file_facts(path),
        metric_value=keras_metric,
        tflite_metric_value=evaluate_tflite_source(path, data, ctx.task),
        macs=macs.tflite_macs(path)["total"],  # multiply-accumulates per inference, from shapes
        latency_ms=latency,
        measured_on=bench.measured_on(ctx.recipe.bench.threads, xnnpack),
    )


def _artifact_record(ctx: _Run, built: _Built, baseline: Baseline, metric: float, latency: dict) -> Artifact:
    """The artifact's record: conversion facts, then what it measured against the baseline."""
    f = dict(built.fields)
    ratio, speedup = round(baseline.size_bytes / f["size_bytes"], 4), round(baseline.latency_ms.p50 / latency["p50"], 4)
    notes = list(f.pop("notes", []))
    scheme = (f.get("quantization") or {}).get("scheme")
    if scheme:  # a quantized artifact that is hardly smaller says which weights stayed float
        from compressctl.litert.quant_debug import not_smaller_note

        notes.append(not_smaller_note(built.path, ratio, scheme))
    if "int8" in f["conversion"]:  # one line when int8 ran slower than float32 here, with the likely reason
        notes.append(int8_slower_note(cpu_features(), speedup))
    if scheme:  # a quantized artifact that lost much of the metric names its worst layers and a remedy
        from compressctl.litert.quant_debug import metric_loss_note

        quantization, name = f["quantization"], ctx.task.metric_name
        notes.append(metric_loss_note(quantization, name, baseline.metric_value, metric, f["type"]))
    return Artifact(
        **f,
        notes=[note for note in notes if note],
        metric_value=metric,
        metric_delta=metric - baseline.metric_value,
        compression_ratio=ratio,
        compression_ratio_gzip=round(baseline.gzip_bytes / f["gzip_bytes"], 4),
        latency_ms=latency,
        speedup=speedup,
        measured_on=bench.measured_on(ctx.recipe.bench.threads, built.xnnpack),
        macs=macs.tflite_macs(ctx.staging / f["path"])["total"],
        **storage.breakdown(ctx.staging / f["path"], sized=False),
    )


def _run_record(
    ctx: _Run, baseline: Baseline, stage_rows: list[dict], artifacts: list[Artifact], failed: list[dict]
) -> RunRecord:
    """The whole record: what was measured, with the model, data, gates and environment it was measured in."""
    handle, data, task, recipe = ctx.handle, ctx.data, ctx.task, ctx.recipe
    gates = evaluate_gates(recipe.gates, baseline, artifacts, higher_is_better=task.higher_is_better)
    return RunRecord(
        schema_version=SCHEMA_VERSION,
        tool={"name": "compressctl", "version": __version__},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model={
            "path": str(handle.path),
            "format": handle.format,
            "input_shape": [None if d is None else int(d) for d in handle.input_shape],
            "output_units": handle.output_units,
            "params": ctx.params,
            "notes": handle.notes,
            "converted_from": handle.converted_from,
        },
        data=data.describe(),  # format, paths, fingerprint, counts; an npz keeps its path and sha256
        metric={"name": task.metric_name, "higher_is_better": task.higher_is_better},
        task={"binary": task.binary, "from_logits": task.from_logits, "regression": task.regression},
        training={"strategy": recipe.training.strategy, "devices": ctx.devices},
        baseline=baseline,
        stages=stage_rows,
        artifacts=artifacts,
        failed_targets=failed,
        gates=gates,
        passed=all(g.passed for g in gates),
        environment={**measure.environment(recipe.bench.threads), "runtime": runtime.runtime_name()},
        recipe=ctx.recipe_info,
        seconds=round(time.perf_counter() - ctx.started, 3),
    )


def _run_stages(ctx: _Run) -> tuple[object, list[dict]]:
    """Apply the recipe's stages in order, reusing cached outputs under --resume."""
    from compressctl.core.env import seed_everything
    from compressctl.stages.base import StageContext

    recipe, emit = ctx.recipe, ctx.emit
    stage_ctx = StageContext(
        data=ctx.data,
        task=ctx.task,
        batch_size=recipe.training.batch_size,
        seed=recipe.seed,
        emit=emit,
        max_steps_per_epoch=recipe.training.steps_per_epoch,
    )
    stage_ctx.strategy = ctx.strategy
    model, rows = ctx.handle.keras, []
    for index, params in enumerate(recipe.stages):
        label = f"stage {index + 1}/{len(recipe.stages)}: {params.type}"
        if needs_binding(params):  # type:/role:/feeds: selectors name the layers of the model at hand
            params, _ = bind_selectors(params, layer_table(model), index, recipe_path=ctx.recipe_info.get("path", ""))
        stage = stages.build(params)
        key = ctx.cache.key_for(params, stage.input_files())
        hit = ctx.cache.load(key) if ctx.resume else None
        if hit is not None:
            model, row = hit
            row["cached"] = True
            rows.append(row)
            emit(Event("step", f"{label} (cached, skipped)"))
            continue
        emit(Event("step", label))
        # Seeding each stage by its index makes a resumed run compute what a full run would.
        seed_everything(recipe.seed + index)
        t0 = time.perf_counter()
        result = stage.apply(model, stage_ctx)
        model = result.model
        metric_value = stage_ctx.evaluate(model)
        row = {"type": params.type, "seconds": round(time.perf_counter() - t0, 3), "metric_value": metric_value}
        row.update(result.measured)
        row.update({"layers": result.layers, "skipped_layers": result.skipped_layers, "notes": result.notes})
        row["cached"] = False
        row["columns"] = list(stage.columns)  # the per-layer figures renderers show, declared by the stage
        ctx.cache.store(key, model, row)
        rows.append(row)
        emit(Event("step", f"stage {params.type}: {ctx.task.metric_name} {metric_value:.4f}", data=row))
    return model, rows


def _build_target(ctx: _Run, target, saved_model: Path) -> _Built:
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
        return _Built(path=path, fields=fields, xnnpack=status["xnnpack"])
    shutil.rmtree(folder, ignore_errors=True)
    raise StageError("; ".join(tried) or "no conversion was tried")


def _calibration_samples(ctx: _Run, target) -> np.ndarray:
    """The train samples an int8 conversion calibrates on, as many as the target asks for."""
    # Each target draws its calibration samples afresh from the seed: a target's artifact does
    # not depend on which targets come before it.
    n = min(target.calibration_size(), ctx.data.train_samples)
    ctx.emit(Event("step", f"calibrating {target.name}: int8 activation ranges from {n} train samples"))
    return ctx.data.calibration(n, ctx.recipe.seed)


def _quantization(ctx: _Run, target, conversion, saved_model: Path, path: Path, calibration) -> tuple[dict, list]:
    """issue 10: ``artifacts[].quantization`` and notes; may re-convert ``path`` with ops kept in float."""
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
        return record, []
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


def _requantized_problem(ctx: _Run, target, candidate: Path, current: Path) -> str | None:
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


def _write_log(staging: Path, events: list[str], output: str) -> None:
    """run.log: what the run did, then what TensorFlow and the converter printed meanwhile."""
    text = "\n".join(events) + "\n"
    if output:
        text += "\n--- TensorFlow, converter and interpreter output ---\n" + output
    (staging / "run.log").write_text(text, encoding="utf-8")


def _convert(ctx: _Run, conversion, saved_model: Path, path: Path, calibration) -> None:
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


def _write_reports(staging: Path, recipe: Recipe, record: RunRecord) -> None:
    (staging / "report.json").write_text(record.to_json())
    (staging / "report.md").write_text(render_markdown(record))
    from compressctl.report import render_html  # matplotlib is imported only while the page is drawn

    (staging / "report.html").write_text(render_html(record), encoding="utf-8")
    packages = ", ".join(f"{k}=={v}" for k, v in record.environment.packages.items() if v)
    header = (
        "# The fully resolved recipe of this run; `compressctl run` accepts it as it is.\n"
        f"# source recipe sha256: {record.recipe.sha256 or 'n/a'}\n"
        f"# packages: {packages}\n"
    )
    (staging / "recipe.lock.yaml").write_text(header + to_yaml(recipe))
