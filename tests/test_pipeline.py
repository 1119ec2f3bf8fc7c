"""End-to-end runs of the pipeline on tiny seeded models; every reported figure is re-measured here."""

import sys

import pytest

from compressctl import api
from compressctl.backends import convert
from compressctl.core.errors import StageError
from compressctl.litert.interpreter import load_interpreter
from tests.conftest import REPO, write_recipe
from tests.helpers.remeasure import remeasure

pytestmark = pytest.mark.slow


def test_prune_cluster_pcqat_int8_run(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"""
name: tiny-deep
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - type: prune
    target_sparsity: 0.6
    layers: {{fc1: 0.8}}
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
  - type: cpu
    name: cpu-dynamic
    mode: dynamic
bench: {{runs: 50, warmup: 5, rounds: 5}}
gates:
  max_metric_drop: 0.2
  min_compression_ratio: 2
""",
    )
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == 0
    report = remeasure(out, tiny_data)
    assert {p.name for p in out.iterdir()} == {
        "baseline",
        "cpu",
        "cpu-dynamic",
        "report.json",
        "report.md",
        "report.html",
        "recipe.lock.yaml",
        "manifest.json",
        "run.log",
    }
    assert [s["type"] for s in report["stages"]] == ["prune", "cluster", "quantize"]
    prune = report["stages"][0]
    fc1 = next(row for row in prune["layers"] if row["layer"] == "fc1")
    assert fc1["sparsity"] == pytest.approx(0.8, abs=0.02)
    cluster = report["stages"][1]
    assert cluster["unique_weights"] <= 8
    cpu = report["artifacts"][0]
    assert cpu["conversion"] == "full int8" and cpu["fallback"] is None
    assert "FULLY_CONNECTED" in cpu["ops"]
    assert report["passed"] is True and len(report["gates"]) == 4
    assert not list(tmp_path.glob(".run.partial-*"))
    lock = (out / "recipe.lock.yaml").read_text()
    assert "number_of_clusters: 8" in lock
    # The lock file is itself a valid recipe.
    assert api.validate(str(out / "recipe.lock.yaml")).name == "tiny-deep"
    assert "| cpu (full int8) |" in (out / "report.md").read_text()


def test_failed_gate_exits_1_but_writes_the_run(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\nbench: {{runs: 10, warmup: 1}}\n"
        "gates:\n  min_compression_ratio: 1000\n",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 1
    gate = result.report["gates"][0]
    assert gate["name"] == "min_compression_ratio" and gate["passed"] is False
    assert gate["value"] == result.report["artifacts"][0]["compression_ratio"]
    assert (tmp_path / "run" / "report.json").exists()


def test_a_crashing_converter_falls_back_and_other_targets_finish(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    # A worker that kills itself with SIGSEGV for int8 conversions, like the converter did on a GRU.
    crash = tmp_path / "crash_worker.py"
    crash.write_text(
        "import os, signal, sys\n"
        "from compressctl.backends import convert_worker\n"
        "def handle(spec):\n"
        "    if spec['mode'] == 'int8':\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return convert_worker.handle(spec)\n"
        "sys.exit(convert_worker.serve(handle))\n"
    )
    monkeypatch.setattr(convert, "WORKER", [sys.executable, str(crash)])
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets:
  - type: cpu
  - type: cpu
    name: strict
    fallback: none
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 3
    (cpu,) = result.report["artifacts"]
    assert cpu["target"] == "cpu"
    assert cpu["conversion"] == "dynamic-range int8"
    assert cpu["fallback"]["reason"] == "full-int8 conversion failed"
    assert "crashed (SIGSEGV)" in cpu["fallback"]["tried"][0]
    (failure,) = result.report["failed_targets"]
    assert failure["target"] == "strict" and "SIGSEGV" in failure["error"]
    assert not (tmp_path / "run" / "strict").exists()
    load_interpreter(tmp_path / "run" / "cpu" / "model.tflite")


def test_convert_reports_python_level_failure(tmp_path):
    with pytest.raises(StageError, match="the TFLite converter failed during the float32 conversion: OSError"):
        convert.convert(tmp_path / "no_such_savedmodel", tmp_path / "m.tflite", "float32", tmp_path / "work")


def test_interrupted_run_leaves_earlier_run_untouched(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    from compressctl.run import measuring

    recipe = write_recipe(tmp_path, f"model: {tiny_cnn_path}\ndata: {tiny_data}\nbench: {{runs: 10, warmup: 1}}\n")
    out = tmp_path / "run"
    api.run(str(recipe), out=str(out))
    before = (out / "report.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(measuring.bench, "bench_alternating", interrupted)  # where the run times models
    with pytest.raises(KeyboardInterrupt):
        api.run(str(recipe), out=str(out))
    assert (out / "report.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bundled_cpu_int8_recipe_on_the_tiny_model(tmp_path, tiny_cnn_path, tiny_data):
    result = api.run(
        str(REPO / "recipes" / "cpu-int8.yaml"),
        ["bench.runs=20", "gates.min_compression_ratio=1.5"],
        model=str(tiny_cnn_path),
        data=str(tiny_data),
        out=str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.report["gates"]
    remeasure(tmp_path / "run", tiny_data)
