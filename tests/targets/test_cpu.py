"""The CPU target's recipe fields: the metric budget of accuracy-aware int8, and what the converter cannot do."""

import subprocess
import sys

import pytest

from compressctl.recipe.schema import Recipe
from tests.conftest import REPO, write_recipe


def test_max_metric_drop_is_a_bounded_target_field():
    recipe = Recipe.model_validate({"targets": [{"type": "cpu", "max_metric_drop": 0.02}]})
    assert recipe.targets[0].max_metric_drop == 0.02
    with pytest.raises(Exception, match="less than or equal to 1"):
        Recipe.model_validate({"targets": [{"type": "cpu", "max_metric_drop": 3}]})


def test_int4_asked_of_the_tflite_converter_is_one_error_line_and_nothing_written(tmp_path):
    recipe = write_recipe(tmp_path, "targets:\n  - type: cpu\n    mode: int4\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "compressctl", "run", str(recipe), "--model", "m.h5", "--data", "d.npz",
         "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and ":3:11 targets[0].mode" in lines[0]
    assert "int4" in lines[0] and not out.exists()
