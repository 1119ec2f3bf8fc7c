"""A real check, not only the table: artifacts loaded and invoked by tflite-runtime 2.14 in its own venv.

The venv (.venv-tflite-runtime, NumPy < 2) is built once by `make .venv-tflite-runtime/.installed`,
which needs the PyPI registry; CI has it.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from compressctl import api
from compressctl.run import manifest, runtime_check
from tests.conftest import REPO, write_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tflite_runtime_python():
    done = subprocess.run(
        ["make", "-s", ".venv-tflite-runtime/.installed"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return str(REPO / ".venv-tflite-runtime" / "bin" / "python")


def test_gru_within_tflite_runtime_2_14_and_the_real_check_agrees(tmp_path, tflite_runtime_python, monkeypatch):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    rng = np.random.default_rng(0)
    x = rng.random((160, 10, 4), dtype=np.float32)
    y = (x[:, :, 0].sum(1) > 5).astype(int)
    np.savez(tmp_path / "seq.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    model = k.Sequential([k.Input((10, 4)), k.layers.GRU(32, name="gru"), k.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:120], y[:120], epochs=1, verbose=0)
    model.save(str(tmp_path / "gru"), save_format="tf")
    monkeypatch.setenv("COMPRESSCTL_TFLITE_RUNTIME_PYTHON", tflite_runtime_python)
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tmp_path / "gru"}
data: {tmp_path / "seq.npz"}
targets:
  - {{type: cpu, name: latest, mode: dynamic}}
  - {{type: cpu, name: board, mode: dynamic, runtime: {{package: tflite-runtime, version: "2.14"}}}}
  - {{type: cpu, name: ancient, mode: dynamic, runtime: {{package: tflite-runtime, version: "2.2"}}}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    run = tmp_path / "run"
    result = api.run(str(recipe), out=str(run))
    art = {a["target"]: a for a in result.report["artifacts"]}
    # Per-channel dynamic-range Dense weights give FULLY_CONNECTED v12 (TFLite 2.17) ...
    assert art["latest"]["runtime"]["min_tflite_version"] == "2.17.0"
    # ... so the target bound to 2.14 falls back to per-tensor weights (v9, TFLite 2.3), checked for real.
    board = art["board"]
    assert board["conversion"] == "dynamic-range int8, per-tensor Dense weights"
    assert "FULLY_CONNECTED v12 needs 2.17.0" in board["fallback"]["tried"][0]
    assert board["runtime"]["min_tflite_version"] == "2.3.0" and board["runtime"]["required"] == "tflite-runtime 2.14"
    assert board["runtime"]["checked"][-1] == {"runtime": "tflite-runtime 2.14.0", "loads": True, "error": None}
    quantization = board["quantization"]
    assert (quantization["backend"], quantization["scheme"]) == ("converter", "dynamic int8, per-tensor Dense weights")
    # Nothing a 2.2 runtime runs (the GRU's loop needs 2.3): that target fails with one line.
    (failure,) = result.report["failed_targets"]
    assert failure["target"] == "ancient" and "the target requires tflite-runtime 2.2" in failure["error"]
    assert "\n" not in failure["error"] and not (run / "ancient").exists()

    lines = []
    assert runtime_check.check_run(run, tflite_runtime_python, out=lines.append) is True
    text = "\n".join(lines)
    assert (
        "latest/model.tflite: tflite-runtime 2.14.0 FAILS: Didn't find op for builtin opcode 'FULLY_CONNECTED'" in text
    )
    assert "expected to fail" in text and "board/model.tflite: tflite-runtime 2.14.0 runs" in text
    report = json.loads((run / "report.json").read_text())
    checked = {a["target"]: a["runtime"]["checked"][-1] for a in report["artifacts"]}
    assert checked["latest"]["loads"] is False and checked["board"]["loads"] is True
    assert manifest.verify(run)["ok"]
    # The command line, as `make runtime-check` runs it: 0 because every outcome matched the table.
    done = subprocess.run(
        [sys.executable, "-m", "compressctl.run.runtime_check", "--python", tflite_runtime_python, "--no-write",
         str(run)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FULLY_CONNECTED' version '12'" in done.stdout


def test_runtime_check_refuses_a_missing_runtime_or_run(tmp_path, capsys):
    assert runtime_check.main(["--python", str(tmp_path / "no-python"), str(tmp_path)]) == 2
    assert "no such Python" in capsys.readouterr().err
    assert runtime_check.main(["--python", sys.executable, str(tmp_path)]) == 2
    assert "not a run directory (no report.json)" in capsys.readouterr().err


def test_every_kind_of_artifact_is_claimed_only_for_runtimes_that_run_it(
    tmp_path, tflite_runtime_python, tiny_cnn_path, tiny_data
):
    # One artifact of each kind the targets write, each loaded and invoked by the real tflite-runtime 2.14:
    # an artifact whose claimed oldest runtime is 2.14 or older must run there.
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets:
  - {{type: cpu, name: int8, calibration_samples: 32}}
  - {{type: cpu, name: dynamic, mode: dynamic}}
  - {{type: gpu, name: fp16}}
  - {{type: cpu, name: int4, backend: litert-quantizer, mode: dynamic-int4}}
  - {{type: cpu, name: weight-int4, backend: litert-quantizer, mode: weight-only-int4}}
  - {{type: cpu, name: weight-int8, backend: litert-quantizer, mode: weight-only-int8}}
  - {{type: cpu, name: int16x8, backend: litert-quantizer, mode: int16x8, calibration_samples: 32}}
bench: {{runs: 3, warmup: 1}}
""",
    )
    run = tmp_path / "run"
    result = api.run(str(recipe), out=str(run))
    assert result.report["failed_targets"] == []
    lines = []
    assert runtime_check.check_run(run, tflite_runtime_python, write=False, out=lines.append), "\n".join(lines)
    artifacts = {a["target"]: a["runtime"] for a in result.report["artifacts"]}
    # INT4 weights in float ops: TFLite's versioning numbers no such kernel, so no runtime is promised.
    assert artifacts["int4"]["min_tflite_version"] is None, artifacts["int4"]
    assert any("INT4 weights and FLOAT32 input" in entry for entry in artifacts["int4"]["not_in_table"])
    # DEQUANTIZE of INT4 weights is v6 (TFLite 2.18), whatever version the file declares.
    dequantize = next(o for o in artifacts["weight-int4"]["ops"] if o["op"] == "DEQUANTIZE")
    assert (dequantize["version"], dequantize["declared"]) == (6, 1)
    assert artifacts["weight-int4"]["min_tflite_version"] == "2.18.0"
    verdicts = dict(line.split(": ", 1) for line in lines)
    for name, runtime in artifacts.items():
        claim = runtime["min_tflite_version"]
        verdict = next(v for path, v in verdicts.items() if f"/{name}/" in path)
        if claim is not None and tuple(map(int, claim.split("."))) <= (2, 14, 0):
            assert verdict.startswith("tflite-runtime 2.14.0 runs"), (name, claim, verdict)
