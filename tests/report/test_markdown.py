"""report.md rendered from stored report.json fixtures (no TensorFlow, no matplotlib)."""

import re

import pytest

from compressctl.report import html, render_markdown
from compressctl.report.record import RunRecord
from compressctl.report.summary import layer_table
from tests.helpers.pages import Page, fixture

pytestmark = pytest.mark.unit


def record(name: str, **changes) -> RunRecord:
    report = fixture(name)
    report.update(changes)
    return RunRecord.model_validate(report)


def table_after(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``, header row first."""
    block = text.split(heading, 1)[1].strip().split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows if not set("".join(row)) <= set("-: ")]


def test_summary_table_has_the_baseline_then_each_artifact_with_measured_figures():
    text = render_markdown(record("deep-compression"))
    assert text.startswith("# compressctl run: deep-compression\n")
    rows = [line for line in text.splitlines() if line.startswith("| baseline") or line.startswith("| cpu")]
    # The stored ratio leads; the gzip (download) size stands beside the stored size.
    assert table_after(text, "what fetching it costs.")[0] == [
        "artifact", "stored ratio", "stored", "download (gzip)", "gzip ratio", "accuracy", "Δ", "p50 ms", "speed-up"
    ]  # fmt: skip
    assert rows == [
        "| baseline (float32) | 1.00× | 1,687.0 KiB | 1,556.7 KiB | 1.00× | 98.24 % |  | 0.045 | 1.00× |",
        "| cpu (full int8) | 3.93× | 428.8 KiB | 20.8 KiB | 74.73× | 98.99 % | +0.76 pt | 0.019 | 2.34× |",
    ]


def test_each_stage_has_its_measured_line_and_its_per_layer_table():
    text = render_markdown(record("deep-compression"))
    assert "| prune | 11.4 | 98.99 % | sparsity 97.7 % |" in text
    assert "| quantize | 8.3 | 98.99 % | sparsity 97.7 %, 7 layers quantization-aware |" in text
    assert table_after(text, "### prune: per layer") == [
        ["layer", "params", "sparsity", "target sparsity"],
        ["conv1", "500", "50.00 %", "50.00 %"],
        ["conv2", "25,000", "90.00 %", "90.00 %"],
        ["fc1", "400,000", "98.50 %", "98.50 %"],
        ["fc2", "5,000", "80.00 %", "80.00 %"],
    ]
    assert table_after(text, "### cluster: per layer")[0] == ["layer", "params", "unique weights", "clusters"]


def test_markdown_and_html_show_the_same_per_layer_rows():
    run = record("deep-compression")
    cells = Page(html._stages(run)).cells  # the stages section alone: no plots to draw
    text = render_markdown(run)
    for stage in run.stages:
        headers, rows = layer_table(stage)
        assert table_after(text, f"### {stage.type}: per layer") == [headers, *rows]
        flat = [cell for row in [headers, *rows] for cell in row]
        assert all(cell in cells for cell in flat), stage.type


def test_a_stage_that_declares_columns_shows_those_in_that_order():
    report = fixture("deep-compression")
    report["stages"][0]["columns"] = ["target", "sparsity"]
    text = render_markdown(RunRecord.model_validate(report))
    assert table_after(text, "### prune: per layer")[:2] == [
        ["layer", "params", "target sparsity", "sparsity"],
        ["conv1", "500", "50.00 %", "50.00 %"],
    ]


def test_gates_show_what_was_required_and_measured():
    text = render_markdown(record("deep-compression"))
    assert table_after(text, "## Gates") == [
        ["gate", "target", "required", "value", "result"],
        ["max_metric_drop", "cpu", "<= 0.0025", "-0.007557", "pass"],
        ["min_compression_ratio_gzip", "cpu", ">= 60.0", "74.73", "pass"],
    ]
    report = fixture("cpu-int8")
    report["gates"][0]["passed"] = False
    assert "| FAIL |" in render_markdown(RunRecord.model_validate(report))


def test_failures_fallbacks_and_target_lines_are_stated():
    report = fixture("cpu-int8")
    report["failed_targets"] = [{"target": "gpu", "error": "converter crashed"}]
    report["artifacts"][0]["fallback"] = {"reason": "full-int8 conversion failed", "tried": ["full int8: crash"]}
    report["artifacts"][0]["edgetpu"] = {
        "compiled": False,
        "status": "compiler not found, prediction only",
        "mapping": {"ops_on_tpu": 5, "ops_total": 7, "first_cpu_op": {"op": "TANH", "index": 5, "reason": "float"}},
        "predicted": {},
        "checks": {},
        "mapping_file": "cpu/edgetpu_mapping.json",
    }
    text = render_markdown(RunRecord.model_validate(report))
    assert "**Target gpu failed:** converter crashed" in text
    assert "**cpu** fell back to full int8: full-int8 conversion failed." in text
    line = (
        "**Edge TPU** cpu: 5 of 7 ops on the Edge TPU (predicted; compiler not found, prediction only); "
        "from TANH (op 5) (float) on, ops run on the CPU."
    )
    assert line in text


def test_a_post_training_run_has_no_stage_section_and_names_its_environment():
    text = render_markdown(record("cpu-int8"))
    assert "## Stages" not in text
    assert re.search(r"\n\S.* \(\d+ CPUs\), 1 thread\(s\); tensorflow 2\.21\.0", text)
