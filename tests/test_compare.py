"""compare: rows across runs and the Pareto front on size against metric."""

import json
import shutil

import pytest

from compressctl.report.compare import compare_reports, dominates, pareto_flags, rows_from_report, run_names
from compressctl.report.record import RunRecord
from compressctl.report.summary import format_row
from tests.conftest import cli
from tests.helpers.pages import FIXTURES, Page, decode_png

pytestmark = pytest.mark.unit


def row(size, metric, gzip=None, name="r"):
    return {"run": name, "target": name, "size_bytes": size, "gzip_bytes": gzip or size, "metric_value": metric}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (row(10, 0.9), row(20, 0.8), True),  # smaller and better
        (row(10, 0.9), row(20, 0.9), True),  # smaller, as good
        (row(20, 0.95), row(20, 0.9), True),  # as small, better
        (row(10, 0.9), row(10, 0.9), False),  # equal: neither dominates
        (row(10, 0.8), row(20, 0.9), False),  # a trade-off
        (row(20, 0.8), row(10, 0.9), False),  # worse on both
    ],
)
def test_dominates(a, b, expected):
    assert dominates(a, b) is expected


def test_pareto_front():
    rows = [
        row(100, 0.99, name="baseline"),
        row(25, 0.985, name="int8"),
        row(30, 0.98, name="dominated"),  # bigger and worse than int8
        row(5, 0.97, name="tiny"),
        row(5, 0.97, name="tie"),  # equal to tiny: both stay
        row(6, 0.96, name="dominated2"),
    ]
    assert pareto_flags(rows) == [True, True, False, True, True, False]


def test_pareto_by_gzip_can_differ_from_by_size():
    a = row(100, 0.99, gzip=10, name="a")
    b = row(50, 0.98, gzip=20, name="b")
    assert pareto_flags([a, b], "size_bytes") == [True, True]
    assert pareto_flags([a, b], "gzip_bytes") == [True, False]


def test_single_row_is_on_the_front():
    assert pareto_flags([row(1, 0.5)]) == [True]


def fixture_reports():
    return [
        json.loads((FIXTURES / "cpu-int8.report.json").read_text()),
        json.loads((FIXTURES / "deep-compression.report.json").read_text()),
    ]


def test_rows_from_a_report():
    report = fixture_reports()[1]
    rows = rows_from_report("b", RunRecord.model_validate(report), "runs/b")
    assert [r["target"] for r in rows] == ["baseline", "cpu"]
    base, cpu = rows
    assert base["baseline"] and base["size_bytes"] == report["baseline"]["size_bytes"]
    assert base["path"] == "runs/b/baseline/model_float32.tflite"
    art = report["artifacts"][0]
    assert cpu["gzip_bytes"] == art["gzip_bytes"] and cpu["p50_ms"] == art["latency_ms"]["p50"]
    assert cpu["speedup"] == art["speedup"] and cpu["metric_delta"] == art["metric_delta"]


def test_compare_lists_a_shared_baseline_once_and_marks_the_front():
    a, b = fixture_reports()
    assert a["baseline"]["sha256"] == b["baseline"]["sha256"]
    records = [("a", "runs/a", RunRecord.model_validate(a)), ("b", "runs/b", RunRecord.model_validate(b))]
    rows, notes = compare_reports(records)
    assert [(r["run"], r["target"]) for r in rows] == [("a", "baseline"), ("a", "cpu"), ("b", "cpu")]
    # deep-compression's artifact is smaller and more accurate than cpu-int8's, which it dominates;
    # the baseline is the largest and less accurate than the deep-compression artifact.
    assert b["artifacts"][0]["size_bytes"] < a["artifacts"][0]["size_bytes"]
    assert b["artifacts"][0]["metric_value"] > a["artifacts"][0]["metric_value"]
    assert [r["pareto"] for r in rows] == [False, False, True]
    assert notes == []


def test_compare_notes_runs_that_are_not_comparable():
    a, b = fixture_reports()
    b["data"]["sha256"] = "0" * 64
    b["metric"] = "top_k_accuracy"
    _, notes = compare_reports([("a", "", RunRecord.model_validate(a)), ("b", "", RunRecord.model_validate(b))])
    assert any("different data" in n for n in notes)
    assert any("different metrics" in n for n in notes)


