"""--resume reuses cached stage outputs whose inputs are unchanged, and only those."""

import pytest

from compressctl import api
from compressctl.core.errors import StageError
from compressctl.stages.quantize import Quantize
from tests.conftest import write_recipe

pytestmark = pytest.mark.slow

RECIPE = """
model: {model}
data: {data}
stages:
  - type: prune
    target_sparsity: 0.5
    epochs: 1
  - type: cluster
    number_of_clusters: {clusters}
    epochs: 1
  - type: quantize
    epochs: 1
bench: {{runs: 5, warmup: 1}}
"""


def cached(result):
    return [s["cached"] for s in result.report["stages"]]


def test_resume_after_a_failed_stage_and_after_a_changed_stage(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    recipe = write_recipe(tmp_path, RECIPE.format(model=tiny_cnn_path, data=tiny_data, clusters=8))
    out = str(tmp_path / "run")

    def broken(self, model, ctx):
        raise StageError("stage quantize: simulated failure")

    with monkeypatch.context() as patch:
        patch.setattr(Quantize, "apply", broken)
        with pytest.raises(StageError):
            api.run(str(recipe), out=out)
    assert not (tmp_path / "run").exists()

    resumed = api.run(str(recipe), out=out, resume=True)
    assert cached(resumed) == [True, True, False]

    full = api.run(str(recipe), out=str(tmp_path / "full"))
    assert cached(full) == [False, False, False]
    # A resumed run computes what a full run computes.
    assert resumed.report["artifacts"][0]["sha256"] == full.report["artifacts"][0]["sha256"]

    changed = write_recipe(tmp_path, RECIPE.format(model=tiny_cnn_path, data=tiny_data, clusters=4), "changed.yaml")
    again = api.run(str(changed), out=out, resume=True)
    assert cached(again) == [True, False, False]


def test_a_fresh_process_resumes_a_qat_stage_saved_without_traces(tmp_path):
    """The cache saves a model without its traced call functions when it rebuilds from its config; a new
    process, which has not run QAT and so has not made the QAT stage's Keras classes yet, still loads the
    entry (TFOpLambda arithmetic rewritten for QAT included) and writes the same artifact."""
    import json

    import numpy as np

    from tests.conftest import arch_activations, cli, quadrant_data

    model = tmp_path / "model"
    arch_activations().save(str(model), save_format="tf")
    data = tmp_path / "data.npz"
    np.savez(data, **quadrant_data(shape=(8, 8, 3)))
    recipe = write_recipe(
        tmp_path,
        f"model: {model}\ndata: {data}\nstages:\n  - type: quantize\n    epochs: 1\n"
        "targets:\n  - type: cpu\n    mode: int8\n    calibration_samples: 16\nbench: {runs: 3, warmup: 1}\n",
    )
    out = tmp_path / "run"
    first = cli("run", recipe, "--out", out, "--resume")
    assert first.returncode in (0, 1), first.stderr[-2000:]
    sha = json.loads((out / "report.json").read_text())["artifacts"][0]["sha256"]
    again = cli("run", recipe, "--out", out, "--resume")
    assert again.returncode in (0, 1), again.stderr[-2000:]
    assert "quantize (cached, skipped)" in again.stderr
    assert json.loads((out / "report.json").read_text())["artifacts"][0]["sha256"] == sha
