"""Searches with the real engine (Ray Tune + Optuna), each trial a full run: local, on a Ray head, resumed."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests import conftest
from tests.conftest import REPO, write_recipe

# One worker runs these in turn under pytest-xdist (--dist loadgroup): each starts Ray and its trials.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

CLI = [sys.executable, "-m", "compressctl"]

# One short fine-tuning stage and few timing runs: a trial is a real run, kept cheap.
RECIPE = """\
name: tiny-search
seed: 0
training: {batch_size: 32}
stages:
  - type: prune
    target_sparsity: 0.5
    epochs: 1
    learning_rate: 0.001
  - type: cluster
    number_of_clusters: 8
    epochs: 1
targets:
  - type: cpu
    mode: int8
    calibration_samples: 40
bench: {runs: 10, warmup: 1, rounds: 2}
gates:
  max_metric_drop: 0.2
search:
%s
"""


def env():
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def cli(*args, timeout=600):
    return conftest.cli(*args, env=env(), timeout=timeout)


def sha_of(run_dir: Path, target="cpu") -> str:
    report = json.loads((run_dir / "report.json").read_text())
    return next(a["sha256"] for a in report["artifacts"] if a["target"] == target)


def check_record(out: Path, search: dict) -> None:
    """Every trial's figures are its run directory's report.json figures."""
    for trial in search["trials"]:
        if trial["status"] == "failed":
            assert trial["error"]
            continue
        report = json.loads((out / trial["run_dir"] / "report.json").read_text())
        (artifact,) = report["artifacts"]
        for key in ("metric_value", "metric_delta", "size_bytes", "gzip_bytes", "compression_ratio_gzip", "speedup"):
            assert trial[key] == artifact[key]
        assert trial["latency_ms_p50"] == artifact["latency_ms"]["p50"]
        assert trial["status"] == ("ok" if report["passed"] else "gate_failed")
    assert not [p for p in (out / "trials").iterdir() if p.name.startswith(".")]  # no staging left


def test_local_search_records_failures_shares_prefixes_and_best_reproduces(tmp_path, tiny_cnn_path, tiny_data):
    space = (
        "  sampler: grid\n"
        "  space:\n"
        "    stages.1.number_of_clusters: {choice: [4, 8]}\n"
        f"    model: {{choice: [{json.dumps(str(tiny_cnn_path))}, {json.dumps(str(tmp_path / 'missing'))}]}}\n"
    )
    recipe = write_recipe(tmp_path, RECIPE % space)
    out = tmp_path / "search"
    result = cli("search", recipe, "--data", tiny_data, "--model", tiny_cnn_path, "--out", out, "--trials", 4,
                 "--max-concurrent", 1, "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    search = json.loads((out / "search.json").read_text())
    assert json.loads(result.stdout)["trials"] == search["trials"]
    assert search["engine"]["name"] == "ray" and search["engine"]["address"] == "local"
    assert search["engine"]["max_concurrent"] == 1 and search["engine"]["cpus_per_trial"] == 2
    assert [t["id"] for t in search["trials"]] == ["0001", "0002", "0003", "0004"]
    failed = [t for t in search["trials"] if t["status"] == "failed"]
    ran = [t for t in search["trials"] if t["status"] != "failed"]
    assert len(failed) == 2 and all("missing" in t["error"] and "not found" in t["error"] for t in failed)
    assert sorted(t["params"]["stages.1.number_of_clusters"] for t in ran) == [4, 8]
    check_record(out, search)
    # The second real trial reused the first one's pruned model (same prefix) from the shared cache.
    later = json.loads((out / max(ran, key=lambda t: t["id"])["run_dir"] / "report.json").read_text())
    assert later["stages"][0]["cached"] is True and later["stages"][1]["cached"] is False
    assert len(list((out / ".cache").glob("baseline.tflite-*"))) == 1  # one baseline conversion, shared
    assert set(search["pareto"]) <= {t["id"] for t in ran} and search["pareto"]
    best = search["best"]
    assert best["recipe"] == "best.yaml" and best["trial"] in {t["id"] for t in ran if t["status"] == "ok"}
    html = (out / "report.html").read_text()
    assert "<img" in html and best["trial"] in html and "Pareto" in html
    # best.yaml pins the TensorFlow threads the trial ran with (its CPU share), as the trial's lock records them.
    pinned = yaml.safe_load((out / "best.yaml").read_text())["training"]["threads"]
    assert pinned == {"intra_op": 2, "inter_op": 2}
    lock = yaml.safe_load((out / "trials" / best["trial"] / "recipe.lock.yaml").read_text())
    assert lock["training"]["threads"] == pinned
    # best.yaml reproduces the chosen trial's artifact, byte for byte.
    rerun = cli("run", out / "best.yaml", "--out", tmp_path / "again", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert sha_of(tmp_path / "again") == sha_of(out / "trials" / best["trial"])


def test_bad_space_key_is_exit_2_before_anything_runs(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(tmp_path, RECIPE % "  space:\n    stages.0.target_sparsty: {uniform: [0.3, 0.9]}\n")
    result = cli("search", recipe, "--model", tiny_cnn_path, "--data", tiny_data, "--out", tmp_path / "s")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {recipe}:21:5 search.space.stages.0.target_sparsty")
    assert "Traceback" not in result.stderr and not (tmp_path / "s").exists()


def test_sigterm_keeps_finished_trials_and_resume_runs_only_the_rest(tmp_path, tiny_cnn_path, tiny_data):
    # A sparsity dimension: the sampler draws the density, the trial records (and runs) the sparsity.
    recipe = write_recipe(tmp_path, RECIPE % "  space:\n    stages.0.target_sparsity: {sparsity: [0.3, 0.9]}\n")
    out = tmp_path / "search"
    args = ["search", recipe, "--model", tiny_cnn_path, "--data", tiny_data, "--out", out, "--max-concurrent", 1]
    proc = subprocess.Popen([*CLI, *map(str, args), "--trials", "3"], env=env(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        record = out / "search.json"
        if record.exists() and json.loads(record.read_text())["trials"]:
            break
        time.sleep(1)
    os.kill(proc.pid, signal.SIGTERM)  # the second trial is running now
    stderr = proc.communicate(timeout=180)[1]
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    first = json.loads((out / "search.json").read_text())
    assert [t["id"] for t in first["trials"]] == ["0001"]
    check_record(out, first)
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0001"]
    assert cli(*args, "--trials", 2).returncode == 2  # a search is there: continue it only with --resume
    resumed = cli(*args, "--trials", 2, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    search = json.loads((out / "search.json").read_text())
    assert [t["id"] for t in search["trials"]] == ["0001", "0002"]
    assert search["trials"][0] == first["trials"][0]  # kept as it was, not run again
    assert search["trials"][1]["params"] != first["trials"][0]["params"]
    for trial in search["trials"]:
        sparsity = trial["params"]["stages.0.target_sparsity"]
        assert 0.3 <= sparsity <= 0.9
        report = json.loads((out / trial["run_dir"] / "report.json").read_text())
        assert abs(report["stages"][0]["sparsity"] - sparsity) < 0.05  # the run pruned to that sparsity
    check_record(out, search)


def test_a_killed_worker_is_recorded_and_the_search_goes_on(tmp_path, tiny_cnn_path, tiny_data):
    # The custom-objects module is imported inside the trial's worker only; it kills that process
    # with SIGKILL, as the kernel's out-of-memory killer would.
    (tmp_path / "killer.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nOBJECTS = {}\n")
    recipe = write_recipe(tmp_path, RECIPE % "  space:\n    stages.0.target_sparsity: {uniform: [0.3, 0.9]}\n")
    out = tmp_path / "search"
    result = subprocess.run(
        [*CLI, "search", str(recipe), "--model", str(tiny_cnn_path), "--data", str(tiny_data), "--out", str(out),
         "--trials", "1", "--custom-objects", "killer:OBJECTS", "--json"],
        capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr  # no trial passed: exit 1, not a crash of the search
    search = json.loads((out / "search.json").read_text())
    assert [t["id"] for t in search["trials"]] == ["0001"]
    for trial in search["trials"]:
        assert trial["status"] == "failed" and trial["error"].startswith("worker crashed"), trial
        assert trial["node"]  # where it crashed: the trial's worker said so before it died
        assert trial["params"]["stages.0.target_sparsity"] is not None
    assert search["best"] is None and not (out / "best.yaml").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_search_on_a_ray_head_started_here(tmp_path, tiny_cnn_path, tiny_data):
    temp = Path(tempfile.mkdtemp(prefix="crh-", dir="/tmp"))  # short: Ray's socket paths live here
    port = _free_port()
    ports = [f"--{name}={_free_port()}" for name in ("ray-client-server-port", "dashboard-agent-listen-port",
                                                      "dashboard-agent-grpc-port", "runtime-env-agent-port",
                                                      "metrics-export-port", "node-manager-port",
                                                      "object-manager-port")]  # fmt: skip
    ray_cli = [str(Path(sys.executable).parent / "ray")]
    log = tmp_path / "head.log"
    with open(log, "w") as sink:
        head = subprocess.Popen(
            [*ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", "--block", *ports],
            env=env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        recipe = write_recipe(tmp_path, RECIPE % "  space:\n    stages.0.target_sparsity: {uniform: [0.3, 0.9]}\n")
        out = tmp_path / "search"
        deadline = time.time() + 180
        while "block forever" not in log.read_text() and time.time() < deadline and head.poll() is None:
            time.sleep(1)
        assert head.poll() is None and "block forever" in log.read_text(), log.read_text()
        result = cli("search", recipe, "--model", tiny_cnn_path, "--data", tiny_data, "--out", out,
                     "--trials", 2, "--max-concurrent", 2, "--address", f"127.0.0.1:{port}", "--json")  # fmt: skip
        assert result.returncode in (0, 1), result.stderr
        search = json.loads((out / "search.json").read_text())
        assert search["engine"]["address"] == f"127.0.0.1:{port}"
        assert search["engine"]["max_concurrent"] == 2 and search["engine"]["cpus_per_trial"] == 1
        assert [t["id"] for t in search["trials"]] == ["0001", "0002"]
        assert all(t["status"] != "failed" for t in search["trials"]), search["trials"]
        (node,) = {t["node"] for t in search["trials"]}  # the head's node (Ray lists the machine's address)
        assert node
        check_record(out, search)
        # Both trials ran on the head's workers, reading the model the driver named.
        for trial in search["trials"]:
            report = json.loads((out / trial["run_dir"] / "report.json").read_text())
            assert report["model"]["path"] == str(tiny_cnn_path)
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # this head only: its own process group
        head.wait(timeout=60)
        time.sleep(2)
        left = [p for p in Path("/proc").glob("[0-9]*") if str(temp) in _cmdline(p)]
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the test's Ray head still running: {[p.name for p in left]}"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_early_stopping_stops_trailing_trials_and_resume_keeps_them(tmp_path, tiny_cnn_path, tiny_data):
    # Two learning rates that fine-tune and two that wreck the model in its first epoch: ASHA, comparing the
    # trials at epoch 1, stops a wrecked one that reaches it after a sound one.
    space = (
        "  sampler: grid\n"
        "  space:\n"
        "    stages.0.learning_rate: {choice: [0.9, 1.0, 0.001, 0.002]}\n"
        "  early_stopping: {scheduler: asha, grace_epochs: 1, reduction_factor: 2}\n"
    )
    recipe = write_recipe(
        tmp_path, (RECIPE % space).replace("epochs: 1\n    learning_rate", "epochs: 3\n    learning_rate")
    )
    out = tmp_path / "search"
    result = cli("search", recipe, "--data", tiny_data, "--model", tiny_cnn_path, "--out", out, "--trials", 4,
                 "--max-concurrent", 1)  # fmt: skip
    assert result.returncode == 0, result.stderr
    search = json.loads((out / "search.json").read_text())
    by_status = {}
    for trial in search["trials"]:
        by_status.setdefault(trial["status"], []).append(trial)
    stopped = by_status.get("stopped", [])
    assert stopped, search["trials"]
    for trial in stopped:
        assert trial["params"]["stages.0.learning_rate"] >= 0.9
        assert trial["stopped_at_epoch"] in (1, 2) and "early stopping (ASHA)" in trial["error"]
        assert "training accuracy 0." in trial["error"]
        assert trial["gzip_bytes"] is None and not (out / trial["run_dir"] / "report.json").exists()
        log = (out / trial["run_dir"] / "run.log").read_text()
        assert f"prune: epoch {trial['stopped_at_epoch']}/3" in log
        assert log.rstrip().endswith("trailed the other trials' at that epoch")
    sound = [t for t in search["trials"] if t["params"]["stages.0.learning_rate"] < 0.9]
    assert all(t["status"] in ("ok", "gate_failed") and t["stopped_at_epoch"] is None for t in sound)
    check_record(out, {"trials": [t for t in search["trials"] if t["status"] != "stopped"]})
    assert search["best"]["trial"] in {t["id"] for t in sound}
    assert f"trial {stopped[0]['id']} stopped by early stopping" in result.stderr
    assert f"{len(stopped)} stopped by early stopping" in (out / "report.html").read_text()
    # --resume keeps the stopped trials as finished: nothing runs again.
    again = cli("search", recipe, "--data", tiny_data, "--model", tiny_cnn_path, "--out", out, "--trials", 4,
                "--max-concurrent", 1, "--resume")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "search.json").read_text())["trials"] == search["trials"]
    assert (out / stopped[0]["run_dir"] / "run.log").exists()


def test_bisection_moves_toward_the_gate_then_searches_around_it_and_resumes(tmp_path, tiny_cnn_path, tiny_data):
    from compressctl.recipe.search_spec import Dimension
    from compressctl.search import bisect

    space = (
        "  space:\n"
        "    stages.0.learning_rate: {loguniform: [0.0005, 0.002]}\n"
        "  per_layer: {stage: 0, low: 0.3, bisect: 2, levels: [0.5, 0.8, 0.95]}\n"
    )
    recipe = write_recipe(tmp_path, RECIPE % space)
    out = tmp_path / "search"
    args = ["search", recipe, "--model", tiny_cnn_path, "--data", tiny_data, "--out", out, "--max-concurrent", 1]
    result = cli(*args, "--trials", 3, "--json")
    assert result.returncode in (0, 1), result.stderr
    search = json.loads((out / "search.json").read_text())
    state = search["bisect"]
    assert state["trials"] == 2 and sorted(state["allowances"]) == ["0001", "0002"]
    analysis = json.loads((out / "sensitivity" / "sensitivity.json").read_text())
    curves = {f"stages.0.layers.{r['name']}": bisect.curve(r) for r in analysis["layers"] if "prune" in r}
    dims = {key: Dimension.model_validate(value) for key, value in search["space"].items()}
    assert curves and set(curves) < set(dims)
    first, second, third = search["trials"]
    assert state["allowances"]["0001"] == pytest.approx((bisect.LOWEST * bisect.HIGHEST) ** 0.5)
    for trial in (first, second):  # the sparsities its allowance reads on the curves; the recipe's learning rate
        expected = bisect.layer_sparsities(curves, state["allowances"][trial["id"]], dims)
        assert {k: v for k, v in trial["params"].items() if k in curves} == expected
        assert trial["params"]["stages.0.learning_rate"] == 0.001
        report = json.loads((out / trial["run_dir"] / "report.json").read_text())
        assert report["stages"][0]["type"] == "prune"
    # The second allowance went the way the first trial's verdict pointed (the recipe's gate: 0.2).
    went_down = state["allowances"]["0002"] < state["allowances"]["0001"]
    assert went_down == bisect.too_far(first, 0.2)
    assert state["bracket"] == list(bisect.bracket(state["allowances"], [first, second], 0.2))
    assert set(state["space"]) == set(curves)
    for key, dim in state["space"].items():  # the third trial: drawn in the narrowed ranges
        low, high = dim["sparsity"]
        assert low - 1e-6 <= third["params"][key] <= high + 1e-6
    check_record(out, search)
    resumed = cli(*args, "--trials", 4, "--resume", "--json")
    assert resumed.returncode in (0, 1), resumed.stderr
    again = json.loads((out / "search.json").read_text())
    assert again["trials"][:3] == search["trials"] and len(again["trials"]) == 4
    assert again["bisect"]["allowances"] == state["allowances"]  # bisection done: the fourth trial is sampled
    check_record(out, again)
