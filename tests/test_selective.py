"""Accuracy-aware int8: ops with the largest int8 error kept in float until the metric is within budget."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from compressctl.litert.selective import budget_for, groups, kept_reasons
from compressctl.recipe.schema import Recipe
from tests.conftest import REPO


def test_groups_double_until_every_op_is_float():
    assert groups(1) == [1]
    assert groups(5) == [1, 2, 4, 5]
    assert groups(8) == [1, 2, 4, 8]


def test_budget_from_the_target_else_the_gate_when_it_applies():
    recipe = Recipe.model_validate(
        {"targets": [{"type": "cpu"}], "gates": {"max_metric_drop": 0.02, "targets": ["cpu"]}}
    )
    cpu = SimpleNamespace(name="cpu", params=SimpleNamespace(max_metric_drop=None))
    other = SimpleNamespace(name="edge", params=SimpleNamespace(max_metric_drop=None))
    assert budget_for(cpu, recipe).max_drop == 0.02
    assert budget_for(other, recipe) is None  # the gate names only cpu
    own = SimpleNamespace(name="edge", params=SimpleNamespace(max_metric_drop=0.005))
    assert (budget_for(own, recipe).max_drop, budget_for(own, recipe).source) == (0.005, "target")
    assert budget_for(cpu, Recipe.model_validate({"targets": [{"type": "cpu"}]})) is None


def test_kept_reasons_also_match_the_written_tensor_name():
    reasons = kept_reasons(
        {"max_metric_drop": 0.01, "kept_in_float": [{"name": "a/b1", "op": "MUL", "snr_db": 0.1, "rmse": 0.5}]}
    )
    assert set(reasons) == {"a/b1", "a/b"} and "SNR 0.1 dB" in reasons["a/b"]


@pytest.mark.slow
def test_cpu_int8_recipe_keeps_a_raw_feature_tabular_model_within_one_point(tmp_path, tabular_norm):
    from compressctl.litert.quant_debug import weight_precision

    model, data = tabular_norm
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "compressctl", "run", str(REPO / "recipes" / "cpu-int8.yaml"), "--model", str(model),
         "--data", str(data), "--out", str(out), "--json", "--set", "bench.runs=20", "--set", "bench.warmup=2"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: the recipe's 3.5× size gate, on a 4 KiB model
    report = json.loads(result.stdout)
    (artifact,) = report["artifacts"]
    assert artifact["conversion"] == "full int8"
    # Within one point of the float model, on the test split, measured on the written file.
    assert abs(artifact["metric_value"] - report["baseline"]["tflite_metric_value"]) <= 0.01
    assert artifact["metric_delta"] >= -0.01
    quant = artifact["quantization"]
    selective = quant["selective"]
    assert selective["full_int8"]["metric_drop"] > 0.1  # full int8 really broke it (inputs to zero)
    assert selective["within_budget"] and selective["budget_from"] == "gates.max_metric_drop"
    kept = {row["op"] for row in quant["float_ops"] if row["reason"].startswith("kept in float")}
    assert kept and kept <= {"SUB", "MUL", "DIV"}  # the Normalization arithmetic, not the Dense layers
    # The weight-light ops were tried first, and they sufficed: no step drew from the Dense layers.
    assert {step.get("pool") for step in selective["steps"][1:]} == {"weight-light"}, selective["steps"]
    assert any("kept in float" in note for note in artifact["notes"])
    # Most weights stay int8: the Dense kernels are int8, only the normalisation constants are float.
    weights = weight_precision(out / artifact["path"])
    int8 = sum(w["bytes"] for w in weights if w["dtype"] == "int8")
    floats = sum(w["bytes"] // 4 for w in weights if w["dtype"] == "float32")
    assert int8 > 2 * floats, weights
    # The layer-error table of what stays int8, worst first.
    snrs = [row["snr_db"] for row in quant["layer_errors"]]
    assert snrs == sorted(snrs) and {row["op"] for row in quant["layer_errors"]} >= {"FULLY_CONNECTED"}
    assert np.isfinite(snrs).all()


def test_a_large_int8_loss_gets_a_note_with_its_worst_layers_and_a_remedy():
    from compressctl.litert.quant_debug import metric_loss_note

    quant = {"scheme": "int8", "layer_errors": [{"name": "norm/sub", "op": "SUB", "snr_db": 1.23, "rmse": 0.5}]}
    assert metric_loss_note(quant, "accuracy", 0.95, 0.93, "cpu") is None  # two points: no note
    note = metric_loss_note(quant, "accuracy", 0.95, 0.60, "edgetpu")
    assert note.startswith("int8 artifact changed accuracy by -35.00 pt") and "norm/sub (SUB, SNR 1.2 dB)" in note
    assert "Edge TPU runs int8 ops only" in note
    assert "set max_metric_drop" in metric_loss_note(quant, "accuracy", 0.95, 0.60, "cpu")
    assert "could not bring it" in metric_loss_note({**quant, "selective": {"x": 1}}, "accuracy", 0.95, 0.6, "cpu")
    # Error metrics: worse is larger, and "much" is a fifth of the baseline's value.
    assert metric_loss_note(quant, "mae", 40.0, 45.0, "cpu") is None
    assert "changed mae by +20" in metric_loss_note(quant, "mae", 40.0, 60.0, "cpu")
    assert metric_loss_note({}, "accuracy", 0.95, 0.2, "cpu") is None  # not quantized: nothing to say here


@pytest.mark.slow
def test_edgetpu_int8_of_a_raw_feature_tabular_model_says_why_it_lost(tmp_path, tabular_norm):
    model, data = tabular_norm
    result = subprocess.run(
        [sys.executable, "-m", "compressctl", "run", str(REPO / "recipes" / "edgetpu.yaml"), "--model", str(model),
         "--data", str(data), "--out", str(tmp_path / "run"), "--json", "--set", "bench.runs=20",
         "--set", "bench.warmup=2"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    (artifact,) = json.loads(result.stdout)["artifacts"]
    assert artifact["metric_delta"] < -0.05  # every op int8, raw features of very different scales
    (note,) = [n for n in artifact["notes"] if "changed accuracy by" in n]
    assert f"{100 * artifact['metric_delta']:+.2f} pt" in note and "Edge TPU runs int8 ops only" in note
