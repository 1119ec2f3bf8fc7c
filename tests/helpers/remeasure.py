"""Re-measure a run directory against the files it holds: sizes, gzip, sha256, ratios, metrics."""

import gzip
import hashlib
import json

import numpy as np
import pytest

from compressctl.litert.evaluate import TaskInfo, evaluate_tflite


def remeasure(out, data_path):
    """Check report.json against the files: sizes, gzip, sha256, ratios and metrics."""
    report = json.loads((out / "report.json").read_text())
    data = np.load(data_path)
    base = report["baseline"]
    base_bytes = (out / base["artifact"]).read_bytes()
    assert base["size_bytes"] == len(base_bytes)
    assert base["gzip_bytes"] == len(gzip.compress(base_bytes, 9, mtime=0))
    task = TaskInfo(binary=False, from_logits=False)
    for a in report["artifacts"]:
        blob = (out / a["path"]).read_bytes()
        assert a["size_bytes"] == len(blob)
        assert a["gzip_bytes"] == len(gzip.compress(blob, 9, mtime=0))
        assert a["sha256"] == hashlib.sha256(blob).hexdigest()
        assert a["compression_ratio"] == pytest.approx(len(base_bytes) / len(blob), rel=1e-3)
        measured = evaluate_tflite(out / a["path"], data["x_test"], data["y_test"], task)
        assert a["metric_value"] == pytest.approx(measured, abs=1e-9)
        assert a["metric_delta"] == pytest.approx(measured - base["metric_value"], abs=1e-9)
        assert a["speedup"] == pytest.approx(base["latency_ms"]["p50"] / a["latency_ms"]["p50"], rel=1e-3)
    return report
