"""``compressctl batch``: every model of a fleet file with every recipe, each run a Ray task.

Ray starts embedded on this machine (or joins ``--address``) exactly as a search does
(``ray_trials.ray_init``); a run on another machine runs into that machine's temporary folder and
comes back packed with its result (``ray_trials.pack_run``/``unpack_run``), so every run directory
ends up in DIR/runs/<model>/<recipe stem>/ on the driver. DIR/batch.json is rewritten whole after
each run, so it is always consistent; ``--resume`` keeps the runs that finished (met or missed
their gates) and runs the failed and missing ones again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from compressctl.core.errors import CompressctlError, UserError, first_line
from compressctl.core.events import Emit, Event, ignore
from compressctl.search import batch_record as rec
from compressctl.search.engine import DEFAULT_CPUS_PER_TRIAL, EXIT_INTERRUPTED
from compressctl.search.fleet import Pair, load_fleet
from compressctl.search.ray_trials import current_node, pack_run, ray_init, set_threads, unpack_run, worker_env
from compressctl.search.record import load, write_json_atomic


@dataclass
class BatchRequest:
    fleet: str
    out: str
    address: str | None = None
    max_concurrent: int | None = None
    resume: bool = False
    trust_model: bool = False
    custom_objects: str | None = None


@dataclass
class BatchResult:
    out: Path
    batch: dict
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else self.batch["exit_code"]


# --------------------------------------------------------------------------- worker side


def _run_pair(spec: dict, run_dir: Path) -> dict:
    """One ``compressctl run`` of the pair's recipe (its text, the fleet's overrides, the model's paths)."""
    from compressctl.recipe.schema import Source, apply_override, parse_yaml, validate
    from compressctl.run import pipeline

    pair = spec["pair"]
    data, node = parse_yaml(pair["recipe_text"], pair["recipe"])
    source = Source(path=pair["recipe"], node=node, text=pair["recipe_text"])
    for assignment in pair["overrides"]:
        apply_override(data, assignment, source)
    data.update({k: v for k, v in (("model", pair["model_path"]), ("data", pair["data_path"])) if v is not None})
    data["out"] = str(run_dir)
    result = pipeline.run(
        validate(data, source),
        recipe_path=pair["recipe"],
        recipe_sha256=source.sha256,
        trust_model=spec["trust_model"],
        custom_objects=spec["custom_objects"],
        source=source,
    )
    entry = rec.run_figures(result.report)
    failed = result.record.failed_targets
    if failed:
        reason = failed[0].error.strip().splitlines()[0] if failed[0].error.strip() else "no reason given"
        entry.update(status="failed", error=f"target {failed[0].target} failed: {reason}")
    else:
        entry.update(status="ok" if result.record.passed else "gate_failed", error=None)
    return entry


def run_task(spec: dict) -> tuple[dict, bytes | None]:
    """What a Ray worker runs for one pair: its entry fields, and its run directory packed when on another node."""
    import ray

    if Path(spec["cwd"]).is_dir():  # paths in the fleet and recipes are relative to the driver's folder
        os.chdir(spec["cwd"])
    set_threads(spec["cpus"])
    started = time.perf_counter()
    node_id, node_ip = current_node(ray)
    same_node = node_id == spec["driver_node"]
    base = Path(spec["out"]) if same_node else Path(tempfile.gettempdir()) / f"compressctl-batch-{spec['batch_id']}"
    run_dir = base / spec["pair"]["run_dir"]
    try:
        entry = _run_pair(spec, run_dir)
    except CompressctlError as exc:
        entry = {"status": "failed", "error": first_line(exc)}
    except Exception as exc:  # noqa: BLE001 - one run's failure is recorded; the batch goes on
        entry = {"status": "failed", "error": f"{type(exc).__name__}: {first_line(exc)}"}
    entry.update(node=node_ip, seconds=round(time.perf_counter() - started, 3))
    archive = pack_run(run_dir) if not same_node and run_dir.exists() else None
    return entry, archive


# --------------------------------------------------------------------------- driver side


