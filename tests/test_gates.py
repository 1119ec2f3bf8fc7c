"""gates: max_metric_drop reads the drop in the metric's direction."""

from compressctl.gates import evaluate_gates
from compressctl.recipe import Gates


def artifact(value):
    return {"target": "cpu", "metric_value": value, "compression_ratio": 4.0}


def test_max_metric_drop_for_an_error_metric_is_artifact_minus_baseline():
    gates = Gates(max_metric_drop=2.0)
    baseline = {"metric_value": 40.0}
    worse, better = evaluate_gates(gates, baseline, [artifact(43.0), artifact(35.0)], metric="mae")
    assert worse["value"] == 3.0 and worse["passed"] is False
    assert better["value"] == -5.0 and better["passed"] is True


def test_max_metric_drop_for_accuracy_is_baseline_minus_artifact():
    gates = Gates(max_metric_drop=0.01)
    (row,) = evaluate_gates(gates, {"metric_value": 0.95}, [artifact(0.93)], metric="accuracy")
    assert abs(row["value"] - 0.02) < 1e-12 and row["passed"] is False
    (row,) = evaluate_gates(gates, {"metric_value": 0.95}, [artifact(0.945)])
    assert row["passed"] is True
