"""bench.batch_sizes measured for real: every file of the run timed at each batch size."""

import json

import pytest

from compressctl import api
from tests.conftest import write_recipe

pytestmark = pytest.mark.slow


def test_batch_sizes_time_the_baseline_and_each_artifact_in_samples_per_second(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets: [{{type: cpu, calibration_samples: 20}}, {{type: gpu}}]
bench: {{runs: 20, warmup: 2, rounds: 1, batch_sizes: [1, 16]}}
""",
    )
    api.run(str(recipe), out=str(tmp_path / "run"))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    for latency in [report["baseline"]["latency_ms"], *(a["latency_ms"] for a in report["artifacts"])]:
        assert [t["batch_size"] for t in latency["throughput"]] == [1, 16]
        for entry in latency["throughput"]:
            assert entry.get("not_run") is None, entry
            assert entry["samples_per_s"] > 0
            # samples per second is the batch over the median time of one invocation
            assert entry["samples_per_s"] == pytest.approx(entry["batch_size"] * 1000 / entry["ms_per_batch"], rel=1e-2)
        assert latency["p50"] > 0  # the batch-1 latency stays beside it
    text = (tmp_path / "run" / "report.md").read_text()
    assert "## Throughput" in text and "batch 16: samples/s" in text


def test_a_file_whose_graph_fixes_batch_1_reports_larger_batches_as_not_run(tmp_path):
    import numpy as np

    from compressctl.core.env import keras, tf
    from compressctl.litert import bench

    k = keras()
    inputs = k.Input((4, 2), batch_size=1)
    fixed = k.Model(inputs, k.layers.Dense(3)(k.layers.Lambda(lambda t: tf().reshape(t, [1, 8]))(inputs)))
    inputs = k.Input((4, 2), batch_size=1)
    free = k.Model(inputs, k.layers.Dense(3)(k.layers.Flatten()(inputs)))
    paths = {}
    for name, model in (("fixed", fixed), ("free", free)):
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    found = bench.throughput(paths, np.zeros((2, 4, 2), np.float32), [1, 8], runs=10)
    assert found["fixed"][0]["samples_per_s"] > 0  # its own batch runs
    assert found["fixed"][1]["batch_size"] == 8 and "samples_per_s" not in found["fixed"][1]
    assert found["fixed"][1]["not_run"].startswith("the interpreter cannot resize its input to batch 8")
    assert [e["batch_size"] for e in found["free"]] == [1, 8]
    assert all(e["samples_per_s"] > 0 for e in found["free"])
