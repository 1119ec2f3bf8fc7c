"""The quantization and runtime section of report.md and report.html, rendered from report.json alone."""

import json
from pathlib import Path

import pytest

from compressctl.report import render_html, render_markdown
from compressctl.report.record import RunRecord

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).parent / "fixtures" / "cpu-int8.report.json"


def with_runtime():
    report = json.loads(FIXTURE.read_text())
    report["artifacts"][0]["quantization"] = {
        "backend": "litert-quantizer",
        "scheme": "int4 weight-only",
        "float_ops": [{"name": "fc2<b>", "op": "FULLY_CONNECTED", "reason": "override: float"}],
    }
    report["artifacts"][0]["runtime"] = {
        "ops": [{"op": "FULLY_CONNECTED", "version": 12, "count": 2}, {"op": "SOFTMAX", "version": 1, "count": 1}],
        "min_tflite_version": "2.17.0",
        "checked": [
            {"runtime": "ai-edge-litert 2.3.0", "loads": True, "error": None},
            {"runtime": "tflite-runtime 2.14.0", "loads": False, "error": "Didn't find op for builtin opcode"},
        ],
        "table": "tensorflow/tensorflow@abc:runtime_version.cc",
    }
    return RunRecord.model_validate(report)


def test_markdown_lists_ops_oldest_runtime_and_real_loads():
    text = render_markdown(with_runtime())
    assert "## Quantization and runtime compatibility" in text
    assert "| litert-quantizer | int4 weight-only | 2.17.0 |" in text
    assert "tflite-runtime 2.14.0: FAILS (Didn't find op for builtin opcode)" in text
    assert "FULLY_CONNECTED v12 ×2, SOFTMAX v1" in text
    assert "weights left in float: FULLY_CONNECTED fc2<b> (override: float)" in text


def test_html_escapes_and_older_reports_render_without_the_section():
    page = render_html(with_runtime())
    assert "Quantization and runtime compatibility" in page and "fc2&lt;b&gt;" in page and "fc2<b>" not in page
    assert "Quantization and runtime compatibility" not in render_html(
        RunRecord.model_validate(json.loads(FIXTURE.read_text()))
    )
