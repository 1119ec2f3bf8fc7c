"""report.html rendered from real report.json files (fixtures copied from runs of the bundled recipes)."""

import json
import re

import pytest

from compressctl.report import render_html
from compressctl.report.html import png_size
from compressctl.report.record import RunRecord
from compressctl.report.summary import artifact_rows
from tests.helpers.pages import FIXTURES, PNG_SIGNATURE, Page, decode_png

pytestmark = pytest.mark.unit


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.report.json").read_text())


def record(report: dict) -> RunRecord:
    return RunRecord.model_validate(report)


@pytest.fixture(scope="module")
def deep_page():
    report = load("deep-compression")
    return report, render_html(record(report))


def test_every_plot_is_an_inline_png_of_the_size_the_tag_says(deep_page):
    report, html = deep_page
    page = Page(html)
    ids = [img["id"] for img in page.images]
    stages_with_layers = [i + 1 for i, s in enumerate(report["stages"]) if s["layers"]]
    expected = ["plot-size", "plot-metric", "plot-latency"] + [f"plot-layers-{i}" for i in stages_with_layers]
    assert ids == [*expected, "plot-stages"]
    for img in page.images:
        png = decode_png(img["src"])
        assert png[:8] == PNG_SIGNATURE
        width, height = png_size(png)
        assert (str(width), str(height)) == (img["width"], img["height"])
        assert width > 200 and height > 100
        assert img["alt"]


def test_the_page_is_self_contained(deep_page):
    _, html = deep_page
    page = Page(html)
    assert page.scripts == 0 and page.links == []
    assert not re.search(r"(src|href)=\"(?!data:)", html)
    assert "url(" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "plot-error" not in html.split("</style>")[1]


def test_summary_table_shows_every_artifact_of_the_report(deep_page):
    report, html = deep_page
    cells = Page(html).cells
    for row in artifact_rows(record(report)):
        for key in ("name", "path", "size", "gzip", "ratio", "metric", "p50", "speedup"):
            assert row[key] in cells, (key, row[key])
    assert "all 2 gate(s) passed" in html
    for gate in report["gates"]:
        assert gate["name"] in cells
    # The stored ratio leads, the gzip (download) size beside the stored size, as in report.md and the CLI.
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html.split("<h2>Summary</h2>", 1)[1].split("</thead>", 1)[0])
    assert headers[:6] == ["artifact", "file", "stored ratio", "stored", "download (gzip)", "gzip ratio"]


def test_every_text_from_the_report_is_escaped():
    report = load("cpu-int8")
    hostile = "<script>alert('x')</script>"
    report["recipe"]["name"] = hostile
    report["artifacts"][0]["target"] = hostile
    report["model"]["path"] = 'm"><img src=x onerror=alert(1)>'
    report["failed_targets"] = [{"target": "gpu", "error": "<b>boom</b> & more"}]
    html = render_html(record(report))
    page = Page(html)
    assert page.scripts == 0
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; more" in html
    assert "target failed" in html


def test_a_failed_gate_is_shown_as_failed():
    report = load("cpu-int8")
    report["gates"][1]["passed"] = False
    report["passed"] = False
    html = render_html(record(report))
    assert "1 gate(s) FAILED" in html
    assert '<td class="fail">FAIL</td>' in html


def test_post_training_only_run_has_no_stage_plots():
    report = load("cpu-int8")
    assert report["stages"] == []
    ids = [img["id"] for img in Page(render_html(record(report))).images]
    assert ids == ["plot-size", "plot-metric", "plot-latency"]


def test_a_run_whose_every_target_failed_still_renders():
    report = load("cpu-int8")
    report["failed_targets"] = [{"target": report["artifacts"][0]["target"], "error": "converter crashed"}]
    report["artifacts"], report["gates"] = [], []
    html = render_html(record(report))
    ids = [img["id"] for img in Page(html).images]
    assert ids == ["plot-size"]
    assert "converter crashed" in html


def test_a_plot_that_fails_is_a_visible_note_not_a_lost_report(monkeypatch):
    from compressctl.report import plots

    def broken(report):
        raise ValueError("no <data>")

    monkeypatch.setattr(plots, "latency_plot", broken)
    html = render_html(record(load("cpu-int8")))
    assert 'class="plot-error"' in html
    assert "latency and speed-up could not be drawn: ValueError: no &lt;data&gt;" in html
    assert [img["id"] for img in Page(html).images] == ["plot-size", "plot-metric"]


def test_rendering_is_deterministic():
    report = load("deep-compression")
    assert render_html(record(report)) == render_html(record(report))
