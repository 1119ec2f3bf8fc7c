"""search.json assembly and report.html, from trial records alone."""

import json

import pytest

from compressctl.search import record

pytestmark = pytest.mark.unit

HEADER = {
    "recipe": {"path": "r.yaml", "sha256": "0" * 64, "name": "r"},
    "objective": {"minimize": "gzip_bytes", "pareto_size": "gzip_bytes"},
    "space": {"stages.0.target_sparsity": {"uniform": [0.3, 0.9]}},
    "engine": {"name": "ray", "version": "2.60.0", "address": "local", "max_concurrent": 1, "cpus_per_trial": 2},
    "metric": "accuracy",
}


def trial(tid, status, gzip, metric, error=None):
    figures = {
        "metric_value": metric,
        "metric_delta": metric - 0.9,
        "size_bytes": gzip * 2,
        "gzip_bytes": gzip,
        "compression_ratio": 2.0,
        "compression_ratio_gzip": 4.0,
        "latency_ms_p50": 0.1,
        "speedup": 1.5,
    }
    if status == "failed":
        figures = dict.fromkeys(figures)
    return {"id": tid, "params": {"stages.0.target_sparsity": 0.5}, "status": status, "error": error,
            "run_dir": f"trials/{tid}", "seconds": 3.0, **figures}  # fmt: skip


def test_build_and_write(tmp_path):
    trials = [trial("0002", "gate_failed", 100, 0.5), trial("0001", "ok", 300, 0.9), trial("0003", "failed", 0, 0, "x")]
    payload = record.build(HEADER, trials, "gzip_bytes", "gzip_bytes", "best.yaml")
    assert [t["id"] for t in payload["trials"]] == ["0001", "0002", "0003"]
    assert payload["pareto"] == ["0002", "0001"] and payload["best"] == {"trial": "0001", "recipe": "best.yaml"}
    assert set(payload["trials"][0]) == set(record.TRIAL_KEYS)
    record.write_json_atomic(tmp_path / "search.json", payload)
    assert json.loads((tmp_path / "search.json").read_text()) == payload
    assert [p.name for p in tmp_path.iterdir()] == ["search.json"]


def test_report_html_is_self_contained():
    trials = [trial("0001", "ok", 300, 0.9), trial("0002", "failed", 0, 0, "worker crashed: killed")]
    html = record.render_html(record.build(HEADER, trials, "gzip_bytes", "gzip_bytes", "best.yaml"))
    assert "Content-Security-Policy" in html and "http://" not in html and "https://" not in html
    assert 'id="pareto"' in html and "data:image/png;base64," in html
    assert "worker crashed: killed" in html and "0001 (best)" in html
