"""The search engine: Ray Tune runs the trials, an Optuna sampler proposes them.

Each trial is a full compressctl run (``pipeline.run``) in its own Ray worker process with its
share of CPUs (TensorFlow's intra/inter-op threads set from it), writing a normal run directory
DIR/trials/NNNN/. With no address Ray starts embedded on this machine in a private temporary
directory; with ``--address`` (or RAY_ADDRESS) the trials run on an existing cluster.

The driver records every finished trial in DIR/search.json as it finishes (written whole, then
renamed), so Ctrl-C or SIGTERM stops the search with a consistent record; ``--resume`` hands the
finished trials to the sampler as already evaluated and runs only the rest.

This module holds the request, the checks and the record; ``ray_trials`` starts Ray and holds
what its workers run, ``tune_loop`` the Tune loop.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compressctl.core.errors import EXIT_GATE_FAILED, EXIT_OK, UserError
from compressctl.core.events import Emit, Event, ignore
from compressctl.recipe.search_spec import Dimension
from compressctl.search import bisect as bisection
from compressctl.search import bisect_rounds, record
from compressctl.search import objective as obj
from compressctl.search.ray_trials import ray_init, sampled_params, sensitivity_task, worker_env
from compressctl.search.space import load_search_recipe, recipe_yaml, resolved_recipe
from compressctl.search.tune_loop import TuneLoop, run_tune

# Imported from here by other code (the CLI, the api, tests): kept importable from engine.
__all__ = [
    "DEFAULT_CPUS_PER_TRIAL",
    "EXIT_INTERRUPTED",
    "SearchRequest",
    "SearchResult",
    "sampled_params",
    "search",
]

DEFAULT_CPUS_PER_TRIAL = 2
EXIT_INTERRUPTED = 130
_SAFE_LAYER = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class SearchRequest:
    recipe: str
    out: str
    overrides: list[str] = field(default_factory=list)
    model: str | None = None
    data: str | None = None
    trials: int | None = None
    time_budget: float | None = None
    max_concurrent: int | None = None
    address: str | None = None
    resume: bool = False
    trust_model: bool = False
    custom_objects: str | None = None


@dataclass
class SearchResult:
    out: Path
    search: dict
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.search["best"] else EXIT_GATE_FAILED


def _check_out(out: Path, resume: bool) -> tuple[list[dict], dict]:
    """The finished trials to keep (with --resume) and the search.json they come from, after checking
    DIR may be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    previous = record.load(out / "search.json") if out.exists() else None
    if previous is not None and not resume:
        raise UserError(f"{out}: holds a search; pass --resume to continue it or choose another --out")
    if previous is None and out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: not empty and holds no search.json; choose another --out")
    if previous is None:
        return [], {}
    kept = []
    for trial in previous.get("trials", []):
        if (out / trial["run_dir"] / "report.json").exists() or trial["status"] in ("failed", "stopped"):
            kept.append(trial)
    return kept, previous


def _clean_partials(out: Path, keep: set[str]) -> None:
    """Remove what interrupted trials left: staging folders and run folders no trial finished."""
    trials = out / "trials"
    if not trials.exists():
        return
    for entry in trials.iterdir():
        partial = entry.name.startswith(".")
        unrecorded = entry.is_dir() and entry.name not in keep and not (entry / "report.json").exists()
        if partial or unrecorded:
            shutil.rmtree(entry, ignore_errors=True)


def _per_layer_space(recipe, out: Path, request: SearchRequest, ray_mod, cpus: int, emit) -> tuple[dict, dict]:
    """Per-layer sparsity ranges for the prune stage, bounded by the sensitivity analysis, and each
    range's sensitivity curve (for the bisection)."""
    import json

    from compressctl.search import sensitivity

    per_layer = recipe.search.per_layer
    path = out / "sensitivity" / "sensitivity.json"
    result = json.loads(path.read_text()) if path.exists() else None
    if result is None or result.get("levels") != list(per_layer.levels):
        emit(Event("step", "layer sensitivity: pruning one layer at a time"))
        task = ray_mod.remote(num_cpus=cpus)(sensitivity_task)
        result = ray_mod.get(
            task.remote(
                recipe.model, recipe.data, list(per_layer.levels), request.trust_model, request.custom_objects, cpus
            )
        )
        sensitivity.write(result, out / "sensitivity")
    space, curves = {}, {}
    for row in result["layers"]:
        bound = sensitivity.layer_bound(row, 1.0 if per_layer.bisect else per_layer.max_drop)
        if bound is None or not _SAFE_LAYER.fullmatch(row["name"]):
            continue
        high = max(bound, per_layer.low + 0.01)
        key = f"stages.{per_layer.stage}.layers.{row['name']}"
        space[key] = Dimension(sparsity=(per_layer.low, min(high, 0.995)))
        curves[key] = bisection.curve(row)
    return space, curves


