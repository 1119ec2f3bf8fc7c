"""TensorFlow's thread counts decide an artifact's bytes: recipe.lock.yaml and best.yaml pin them."""

import json
import os

import pytest
import yaml

from tests.conftest import cli, write_recipe

RECIPE = """
model: {model}
data: {data}
seed: 0
training: {{batch_size: 32, steps_per_epoch: 20}}
stages:
  - {{type: prune, target_sparsity: 0.5, epochs: 2}}
targets: [{{type: cpu, calibration_samples: 20}}]
bench: {{runs: 3, warmup: 1, rounds: 1}}
"""


def _threads_env(count: int) -> dict:
    env = dict(os.environ)
    env.update({name: str(count) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")})
    return env


def _validate(data: dict):
    from compressctl.recipe.schema import Source, validate

    return validate(data, Source(path="recipe.yaml"))


def _sha(run_dir) -> str:
    return json.loads((run_dir / "report.json").read_text())["artifacts"][0]["sha256"]


@pytest.mark.slow
def test_lock_rerun_in_a_process_with_other_default_threads_gives_the_same_bytes(tmp_path, sample_models):
    # The MLP's 300-wide matmuls split over threads differently (the test suite's tiny CNN does not).
    model, data = sample_models / "mlp_digits", sample_models / "digits.npz"
    recipe = write_recipe(tmp_path, RECIPE.format(model=model, data=data))
    # The first run without training.threads, in an environment of one thread (as a search trial runs).
    first = cli("run", recipe, "--out", tmp_path / "one", "--quiet", env=_threads_env(1))
    assert first.returncode == 0, first.stderr
    lock = yaml.safe_load((tmp_path / "one" / "recipe.lock.yaml").read_text())
    assert lock["training"]["threads"] == {"intra_op": 1, "inter_op": 1}
    # The lock in a fresh process whose default is four threads: the lock's counts win.
    again = cli("run", tmp_path / "one" / "recipe.lock.yaml", "--out", tmp_path / "again", "--quiet",
                env=_threads_env(4))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert _sha(tmp_path / "again") == _sha(tmp_path / "one")
    # The control: the recipe itself (no pinned threads) under four threads writes other bytes, so the
    # equality above is the pin's doing, not a model whose bytes never depend on threads.
    other = cli("run", recipe, "--out", tmp_path / "four", "--quiet", env=_threads_env(4))
    assert other.returncode == 0, other.stderr
    assert _sha(tmp_path / "four") != _sha(tmp_path / "one")
    assert yaml.safe_load((tmp_path / "four" / "recipe.lock.yaml").read_text())["training"]["threads"] == {
        "intra_op": 4,
        "inter_op": 4,
    }


@pytest.mark.unit
def test_best_yaml_pins_the_trials_threads_unless_the_recipe_sets_them():
    from compressctl.search.engine import with_trial_threads

    plain = _validate({"model": "m", "data": "d.npz"})
    assert plain.training.threads is None
    pinned = with_trial_threads(plain, 2).training.threads
    assert (pinned.intra_op, pinned.inter_op) == (2, 2)
    own = _validate({"model": "m", "data": "d.npz", "training": {"threads": {"intra_op": 3, "inter_op": 1}}})
    assert with_trial_threads(own, 2).training.threads == own.training.threads


@pytest.mark.unit
@pytest.mark.parametrize("bad", [0, -1, 2.5, "two"])
def test_training_threads_must_be_positive_integers(bad):
    from compressctl.core.errors import UserError

    with pytest.raises(UserError, match="training.threads.intra_op"):
        _validate({"model": "m", "data": "d.npz", "training": {"threads": {"intra_op": bad, "inter_op": 1}}})
