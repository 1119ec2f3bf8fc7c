"""The search: section and its space, checked against the recipe with errors at the line."""

import pytest

from compressctl import api
from compressctl.core.errors import UserError
from compressctl.search.space import load_search_recipe, resolved_recipe
from tests.conftest import write_recipe

pytestmark = pytest.mark.unit

BASE = """\
name: s
stages:
  - type: prune
    target_sparsity: 0.5
  - type: cluster
    number_of_clusters: 16
search:
  space:
{space}
"""


def recipe_with(tmp_path, space: str, extra: str = ""):
    return write_recipe(tmp_path, BASE.format(space=space) + extra)


def errors(tmp_path, space: str, extra: str = "") -> str:
    path = recipe_with(tmp_path, space, extra)
    with pytest.raises(UserError) as info:
        load_search_recipe(str(path))
    return str(info.value)


def test_valid_space_loads(tmp_path):
    path = recipe_with(
        tmp_path,
        "    stages.0.target_sparsity: {uniform: [0.3, 0.97]}\n"
        "    stages.1.number_of_clusters: {choice: [8, 16, 32]}\n"
        "    stages.0.layers.fc1: {uniform: [0.5, 0.99]}\n"
        "    stages.0.epochs: {int: [1, 3]}\n"
        "    stages.0.learning_rate: {loguniform: [0.0001, 0.01]}\n",
    )
    recipe, data, source = load_search_recipe(str(path))
    space = recipe.search.space
    assert space["stages.0.epochs"].kind == "int" and space["stages.0.epochs"].edge_values() == [1, 3]
    trial = resolved_recipe(data, source, {"stages.0.layers.fc1": 0.9, "stages.1.number_of_clusters": 8}, {})
    assert trial.stages[0].layers == {"fc1": 0.9}
    assert trial.stages[1].number_of_clusters == 8
    assert trial.search is None


def test_typo_in_a_key_points_at_its_line(tmp_path):
    text = errors(tmp_path, "    stages.0.target_sparsty: {uniform: [0.3, 0.9]}\n")
    assert text.startswith(f"{tmp_path / 'recipe.yaml'}:9:5 search.space.stages.0.target_sparsty")
    assert "unknown field" in text and "target_sparsity" in text


def test_index_past_the_end_and_a_value_out_of_bounds(tmp_path):
    text = errors(tmp_path, "    stages.5.target_sparsity: {uniform: [0.3, 0.9]}\n")
    assert ":9:5 search.space.stages.5.target_sparsity" in text and "out of range" in text
    text = errors(tmp_path, "    stages.0.target_sparsity: {uniform: [0.3, 1.2]}\n")
    assert ":9:5 search.space.stages.0.target_sparsity" in text and "must be < 1" in text
    text = errors(tmp_path, "    stages.1.number_of_clusters: {choice: [8, 1000]}\n")
    assert "must be <= 256" in text


def test_bad_dimension_is_a_recipe_error_at_the_line(tmp_path):
    path = recipe_with(tmp_path, "    stages.0.target_sparsity: {uniform: [0.9, 0.3]}\n")
    with pytest.raises(UserError) as info:
        api.validate(str(path))
    assert ":9:" in str(info.value) and "low must be < high" in str(info.value)
    path = recipe_with(tmp_path, "    stages.0.target_sparsity: {uniform: [0.3, 0.9], choice: [0.5]}\n")
    with pytest.raises(UserError, match="exactly one of"):
        api.validate(str(path))


def test_grid_needs_choices_and_unknown_target_is_refused(tmp_path):
    text = errors(tmp_path, "    stages.0.target_sparsity: {uniform: [0.3, 0.9]}\n", "  sampler: grid\n")
    assert "grid needs every dimension as a `choice`" in text
    text = errors(tmp_path, "    stages.0.target_sparsity: {choice: [0.3]}\n", "  target: gpu\n")
    assert "search.target: no target named 'gpu'" in text


def test_validate_checks_the_space_too(tmp_path):
    path = recipe_with(tmp_path, "    gates.max_metric_dorp: {uniform: [0.001, 0.01]}\n")
    with pytest.raises(UserError, match="search.space.gates.max_metric_dorp"):
        api.validate(str(path))


def test_bundled_search_recipe_is_valid():
    from tests.conftest import REPO

    recipe = api.validate(str(REPO / "recipes" / "search.yaml"))
    assert [s.type for s in recipe.stages] == ["prune", "cluster", "quantize"]
    assert recipe.gates.max_metric_drop == 0.01
    assert recipe.search.per_layer is not None


@pytest.mark.unit
def test_a_sparsity_dimension_samples_the_density_on_a_log_scale():
    from compressctl.recipe.search_spec import Dimension
    from compressctl.search.engine import sampled_params
    from compressctl.search.space import to_optuna

    dim = Dimension(sparsity=(0.5, 0.98))
    dist = to_optuna({"s": dim})["s"]
    assert dist.log and dist.low == pytest.approx(0.02) and dist.high == pytest.approx(0.5)
    assert dim.sampled(0.05) == 0.95 and dim.unsampled(0.95) == pytest.approx(0.05)
    assert dim.edge_values() == [0.5, 0.98]  # what validation checks against the recipe field
    config = {"p0": 0.1, "p1": 16}
    keys = {"p0": "stages.0.layers.fc1", "p1": "stages.1.number_of_clusters"}
    space = {"stages.0.layers.fc1": dim.to_json(), "stages.1.number_of_clusters": {"choice": [8, 16]}}
    assert sampled_params(config, keys, space) == {"stages.0.layers.fc1": 0.9, "stages.1.number_of_clusters": 16}
    for bad in ((0.5, 1.0), (0.9, 0.5), (-0.1, 0.5)):
        with pytest.raises(ValueError, match="sparsity"):
            Dimension(sparsity=bad)
