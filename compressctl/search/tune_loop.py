"""The Ray Tune loop of a search: the Optuna searcher, the trial registry, Tune's run and its trial events."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compressctl.core.events import Emit, Event
from compressctl.recipe.search_spec import Dimension
from compressctl.search import objective as obj
from compressctl.search import record
from compressctl.search.ray_trials import Registry, sampled_params, trainable

REGISTRY_NAME = "compressctl-trials"


@dataclass(kw_only=True)
class TuneLoop:
    """What one Tune loop runs on: the resolved search, its finished trials and where each new one goes."""

    ray: Any  # the ray module, connected
    recipe: Any  # the resolved recipe (its search section)
    data: dict  # the recipe as data, before validation
    source: Any  # the recipe's Source (text, sha256)
    space: dict[str, Dimension]
    keys: dict[str, str]  # sampler name → recipe key
    done: list[dict]  # trials finished before this loop (--resume)
    trials: list[dict]  # every finished trial; the loop appends to it
    out: Path
    target: str
    size_key: str
    concurrent: int
    cpus: int
    budget: float | None
    remaining: int
    write_record: Callable[[], object]
    interrupted: dict  # {"flag": bool}, set by the driver's signal handler
    emit: Emit
    points: list[dict] = field(default_factory=list)  # run first, in sampler names and values (bisection)


def make_sampler(name: str, seed: int, space: dict[str, Dimension], keys: dict[str, str]):
    """The Optuna sampler the recipe names (TPE unless random or grid)."""
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        inner = {internal: list(space[key].choice) for internal, key in keys.items()}
        return optuna.samplers.GridSampler(inner, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run_tune(request, loop: TuneLoop) -> None:
    """Run the remaining trials on Ray Tune; each finished or failed one goes into loop.trials at once."""
    from ray import tune as ray_tune
    from ray.tune.search import ConcurrencyLimiter

    from compressctl.search import tune_hooks

    searcher = _searcher(loop)
    namespace = f"s{os.getpid()}x{int(time.time() * 1000) % 10**9}"
    driver_node = loop.ray.get_runtime_context().get_node_id()
    registry = _start_registry(loop, namespace, driver_node)
    spec = _trial_spec(request, loop, namespace, driver_node)
    tune_hooks.ACTIVE.clear()
    tune_hooks.ACTIVE.update(_hooks(loop, registry, spec), interrupted=loop.interrupted)
    resourced = ray_tune.with_resources(ray_tune.with_parameters(trainable, spec=spec), {"cpu": loop.cpus})
    loop.emit(
        Event(
            "step",
            f"running {loop.remaining} trial(s), {loop.concurrent} at a time, {loop.cpus} CPU(s) each, "
            f"on Ray {loop.ray.__version__}",
        )
    )
    storage = tempfile.mkdtemp(prefix=".tune-", dir=loop.out)
    tuner = ray_tune.Tuner(
        resourced,
        tune_config=ray_tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=loop.concurrent),
            num_samples=loop.remaining,
            time_budget_s=loop.budget,
            scheduler=_scheduler(loop),
            reuse_actors=False,
        ),
        run_config=ray_tune.RunConfig(
            name="tune",
            storage_path=storage,
            callbacks=[tune_hooks.Recorder()],
            stop=tune_hooks.Interrupted(),
            verbose=0,
            failure_config=ray_tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no progress tables from Tune
    try:
        if not loop.interrupted["flag"]:
            tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _searcher(loop: TuneLoop):
    """Optuna behind Tune, told the trials a resumed search already finished."""
    from ray.tune.search.optuna import OptunaSearch

    from compressctl.search.space import to_optuna

    spec_search = loop.recipe.search
    inverse = {key: internal for internal, key in loop.keys.items()}
    distributions = {inverse[k]: d for k, d in to_optuna(loop.space).items()}
    pareto = spec_search.objective == "pareto"
    searcher = OptunaSearch(
        space=distributions,
        metric=["size", "metric"] if pareto else "score",
        mode=["min", "max"] if pareto else "min",
        # A resumed search continues from a new seed: the same seed would propose the finished trials again.
        sampler=make_sampler(spec_search.sampler, spec_search.seed + len(loop.done), loop.space, loop.keys),
        points_to_evaluate=loop.points or None,
    )
    tell_finished(searcher, loop.done, inverse, loop.space, pareto, spec_search.objective, loop.size_key)
    return searcher


def _scheduler(loop: TuneLoop):
    """ASHA when the recipe asks for early stopping, else Tune's default (every trial runs to its end)."""
    early = loop.recipe.search.early_stopping
    if early is None:
        return None
    from compressctl.search import early_stop

    total = sum(early_stop.stage_epochs(loop.recipe.stages, loop.space))
    return early_stop.scheduler(early, total)


def _start_registry(loop: TuneLoop, namespace: str, driver_node: str):
    """The trial registry actor, pinned to the driver's node; numbering goes on after the finished trials."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    first = max((int(t["id"]) for t in loop.done), default=0) + 1
    return (
        loop.ray.remote(Registry)
        .options(
            name=REGISTRY_NAME,
            namespace=namespace,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=driver_node, soft=False),
        )
        .remote(str(loop.out), first)
    )


def _trial_spec(request, loop: TuneLoop, namespace: str, driver_node: str) -> dict:
    """What every trial's worker is handed (plain data: Tune pickles it)."""
    return {
        "recipe_path": request.recipe,
        "recipe_text": loop.source.text,
        "recipe_sha256": loop.source.sha256,
        "data": loop.data,
        "trust_model": request.trust_model,
        "custom_objects": request.custom_objects,
        "target": loop.target,
        "objective": loop.recipe.search.objective,
        "size_key": loop.size_key,
        "keys": loop.keys,
        "space": {key: dim.to_json() for key, dim in loop.space.items()},
        "cpus_per_trial": loop.cpus,
        "early_stopping": loop.recipe.search.early_stopping is not None,
        "registry": REGISTRY_NAME,
        "namespace": namespace,
        "driver_node": driver_node,
        "out": str(loop.out),
        "cwd": os.getcwd(),
    }


