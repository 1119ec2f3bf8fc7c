"""Early stopping: its recipe section checked at the line, epochs counted over the recipe's stages, and the
reports a trial sends at the end of every epoch (no Ray, no TensorFlow)."""

import pytest

from compressctl.core.errors import UserError
from compressctl.core.events import Event
from compressctl.search import early_stop
from compressctl.search.space import load_search_recipe
from tests.conftest import write_recipe

pytestmark = pytest.mark.unit

RECIPE = """\
name: s
stages:
  - type: prune
    target_sparsity: 0.5
    epochs: 2
  - type: cluster
    number_of_clusters: 16
    epochs: 1
search:
  space:
    stages.0.target_sparsity: {{uniform: [0.3, 0.9]}}
{space}  early_stopping:
{early}
"""


def load(tmp_path, early: str, space: str = ""):
    return load_search_recipe(str(write_recipe(tmp_path, RECIPE.format(early=early, space=space))))


def test_asha_section_loads_with_its_defaults(tmp_path):
    recipe, _, _ = load(tmp_path, "    grace_epochs: 1\n")
    early = recipe.search.early_stopping
    assert (early.scheduler, early.grace_epochs, early.reduction_factor) == ("asha", 1, 3.0)
    assert early_stop.stage_epochs(recipe.stages) == [2, 1]


def test_a_grace_period_as_long_as_the_training_is_refused_at_its_line(tmp_path):
    with pytest.raises(UserError) as info:
        load(tmp_path, "    grace_epochs: 3\n")
    assert str(info.value).startswith(f"{tmp_path / 'recipe.yaml'}:13:5 search.early_stopping.grace_epochs: 3")
    assert "3 training epoch(s)" in str(info.value)


def test_a_searched_epoch_count_counts_at_the_top_of_its_range(tmp_path):
    recipe, _, _ = load(tmp_path, "    grace_epochs: 3\n", space="    stages.1.epochs: {int: [1, 4]}\n")
    assert early_stop.stage_epochs(recipe.stages, recipe.search.space) == [2, 4]


@pytest.mark.parametrize("field", ["scheduler: hyperband", "grace_epoch: 1", "reduction_factor: 1"])
def test_a_typo_or_bad_value_is_an_error(tmp_path, field):
    with pytest.raises(UserError) as info:
        load(tmp_path, f"    {field}\n")
    assert "search.early_stopping" in str(info.value)


def test_epochs_are_numbered_over_the_recipe_also_after_a_cached_stage():
    sent = []
    reporter = early_stop.EpochReporter(sent.append, [2, 3], {"id": "0002", "params": {}}, "gzip_bytes")
    reporter(Event("step", "stage 1/2: prune (cached, skipped)"))
    reporter(Event("step", "stage 2/2: cluster"))
    reporter(Event("epoch", "cluster: epoch 1/3", total=3, completed=1,
                   data={"loss": 0.5, "metric": 0.8, "metric_name": "accuracy"}))  # fmt: skip
    reporter(Event("epoch", "cluster: epoch 2/3", total=3, completed=2,
                   data={"loss": 0.4, "metric": 3.5, "metric_name": "mae"}))  # fmt: skip
    assert [r[early_stop.PARTIAL] for r in sent] == [3, 4]
    assert [r[early_stop.GOODNESS] for r in sent] == [0.8, -3.5]  # larger is better, whatever the metric
    assert all(r["id"] == "0002" and r["score"] == 1e3 for r in sent)  # scored as no artifact
    assert "prune (cached, skipped)" in sent[-1]["log"] and "epoch 2/3" in sent[-1]["log"]


def test_a_stopped_trial_names_its_epoch_and_has_no_figures():
    trial = early_stop.stopped_trial({"id": "0003", early_stop.PARTIAL: 1, "node": "10.0.0.2", "seconds": 4.0})
    assert trial["status"] == "stopped" and trial["stopped_at_epoch"] == 1 and trial["node"] == "10.0.0.2"
    assert "after epoch 1" in trial["error"] and trial["gzip_bytes"] is None
