"""A search on a real two-host Ray cluster: two network namespaces joined by a veth pair, a Ray head
in one and a worker in the other, the worker with its own mount namespace that hides the driver's
output directory. Trials that run on the worker ship their run directories back over Ray; then the
worker host's Ray processes are killed while a trial runs there, and the search finishes on the head.

Needs root (network namespaces); fails in CI (CI set) when they cannot be made, skips elsewhere.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compressctl.run import manifest
from tests.conftest import REPO, write_recipe
from tests.helpers.remeasure import remeasure

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

# A private test subnet: it exists only inside the two namespaces (each has its own routing table).
HEAD_IP, WORKER_IP, PREFIX = "10.213.7.1", "10.213.7.2", 24
PORT = 6379  # free: the namespaces have their own port space
RAY = str(Path(sys.executable).parent / "ray")

# Trials as cheap as a real run gets: one short pruning stage, an int8 conversion, few timing runs.
RECIPE = """\
name: two-hosts
seed: 0
training: {batch_size: 32, steps_per_epoch: 3}
stages:
  - type: prune
    target_sparsity: 0.5
    epochs: 1
    learning_rate: 0.001
targets:
  - type: cpu
    mode: int8
    calibration_samples: 20
bench: {runs: 5, warmup: 1, rounds: 1}
gates:
  max_metric_drop: 0.5
search:
  sampler: random
  seed: 0
  space:
    stages.0.target_sparsity: {uniform: [0.3, 0.9]}
