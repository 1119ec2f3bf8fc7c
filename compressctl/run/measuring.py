"""Measuring the artifacts built (metric on the test split, latency timed alternately) and
assembling the run's record from them, with the gates and the environment."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from compressctl import __version__
from compressctl.core import measure
from compressctl.core.cpu_features import cpu_features, int8_slower_note
from compressctl.core.events import Event
from compressctl.litert import bench, macs, storage
from compressctl.litert import interpreter as runtime
from compressctl.litert.evaluate import evaluate_tflite_source
from compressctl.report.record import BASELINE_ARTIFACT, SCHEMA_VERSION, Artifact, Baseline, RunRecord
from compressctl.run.building import Built
from compressctl.run.gates import evaluate_gates
from compressctl.run.state import RunState


def evaluate_artifacts(ctx: RunState, built: list[Built]) -> dict[str, float]:
    """The metric of each artifact on the test split, by its path in the run directory."""
    data, metrics = ctx.data, {}
    for b in built:
        ctx.emit(Event("step", f"evaluating {b.fields['target']} on {data.test_samples} test samples"))
        own = b.target.evaluate(b.path, data, ctx.task, ctx.emit) if b.target is not None else None
        if own is None:
            own = evaluate_tflite_source(b.path, data, ctx.task, xnnpack=b.xnnpack)
        metrics[b.fields["path"]] = own
    return metrics


def time_models(ctx: RunState, baseline_path: Path, baseline_xnnpack: bool, built: list[Built]) -> dict[str, dict]:
    """Latency of the baseline and every artifact, timed alternately, by path in the run directory."""
    b = ctx.recipe.bench
    ctx.emit(Event("step", f"timing {len(built) + 1} model(s), alternating"))
    models = {BASELINE_ARTIFACT: baseline_path, **{a.fields["path"]: a.path for a in built}}
    xnnpack = {BASELINE_ARTIFACT: baseline_xnnpack, **{a.fields["path"]: a.xnnpack for a in built}}
    with bench.timing_lock():  # concurrent search trials on one machine time one at a time
        latency = bench.bench_alternating(
            models, ctx.data.head(1), b.runs, b.warmup, b.rounds, b.threads, xnnpack=xnnpack, emit=ctx.emit
        )
        if b.batch_sizes:
            sizes = ", ".join(map(str, b.batch_sizes))
            ctx.emit(Event("step", f"timing throughput at batch size(s) {sizes}"))
            sample = ctx.data.head(min(max(b.batch_sizes), 256))  # repeated to fill larger batches
            found = bench.throughput(models, sample, b.batch_sizes, b.runs, b.threads, xnnpack=xnnpack)
            for name, entries in found.items():
                latency[name]["throughput"] = entries
    return latency


def baseline_record(ctx: RunState, path: Path, keras_metric: float, latency: dict, xnnpack: bool) -> Baseline:
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


def artifact_record(ctx: RunState, built: Built, baseline: Baseline, metric: float, latency: dict) -> Artifact:
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


def run_record(
    ctx: RunState, baseline: Baseline, stage_rows: list[dict], artifacts: list[Artifact], failed: list[dict]
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