def _load(request: SearchRequest):
    """The search recipe (resolved, as data, its source), after checking the request can run."""
    recipe, data, source = load_search_recipe(
        request.recipe, request.overrides, {"model": request.model, "data": request.data}
    )
    if not recipe.model:
        raise UserError(f"{request.recipe}: no model; set `model:` in the recipe or pass --model")
    if not recipe.data:
        raise UserError(f"{request.recipe}: no data; set `data:` in the recipe or pass --data")
    for kind, path in (("model", recipe.model), ("data", recipe.data)):
        if not Path(path).exists():
            raise UserError(f"{path}: {kind} not found")
    if request.trials is not None and request.trials < 1:
        raise UserError("--trials: must be >= 1")
    return recipe, data, source


@dataclass
class _StopOnSignal:
    """Ctrl-C and SIGTERM stop the search: Tune's stopper sees the flag, ends the running trials
    and returns; every finished trial is already in search.json. A second signal is not held."""

    interrupted: dict
    emit: Emit

    def __call__(self, signum, frame) -> None:
        if self.interrupted["flag"]:
            raise KeyboardInterrupt
        self.interrupted["flag"] = True
        self.emit(Event("warn", "stopping: finished trials are kept; continue with --resume"))


@contextmanager
def _stopping_on_signals(interrupted: dict, emit: Emit):
    """While inside, Ctrl-C and SIGTERM set ``interrupted["flag"]`` (Tune's own SIGINT handler is off)."""
    on_signal = _StopOnSignal(interrupted, emit)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, on_signal)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _engine(ray, shown_address: str, request: SearchRequest, cpus_per_trial: int | None) -> dict:
    """search.json's engine: Ray's version and address, CPUs per trial and trials at a time from the cluster's CPUs."""
    cpus_total = int(ray.cluster_resources().get("CPU", 1))
    if request.max_concurrent is not None:
        concurrent = request.max_concurrent
        cpus = cpus_per_trial or max(1, cpus_total // concurrent)
    else:
        cpus = cpus_per_trial or min(DEFAULT_CPUS_PER_TRIAL, cpus_total)
        concurrent = max(1, cpus_total // cpus)
    return {
        "name": "ray",
        "version": ray.__version__,
        "address": shown_address,
        "max_concurrent": concurrent,
        "cpus_per_trial": cpus,
        "cluster_cpus": cpus_total,
    }


def _header(request: SearchRequest, recipe, source, space: dict[str, Dimension], target: str, engine: dict) -> dict:
    """search.json's fields that hold for the whole search (the metric joins once a trial reports it)."""
    spec_search = recipe.search
    size_key = spec_search.pareto_size
    return {
        "recipe": {"path": request.recipe, "sha256": source.sha256, "name": recipe.name},
        "objective": {
            "minimize": spec_search.objective if spec_search.objective != "pareto" else None,
            "pareto": [size_key, "metric_value"] if spec_search.objective == "pareto" else None,
            "pareto_size": size_key,
            "target": target,
            "gates": recipe.gates.model_dump(exclude_none=True),
        },
        "space": {key: dim.to_json() for key, dim in space.items()},
        "sampler": {"name": spec_search.sampler, "seed": spec_search.seed},
        "engine": engine,
        "metric": None,
    }


@dataclass(kw_only=True)
class _RecordWriter:
    """Writes DIR/search.json and DIR/best.yaml from the trials so far (and report.html at the end)."""

    out: Path
    header: dict
    trials: list[dict]
    objective: str
    size_key: str
    data: dict
    source: Any
    recipe_path: str

    def write(self, final: bool = False) -> dict:
        trials, out, header = self.trials, self.out, self.header
        payload = record.build(header, trials, self.size_key, self.objective, None)
        best = obj.choose_best(trials, self.objective, self.size_key)
        if best is not None:
            best_recipe = with_trial_threads(
                resolved_recipe(self.data, self.source, best["params"], {"out": str(out / "best")}),
                header["engine"]["cpus_per_trial"],
            )
            (out / "best.yaml").write_text(
                recipe_yaml(
                    best_recipe,
                    f"# Trial {best['id']} of compressctl search ({self.recipe_path}), every field resolved:\n"
                    "# `compressctl run best.yaml` reproduces its artifact.\n",
                )
            )
            payload["best"] = {"trial": best["id"], "recipe": "best.yaml"}
        else:
            (out / "best.yaml").unlink(missing_ok=True)
        if trials and header["metric"] is None:
            report = out / trials[0]["run_dir"] / "report.json"
            if report.exists():
                import json

                from compressctl.core import metrics

                header["metric"] = metrics.from_report(json.loads(report.read_text()))[0]
                payload["metric"] = header["metric"]
        record.write_json_atomic(out / "search.json", payload)
        if final:
            (out / "report.html").write_text(record.render_html(payload), encoding="utf-8")
        return payload


def with_trial_threads(recipe, cpus: int):
    """The recipe with the TensorFlow threads a trial ran with (its share of CPUs, unless the recipe sets them):
    the artifact's bytes depend on them, so `compressctl run best.yaml` must use the same."""
    from compressctl.recipe.schema import Threads

    if recipe.training.threads is not None:
        return recipe
    training = recipe.training.model_copy(update={"threads": Threads(intra_op=cpus, inter_op=cpus)})
    return recipe.model_copy(update={"training": training})


def search(request: SearchRequest, emit: Emit = ignore) -> SearchResult:
    """Run the search the request asks for; every finished trial is in DIR/search.json as it finishes."""
    recipe, data, source = _load(request)
    spec_search = recipe.search
    out = Path(request.out).absolute()
    done, previous = _check_out(out, request.resume)
    out.mkdir(parents=True, exist_ok=True)
    _clean_partials(out, {t["id"] for t in done})
    target = spec_search.target or recipe.target_names()[0]
    size_key = spec_search.pareto_size
    total_trials = request.trials or spec_search.trials
    budget = request.time_budget or spec_search.time_budget

    address = request.address or os.environ.get("RAY_ADDRESS") or None
    ray, shown_address, temp = ray_init(address, worker_env(), emit)
    interrupted = {"flag": False}
    try:
        with _stopping_on_signals(interrupted, emit):
            engine = _engine(ray, shown_address, request, spec_search.cpus_per_trial)
            cpus, concurrent = engine["cpus_per_trial"], engine["max_concurrent"]
            space, curves = dict(spec_search.space), {}
            if spec_search.per_layer is not None:
                layers, curves = _per_layer_space(recipe, out, request, ray, cpus, emit)
                space.update(layers)
            keys = {f"p{i}": key for i, key in enumerate(space)}
            trials = list(done)
            writer = _RecordWriter(
                out=out,
                header=_header(request, recipe, source, space, target, engine),
                trials=trials,
                objective=spec_search.objective,
                size_key=size_key,
                data=data,
                source=source,
                recipe_path=request.recipe,
            )
            bisecting = spec_search.per_layer is not None and spec_search.per_layer.bisect > 0
            if bisecting:
                writer.header["bisect"] = bisect_rounds.record(spec_search.per_layer.bisect, previous, done)
            writer.write()  # from the start, DIR holds a consistent search.json (no trial yet, or the kept ones)
            remaining = total_trials - len(done)
            if spec_search.sampler == "grid":
                from compressctl.search.space import grid_size

                remaining = min(remaining, grid_size(space) - len(done))
            if remaining > 0:
                loop = TuneLoop(
                    ray=ray,
                    recipe=recipe,
                    data=data,
                    source=source,
                    space=space,
                    keys=keys,
                    done=done,
                    trials=trials,
                    out=out,
                    target=target,
                    size_key=size_key,
                    concurrent=concurrent,
                    cpus=cpus,
                    budget=budget,
                    remaining=remaining,
                    write_record=writer.write,
                    interrupted=interrupted,
                    emit=emit,
                )
                if bisecting:
                    bisect_rounds.run(request, loop, curves, writer.header["bisect"])
                else:
                    run_tune(request, loop)
            _clean_partials(out, {t["id"] for t in trials})
            payload = writer.write(final=True)
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return SearchResult(out=out, search=payload, interrupted=interrupted["flag"])
