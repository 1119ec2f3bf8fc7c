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

from compressctl import __version__, bench, manifest, measure, runtime, stages, targets
from compressctl.cache import StageCache
from compressctl.convert import Converter
from compressctl.data import Dataset, check_against_model, load_npz
from compressctl.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_STAGE_FAILED, StageError, UserError
from compressctl.evaluate import TaskInfo, evaluate_tflite
from compressctl.events import Emit, Event, ignore
from compressctl.gates import evaluate_gates
from compressctl.recipe import Recipe, to_yaml
from compressctl.report import render_markdown

BASELINE_ARTIFACT = "baseline/model_float32.tflite"


@dataclass
class RunResult:
    out: Path
    report: dict

    @property
    def exit_code(self) -> int:
        if self.report["failed_targets"]:
            return EXIT_STAGE_FAILED
        return EXIT_OK if self.report["passed"] else EXIT_GATE_FAILED


@dataclass
class _Run:
    """What one run works with; built in ``run`` and passed to each step."""

    recipe: Recipe
    data: Dataset
    converter: Converter
    emit: Emit
    staging: Path
    work: Path
    handle: object = None
    params: int | None = None  # counted at load: stages share, wrap and replace the original layers
    task: TaskInfo | None = None
    cache: StageCache | None = None
    resume: bool = False
    statuses: dict = field(default_factory=dict)  # artifact name → where it runs (xnnpack / reference)


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
    cache_root: str | Path | None = None,  # a stage cache shared by several runs (search trials)
) -> RunResult:
    from compressctl.modelio import detect_format, load_model, task_info
    from compressctl.tfenv import keras, seed_everything

    started = time.perf_counter()
    if not recipe.model:
        raise UserError(f"{recipe_path or 'recipe'}: no model; set `model:` in the recipe or pass --model")
    if not recipe.data:
        raise UserError(f"{recipe_path or 'recipe'}: no data; set `data:` in the recipe or pass --data")
    out = Path(recipe.out or f"runs/{recipe.name or 'run'}")
    check_out_dir(out)
    manifest.check_signing_key(sign_key)
    detect_format(Path(recipe.model))  # a missing or unsupported model is reported before any work
    data = load_npz(recipe.data)
    with _terminate_as_interrupt(), Converter() as converter:  # its TensorFlow import overlaps ours
        # Fresh Keras name counters: a layer named quant_dense_3 in a second run of one process would
        # change the flatbuffer's tensor names, and with them the artifact's sha256.
        keras().backend.clear_session()
        handle = load_model(recipe.model, trust_model=trust_model, custom_objects=custom_objects)
        check_against_model(data, handle.input_shape, handle.output_units, str(handle.path))
        if recipe.stages and not handle.trainable:
            kinds = ", ".join(s.type for s in recipe.stages)
            raise UserError(
                f"{handle.path}: an inference-only SavedModel (no Keras metadata) cannot be fine-tuned, but the "
                f"recipe has stage(s) {kinds}; drop the stages (post-training targets only) or give the Keras model"
            )
        # Only now, with every input checked, does the run start talking: bad input is one line.
        emit(Event("step", f"loaded {handle.path} ({handle.format}); data {data.path}"))
        seed_everything(recipe.seed)
        task = task_info(handle, data.x_train, recipe.task.metric, recipe.task.top_k)
        out.parent.mkdir(parents=True, exist_ok=True)
        cache = None
        if recipe.stages:
            settings = {"seed": recipe.seed, "task": recipe.task.model_dump(), "training": recipe.training.model_dump()}
            cache = StageCache(out, handle.path, measure.sha256_file(data.path), settings, root=cache_root)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        work = Path(tempfile.mkdtemp(prefix="compressctl-work-"))
        params = int(handle.keras.count_params()) if handle.keras is not None else None
        ctx = _Run(recipe, data, converter, emit, staging, work, handle, params, task, cache, resume)
        try:
            report = _measure_run(ctx)
            report["recipe"] = {"name": recipe.name, "path": recipe_path, "sha256": recipe_sha256}
            report["seconds"] = round(time.perf_counter() - started, 3)
            _write_reports(staging, recipe, report)
            manifest.write_manifest(staging, sign_key)
            publish(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if cache is not None and cache_root is None:  # a shared cache keeps every run's chain
        cache.prune_others()
    return RunResult(out=out, report=report)


def _measure_run(ctx: _Run) -> dict:
    from compressctl.modelio import export_saved_model

    recipe, data, task, emit = ctx.recipe, ctx.data, ctx.task, ctx.emit
    # The baseline is exported before any stage runs: stages share (and train) the original layers.
    emit(Event("step", "exporting the float32 baseline"))
    baseline_sm = export_saved_model(ctx.handle, ctx.work / "baseline_savedmodel", data.sample_shape)
    emit(Event("step", f"evaluating the Keras baseline on {len(data.x_test)} test samples"))
    baseline_metric = task.score(ctx.handle.predict(data.x_test), data.y_test)
    (ctx.staging / "baseline").mkdir()
    baseline_path = ctx.staging / BASELINE_ARTIFACT
    emit(Event("step", "converting the baseline to float32 TFLite"))

    def convert_baseline():
        ctx.converter.convert(baseline_sm, baseline_path, "float32", ctx.work)

    if ctx.cache is not None:  # search trials share one baseline conversion (a shared cache only)
        ctx.cache.reuse_file("baseline.tflite", baseline_path, convert_baseline)
    else:
        convert_baseline()
    ctx.statuses["__baseline__"] = runtime.smoke_test(baseline_path, data.x_test)

    model, stage_rows = _run_stages(ctx)
    final_sm = baseline_sm
    if recipe.stages:
        emit(Event("step", "exporting the compressed model"))
        final_sm = export_saved_model(ctx.handle, ctx.work / "final_savedmodel", data.sample_shape, model=model)

    artifacts, failed = [], []
    for params in recipe.targets:
        target = targets.build(params)
        try:
            artifacts.append(_build_target(ctx, target, final_sm))
        except StageError as exc:
            failed.append({"target": target.name, "error": str(exc)})
            emit(Event("warn", f"target {target.name} failed: {exc}"))

    for artifact in artifacts:
        emit(Event("step", f"evaluating {artifact['target']} on {len(data.x_test)} test samples"))
        artifact["metric_value"] = evaluate_tflite(
            ctx.staging / artifact["path"],
            data.x_test,
            data.y_test,
            task,
            xnnpack=ctx.statuses[artifact["target"]]["xnnpack"],
        )
        artifact["metric_delta"] = artifact["metric_value"] - baseline_metric

    emit(Event("step", f"timing {len(artifacts) + 1} model(s), alternating"))
    b = recipe.bench
    models = {"__baseline__": baseline_path, **{a["target"]: ctx.staging / a["path"] for a in artifacts}}
    xnnpack = {name: status["xnnpack"] for name, status in ctx.statuses.items()}
    from compressctl.search.lock import timing_lock  # concurrent search trials time one at a time

    with timing_lock():
        latency = bench.bench_alternating(
            models, data.x_test, b.runs, b.warmup, b.rounds, b.threads, xnnpack=xnnpack, emit=emit
        )

    emit(Event("step", f"evaluating the float32 baseline TFLite on {len(data.x_test)} test samples"))
    baseline = {
        "artifact": BASELINE_ARTIFACT,
        **measure.file_facts(baseline_path),
        "metric_value": baseline_metric,
        "tflite_metric_value": evaluate_tflite(baseline_path, data.x_test, data.y_test, task),
        "latency_ms": latency["__baseline__"],
        "measured_on": bench.measured_on(b.threads, xnnpack["__baseline__"]),
    }
    for artifact in artifacts:
        artifact["compression_ratio"] = round(baseline["size_bytes"] / artifact["size_bytes"], 4)
        artifact["compression_ratio_gzip"] = round(baseline["gzip_bytes"] / artifact["gzip_bytes"], 4)
        artifact["latency_ms"] = latency[artifact["target"]]
        artifact["speedup"] = round(baseline["latency_ms"]["p50"] / artifact["latency_ms"]["p50"], 4)
        artifact["measured_on"] = bench.measured_on(b.threads, xnnpack[artifact["target"]])

    gates = evaluate_gates(recipe.gates, baseline, artifacts)
    handle = ctx.handle
    return {
        "schema_version": 1,
        "tool": {"name": "compressctl", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "path": str(handle.path),
            "format": handle.format,
            "input_shape": [None if d is None else int(d) for d in handle.input_shape],
            "output_units": handle.output_units,
            "params": ctx.params,
            "notes": handle.notes,
        },
        "data": {
            "path": str(data.path),
            "sha256": measure.sha256_file(data.path),
            "train_samples": int(len(data.x_train)),
            "test_samples": int(len(data.x_test)),
        },
        "metric": task.metric_name,
        "task": {"binary": task.binary, "from_logits": task.from_logits},
        "baseline": baseline,
        "stages": stage_rows,
        "artifacts": artifacts,
        "failed_targets": failed,
        "gates": gates,
        "passed": all(g["passed"] for g in gates),
        "environment": {**measure.environment(b.threads), "runtime": runtime.runtime_name()},
    }


def _run_stages(ctx: _Run) -> tuple[object, list[dict]]:
    """Apply the recipe's stages in order, reusing cached outputs under --resume."""
    from compressctl.stages.base import StageContext
    from compressctl.tfenv import seed_everything

    recipe, emit = ctx.recipe, ctx.emit
    stage_ctx = StageContext(
        data=ctx.data, task=ctx.task, batch_size=recipe.training.batch_size, seed=recipe.seed, emit=emit
    )
    model, rows = ctx.handle.keras, []
    for index, params in enumerate(recipe.stages):
        label = f"stage {index + 1}/{len(recipe.stages)}: {params.type}"
        key = ctx.cache.key_for(params)
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
        result = stages.build(params).apply(model, stage_ctx)
        model = result.model
        metric_value = stage_ctx.evaluate(model)
        row = {"type": params.type, "seconds": round(time.perf_counter() - t0, 3), "metric_value": metric_value}
        row.update(result.measured)
        row.update({"layers": result.layers, "skipped_layers": result.skipped_layers, "notes": result.notes})
        row["cached"] = False
        ctx.cache.store(key, model, row)
        rows.append(row)
        emit(Event("step", f"stage {params.type}: {ctx.task.metric_name} {metric_value:.4f}", data=row))
    return model, rows


def _build_target(ctx: _Run, target, saved_model: Path) -> dict:
    """Try the target's conversions in order; keep the first artifact that loads and runs."""
    # Each target draws its calibration samples afresh from the seed: a target's artifact does
    # not depend on which targets come before it.
    rng = np.random.default_rng(ctx.recipe.seed)
    data, emit = ctx.data, ctx.emit
    folder = ctx.staging / target.name
    folder.mkdir()
    path = folder / "model.tflite"
    tried = []
    calibration = None
    for conversion in target.conversions():
        if conversion.mode == "int8" and calibration is None:
            n = min(target.params.calibration_samples, len(data.x_train))
            calibration = data.x_train[np.sort(rng.choice(len(data.x_train), n, replace=False))]
            emit(Event("step", f"calibrating {target.name}: int8 activation ranges from {n} train samples"))
        emit(Event("step", f"converting {target.name}: {conversion.label}"))
        try:
            ctx.converter.convert(
                saved_model,
                path,
                conversion.mode,
                ctx.work,
                calibration=calibration if conversion.mode == "int8" else None,
                io_dtype=conversion.io_dtype,
                integer_only=conversion.integer_only,
                sparsity=conversion.sparsity,
            )
            status = runtime.smoke_test(path, data.x_test)
            if conversion.sparsity and not status["xnnpack"]:
                # The default interpreter applies XNNPACK, so an artifact that fails there fails for
                # most users even though the reference kernels run it.
                raise StageError(f"it runs only without XNNPACK, the default delegate ({status['error']})")
            # A target may check the artifact further and write companion files into its folder
            # (the Edge TPU target's op mapping and compiled model); what it returns joins the record.
            extra = target.finish(path, folder, emit) if hasattr(target, "finish") else {}
        except StageError as exc:
            tried.append(f"{conversion.label}: {exc}")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            emit(Event("warn", f"{target.name}: {conversion.label} failed: {exc}"))
            continue
        ctx.statuses[target.name] = status
        return {
            "target": target.name,
            "type": target.params.type,
            "path": f"{target.name}/model.tflite",
            "conversion": conversion.label,
            "fallback": ({"reason": conversion.fallback_reason, "tried": tried} if tried else None),
            **measure.file_facts(path),
            "runs_under": {"xnnpack": status["xnnpack"], "reference": status["reference"]},
            **runtime.tensor_types(path),
            **extra,
        }
    shutil.rmtree(folder, ignore_errors=True)
    raise StageError("; ".join(tried) or "no conversion was tried")


def _write_reports(staging: Path, recipe: Recipe, report: dict) -> None:
    import json

    (staging / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    (staging / "report.md").write_text(render_markdown(report))
    from compressctl.report import render_html  # matplotlib is imported only while the page is drawn

    (staging / "report.html").write_text(render_html(report), encoding="utf-8")
    packages = ", ".join(f"{k}=={v}" for k, v in report["environment"]["packages"].items() if v)
    header = (
        "# The fully resolved recipe of this run; `compressctl run` accepts it as it is.\n"
        f"# source recipe sha256: {report['recipe']['sha256'] or 'n/a'}\n"
        f"# packages: {packages}\n"
    )
    (staging / "recipe.lock.yaml").write_text(header + to_yaml(recipe))
