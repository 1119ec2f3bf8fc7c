"""The CI examples in examples/ci do what the README says: a gated step that keeps report.html."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, write_recipe

EXAMPLES = REPO / "examples" / "ci"


def test_github_actions_example_gates_and_uploads_the_report():
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    steps = workflow["jobs"]["compress"]["steps"]
    by_name = {s.get("name"): s for s in steps}
    run = by_name["Compress, measure and check the gates"]["run"]
    assert 'compressctl run "$RECIPE" --out "$OUT"' in run
    assert 'exit "$code"' in run and "PIPESTATUS[0]" in run  # the job fails with compressctl's exit code
    upload = by_name["Upload the report"]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "always()"  # kept when a gate fails too
    assert "${{ env.OUT }}/report.html" in upload["with"]["path"]
    assert "compressctl validate" in by_name["Validate the recipe (no TensorFlow, a second)"]["run"]


@pytest.mark.slow
def test_makefile_example_fails_on_a_missed_gate_and_keeps_the_report(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\nbench: {{runs: 20, warmup: 2}}\n"
        "targets:\n  - type: cpu\n    calibration_samples: 50\n"
        "gates:\n  min_compression_ratio: 1000\n",
    )
    out = tmp_path / "runs" / "ci"
    compressctl = Path(sys.executable).parent / "compressctl"
    make = ["make", "--no-print-directory", "-f", str(EXAMPLES / "Makefile")]
    variables = [f"COMPRESSCTL={compressctl}", f"RECIPE={recipe}", f"OUT={out}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    result = subprocess.run([*make, "compress", *variables], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode != 0, "a missed gate fails the make step"
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED gate")]
    assert failed and failed[0].startswith("FAILED gate min_compression_ratio [cpu]: ")
    assert "\x1b[" not in result.stdout + result.stderr
    page = (out / "report.html").read_text()
    assert "1 gate(s) FAILED" in page

    rerender = subprocess.run([*make, "report", *variables], capture_output=True, text=True, env=env, timeout=300)
    assert rerender.returncode == 0, rerender.stderr
    # Re-rendering from report.json gives the page the run wrote, byte for byte.
    assert Path(f"{out}-report.html").read_text() == page
