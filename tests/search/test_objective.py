import math

import pytest

from compressctl.search.objective import choose_best, score, status_of, trial_figures

pytestmark = pytest.mark.unit

REPORT = {
    "artifacts": [
        {
            "target": "cpu",
            "metric_value": 0.97,
            "metric_delta": -0.01,
            "size_bytes": 1000,
            "gzip_bytes": 400,
            "compression_ratio": 4.0,
            "compression_ratio_gzip": 10.0,
            "latency_ms": {"p50": 0.5},
            "speedup": 2.0,
        }
    ],
    "failed_targets": [],
    "passed": False,
    "gates": [{"name": "max_metric_drop", "threshold": 0.005, "value": 0.01, "passed": False}],
}


def test_figures_and_status_come_from_the_report():
    figures = trial_figures(REPORT, "cpu")
    assert figures["gzip_bytes"] == 400 and figures["latency_ms_p50"] == 0.5
    assert status_of(REPORT, "cpu") == ("gate_failed", None)
    assert status_of({**REPORT, "passed": True}, "cpu") == ("ok", None)
    failed = {**REPORT, "artifacts": [], "failed_targets": [{"target": "cpu", "error": "converter crashed\nmore"}]}
    assert status_of(failed, "cpu") == ("failed", "target cpu failed: converter crashed")


def test_a_missed_gate_scores_worse_than_any_pass():
    figures = {**trial_figures(REPORT, "cpu"), "id": "0001"}
    passed = score({**figures, "status": "ok"}, "gzip_bytes", "gzip_bytes")
    missed = score({**figures, "status": "gate_failed"}, "gzip_bytes", "gzip_bytes", REPORT["gates"])
    assert math.isclose(passed["score"], math.log(400))
    assert missed["score"] > math.log(400 * 1000)
    assert score({"status": "failed"}, "gzip_bytes", "gzip_bytes")["score"] > missed["score"]


def test_best_is_the_smallest_trial_that_passed():
    trials = [
        {"id": "0001", "status": "ok", "gzip_bytes": 500, "metric_value": 0.9},
        {"id": "0002", "status": "gate_failed", "gzip_bytes": 100, "metric_value": 0.5},
        {"id": "0003", "status": "ok", "gzip_bytes": 300, "metric_value": 0.8},
    ]
    assert choose_best(trials, "gzip_bytes", "gzip_bytes")["id"] == "0003"
    assert choose_best(trials[1:2], "gzip_bytes", "gzip_bytes") is None
