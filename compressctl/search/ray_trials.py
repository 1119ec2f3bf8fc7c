"""Ray for a search and a batch: starting or joining it, and what its worker processes run (trials, the trial
registry, shipping a run directory from another machine to the driver)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from compressctl.core.errors import CompressctlError, UserError
from compressctl.core.events import Event, ignore
from compressctl.litert.bench import TIMING_LOCK_ENV
from compressctl.recipe.search_spec import Dimension
from compressctl.search import objective as obj
from compressctl.search.space import resolved_recipe

# --------------------------------------------------------------------------- driver side


def worker_env() -> dict:
    """The environment variables every Ray worker of a search or a batch starts with."""
    lock_file = Path(tempfile.gettempdir()) / f"compressctl-timing-{os.getuid()}.lock"
    env = {
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        TIMING_LOCK_ENV: str(lock_file),
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def ray_init(address: str | None, env: dict, emit) -> tuple[object, str, str | None]:
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


# --------------------------------------------------------------------------- worker side


def set_threads(cpus: int) -> None:
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


def run_trial(spec: dict, params: dict, trial_id: str, run_dir: Path, cache_root: Path, epochs_to=None) -> dict:
    """One trial: the recipe with ``params`` applied, run end to end; its figures from its report.json.

    ``epochs_to`` (early stopping): called with every training epoch's figures (compressctl.search.early_stop)."""
    from compressctl.recipe.schema import Source
    from compressctl.run import pipeline
    from compressctl.search import early_stop

    started = time.perf_counter()
    trial = {"id": trial_id, "params": params, "run_dir": f"trials/{trial_id}", "error": None}
    trial.update(dict.fromkeys(obj.FIGURES))
    gates: list = []
    emit = ignore
    try:
        source = Source(path=spec["recipe_path"], text=spec["recipe_text"])
        recipe = resolved_recipe(spec["data"], source, params, {"out": str(run_dir)})
        if epochs_to is not None:
            known = {"id": trial_id, "params": params, "run_dir": trial["run_dir"], "node": spec.get("node")}
            emit = early_stop.EpochReporter(epochs_to, early_stop.stage_epochs(recipe.stages), known, spec["objective"])
        result = pipeline.run(
            recipe,
            emit=emit,
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
    if epochs_to is not None:  # Tune requires the scheduler's figure in every result, a failed trial's too
        trial[early_stop.GOODNESS] = emit.last if isinstance(emit, early_stop.EpochReporter) else -1e9
    trial.update(obj.score(trial, spec["objective"], spec["size_key"], gates))
    return trial


def sampled_params(config: dict, keys: dict[str, str], space: dict[str, dict]) -> dict:
    """A Tune config (sampler names and values) → the trial's recipe params (``--set`` paths and values)."""
    return {keys[k]: Dimension.model_validate(space[keys[k]]).sampled(v) for k, v in config.items() if k in keys}


def trainable(config: dict, spec: dict):
    """What Ray Tune runs in the trial's worker process."""
    import ray
    from ray import tune

    cpus = spec["cpus_per_trial"]
    if Path(spec["cwd"]).is_dir():  # Tune starts trials in its own folder; recipe paths are relative to ours
        os.chdir(spec["cwd"])
    set_threads(cpus)
    registry = ray.get_actor(spec["registry"], namespace=spec["namespace"])
    node_id, node_ip = current_node(ray)
    # The registry learns the node now: if the node is lost mid-trial, the driver still knows where it ran.
    trial_id = ray.get(registry.id_for.remote(tune.get_context().get_trial_id(), {"ip": node_ip, "id": node_id}))
    params = sampled_params(config, spec["keys"], spec["space"])
    same_node = node_id == spec["driver_node"]
    report = tune.report if spec.get("early_stopping") else None
    spec = {**spec, "node": node_ip}
    if same_node:
        run_dir = Path(spec["out"]) / "trials" / trial_id
        trial = run_trial(spec, params, trial_id, run_dir, Path(spec["out"]) / ".cache", report)
    else:
        # Another machine: run into a local folder, then ship the run directory to the driver's.
        local = Path(tempfile.gettempdir()) / f"compressctl-search-{spec['namespace']}"
        run_dir = local / "trials" / trial_id
        trial = run_trial(spec, params, trial_id, run_dir, local / ".cache", report)
        if run_dir.exists():
            ray.get(registry.receive.remote(trial_id, pack_run(run_dir)))
    trial["node"] = node_ip
    return trial


def current_node(ray) -> tuple[str, str | None]:
    """This worker's Ray node: its id, and the address it joined with (`ray start --node-ip-address`)
    as the cluster lists it."""
    node_id = ray.get_runtime_context().get_node_id()
    node_ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n.get("NodeID") == node_id), None)
    return node_id, node_ip


def pack_run(run_dir: Path) -> bytes:
    """A finished run directory on another machine as a tar.gz, to ship over Ray; the local copy is removed."""
    archive = Path(shutil.make_archive(str(run_dir.parent / f".{run_dir.name}-ship"), "gztar", run_dir))
    try:
        return archive.read_bytes()
    finally:
        archive.unlink()
        shutil.rmtree(run_dir, ignore_errors=True)


def unpack_run(archive: bytes, target: Path) -> None:
    """A shipped run directory (``pack_run``) unpacked into ``target`` on the driver's machine (replacing it)."""
    import io
    import tarfile

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(target, filter="data")


def sensitivity_task(model, data, levels, trust_model, custom_objects, cpus):
    """The layer sensitivity analysis, run as a Ray task with its share of CPUs."""
    set_threads(cpus)
    from compressctl.search import sensitivity

    return sensitivity.analyse(model, data, levels=levels, trust_model=trust_model, custom_objects=custom_objects)


class Registry:
    """Runs on the driver's node: hands out trial numbers, remembers each trial's node, stores shipped runs."""

    def __init__(self, out: str, first: int):
        self.out = Path(out)
        self.next = first
        self.ids: dict[str, str] = {}
        self.nodes: dict[str, dict] = {}

    def id_for(self, tune_trial_id: str, node: dict | None = None) -> str:
        if tune_trial_id not in self.ids:
            self.ids[tune_trial_id] = f"{self.next:04d}"
            self.next += 1
        if node is not None:
            self.nodes[tune_trial_id] = node
        return self.ids[tune_trial_id]

    def node_of(self, tune_trial_id: str) -> dict | None:
        """The node a trial's worker said it runs on ({"ip", "id"}), or None if it never started."""
        return self.nodes.get(tune_trial_id)

    def receive(self, trial_id: str, archive: bytes) -> None:
        unpack_run(archive, self.out / "trials" / trial_id)