def _hooks(loop: TuneLoop, registry, spec: dict) -> dict:
    """What tune_hooks calls as trials finish, fail or are stopped: record the trial, say so, rewrite search.json."""
    from compressctl.search import early_stop

    space_json, driver_node = spec["space"], spec["driver_node"]

    def on_result(result: dict) -> None:
        loop.trials.append({k: result.get(k) for k in record.TRIAL_KEYS})
        announce(loop.trials[-1], loop.emit)
        loop.write_record()

    def on_error(trial) -> None:
        trial_id = loop.ray.get(registry.id_for.remote(trial.trial_id))
        node = loop.ray.get(registry.node_of.remote(trial.trial_id))
        params = sampled_params(trial.config or {}, loop.keys, space_json)
        lost = node is not None and node["id"] != driver_node and node_lost(loop.ray, node)
        error = error_line(trial, node, lost)
        failed = {"id": trial_id, "params": params, "status": "failed", "error": error, "run_dir": f"trials/{trial_id}",
                  "node": node["ip"] if node else None, "seconds": None, **dict.fromkeys(obj.FIGURES)}  # fmt: skip
        loop.trials.append(failed)
        announce(failed, loop.emit)
        loop.write_record()

    def on_stopped(result: dict) -> None:
        stopped = early_stop.stopped_trial(result)
        run_dir = loop.out / stopped["run_dir"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.log").write_text(result.get("log", "") + f"stopped: {stopped['error']}\n")
        loop.trials.append(stopped)
        announce(stopped, loop.emit)
        loop.write_record()

    return {"on_result": on_result, "on_error": on_error, "on_stopped": on_stopped}


def tell_finished(searcher, done, inverse, space, pareto, objective, size_key) -> None:
    """Give the sampler the trials a resumed search already ran, as evaluated (not run again)."""
    if not done:
        return
    import optuna

    from compressctl.core.internals import optuna as optuna_internals
    from compressctl.core.internals import ray as ray_internals
    from compressctl.search.space import to_optuna

    distributions = {inverse[k]: d for k, d in to_optuna(space).items()}
    study = ray_internals.optuna_study(searcher)  # OptunaSearch's evaluated_rewards takes one objective only
    for trial in done:
        params = {inverse[k]: space[k].unsampled(v) for k, v in trial["params"].items() if k in inverse}
        if len(params) != len(distributions):
            continue  # the space changed since: the sampler learns nothing from this trial
        scored = obj.score(trial, objective, size_key)
        values = [scored["size"], scored["metric"]] if pareto else [scored["score"]]
        system_attrs = {}
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.GridSampler):
            # The grid sampler skips grid points by their id among its (shuffled) grid.
            system_attrs = optuna_internals.grid_point_attrs(sampler, params)
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, values=values, system_attrs=system_attrs
                )
            )
        except ValueError:
            continue  # a value outside the current space


def node_lost(ray, node: dict, wait: float = 10.0) -> bool:
    """Whether the node a trial ran on has left the cluster (its raylet gone, the machine down).

    Ray reports a lost node's actors dead once its control service marks the node dead; the two
    can arrive apart, so a node still listed alive is asked again for a few seconds (another
    machine's trials only: the driver's own node is never lost while the driver runs)."""
    deadline = time.monotonic() + wait
    while True:
        alive = any(n.get("NodeID") == node["id"] and n.get("Alive") for n in ray.nodes())
        if not alive:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(1.0)


def error_line(trial, node: dict | None = None, lost: bool = False) -> str:
    """One line on why a trial's worker failed (its node lost, crashed, killed, out of memory)."""
    text = ""
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        text = Path(path).read_text(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lost:
        where = f"node {node['ip']} ({node['id'][:12]})" if node else "its node"
        return f"node lost: {where} left the Ray cluster while the trial ran"
    died = next((ln for ln in lines if "OutOfMemoryError" in ln or "died" in ln.lower()), None)
    # Ray says why on a later line: the worker's exit type and detail (a signal, the OOM killer, ...).
    detail = next((ln[ln.index("Worker exit type") :] for ln in lines if "Worker exit type" in ln), None)
    shown = " ".join(x for x in (died, detail) if x) or (lines[-1] if lines else "")
    return f"worker crashed: {shown}"[:400] if shown else "worker crashed (no error recorded)"


def announce(trial: dict, emit) -> None:
    """One line per finished trial: a warning when it failed, else its figures."""
    if trial["status"] == "failed":
        emit(Event("warn", f"trial {trial['id']} failed: {trial['error']}"))
        return
    if trial["status"] == "stopped":
        emit(Event("step", f"trial {trial['id']} {trial['error']}, {trial['seconds'] or 0:.0f} s"))
        return
    emit(
        Event(
            "step",
            f"trial {trial['id']} {trial['status']}: metric {trial['metric_value']:.4f} "
            f"({100 * trial['metric_delta']:+.2f} pt), gzip {trial['gzip_bytes']:,} B "
            f"({trial['compression_ratio_gzip']:.1f}×), {trial['seconds']:.0f} s",
        )
    )
