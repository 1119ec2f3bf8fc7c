"""report.html of a real run, opened in headless Chromium: every plot decodes, the table is there, no console errors.

Needs the `chromium` binary (Debian: apt-get install chromium; .ci/run installs it). Without it the
test skips, except when CI is set: there a missing browser is a failure, not a silent skip.
The screenshot is kept in test-artifacts/report.png for a person to look at.
"""

import json
import re
import shutil
import subprocess

import pytest

from compressctl import api
from compressctl.cli import in_ci
from compressctl.report.record import RunRecord
from compressctl.report.summary import artifact_rows
from tests.conftest import REPO, write_recipe
from tests.helpers.pages import PNG_SIGNATURE, Page, decode_png

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts"
MARKER = "compressctl-browser-check"
# A PNG signature and nothing else: a browser cannot decode it, so its naturalWidth stays 0.
BROKEN_PNG = "data:image/png;base64,iVBORw0KGgo="

CHECK_SCRIPT = f"""<script>
window.addEventListener('load', () => {{
  for (const img of document.images) {{
    img.setAttribute('data-natural-width', String(img.naturalWidth));
    img.setAttribute('data-natural-height', String(img.naturalHeight));
  }}
  document.body.setAttribute('data-images-checked', String(document.images.length));
  console.log('{MARKER} ' + document.images.length);
}});
</script>"""


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if in_ci():
            pytest.fail("CI is set but chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it and runs this test")
    return path


def browse(chromium, tmp_path, url: str, *extra: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run([chromium, *flags, *extra, url], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_cnn_path, tiny_data):
    """A real run with a prune and a cluster stage, so every kind of plot is drawn."""
    tmp = tmp_path_factory.mktemp("browser-run")
    recipe = write_recipe(
        tmp,
        f"""
name: browser-check
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - type: prune
    target_sparsity: 0.5
    layers: {{fc1: 0.8}}
    epochs: 1
    learning_rate: 0.001
  - type: cluster
    number_of_clusters: 8
    epochs: 1
targets:
  - type: cpu
    calibration_samples: 50
  - type: cpu
    name: cpu-dynamic
    mode: dynamic
bench: {{runs: 30, warmup: 3}}
gates:
  max_metric_drop: 0.5
""",
    )
    out = tmp / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == 0, result.report["gates"]
    return out


def test_report_html_in_headless_chromium(chromium, real_run, tmp_path):
    report = json.loads((real_run / "report.json").read_text())
    html = (real_run / "report.html").read_text()
    embedded = html.count("data:image/png;base64,")
    # size, stored bytes by encoding, metric, latency, a per-layer plot for prune and for cluster, stages;
    # and the layer-wise quantization error of each quantized artifact (both int8 and dynamic-range here).
    quantized = [a for a in report["artifacts"] if (a.get("quantization") or {}).get("layer_errors")]
    assert len(quantized) == 2
    assert embedded == 7 + len(quantized)
    assert 'id="plot-storage"' in html

    # A test copy: the page's policy forbids scripts, so the copy allows inline ones for the check,
    # and adds one undecodable image to prove that the check can fail.
    probe = html.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'", 1)
    assert probe != html
    probe = probe.replace(
        "</body>", f'<img id="control-broken" alt="control" src="{BROKEN_PNG}">{CHECK_SCRIPT}</body>', 1
    )
    probe_path = tmp_path / "report-probe.html"
    probe_path.write_text(probe, encoding="utf-8")

    dumped = browse(chromium, tmp_path, probe_path.as_uri(), "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert f'data-images-checked="{embedded + 1}"' in dom, "the check script did not run after load"

    page = Page(dom)
    images = {img["id"]: img for img in page.images}
    assert images.pop("control-broken")["data-natural-width"] == "0"
    assert len(images) == embedded
    for plot_id, img in images.items():
        png = decode_png(img["src"])
        assert png[:8] == PNG_SIGNATURE and len(png) > 1000, plot_id
        # The browser decoded it, at the size the tag declares.
        assert int(img["data-natural-width"]) == int(img["width"]) > 0, plot_id
        assert int(img["data-natural-height"]) == int(img["height"]) > 0, plot_id

    for row in artifact_rows(RunRecord.model_validate(report)):
        for key in ("name", "size", "gzip", "ratio", "metric", "p50", "speedup"):
            assert row[key] in page.cells, (row["name"], key)
    assert [a["target"] for a in report["artifacts"]] == ["cpu", "cpu-dynamic"]

    console = [line for line in dumped.stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]
    assert any(MARKER in line for line in console), "console capture works: the check script's line is there"
    errors = [line for line in console if MARKER not in line]
    assert errors == [], errors

    # The page itself (not the probe) as a person sees it.
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    shot = browse(
        chromium, tmp_path, (real_run / "report.html").as_uri(), f"--screenshot={screenshot}", "--window-size=1280,3200"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 50_000
    console = [line for line in shot.stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]
    assert console == [], console
    shutil.copy(real_run / "report.html", ARTIFACTS / "report.html")
