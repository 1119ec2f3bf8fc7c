from pathlib import Path

import pytest
import yaml

from compressctl.core.errors import UserError
from compressctl.recipe.schema import Recipe, json_schema, load_recipe, load_recipe_with_source, to_yaml
from tests.conftest import REPO, write_recipe

pytestmark = pytest.mark.unit

CASES = yaml.safe_load((Path(__file__).parent / "recipes_bad" / "cases.yaml").read_text())


@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_golden_validation_errors(case, tmp_path):
    spec = CASES[case]
    path = write_recipe(tmp_path, spec["recipe"])
    with pytest.raises(UserError) as info:
        load_recipe(path)
    expected = [line.format(path=path) for line in spec["errors"]]
    assert str(info.value).splitlines() == expected


def test_minimal_recipe_gets_defaults(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, "model: m\n"))
    assert recipe.stages == []
    assert recipe.target_names() == ["cpu"]
    assert recipe.targets[0].mode == "int8"
    assert recipe.bench.threads == 1


def test_a_recipe_of_one_key_gets_defaults_for_the_rest(tmp_path):
    assert load_recipe(write_recipe(tmp_path, "seed: 3\n")).targets[0].type == "cpu"


def test_set_overrides_are_validated_like_the_file(tmp_path):
    path = write_recipe(tmp_path, "stages:\n  - type: prune\n    target_sparsity: 0.5\n")
    recipe = load_recipe(path, ["stages.0.target_sparsity=0.8", "bench.runs=7", "gates.max_metric_drop=0.01"])
    assert recipe.stages[0].target_sparsity == 0.8
    assert recipe.bench.runs == 7
    assert recipe.gates.max_metric_drop == 0.01
    with pytest.raises(UserError) as info:
        load_recipe(path, ["stages.0.target_sparsity=1.5"])
    assert str(info.value) == "--set stages.0.target_sparsity=1.5: stages[0].target_sparsity: must be < 1"


def test_set_can_add_nested_keys_and_lists(tmp_path):
    path = write_recipe(tmp_path, "stages:\n  - type: prune\n")
    recipe = load_recipe(path, ["stages.0.layers.fc1=0.9", "stages.0.exclude=[conv.*]"])
    assert recipe.stages[0].layers == {"fc1": 0.9}
    assert recipe.stages[0].exclude == ["conv.*"]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("stages", "--set stages: expected key=value, e.g. stages.0.target_sparsity=0.8"),
        ("stages.3.epochs=1", "--set stages.3.epochs=1: stages has 1 item(s); index 3 is out of range"),
        ("stages.x.epochs=1", "--set stages.x.epochs=1: stages is a list; use an index, e.g. stages.0"),
        ("seed.x=1", "--set seed.x=1: seed is a single value, not a mapping or list"),
    ],
)
def test_bad_set_assignments(tmp_path, assignment, message):
    path = write_recipe(tmp_path, "seed: 1\nstages:\n  - type: prune\n")
    with pytest.raises(UserError) as info:
        load_recipe(path, [assignment])
    assert str(info.value) == message


def test_flags_override_model_data_out(tmp_path):
    path = write_recipe(tmp_path, "model: a\ndata: b\n")
    recipe, _ = load_recipe_with_source(path, [], {"model": "m2", "data": None, "out": "o"})
    assert (recipe.model, recipe.data, recipe.out) == ("m2", "b", "o")


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UserError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_alias_bomb_is_refused(tmp_path):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]")
    path = write_recipe(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(UserError, match="more than 20000 YAML nodes"):
        load_recipe(path)


def test_lock_round_trips(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "deep-compression.yaml")
    again = load_recipe(write_recipe(tmp_path, to_yaml(recipe)))
    assert again == recipe


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_recipes_validate(path):
    assert isinstance(load_recipe(path), Recipe)


def test_deep_compression_prunes_the_largest_layer_hardest():
    recipe = load_recipe(REPO / "recipes" / "deep-compression.yaml")
    prune = recipe.stages[0]
    assert prune.layers["role:largest"] > prune.target_sparsity > prune.layers["role:first"]
    assert [s.type for s in recipe.stages] == ["prune", "cluster", "quantize"]
    assert set(recipe.stages[2].preserve) == {"sparsity", "clusters"}


def test_json_schema_describes_stage_types():
    schema = json_schema()
    text = str(schema)
    for kind in ("prune", "cluster", "quantize", "cpu"):
        assert kind in text
    assert schema["title"] == "compressctl recipe"


LAYERS = ["conv", "flatten", "fc1", "fc2"]


def _check(tmp_path, text):
    from compressctl.recipe.schema import check_layer_names, load_recipe_with_source

    recipe, source = load_recipe_with_source(write_recipe(tmp_path, text))
    check_layer_names(recipe, LAYERS, source, "m")


def test_a_per_layer_key_matching_no_layer_is_an_error_with_a_suggestion(tmp_path):
    with pytest.raises(UserError) as err:
        _check(tmp_path, "stages:\n  - type: prune\n    layers: {fcl1: 0.9, fc1: 0.5}\n")
    assert str(err.value) == (
        f"{tmp_path / 'recipe.yaml'}:3:14 stages[0].layers.fcl1: 'fcl1' matches no layer of m; did you mean 'fc1'? "
        "(layers: conv, flatten, fc1, fc2)"
    )


def test_include_and_exclude_patterns_must_each_match_a_layer(tmp_path):
    with pytest.raises(UserError) as err:
        _check(tmp_path, "stages:\n  - type: cluster\n    include: ['fc.*', 'dense']\n    exclude: [conv2]\n")
    lines = str(err.value).splitlines()
    assert [line.split(" ")[1] for line in lines] == ["stages[0].include[1]:", "stages[0].exclude[0]:"]
    assert "did you mean 'conv'?" in lines[1]


def test_names_a_lowrank_stage_creates_count_for_later_stages(tmp_path):
    _check(tmp_path, "stages:\n  - {type: lowrank, rank: 2}\n  - {type: prune, layers: {fc1_lowrank: 0.5}}\n")
    with pytest.raises(UserError, match="fc1_lowrank"):
        _check(tmp_path, "stages:\n  - {type: prune, layers: {fc1_lowrank: 0.5}}\n")


@pytest.mark.parametrize(
    "good, bad",
    [
        ("include: ['fc.*']", "include: ['fc']"),  # whole-name match: `fc` alone names no layer
        ("exclude: [flatten]", "exclude: [flaten]"),
        ("layers: {'conv|fc1': 0.7}", "layers: {'fc[3-9]': 0.7}"),
    ],
)
def test_a_pattern_passes_exactly_when_it_matches_a_whole_layer_name(tmp_path, good, bad):
    _check(tmp_path, f"stages:\n  - {{type: prune, {good}}}\n")
    with pytest.raises(UserError, match="matches no layer"):
        _check(tmp_path, f"stages:\n  - {{type: prune, {bad}}}\n")


def test_regression_metrics_allow_drops_in_the_labels_units(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, "task: {metric: mae}\ngates: {max_metric_drop: 2.5}\n"))
    assert recipe.gates.max_metric_drop == 2.5 and recipe.task.metric == "mae"
    assert load_recipe(write_recipe(tmp_path, "name: x\n")).task.metric is None  # picked from the model
    assert load_recipe(write_recipe(tmp_path, "name: x\n")).training.strategy == "auto"
