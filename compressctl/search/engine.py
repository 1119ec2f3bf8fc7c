"""The search engine: Ray Tune runs the trials, an Optuna sampler proposes them.

Each trial is a full compressctl run (``pipeline.run``) in its own Ray worker process with its
share of CPUs (TensorFlow's intra/inter-op threads set from it), writing a normal run directory
DIR/trials/NNNN/. With no address Ray starts embedded on this machine in a private temporary
directory; with ``--address`` (or RAY_ADDRESS) the trials run on an existing cluster.

The driver records every finished trial in DIR/search.json as it finishes (written whole, then
renamed), so Ctrl-C or SIGTERM stops the search with a consistent record; ``--resume`` hands the
finished trials to the sampler as already evaluated and runs only the rest.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from compressctl.core.errors import EXIT_GATE_FAILED, EXIT_OK, CompressctlError, UserError
from compressctl.core.events import Emit, Event, ignore
from compressctl.litert.bench import TIMING_LOCK_ENV as LOCK_ENV
from compressctl.recipe.search_spec import Dimension
from compressctl.search import objective as obj
from compressctl.search import record
from compressctl.search.space import load_search_recipe, recipe_yaml, resolved_recipe

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


# --------------------------------------------------------------------------- worker side


def _set_threads(cpus: int) -> None:
    """TensorFlow sizes its pools from the machine, not from Ray's share: set them from the share.

    The environment variables reach the conversion worker (a child process) too."""
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(cpus)
    from compressctl.core.env import tf

    tensorflow = tf()
    try:
        tensorflow.config.threading.set_intra_op_parallelism_threads(cpus)
        tensorflow.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:  # already initialised in this process: the environment variables set it
        pass


def run_trial(spec: dict, params: dict, trial_id: str, run_dir: Path, cache_root: Path) -> dict:
    """One trial: the recipe with ``params`` applied, run end to end; its figures from its report.json."""
    from compressctl.recipe.schema import Source
    from compressctl.run import pipeline

    started = time.perf_counter()
    trial = {"id": trial_id, "params": params, "run_dir": f"trials/{trial_id}", "error": None}
    trial.update(dict.fromkeys(obj.FIGURES))
    gates: list = []
    try:
        source = Source(path=spec["recipe_path"], text=spec["recipe_text"])
        recipe = resolved_recipe(spec["data"], source, params, {"out": str(run_dir)})
        result = pipeline.run(
            recipe,
            recipe_path=spec["recipe_path"],
            recipe_sha256=spec["recipe_sha256"],
            trust_model=spec["trust_model"],
            custom_objects=spec["custom_objects"],
            resume=True,  # reuse stage outputs of earlier trials with the same prefix
            cache_root=cache_root,
        )
        report = result.report
        status, error = obj.status_of(report, spec["target"])
        trial.update({"status": status, "error": error})
        figures = obj.trial_figures(report, spec["target"])
        if figures:
            trial.update(figures)
        gates = report["gates"]
    except CompressctlError as exc:
        trial.update({"status": "failed", "error": str(exc).splitlines()[0]})
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is recorded; the search goes on
        trial.update(
            {"status": "failed", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        )
    trial["seconds"] = round(time.perf_counter() - started, 3)
    trial.update(obj.score(trial, spec["objective"], spec["size_key"], gates))
    return trial


def sampled_params(config: dict, keys: dict[str, str], space: dict[str, dict]) -> dict:
    """A Tune config (sampler names and values) → the trial's recipe params (``--set`` paths and values)."""
    return {keys[k]: Dimension.model_validate(space[keys[k]]).sampled(v) for k, v in config.items() if k in keys}


def _trainable(config: dict, spec: dict):
    """What Ray Tune runs in the trial's worker process."""
    import ray
    from ray import tune

    cpus = spec["cpus_per_trial"]
    if Path(spec["cwd"]).is_dir():  # Tune starts trials in its own folder; recipe paths are relative to ours
        os.chdir(spec["cwd"])
    _set_threads(cpus)
    registry = ray.get_actor(spec["registry"], namespace=spec["namespace"])
    trial_id = ray.get(registry.id_for.remote(tune.get_context().get_trial_id()))
    params = sampled_params(config, spec["keys"], spec["space"])
    same_node = ray.get_runtime_context().get_node_id() == spec["driver_node"]
    if same_node:
        run_dir = Path(spec["out"]) / "trials" / trial_id
        trial = run_trial(spec, params, trial_id, run_dir, Path(spec["out"]) / ".cache")
    else:
        # Another machine: run into a local folder, then ship the run directory to the driver's.
        local = Path(tempfile.gettempdir()) / f"compressctl-search-{spec['namespace']}"
        run_dir = local / "trials" / trial_id
        trial = run_trial(spec, params, trial_id, run_dir, local / ".cache")
        if run_dir.exists():
            archive = shutil.make_archive(str(local / trial_id), "gztar", run_dir)
            ray.get(registry.receive.remote(trial_id, Path(archive).read_bytes()))
            Path(archive).unlink()
            shutil.rmtree(run_dir, ignore_errors=True)
    return trial