def test_run_names_fall_back_to_the_path_when_names_collide():
    assert run_names(["runs/a", "other/b"]) == ["a", "b"]
    assert run_names(["x/run", "y/run", "z"]) == ["x/run", "y/run", "z"]


@pytest.fixture()
def run_dirs(tmp_path):
    dirs = []
    for name in ("cpu-int8", "deep-compression"):
        d = tmp_path / name
        d.mkdir()
        shutil.copy(FIXTURES / f"{name}.report.json", d / "report.json")
        dirs.append(d)
    return dirs


def test_compare_json_is_the_rows_with_pareto(run_dirs):
    result = cli("compare", *run_dirs, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["run"], r["target"], r["pareto"]) for r in rows] == [
        ("cpu-int8", "baseline", False),
        ("cpu-int8", "cpu", False),
        ("deep-compression", "cpu", True),
    ]
    assert result.stderr == ""


def test_compare_by_gzip_and_html_page(run_dirs, tmp_path):
    out = tmp_path / "cmp" / "compare.html"
    result = cli("compare", *run_dirs, "--by", "gzip", "--html", out)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stderr
    lines = result.stdout.splitlines()
    assert "Pareto front by gzip" in lines[0]
    assert lines[1].split()[:2] == ["run", "target"]
    front = [line for line in lines[2:] if line.rstrip().endswith("*")]
    assert len(front) == 1 and front[0].startswith("deep-compression") and "cpu" in front[0]
    assert "\x1b[" not in result.stdout + result.stderr and "┃" not in result.stdout
    page = Page(out.read_text())
    (img,) = page.images
    assert img["id"] == "plot-pareto"
    assert decode_png(img["src"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.scripts == 0
    assert "deep-compression" in page.cells and "yes" in page.cells


def test_compare_bad_input(run_dirs, tmp_path):
    result = cli("compare", run_dirs[0], tmp_path / "nothing")
    assert result.returncode == 2
    assert "no report.json here" in result.stderr
    result = cli("compare", run_dirs[0], "--by", "flops", "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["errors"] == ["--by: must be size or gzip, got 'flops'"]


def regression_report(base_mae, artifacts):
    """A report.json in the current form (metric object) for a regression run: (target, size, mae) artifacts."""
    report = fixture_reports()[0]
    report["metric"] = {"name": "mae", "higher_is_better": False}
    report["baseline"].update(metric_value=base_mae, size_bytes=1000, sha256="b" * 64)
    template = report["artifacts"][0]
    report["artifacts"] = [
        {**template, "target": t, "size_bytes": size, "metric_value": mae, "metric_delta": mae - base_mae}
        for t, size, mae in artifacts
    ]
    return report


def test_pareto_front_follows_a_lower_is_better_metric():
    # mae: smaller is better. "small" is smaller but worse than "good"; "bad" is bigger and worse than "good".
    report = regression_report(44.0, [("good", 300, 44.5), ("small", 250, 47.0), ("bad", 400, 50.0)])
    rows, notes = compare_reports([("r", "", RunRecord.model_validate(report))])
    assert {r["target"]: r["pareto"] for r in rows} == {"baseline": True, "good": True, "small": True, "bad": False}
    assert all(r["metric"] == "mae" and r["higher_is_better"] is False for r in rows)
    assert notes == []
    cells = format_row(rows[1])
    assert cells["metric_value"] == "44.5" and cells["metric_delta"] == "+0.5"


def test_compare_reads_old_string_metrics_beside_new_objects():
    old, new = fixture_reports()
    assert isinstance(old["metric"], str)
    new["metric"] = {"name": "accuracy", "higher_is_better": True}
    old, new = RunRecord.model_validate(old), RunRecord.model_validate(new)
    rows, notes = compare_reports([("a", "", old), ("b", "", new)])
    assert notes == [] and [r["pareto"] for r in rows] == [False, False, True]
    regression = RunRecord.model_validate(regression_report(44.0, [("cpu", 300, 45.0)]))
    _, notes = compare_reports([("a", "", old), ("m", "", regression)])
    assert any("different metrics (accuracy, mae)" in n for n in notes)