"""


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Hosts:
    """The two test hosts: namespace names, the Ray processes (each its own process group), paths."""

    head_ns: str
    worker_ns: str
    token: str
    hidden: Path  # the driver's output's parent; a private tmpfs covers it on the worker host
    temps: list[Path] = field(default_factory=list)
    procs: dict = field(default_factory=dict)  # name → Popen
    logs: dict = field(default_factory=dict)  # name → log path

    def env(self) -> dict:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,  # shared by head, worker and driver; ~/.ray is left alone
            "RAY_USAGE_STATS_ENABLED": "0",
            # The head notices a lost node within seconds (default: about half a minute).
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_timeout_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
        }

    def start(self, name: str, command: list[str]) -> None:
        log = self.hidden.parent / f"{name}.log"
        with open(log, "w") as sink:
            self.procs[name] = subprocess.Popen(
                command, env=self.env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.logs[name] = log

    def wait_up(self, name: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and self.procs[name].poll() is None:
            if "block forever" in self.logs[name].read_text():
                return
            time.sleep(0.5)
        pytest.fail(f"Ray {name} did not start:\n{self.logs[name].read_text()[-3000:]}")

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # this host's Ray only: its own process group
        proc.wait(timeout=60)

    def in_head(self, *command) -> list[str]:
        return ["ip", "netns", "exec", self.head_ns, *map(str, command)]

    def worker_view(self, path: Path) -> Path:
        """``path`` as the worker host sees it (through its Ray process's mount namespace)."""
        return Path(f"/proc/{self.procs['worker'].pid}/root") / str(path).lstrip("/")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _unprivileged(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"two-host Ray test: cannot make network namespaces ({reason}); CI must run it as root")
    pytest.skip(f"two-host Ray test needs root for network namespaces ({reason})")


@pytest.fixture()
def hosts(tmp_path):
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        _unprivileged("`ip` or `unshare` is not installed")
    tag = f"{os.getpid() % 100000}"
    head_ns, worker_ns = f"crs-h{tag}", f"crs-w{tag}"
    hidden = tmp_path / "driver"
    hidden.mkdir()
    made = Hosts(head_ns=head_ns, worker_ns=worker_ns, token=secrets.token_hex(32), hidden=hidden)
    probe = subprocess.run(["ip", "netns", "add", head_ns], capture_output=True, text=True)
    if probe.returncode != 0:
        _unprivileged(probe.stderr.strip() or f"ip netns add: exit {probe.returncode}")
    try:
        _run("ip", "netns", "add", worker_ns)
        # The veth pair: one end in each namespace, so the host never sees the test subnet.
        _run("ip", "link", "add", f"crv{tag}h", "netns", head_ns, "type", "veth", "peer", "name", f"crv{tag}w",
             "netns", worker_ns)  # fmt: skip
        for ns, dev, ip in ((head_ns, f"crv{tag}h", HEAD_IP), (worker_ns, f"crv{tag}w", WORKER_IP)):
            _run("ip", "-n", ns, "addr", "add", f"{ip}/{PREFIX}", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        for _ in range(2):  # short: Ray's socket paths live in its temp dir
            made.temps.append(Path(tempfile.mkdtemp(prefix="crn-", dir="/tmp")))
        common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
        head = [RAY, "start", "--head", f"--port={PORT}", f"--node-ip-address={HEAD_IP}", f"--temp-dir={made.temps[0]}"]
        made.start("head", made.in_head(*head, "--include-dashboard=false", *common))
        made.wait_up("head")
        # The worker host: its own mount namespace, a private tmpfs over the driver's output's parent,
        # and its local disk (TMPDIR, where its trials run before they ship) on that tmpfs.
        mount = 'mount -t tmpfs -o size=512m crs-worker-disk "$0" && mkdir "$0/disk" && exec "$@"'
        made.start("worker", ["ip", "netns", "exec", worker_ns, "unshare", "--mount", "--propagation", "private",
                              "env", f"TMPDIR={hidden}/disk", "sh", "-c", mount, str(hidden),
                              RAY, "start", f"--address={HEAD_IP}:{PORT}", f"--node-ip-address={WORKER_IP}",
                              f"--temp-dir={made.temps[1]}", *common])  # fmt: skip
        made.wait_up("worker")
        yield made
    finally:
        for name in ("driver", "worker", "head"):
            made.kill(name)
        for ns in (worker_ns, head_ns):  # removing a namespace removes its end of the veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        time.sleep(1)
        left = [p.name for p in Path("/proc").glob("[0-9]*") if any(str(t) in _cmdline(p) for t in made.temps)]
        for temp in made.temps:
            shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the test's Ray hosts still running: {left}"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _search(hosts: Hosts, recipe, model, data, out, *extra):
    args = ["search", recipe, "--model", model, "--data", data, "--out", out, "--max-concurrent", 2]
    return hosts.in_head(sys.executable, "-m", "compressctl", *args, "--address", f"{HEAD_IP}:{PORT}", "--json", *extra)


def _on_worker_disk(hosts: Hosts) -> set[str]:
    """Trial ids with a run (staging or finished) on the worker host's own disk, its TMPDIR."""
    ids = set()
    for trials in hosts.worker_view(hosts.hidden / "disk").glob("compressctl-search-*/trials"):
        for entry in trials.iterdir():
            ids.add(entry.name.lstrip(".").split(".")[0])
    return ids


def test_search_on_two_hosts_ships_runs_back_and_survives_a_lost_node(hosts, tmp_path, tiny_cnn_path, tiny_data):
    started = time.time()
    out = hosts.hidden / "search"
    recipe = write_recipe(hosts.hidden, RECIPE)
    # The worker host does not see the driver's output directory (nor the recipe): no shared disk.
    assert hosts.worker_view(hosts.hidden).is_dir() and not hosts.worker_view(recipe).exists()
    assert (tiny_cnn_path / "saved_model.pb").exists()  # the model and data: the same paths on both hosts
    command = _search(hosts, recipe, tiny_cnn_path, tiny_data, out, "--trials", 6)
    proc = subprocess.Popen(
        command, env=hosts.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    hosts.procs["driver"] = proc  # ended with the hosts if the test fails before it finishes
    killed, victim, seen, shipped = None, None, set(), []
    deadline = time.time() + 420
    while proc.poll() is None and time.time() < deadline and killed is None:
        record = out / "search.json"
        search = json.loads(record.read_text()) if record.exists() else {"trials": []}
        finished = {t["id"] for t in search["trials"]}
        shipped = [t["id"] for t in search["trials"] if t["node"] == WORKER_IP and t["status"] != "failed"]
        on_disk = _on_worker_disk(hosts)
        seen |= on_disk
        running = on_disk - finished
        if shipped and running:
            assert not on_disk & set(shipped)  # a shipped run leaves the worker's disk
            time.sleep(2)  # into its training
            victim = min(running)
            hosts.kill("worker")  # the worker host's Ray processes end mid-trial
            killed = time.time()
        time.sleep(0.5)
    stdout, stderr = proc.communicate(timeout=max(30, deadline - time.time()))
    assert killed is not None, f"no second trial ran on the worker:\n{stderr[-4000:]}"
    assert set(shipped) <= seen  # the worker's trials ran on the worker's own disk
    assert proc.returncode in (0, 1), stderr[-4000:]
    search = json.loads((out / "search.json").read_text())
    assert json.loads(stdout)["trials"] == search["trials"]
    assert search["engine"]["address"] == f"{HEAD_IP}:{PORT}" and search["engine"]["cluster_cpus"] == 2
    trials = {t["id"]: t for t in search["trials"]}
    assert sorted(trials) == [f"{i:04d}" for i in range(1, 7)]
    lost = trials[victim]
    assert lost["status"] == "failed" and lost["node"] == WORKER_IP, lost
    assert lost["error"].startswith("node lost") and WORKER_IP in lost["error"], lost
    assert all(t["status"] != "failed" for tid, t in trials.items() if tid != victim), json.dumps(search["trials"])
    nodes = {tid: t["node"] for tid, t in trials.items()}
    assert set(nodes.values()) == {HEAD_IP, WORKER_IP}, nodes
    # Trials after the loss ran on the head; every run directory is complete on the driver's host.
    finished_late = [t for t in trials.values() if t["id"] > victim]
    assert finished_late and all(t["node"] == HEAD_IP for t in finished_late), nodes
    for tid, trial in trials.items():
        if tid == victim:
            continue
        run = out / trial["run_dir"]
        report = remeasure(run, tiny_data)
        assert trial["gzip_bytes"] == report["artifacts"][0]["gzip_bytes"]
        assert trial["metric_value"] == report["artifacts"][0]["metric_value"]
        for name in ("report.json", "report.md", "run.log", "recipe.lock.yaml", "manifest.json"):
            assert (run / name).is_file(), (tid, name)
        checked = manifest.verify(run)  # every file the run listed, none missing or added, same sha256
        assert checked["ok"] and checked["files"] >= 2, (tid, checked)
    assert sorted(p.name for p in (out / "trials").iterdir()) == sorted(set(trials) - {victim})
    assert set(search["pareto"]) <= set(trials) - {victim}
    assert search["best"] is None or search["best"]["trial"] in set(trials) - {victim}
    kept = sorted(set(trials) - {victim})
    stamps = {tid: (out / "trials" / tid / "report.json").stat().st_mtime_ns for tid in kept}

    # --resume on the head alone (the worker is gone): the finished trials stay, one more runs.
    command = _search(hosts, recipe, tiny_cnn_path, tiny_data, out, "--trials", 7, "--resume")
    resumed = subprocess.run(command, env=hosts.env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode in (0, 1), resumed.stderr[-4000:]
    again = json.loads((out / "search.json").read_text())
    assert [t["id"] for t in again["trials"]] == [f"{i:04d}" for i in range(1, 8)]
    assert again["trials"][:6] == search["trials"]  # kept as they were, the lost one included
    assert again["trials"][6]["node"] == HEAD_IP and again["trials"][6]["status"] != "failed"
    assert stamps == {tid: (out / "trials" / tid / "report.json").stat().st_mtime_ns for tid in stamps}
    remeasure(out / "trials" / "0007", tiny_data)
    print(
        f"\ntwo hosts: nodes {nodes}; lost {victim}: {lost['error']}; "
        f"wall {time.time() - started:.0f} s (kill at {killed - started:.0f} s)"
    )


BATCH_RECIPE = """\
name: two-hosts-int8
seed: 0
targets:
  - type: cpu
    mode: int8
    calibration_samples: 20
bench: {runs: 5, warmup: 1, rounds: 1}
gates:
  max_metric_drop: 0.5
"""


def test_batch_on_two_hosts_ships_runs_back(hosts, tiny_cnn_path, tiny_data):
    """`compressctl batch --address`: two runs at once on two one-CPU hosts, one on each; both directories
    end up complete on the driver and none is left on the worker's disk."""
    out = hosts.hidden / "batch"
    recipe = write_recipe(hosts.hidden, BATCH_RECIPE, name="int8.yaml")
    fleet = hosts.hidden / "fleet.yaml"
    fleet.write_text(
        f"models:\n  - {{name: a, model: {tiny_cnn_path}, data: {tiny_data}}}\n"
        f"  - {{name: b, model: {tiny_cnn_path}, data: {tiny_data}}}\nrecipes: [{recipe}]\n"
    )
    assert not hosts.worker_view(fleet).exists()  # the worker host sees neither the fleet nor the recipe
    command = hosts.in_head(sys.executable, "-m", "compressctl", "batch", fleet, "--out", out,
                            "--address", f"{HEAD_IP}:{PORT}", "--max-concurrent", 2, "--json")  # fmt: skip
    result = subprocess.run(command, env=hosts.env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-4000:]
    batch = json.loads((out / "batch.json").read_text())
    assert batch["engine"]["address"] == f"{HEAD_IP}:{PORT}" and batch["engine"]["cpus_per_run"] == 1
    nodes = {r["run_dir"]: r["node"] for r in batch["runs"]}
    assert sorted(nodes.values()) == sorted([HEAD_IP, WORKER_IP]), nodes
    for run in batch["runs"]:
        assert run["status"] == "ok", run
        report = remeasure(out / run["run_dir"], tiny_data)
        assert run["gzip_bytes"] == report["artifacts"][0]["gzip_bytes"]
        checked = manifest.verify(out / run["run_dir"])
        assert checked["ok"] and checked["files"] >= 2, (run["run_dir"], checked)
    left = list(hosts.worker_view(hosts.hidden / "disk").glob("compressctl-batch-*/runs/*/*"))
    assert left == [], left  # the worker's copy is removed once shipped
    print(f"\nbatch on two hosts: nodes {nodes}")