class _Registry:
    """Runs on the driver's node: hands out trial numbers and stores shipped run directories."""

    def __init__(self, out: str, first: int):
        self.out = Path(out)
        self.next = first
        self.ids: dict[str, str] = {}

    def id_for(self, tune_trial_id: str) -> str:
        if tune_trial_id not in self.ids:
            self.ids[tune_trial_id] = f"{self.next:04d}"
            self.next += 1
        return self.ids[tune_trial_id]

    def receive(self, trial_id: str, archive: bytes) -> None:
        import io
        import tarfile

        target = self.out / "trials" / trial_id
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(target, filter="data")


# --------------------------------------------------------------------------- driver side


def _sampler(name: str, seed: int, space: dict[str, Dimension], keys: dict[str, str]):
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        inner = {internal: list(space[key].choice) for internal, key in keys.items()}
        return optuna.samplers.GridSampler(inner, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _check_out(out: Path, resume: bool) -> list[dict]:
    """The finished trials to keep (with --resume), after checking DIR may be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    previous = record.load(out / "search.json") if out.exists() else None
    if previous is not None and not resume:
        raise UserError(f"{out}: holds a search; pass --resume to continue it or choose another --out")
    if previous is None and out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: not empty and holds no search.json; choose another --out")
    if previous is None:
        return []
    kept = []
    for trial in previous.get("trials", []):
        if (out / trial["run_dir"] / "report.json").exists() or trial["status"] == "failed":
            kept.append(trial)
    return kept


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


def _per_layer_space(recipe, out: Path, spec_data: dict, request: SearchRequest, ray_mod, cpus: int, emit) -> dict:
    """Per-layer sparsity ranges for the prune stage, bounded by the sensitivity analysis."""
    import json

    from compressctl.search import sensitivity

    per_layer = recipe.search.per_layer
    path = out / "sensitivity" / "sensitivity.json"
    result = json.loads(path.read_text()) if path.exists() else None
    if result is None or result.get("levels") != list(per_layer.levels):
        emit(Event("step", "layer sensitivity: pruning one layer at a time"))
        task = ray_mod.remote(num_cpus=cpus)(_sensitivity_task)
        result = ray_mod.get(
            task.remote(
                recipe.model, recipe.data, list(per_layer.levels), request.trust_model, request.custom_objects, cpus
            )
        )
        sensitivity.write(result, out / "sensitivity")
    space = {}
    for row in result["layers"]:
        bound = sensitivity.layer_bound(row, per_layer.max_drop)
        if bound is None or not _SAFE_LAYER.fullmatch(row["name"]):
            continue
        high = max(bound, per_layer.low + 0.01)
        space[f"stages.{per_layer.stage}.layers.{row['name']}"] = Dimension(sparsity=(per_layer.low, min(high, 0.995)))
    return space


def _sensitivity_task(model, data, levels, trust_model, custom_objects, cpus):
    _set_threads(cpus)
    from compressctl.search import sensitivity

    return sensitivity.analyse(model, data, levels=levels, trust_model=trust_model, custom_objects=custom_objects)


def _ray_init(address: str | None, env: dict, emit) -> tuple[object, str, str | None]:
    """Connect to (or start) Ray; returns the module, the address shown in search.json, a temp dir to remove."""
    import logging

    if address:
        # `ray start --head` (Ray 2.60) requires the cluster's token; Ray reads this when it is imported.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    runtime_env = {"env_vars": env}
    if address:
        emit(Event("step", f"joining the Ray cluster at {address}"))
        try:
            ray.init(address=address, runtime_env=runtime_env, logging_level=logging.ERROR, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - an unreachable cluster is bad input
            raise UserError(f"--address {address}: cannot join the Ray cluster ({str(exc).splitlines()[0]})") from None
        return ray, address, None
    # A short private directory: Ray's sockets live there (path length limit), apart from other Ray users.
    temp = tempfile.mkdtemp(prefix="crs-", dir="/tmp")
    emit(Event("step", "starting Ray on this machine"))
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        _temp_dir=temp,
        runtime_env=runtime_env,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=True,
    )
    return ray, "local", temp


def search(request: SearchRequest, emit: Emit = ignore) -> SearchResult:
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
    spec_search = recipe.search
    out = Path(request.out).absolute()
    done = _check_out(out, request.resume)
    out.mkdir(parents=True, exist_ok=True)
    _clean_partials(out, {t["id"] for t in done})
    target = spec_search.target or recipe.target_names()[0]
    size_key = spec_search.pareto_size
    total_trials = request.trials or spec_search.trials
    budget = request.time_budget or spec_search.time_budget

    lock_file = Path(tempfile.gettempdir()) / f"compressctl-timing-{os.getuid()}.lock"
    env = {
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        LOCK_ENV: str(lock_file),
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    address = request.address or os.environ.get("RAY_ADDRESS") or None
    ray, shown_address, temp = _ray_init(address, dict(env), emit)
    interrupted = {"flag": False}

    def on_signal(signum, frame):
        # Ctrl-C and SIGTERM stop the search: Tune's stopper sees the flag, ends the running trials
        # and returns; every finished trial is already in search.json. A second signal is not held.
        if interrupted["flag"]:
            raise KeyboardInterrupt
        interrupted["flag"] = True
        emit(Event("warn", "stopping: finished trials are kept; continue with --resume"))

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, on_signal)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        cpus_total = int(ray.cluster_resources().get("CPU", 1))
        if request.max_concurrent is not None:
            concurrent = request.max_concurrent
            cpus = spec_search.cpus_per_trial or max(1, cpus_total // concurrent)
        else:
            cpus = spec_search.cpus_per_trial or min(DEFAULT_CPUS_PER_TRIAL, cpus_total)
            concurrent = max(1, cpus_total // cpus)

        space = dict(spec_search.space)
        if spec_search.per_layer is not None:
            space.update(_per_layer_space(recipe, out, data, request, ray, cpus, emit))
        keys = {f"p{i}": key for i, key in enumerate(space)}
        header = {
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
            "engine": {
                "name": "ray",
                "version": ray.__version__,
                "address": shown_address,
                "max_concurrent": concurrent,
                "cpus_per_trial": cpus,
                "cluster_cpus": cpus_total,
            },
            "metric": None,
        }
        trials = list(done)

        def write_record(final: bool = False) -> dict:
            payload = record.build(header, trials, size_key, spec_search.objective, None)
            best = obj.choose_best(trials, spec_search.objective, size_key)
            if best is not None:
                best_recipe = resolved_recipe(data, source, best["params"], {"out": str(out / "best")})
                (out / "best.yaml").write_text(
                    recipe_yaml(
                        best_recipe,
                        f"# Trial {best['id']} of compressctl search ({request.recipe}), every field resolved:\n"
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

        write_record()  # from the start, DIR holds a consistent search.json (no trial yet, or the kept ones)
        remaining = total_trials - len(done)
        if spec_search.sampler == "grid":
            from compressctl.search.space import grid_size

            remaining = min(remaining, grid_size(space) - len(done))
        if remaining > 0:
            _tune(ray, request, recipe, data, source, space, keys, done, trials, out, target, size_key,
                  concurrent, cpus, budget, remaining, env, write_record, interrupted, emit)  # fmt: skip
        _clean_partials(out, {t["id"] for t in trials})
        payload = write_record(final=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return SearchResult(out=out, search=payload, interrupted=interrupted["flag"])


def _tune(ray, request, recipe, data, source, space, keys, done, trials, out, target, size_key, concurrent, cpus,
          budget, remaining, env, write_record, interrupted, emit):  # fmt: skip
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from compressctl.search import tune_hooks
    from compressctl.search.space import to_optuna

    spec_search = recipe.search
    inverse = {key: internal for internal, key in keys.items()}
    distributions = {inverse[k]: d for k, d in to_optuna(space).items()}
    pareto = spec_search.objective == "pareto"
    searcher = OptunaSearch(
        space=distributions,
        metric=["size", "metric"] if pareto else "score",
        mode=["min", "max"] if pareto else "min",
        # A resumed search continues from a new seed: the same seed would propose the finished trials again.
        sampler=_sampler(spec_search.sampler, spec_search.seed + len(done), space, keys),
    )
    _tell_finished(searcher, done, inverse, space, pareto, spec_search.objective, size_key)
    namespace = f"s{os.getpid()}x{int(time.time() * 1000) % 10**9}"
    registry_name = "compressctl-trials"
    first = max((int(t["id"]) for t in done), default=0) + 1
    driver_node = ray.get_runtime_context().get_node_id()
    registry = (
        ray.remote(_Registry)
        .options(
            name=registry_name,
            namespace=namespace,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=driver_node, soft=False),
        )
        .remote(str(out), first)
    )
    spec = {
        "recipe_path": request.recipe,
        "recipe_text": source.text,
        "recipe_sha256": source.sha256,
        "data": data,
        "trust_model": request.trust_model,
        "custom_objects": request.custom_objects,
        "target": target,
        "objective": spec_search.objective,
        "size_key": size_key,
        "keys": keys,
        "space": {key: dim.to_json() for key, dim in space.items()},
        "cpus_per_trial": cpus,
        "registry": registry_name,
        "namespace": namespace,
        "driver_node": driver_node,
        "out": str(out),
        "cwd": os.getcwd(),
    }

    def on_result(result: dict) -> None:
        trials.append({k: result.get(k) for k in record.TRIAL_KEYS})
        _announce(trials[-1], emit)
        write_record()

    def on_error(trial) -> None:
        trial_id = ray.get(registry.id_for.remote(trial.trial_id))
        params = sampled_params(trial.config or {}, keys, spec["space"])
        failed = {"id": trial_id, "params": params, "status": "failed", "error": _error_line(trial),
                  "run_dir": f"trials/{trial_id}", "seconds": None, **dict.fromkeys(obj.FIGURES)}  # fmt: skip
        trials.append(failed)
        _announce(failed, emit)
        write_record()

    tune_hooks.ACTIVE.clear()
    tune_hooks.ACTIVE.update(on_result=on_result, on_error=on_error, interrupted=interrupted)
    trainable = tune.with_resources(tune.with_parameters(_trainable, spec=spec), {"cpu": cpus})
    emit(
        Event(
            "step",
            f"running {remaining} trial(s), {concurrent} at a time, {cpus} CPU(s) each, on Ray {ray.__version__}",
        )
    )
    storage = tempfile.mkdtemp(prefix=".tune-", dir=out)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
            num_samples=remaining,
            time_budget_s=budget,
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=storage,
            callbacks=[tune_hooks.Recorder()],
            stop=tune_hooks.Interrupted(),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no progress tables from Tune
    try:
        if not interrupted["flag"]:
            tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _tell_finished(searcher, done, inverse, space, pareto, objective, size_key) -> None:
    """Give the sampler the trials a resumed search already ran, as evaluated (not run again)."""
    if not done:
        return
    import optuna

    from compressctl.search.space import to_optuna

    distributions = {inverse[k]: d for k, d in to_optuna(space).items()}
    study = searcher._ot_study  # OptunaSearch's evaluated_rewards takes one objective only
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
            point = tuple(params[name] for name in sampler._param_names)
            if point in sampler._all_grids:
                system_attrs = {"grid_id": sampler._all_grids.index(point), "search_space": sampler._search_space}
        try:
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=distributions, values=values, system_attrs=system_attrs
                )
            )
        except ValueError:
            continue  # a value outside the current space


def _error_line(trial) -> str:
    """One line on why a trial's worker failed (crashed, killed, out of memory)."""
    text = ""
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        text = Path(path).read_text(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    died = next((ln for ln in lines if "OutOfMemoryError" in ln or "died" in ln.lower()), None)
    # Ray says why on a later line: the worker's exit type and detail (a signal, the OOM killer, ...).
    detail = next((ln[ln.index("Worker exit type") :] for ln in lines if "Worker exit type" in ln), None)
    shown = " ".join(x for x in (died, detail) if x) or (lines[-1] if lines else "")
    return f"worker crashed: {shown}"[:400] if shown else "worker crashed (no error recorded)"


def _announce(trial: dict, emit) -> None:
    if trial["status"] == "failed":
        emit(Event("warn", f"trial {trial['id']} failed: {trial['error']}"))
        return
    emit(
        Event(
            "step",
            f"trial {trial['id']} {trial['status']}: metric {trial['metric_value']:.4f} "
            f"({100 * trial['metric_delta']:+.2f} pt), gzip {trial['gzip_bytes']:,} B "
            f"({trial['compression_ratio_gzip']:.1f}×), {trial['seconds']:.0f} s",
        )
    )
