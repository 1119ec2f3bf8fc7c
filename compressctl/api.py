"""The programmatic interface: what the CLI calls, usable from Python without typer or rich."""

from __future__ import annotations

from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.core.events import Emit, ignore
from compressctl.recipe.schema import Recipe, json_schema, load_recipe_with_source
from compressctl.report.record import RunRecord
from compressctl.report.record import json_schema as record_schema


def validate(recipe_path: str, overrides: list[str] = (), flags: dict | None = None) -> Recipe:
    """Load and validate a recipe (no TensorFlow import)."""
    recipe, _ = load_recipe_with_source(recipe_path, list(overrides), flags)
    if recipe.search is not None:  # every search space key must name a recipe field (issue 11)
        from compressctl.search.space import load_search_recipe

        load_search_recipe(recipe_path, list(overrides), flags)
    return recipe


def run(
    recipe_path: str,
    overrides: list[str] = (),
    *,
    model: str | None = None,
    data: str | None = None,
    out: str | None = None,
    **options,
):
    """Run a recipe end to end; returns a pipeline.RunResult (its RunRecord and exit code).

    ``model``, ``data`` and ``out`` override the recipe's; ``options`` (``trust_model``,
    ``custom_objects``, ``resume``, ``sign_key``, ``emit``) go to ``pipeline.run`` as they are.
    """
    from compressctl.run import pipeline

    recipe, source = load_recipe_with_source(recipe_path, list(overrides), {"model": model, "data": data, "out": out})
    return pipeline.run(recipe, recipe_path=str(recipe_path), recipe_sha256=source.sha256, source=source, **options)


def verify(run_dir: str, public_key: str | None = None) -> dict:
    """Check every file of a run against its manifest (and its signature, given a public key)."""
    from compressctl.run import manifest

    return manifest.verify(run_dir, public_key)


def schema() -> dict:
    return json_schema()


def inspect(model_path: str, trust_model: bool = False, custom_objects: str | None = None) -> dict:
    from compressctl.recipe.inspection import inspect_model

    return inspect_model(model_path, trust_model=trust_model, custom_objects=custom_objects)


def _task_for(path: Path, metric: str, top_k: int, outputs_probabilities: bool | None):
    from compressctl.core.metrics import is_regression
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.litert.interpreter import load_interpreter

    interpreter = load_interpreter(path)
    units = int(interpreter.get_output_details()[0]["shape"][-1])
    from_logits = False if outputs_probabilities is None else not outputs_probabilities
    if is_regression(metric):
        return TaskInfo(binary=False, from_logits=False, metric=metric, top_k=top_k, regression=True)
    return TaskInfo(binary=units == 1, from_logits=from_logits, metric=metric, top_k=top_k)


def evaluate_artifact(
    artifact: str,
    data_path: str,
    metric: str = "accuracy",
    top_k: int = 5,
    threads: int = 1,
    logits: bool = False,
    layers: bool = False,
    baseline: str | None = None,
) -> dict:
    """The metric of one .tflite file on the test split of an npz data set (``layers``: and its layer-wise
    error against the float32 baseline, see quant_debug.eval_layers)."""
    from compressctl.core.metrics import is_regression
    from compressctl.datasets.arrays import load_npz
    from compressctl.litert.evaluate import evaluate_tflite

    path = _artifact_path(artifact)
    data = load_npz(data_path, keep_float_labels=is_regression(metric))  # regression targets stay floats
    task = _task_for(path, metric, top_k, outputs_probabilities=not logits)
    if layers:  # issue 10: checked before the metric, so a missing baseline is one error line at once
        from compressctl.litert.quant_debug import eval_layers

        layer_errors = eval_layers(path, baseline, data.x_test)
    value = evaluate_tflite(path, data.x_test, data.y_test, task, threads=threads)
    result = {"artifact": str(path), "metric": task.metric_name, "metric_value": value, "samples": len(data.x_test)}
    if layers:
        result["layers"] = layer_errors
    return result


def bench_artifact(
    artifact: str, runs: int = 200, threads: int = 1, warmup: int = 20, rounds: int = 5, baseline: str | None = None
) -> dict:
    """Latency of one .tflite file (and of a baseline, timed alternately, with the speed-up)."""
    import numpy as np

    from compressctl.litert import bench
    from compressctl.litert.interpreter import load_interpreter

    path = _artifact_path(artifact)
    models = {"artifact": path}
    if baseline:
        models = {"baseline": _artifact_path(baseline), **models}
    detail = load_interpreter(path).get_input_details()[0]
    sample = np.zeros(detail["shape"], np.float32)
    latency = bench.bench_alternating(models, sample, runs, warmup, rounds, threads)
    result = {"artifact": str(path), "latency_ms": latency["artifact"], "measured_on": bench.measured_on(threads)}
    if baseline:
        result["baseline"] = {"artifact": str(models["baseline"]), "latency_ms": latency["baseline"]}
        result["speedup"] = round(latency["baseline"]["p50"] / latency["artifact"]["p50"], 4)
    return result


def load_report(run_dir: str) -> RunRecord:
    """A run's record from its report.json; UserError naming the file and the field when it is not valid."""
    path = Path(run_dir) / "report.json"
    if not path.exists():
        raise UserError(f"{run_dir}: no report.json here; is it a compressctl run directory?")
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: not a readable report ({exc})") from None
    try:
        return RunRecord.from_json(text, str(path))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def report_schema() -> dict:
    """report.json's JSON Schema."""
    return record_schema()


def _artifact_path(artifact: str) -> Path:
    path = Path(artifact)
    if not path.exists():
        raise UserError(f"{artifact}: artifact not found")
    if path.is_dir() or path.suffix != ".tflite":
        raise UserError(f"{artifact}: expected a .tflite file")
    return path


# --------------------------------------------------------------------------- search (issue 11)


def search(request, emit: Emit = ignore):
    """Run a search (``compressctl.search.engine.SearchRequest``); returns a SearchResult."""
    from compressctl.search.engine import search as run_search

    return run_search(request, emit=emit)


def batch(request, emit: Emit = ignore):
    """Run a fleet (``compressctl.search.batch.BatchRequest``): every model × recipe; returns a BatchResult."""
    from compressctl.search.batch import batch as run_batch

    return run_batch(request, emit=emit)


def sensitivity(model_path: str, data_path: str, out: str, levels=None, clusters=None, **options) -> dict:
    """Layer sensitivity table of a model, written to ``out`` (json, md, png); returns the table.

    ``options``: ``trust_model``, ``custom_objects`` and ``emit``, as ``search.sensitivity.analyse`` takes them.
    """
    from compressctl.search import sensitivity as sens

    levels, clusters = levels or sens.DEFAULT_LEVELS, clusters or sens.DEFAULT_CLUSTERS
    result = sens.analyse(model_path, data_path, levels=levels, clusters=clusters, **options)
    sens.write(result, out)
    return result


def search_starter(model: str, data: str, recipe_path: str, trust_model: bool = False, emit: Emit = ignore):
    """(YAML text, summary) of a starter search recipe from inspect and the layer sensitivity."""
    from compressctl.search.starter import search_starter as build

    return build(model, data, recipe_path, trust_model=trust_model, emit=emit)
