"""``compare`` given a batch directory: its finished runs, named model/recipe, beside plain run directories."""

import json
import shutil

import pytest

from compressctl.core.errors import UserError
from compressctl.report.compare import named_runs
from tests.conftest import REPO

pytestmark = pytest.mark.unit

REPORT = REPO / "tests" / "report" / "fixtures" / "cpu-int8.report.json"


def test_a_batch_directory_stands_for_its_finished_runs(tmp_path):
    batch = tmp_path / "fleet"
    runs = [("lenet", "recipes/cpu-int8.yaml", "runs/lenet/cpu-int8"), ("mlp", "r/gpu-fp16.yaml", "runs/mlp/gpu-fp16"),
            ("mlp", "r/cpu-int8.yaml", "runs/mlp/cpu-int8")]  # fmt: skip
    for _, _, sub in runs[:2]:  # the third never finished
        (batch / sub).mkdir(parents=True)
        shutil.copy(REPORT, batch / sub / "report.json")
    (batch / "batch.json").write_text(
        json.dumps({"runs": [{"model": m, "recipe": r, "run_dir": d} for m, r, d in runs]})
    )
    plain = tmp_path / "solo"
    assert named_runs([str(plain), str(batch)]) == [
        ("solo", str(plain)),
        ("lenet/cpu-int8", str(batch / "runs/lenet/cpu-int8")),
        ("mlp/gpu-fp16", str(batch / "runs/mlp/gpu-fp16")),
    ]


def test_a_batch_with_no_finished_run_is_one_error(tmp_path):
    (tmp_path / "batch.json").write_text(
        json.dumps({"runs": [{"model": "m", "recipe": "r.yaml", "run_dir": "runs/m/r"}]})
    )
    with pytest.raises(UserError, match="no finished run"):
        named_runs([str(tmp_path)])
