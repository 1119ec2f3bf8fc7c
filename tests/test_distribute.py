"""training.strategy: fine-tuning under tf.distribute, checked against a one-device run."""

import json
import os
import subprocess
import sys

import pytest

from compressctl.core.errors import UserError
from compressctl.model.distribute import check_tf_config
from tests.conftest import REPO

# Runs in a fresh process: the CPU must be split into two logical devices before TensorFlow
# initialises its devices. Both runs (one device, then mirrored over the two) share that process.
TWO_DEVICES = """
import json, sys
from compressctl.core.env import tf

tensorflow = tf()
cpu = tensorflow.config.list_physical_devices("CPU")[0]
tensorflow.config.set_logical_device_configuration(cpu, [tensorflow.config.LogicalDeviceConfiguration()] * 2)
from compressctl import api

model, data, out = sys.argv[1:4]
rows = {}
for strategy in ("none", "mirrored"):
    overrides = [f"training.strategy={strategy}"]
    result = api.run(sys.argv[4], overrides, model=model, data=data, out=f"{out}/{strategy}")
    rows[strategy] = result.report
print("REPORTS " + json.dumps(rows))
"""

RECIPE = """
name: distributed
training: {batch_size: 32}
stages:
  - type: prune
    target_sparsity: 0.7
    epochs: 2
    learning_rate: 0.001
  - type: cluster
    number_of_clusters: 8
    epochs: 1
  - type: quantize
    preserve: [sparsity, clusters]
    epochs: 1
targets:
  - type: cpu
    calibration_samples: 50
bench: {runs: 10, warmup: 1, rounds: 1}
"""


@pytest.mark.slow
def test_mirrored_on_two_devices_matches_one_device(tmp_path, tiny_cnn_path, tiny_data):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, str(tiny_cnn_path), str(tiny_data), str(tmp_path), str(recipe)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reports = json.loads(done.stdout.split("REPORTS ", 1)[1])
    one, two = reports["none"], reports["mirrored"]
    assert one["training"]["devices"] == "one device"
    assert two["training"]["devices"] == "MirroredStrategy over 2 device(s): /device:CPU:0, /device:CPU:1"
    for a, b in zip(one["stages"], two["stages"], strict=True):
        assert a["type"] == b["type"]
        assert abs(a["metric_value"] - b["metric_value"]) <= 0.01  # within one point
        if "sparsity" in a:
            assert b["sparsity"] == pytest.approx(a["sparsity"], abs=1e-3)
        clusters = lambda stage: {r["layer"]: r.get("clusters") for r in stage["layers"]}  # noqa: E731
        assert clusters(a) == clusters(b)
        for row in b["layers"]:
            if row.get("clusters"):
                assert row["unique_weights"] <= row["clusters"]
    prune, cluster, qat = two["stages"]
    assert prune["sparsity"] == pytest.approx(0.7, abs=0.01) and cluster["unique_weights"] <= 8
    ranges, replicas = qat["notes"]
    assert ranges.startswith("activation ranges start from") and ranges.endswith("training samples")
    assert replicas == "fine-tuned on one device, not 2 replicas: TFMOT does not support QAT under tf.distribute"
    assert abs(one["artifacts"][0]["metric_value"] - two["artifacts"][0]["metric_value"]) <= 0.01


# One worker of a two-worker cluster on this machine (its TF_CONFIG in the environment).
WORKER = """
import json, sys
from compressctl import api

model, data, out, recipe = sys.argv[1:]
result = api.run(recipe, [], model=model, data=data, out=out)
report = result.report
print("REPORT " + json.dumps({"training": report["training"], "stages": report["stages"], "sha256": [
    a["sha256"] for a in report["artifacts"]]}))
"""


def free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_prunes_in_lock_step_on_two_local_workers(tmp_path, tiny_cnn_path, tiny_data):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "training: {batch_size: 32, strategy: multi_worker}\n"
        "stages:\n  - type: prune\n    target_sparsity: 0.7\n    epochs: 2\n    learning_rate: 0.001\n"
        "targets:\n  - type: cpu\n    calibration_samples: 50\nbench: {runs: 10, warmup: 1, rounds: 1}\n"
    )
    ports = free_ports(2)
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config)}
        args = [str(tiny_cnn_path), str(tiny_data), str(tmp_path / f"w{index}")]
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, *args, str(recipe)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
                env=env,
            )
        )
    reports = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=900)
        assert worker.returncode == 0, stderr[-3000:]
        reports.append(json.loads(stdout.split("REPORT ", 1)[1]))
    for index, report in enumerate(reports):
        assert report["training"]["devices"] == (
            f"MultiWorkerMirroredStrategy: 2 worker(s), this one worker {index}, 2 replica(s) in sync"
        )
        assert report["stages"][0]["sparsity"] == pytest.approx(0.7, abs=0.01)
        assert report["stages"][0]["metric_value"] > 0.9
    # Synchronous training: both workers end with the same weights, hence the same artifact.
    assert reports[0]["sha256"] == reports[1]["sha256"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "TF_CONFIG is not set"),
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"cluster": {}}', "TF_CONFIG has no cluster.worker list"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task.index 2 is not in"),
    ],
)
def test_multi_worker_needs_a_valid_tf_config(value, message):
    environ = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(UserError, match=message):
        check_tf_config(environ)
    good = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    assert check_tf_config({"TF_CONFIG": good})["task"]["index"] == 1


def test_multi_worker_without_tf_config_is_bad_input_before_any_work(tmp_path, tiny_data, monkeypatch):
    from compressctl import api

    monkeypatch.delenv("TF_CONFIG", raising=False)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("training: {strategy: multi_worker}\nstages:\n  - type: prune\n")
    model = tmp_path / "m.h5"
    model.write_bytes(b"")
    with pytest.raises(UserError, match="training.strategy multi_worker: TF_CONFIG is not set"):
        api.run(str(recipe), [], model=str(model), data=str(tiny_data), out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