def _previous(out: Path, resume: bool) -> dict[str, dict]:
    """The finished runs to keep, by run_dir (with --resume), after checking DIR may be written."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    previous = load(out / "batch.json") if out.exists() else None
    if previous is not None and not resume:
        raise UserError(f"{out}: holds a batch; pass --resume to continue it or choose another --out")
    if previous is None and out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: not empty and holds no batch.json; choose another --out")
    kept = {}
    for run in (previous or {}).get("runs", []):
        if run["status"] in ("ok", "gate_failed") and (out / run["run_dir"] / "report.json").exists():
            kept[run["run_dir"]] = run
    return kept


def _engine(ray, shown_address: str, max_concurrent: int | None) -> dict:
    """batch.json's engine: Ray's version and address, runs at once and CPUs per run, as a search sizes them
    (2 CPUs a run, or the cluster's CPUs / --max-concurrent), never more than the largest machine has."""
    cpus_total = int(ray.cluster_resources().get("CPU", 1))
    largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
    if max_concurrent is not None:
        concurrent, cpus = max_concurrent, max(1, cpus_total // max_concurrent)
    else:
        cpus = min(DEFAULT_CPUS_PER_TRIAL, cpus_total)
        concurrent = max(1, cpus_total // cpus)
    return {
        "name": "ray",
        "version": ray.__version__,
        "address": shown_address,
        "max_concurrent": concurrent,
        "cpus_per_run": max(1, min(cpus, largest)),
        "cluster_cpus": cpus_total,
    }


def _clean_partials(out: Path) -> None:
    """Remove the staging folders (``.<stem>.partial-*``) that interrupted runs left in DIR/runs/<model>/."""
    for model in (out / "runs").glob("*"):
        for entry in model.glob(".*"):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    """One line for a task Ray could not finish (a lost node, a crashed worker)."""
    import ray.exceptions as rex

    if isinstance(exc, rex.NodeDiedError):
        return f"node lost: {first_line(exc)}"
    if isinstance(exc, rex.WorkerCrashedError | rex.LocalRayletDiedError):
        return f"worker crashed: {first_line(exc)}"
    return f"{type(exc).__name__}: {first_line(exc)}"


@dataclass(kw_only=True)
class _Batch:
    out: Path
    header: dict
    runs: list[dict]

    def write(self, final: bool = False, interrupted: bool = False) -> dict:
        payload = rec.build(self.header, self.runs)
        if interrupted:  # what the command exits with: the runs left pending are not failures
            payload["exit_code"] = EXIT_INTERRUPTED
        write_json_atomic(self.out / "batch.json", payload)
        if final:
            (self.out / "report.html").write_text(rec.render_html(payload), encoding="utf-8")
        return payload

    def finish(self, pair: Pair, entry: dict, archive: bytes | None) -> None:
        if archive is not None:
            unpack_run(archive, self.out / pair.run_dir)
        run = next(r for r in self.runs if r["run_dir"] == pair.run_dir)
        run.update(entry)
        self.write()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _dispatch(ray, batch: _Batch, todo: list[Pair], spec: dict, emit: Emit) -> bool:
    """Run the pairs as Ray tasks, at most ``max_concurrent`` at once, recording each as it ends.

    Ctrl-C or SIGTERM stops it (the running runs are cancelled and stay ``pending``): returns True then."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run_all(ray, batch, todo, spec, emit)
    except KeyboardInterrupt:
        emit(Event("warn", "stopping: finished runs are kept; continue with --resume"))
        return True
    finally:
        signal.signal(signal.SIGTERM, previous)
    return False


def _run_all(ray, batch: _Batch, todo: list[Pair], spec: dict, emit: Emit) -> None:
    engine = batch.header["engine"]
    task = ray.remote(run_task).options(num_cpus=engine["cpus_per_run"], max_retries=0)
    waiting, running = list(todo), {}
    while waiting or running:
        while waiting and len(running) < engine["max_concurrent"]:
            pair = waiting.pop(0)
            shutil.rmtree(batch.out / pair.run_dir, ignore_errors=True)  # a failed run's leftovers, on resume
            running[task.remote({**spec, "pair": {**asdict(pair), "run_dir": pair.run_dir}})] = pair
            emit(Event("step", f"started {pair.key}"))
        done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)  # a timeout: signals get through
        if not done:
            continue
        pair = running.pop(done[0])
        try:
            entry, archive = ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - a lost node or crashed worker fails this run only
            entry, archive = {"status": "failed", "error": _reason(exc)}, None
        batch.finish(pair, entry, archive)
        emit(Event("step", f"{pair.key}: {entry['status']}" + (f" ({entry['error']})" if entry.get("error") else "")))


def batch(request: BatchRequest, emit: Emit = ignore) -> BatchResult:
    """Run every pair of the fleet the request names (the finished ones kept with --resume)."""
    fleet, pairs = load_fleet(request.fleet)
    out = Path(request.out).absolute()
    kept = _previous(out, request.resume)
    out.mkdir(parents=True, exist_ok=True)
    _clean_partials(out)
    runs = [kept.get(p.run_dir) or rec.empty_run(p) for p in pairs]
    todo = [p for p, r in zip(pairs, runs, strict=True) if r["status"] == "pending"]
    text = Path(request.fleet).read_bytes()
    header = {
        "schema_version": 1,
        "fleet": {"path": request.fleet, "sha256": hashlib.sha256(text).hexdigest()},
        "models": [m.name for m in fleet.models],
        "recipes": list(fleet.recipes),
        "set": list(fleet.set),
        "engine": None,
    }
    batch_ = _Batch(out=out, header=header, runs=runs)
    if not todo:
        header["engine"] = (load(out / "batch.json") or {}).get("engine")
        emit(Event("step", f"every run of {request.fleet} is finished; nothing to run"))
        return BatchResult(out=out, batch=batch_.write(final=True))
    address = request.address or os.environ.get("RAY_ADDRESS") or None
    ray, shown_address, temp = ray_init(address, worker_env(), emit)
    try:
        header["engine"] = engine = _engine(ray, shown_address, request.max_concurrent)
        batch_.write()
        spec = {
            "out": str(out),
            "cwd": os.getcwd(),
            "cpus": engine["cpus_per_run"],
            "driver_node": ray.get_runtime_context().get_node_id(),
            "batch_id": uuid.uuid4().hex[:12],
            "trust_model": request.trust_model,
            "custom_objects": request.custom_objects,
        }
        interrupted = _dispatch(ray, batch_, todo, spec, emit)
    finally:
        ray.shutdown()  # ends the runs still going when interrupted
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        _clean_partials(out)
    return BatchResult(out=out, batch=batch_.write(final=True, interrupted=interrupted), interrupted=interrupted)
