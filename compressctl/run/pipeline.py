"""One compression run, start to finish: the input checks, then the steps in order.

Everything is written into a hidden sibling of the output directory and moved into place when
complete, so a run directory appears whole or not at all, and an earlier run there survives a
failed or interrupted one.

The steps live beside this module: the run directory's lifecycle in ``run_dir``, what a run works
with in ``state`` (``RunState``, built here only), the stage loop in ``stage_loop``, the baseline
and each target's artifact in ``building``, and the measurements and the record in ``measuring``.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compressctl.backends.convert import Converter
from compressctl.core import logs
from compressctl.core.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_STAGE_FAILED, UserError
from compressctl.core.events import Emit, Event, EventLog, ignore
from compressctl.core.metrics import is_regression
from compressctl.datasets import DataSource, open_source
from compressctl.datasets.npz import for_task
from compressctl.litert.evaluate import TaskInfo
from compressctl.model.distribute import check_tf_config, make_strategy
from compressctl.model.selectors import layer_table, needs_binding
from compressctl.recipe.schema import Recipe, Source, Threads, check_layer_names, check_stages
from compressctl.report.record import BASELINE_ARTIFACT, RunRecord
from compressctl.run import manifest
from compressctl.run.building import build_targets, convert_baseline
from compressctl.run.cache import StageCache
from compressctl.run.measuring import artifact_record, baseline_record, evaluate_artifacts, run_record, time_models
from compressctl.run.run_dir import (
    check_out_dir,
    publish,
    staging_dirs,
    terminate_as_interrupt,
    write_log,
    write_reports,
)
from compressctl.run.stage_loop import export_compressed, run_stages
from compressctl.run.state import RunState

__all__ = ["RunResult", "check_metric_defined", "check_out_dir", "publish", "run"]


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


def _pinning_threads(function):
    """training.threads pinned in the environment for the whole run: a streamed data source opened in the
    input checks may start TensorFlow, and the conversion worker reads the same variables."""

    @functools.wraps(function)
    def pinned(recipe: Recipe, **kwargs) -> RunResult:
        with pinned_thread_environment(recipe):
            return function(recipe, **kwargs)

    return pinned


@_pinning_threads
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

    started = time.perf_counter()
    log_start, emit = logs.log_offset(), EventLog(emit)
    out, data = _check_inputs(recipe, recipe_path, sign_key)
    with terminate_as_interrupt(), Converter() as converter:  # its TensorFlow import overlaps ours
        recipe, threads_note = with_threads_used(recipe)  # recipe.lock.yaml records the counts used
        # A multi-worker strategy must exist before TensorFlow runs anything else in the process.
        strategy, devices = make_strategy(recipe.training.strategy) if recipe.stages else (None, "no training")
        # Fresh Keras name counters: a layer named quant_dense_3 in a second run of one process would
        # change the flatbuffer's tensor names, and with them the artifact's sha256.
        keras().backend.clear_session()
        handle, task, data = _load_model(recipe, data, recipe_path, trust_model, custom_objects, source)
        # Only now, with every input checked, does the run start talking: bad input is one line.
        emit(Event("step", f"loaded {handle.path} ({handle.format}); data {data.label}"))
        if threads_note:
            emit(Event("warn", threads_note))
        seed_everything(recipe.seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        cache = None
        if recipe.stages:
            settings = {"seed": recipe.seed, "task": recipe.task.model_dump(), "training": recipe.training.model_dump()}
            cache = StageCache(out, handle.path, data.fingerprint(), settings, root=cache_root)
        staging, work = staging_dirs(out)
        ctx = RunState(
            recipe=recipe,
            data=data,
            converter=converter,
            emit=emit,
            staging=staging,
            work=work,
            handle=handle,
            params=int(handle.keras.count_params()) if handle.keras is not None else None,
            task=task,
            cache=cache,
            resume=resume,
            recipe_info={"name": recipe.name, "path": recipe_path, "sha256": recipe_sha256},
            started=started,
            strategy=strategy,
            devices=devices,
        )
        try:
            record = _measure_run(ctx)
            write_reports(staging, recipe, record)
            write_log(staging, emit.lines, logs.log_since(log_start))
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


@contextlib.contextmanager
def pinned_thread_environment(recipe: Recipe):
    """training.threads as the environment TensorFlow reads (the conversion worker's too), restored after."""
    from compressctl.core.env import pin_thread_environment, restore_environment

    pinned = recipe.training.threads
    previous = pin_thread_environment(pinned.intra_op, pinned.inter_op) if pinned is not None else {}
    try:
        yield
    finally:
        restore_environment(previous)


def with_threads_used(recipe: Recipe) -> tuple[Recipe, str | None]:
    """Apply training.threads before TensorFlow does any work; the recipe with the counts it really runs with.

    A recipe without them keeps TensorFlow's own counts, which the returned recipe (and so the lock) names."""
    from compressctl.core.env import apply_threads, threads_in_use

    pinned = recipe.training.threads
    if pinned is not None:
        apply_threads(pinned.intra_op, pinned.inter_op)
    used = Threads(**threads_in_use())
    note = None
    if pinned is not None and used != pinned:
        note = (
            f"training.threads asks for {pinned.intra_op} intra-op and {pinned.inter_op} inter-op threads, but "
            f"TensorFlow already runs in this process with {used.intra_op} and {used.inter_op}; the run uses those "
            "and recipe.lock.yaml says so (a fresh process applies the recipe's)"
        )
    training = recipe.training.model_copy(update={"threads": used})
    return recipe.model_copy(update={"training": training}), note


def _check_inputs(recipe: Recipe, recipe_path: str, sign_key: str | None) -> tuple[Path, DataSource]:
    """The checks that need no model loaded: output path, signing key, model format, TF_CONFIG, data."""
    from compressctl.model.loading import detect_format

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
    regression_possible = recipe.task.metric is None or is_regression(recipe.task.metric)
    data = open_source(recipe.data, keep_float_labels=regression_possible)  # paths, columns, specs checked now
    return out, data


def _load_model(
    recipe: Recipe,
    data: DataSource,
    recipe_path: str,
    trust_model: bool,
    custom_objects: str | None,
    source: Source | None,
) -> tuple[object, TaskInfo, DataSource]:
    """Load the model and check the data and the recipe against it, before any work."""
    from compressctl.model.loading import load_model, task_info

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
    return handle, task, data


def check_metric_defined(task: TaskInfo, data: DataSource) -> None:
    """AUC needs both classes (or several) among the test labels; refuse before any work."""
    if task.metric == "auc" and data.in_memory and len(np.unique(data.y_test)) < 2:
        raise UserError(f"{data.label}: task.metric auc needs at least two classes in y_test, which holds one")


def _measure_run(ctx: RunState) -> RunRecord:
    """Baseline, stages, targets, then the measurements of every file written, as one record."""
    baseline_sm, baseline_path, keras_metric, baseline_xnnpack = convert_baseline(ctx)
    model, stage_rows = run_stages(ctx)
    final_sm = export_compressed(ctx, model, baseline_sm)
    built, failed = build_targets(ctx, final_sm)
    metrics = evaluate_artifacts(ctx, built)
    latency = time_models(ctx, baseline_path, baseline_xnnpack, built)
    baseline = baseline_record(ctx, baseline_path, keras_metric, latency[BASELINE_ARTIFACT], baseline_xnnpack)
    artifacts = [artifact_record(ctx, b, baseline, metrics[b.fields["path"]], latency[b.fields["path"]]) for b in built]
    return run_record(ctx, baseline, stage_rows, artifacts, failed)
