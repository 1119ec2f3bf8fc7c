"""keras.applications families as a new user brings them: inspect, the bundled recipes unchanged, init → run.

Every pair must end in exit 0 (gates met) or 1 (a gate missed), never 2 (the recipe refused the
model) or 3 (a stage or target failed), and every artifact written must load and run in LiteRT.
The models are small versions of each family (benchmarks/zoo_models.py), trained for two epochs on 32×32
quadrant images; training is capped at two batches an epoch and timing at a few runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from benchmarks.zoo import RECIPES  # every bundled recipe `run` takes, as the bench runs them
from benchmarks.zoo_models import CLASSES, FAMILIES, SHAPE, build_and_train
from compressctl.core.errors import CompressctlError
from tests.conftest import REPO, cli, quadrant_data

pytestmark = pytest.mark.slow

# Few timing runs, few calibration samples, training capped and run eagerly (tracing a QAT model of ~150
# layers takes longer than its two steps): the pairs test that things run.
QUICK = ["bench.runs=3", "bench.warmup=1", "bench.rounds=1", "training.steps_per_epoch=2", "training.run_eagerly=true"]
# Stages whose epochs drop to one, per recipe.
ONE_EPOCH = {"fast-cpu": 1, "deep-compression": 3, "lowrank-distill": 2, "smallest": 2, "mcu": 3}
CALIBRATED = ("cpu-int8", "edgetpu", "deep-compression", "lowrank-distill", "mcu")  # full-int8 targets: 16 samples
# A limit for each `compressctl` child process of init → run: generous, as the other test worker
# shares the two cores (the slowest family took 335 s alone).
CLI_LIMIT_S = 1500
PER_RECIPE = {
    recipe: [f"stages.{i}.epochs=1" for i in range(ONE_EPOCH.get(recipe, 0))]
    + (["targets.0.calibration_samples=16"] if recipe in CALIBRATED else [])
    for recipe in RECIPES
}

_BUILT: dict[str, object] = {}


@pytest.fixture(scope="session")
def zoo_npz(tmp_path_factory):
    data = quadrant_data(n_train=192, n_test=96, shape=SHAPE, classes=CLASSES)
    path = tmp_path_factory.mktemp("zoo") / "quadrants32.npz"
    np.savez(path, **data)
    return path, data


def _model(family, tmp_path_factory, zoo_npz):
    if family not in _BUILT:
        path = tmp_path_factory.mktemp(f"zoo-{family}") / family
        _BUILT[family] = build_and_train(family, zoo_npz[1], path)
    return _BUILT[family]


def _grouped(values):
    """One xdist group per family: its model is built once, on one worker."""
    return [pytest.param(*v, marks=pytest.mark.xdist_group(f"zoo-{v[0]}")) for v in values]


def check_artifacts(run_dir):
    """Every artifact in report.json loads, allocates and runs one sample in LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    report = json.loads((run_dir / "report.json").read_text())
    for artifact in report["artifacts"]:
        interpreter = Interpreter(model_path=str(run_dir / artifact["path"]))
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        assert np.all(np.isfinite(output.astype(np.float64))), artifact["path"]
    return report


@pytest.mark.parametrize(("family",), _grouped([(f,) for f in FAMILIES]))
def test_zoo_family_inspects(family, tmp_path_factory, zoo_npz):
    from compressctl import api

    model = _model(family, tmp_path_factory, zoo_npz)
    info = api.inspect(str(model))
    assert len(info["layers"]) > 10


@pytest.mark.parametrize(("family", "recipe"), _grouped([(f, r) for f in FAMILIES for r in RECIPES]))
def test_zoo_family_runs_bundled_recipe_unchanged(family, recipe, tmp_path, tmp_path_factory, zoo_npz):
    model = _model(family, tmp_path_factory, zoo_npz)
    from compressctl import api

    out = tmp_path / "run"
    path = REPO / "recipes" / f"{recipe}.yaml"
    overrides = [*QUICK, *PER_RECIPE.get(recipe, [])]
    try:
        result = api.run(str(path), overrides, model=str(model), data=str(zoo_npz[0]), out=str(out))
    except CompressctlError as exc:
        pytest.fail(f"{recipe} on {family}: exit {exc.exit_code}: {exc}")
    assert result.exit_code in (0, 1), result.report["failed_targets"]
    report = check_artifacts(out)
    assert report["failed_targets"] == []


@pytest.mark.parametrize(("family",), _grouped([(f,) for f in FAMILIES]))
def test_zoo_family_init_then_run(family, tmp_path, tmp_path_factory, zoo_npz):
    model = _model(family, tmp_path_factory, zoo_npz)
    recipe = tmp_path / "recipe.yaml"
    proc = cli("init", model, "--data", zoo_npz[0], "--out", recipe, timeout=CLI_LIMIT_S)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "run"
    stages = yaml.safe_load(recipe.read_text()).get("stages") or []
    epochs = [f"stages.{i}.epochs=1" for i in range(len(stages))]
    sets = [arg for s in [*QUICK, *epochs] for arg in ("--set", s)]
    proc = cli("run", recipe, "--out", out, *sets, timeout=CLI_LIMIT_S)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    check_artifacts(out)
