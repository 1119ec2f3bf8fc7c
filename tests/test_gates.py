"""Gates on typed records: which rows they produce, the tolerance at the threshold, and the lines CI greps.

No TensorFlow: baselines and artifacts come from a stored report.json.
"""

import pytest

from compressctl.recipe.schema import Gates
from compressctl.report.record import Gate, RunRecord
from compressctl.run.gates import describe, evaluate_gates, metric_drop
from tests.helpers.pages import fixture

pytestmark = pytest.mark.unit


@pytest.fixture()
def record() -> RunRecord:
    return RunRecord.model_validate(fixture("deep-compression"))


def with_artifact(record: RunRecord, **changes) -> RunRecord:
    artifact = record.artifacts[0].model_copy(update=changes)
    return record.model_copy(update={"artifacts": [artifact]})


def test_each_set_gate_gives_one_row_per_artifact_with_the_measured_value(record):
    (artifact,) = record.artifacts
    gates = Gates(max_metric_drop=0.01, min_compression_ratio_gzip=60, max_size_bytes=500_000)
    rows = evaluate_gates(gates, record.baseline, record.artifacts)
    assert [(g.name, g.target) for g in rows] == [
        ("max_metric_drop", "cpu"),
        ("min_compression_ratio_gzip", "cpu"),
        ("max_size_bytes", "cpu"),
    ]
    drop, ratio, size = rows
    assert drop.value == pytest.approx(record.baseline.metric_value - artifact.metric_value)
    assert ratio.value == artifact.compression_ratio_gzip == 74.7275 and ratio.passed
    assert size.value == artifact.size_bytes == 439136 and size.passed


def test_a_missed_gate_fails_and_a_gate_met_exactly_passes(record):
    exact = record.artifacts[0].compression_ratio
    (met,) = evaluate_gates(Gates(min_compression_ratio=exact), record.baseline, record.artifacts)
    assert met.passed
    (missed,) = evaluate_gates(Gates(min_compression_ratio=exact + 0.001), record.baseline, record.artifacts)
    assert not missed.passed
    drop = record.baseline.metric_value - 0.5
    worse = with_artifact(record, metric_value=0.5)
    (at,) = evaluate_gates(Gates(max_metric_drop=round(drop, 12)), worse.baseline, worse.artifacts)
    assert at.passed  # float rounding at the threshold does not fail a drop of exactly the threshold
    (over,) = evaluate_gates(Gates(max_metric_drop=drop - 0.001), worse.baseline, worse.artifacts)
    assert not over.passed


def test_gates_apply_only_to_the_named_targets(record):
    two = record.model_copy(
        update={"artifacts": [record.artifacts[0], record.artifacts[0].model_copy(update={"target": "gpu"})]}
    )
    rows = evaluate_gates(Gates(min_speedup=1.0, targets=["gpu"]), two.baseline, two.artifacts)
    assert [g.target for g in rows] == ["gpu"]


def test_metric_drop_follows_the_metrics_direction(record):
    worse = with_artifact(record, metric_value=record.baseline.metric_value - 0.1)
    assert metric_drop(worse.baseline, worse.artifacts[0]) == pytest.approx(0.1)
    # For an error metric (lower is better) the same change is an improvement.
    assert metric_drop(worse.baseline, worse.artifacts[0], higher_is_better=False) == pytest.approx(-0.1)


def test_describe_is_one_line_a_ci_log_search_finds():
    failed = Gate(name="max_metric_drop", target="cpu", threshold=0.0025, value=0.0123456, passed=False)
    assert describe(failed) == "FAILED gate max_metric_drop [cpu]: 0.01235 (required <= 0.0025)"
    passed = Gate(name="max_size_bytes", target="cpu", threshold=500000, value=439136, passed=True)
    assert describe(passed) == "passed gate max_size_bytes [cpu]: 439136 (required <= 500000)"
    ratio = Gate(name="min_compression_ratio_gzip", target="edge", threshold=60.0, value=74.7275, passed=True)
    assert describe(ratio) == "passed gate min_compression_ratio_gzip [edge]: 74.73 (required >= 60.0)"
    assert ratio.operator(ascii_only=False) == "≥"


def test_max_metric_drop_follows_the_metrics_direction(record):
    """For an error such as mae a drop is artifact − baseline; for accuracy, baseline − artifact."""
    gates = Gates(max_metric_drop=2.0)
    base = record.baseline.model_copy(update={"metric_value": 40.0})
    worse = record.artifacts[0].model_copy(update={"metric_value": 43.0})
    better = record.artifacts[0].model_copy(update={"metric_value": 35.0, "target": "gpu"})
    lower_is_better = evaluate_gates(gates, base, [worse, better], higher_is_better=False)
    assert [(g.value, g.passed) for g in lower_is_better] == [(3.0, False), (-5.0, True)]
    higher_is_better = evaluate_gates(gates, base, [worse, better], higher_is_better=True)
    assert [(g.value, g.passed) for g in higher_is_better] == [(-3.0, True), (5.0, False)]
