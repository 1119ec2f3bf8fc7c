"""The converter backend's contract: the modes it produces, and bad input refused before any work."""

import subprocess
import sys

import pytest

from compressctl.backends import converter
from tests.conftest import REPO, write_recipe


def test_check_mode_names_the_backend_that_has_the_mode():
    assert converter.check_mode("dynamic") == "dynamic"
    with pytest.raises(ValueError, match="mode weight-only-int4 needs `backend: litert-quantizer`"):
        converter.check_mode("weight-only-int4")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{type: cpu, mode: weight-only-int4}", "targets[0].mode: mode weight-only-int4 needs `backend: litert"),
        ("{type: cpu, backend: litert-quantizer, litert_quantizer: {bits: 4}}", "litert_quantizer.bits: unknown field"),
        ('{type: cpu, runtime: {version: "3.1"}}', "runtime.version: TFLite runtime version '3.1' is not in the"),
        ("{type: cpu, runtime: {version: 2.10}}", 'runtime.version: write the version as a string, e.g. "2.1"'),
    ],
)
def test_bad_backend_input_is_exit_2_one_line_nothing_written(tmp_path, target, message):
    recipe = write_recipe(tmp_path, f"model: m\ndata: d.npz\ntargets:\n  - {target}\n")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "compressctl", "run", str(recipe), "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {recipe}:4:") and message in lines[0], done.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]
