"""The fleet file of ``compressctl batch``: strict schema, FILE:LINE:COL errors, paths that must exist."""

import pytest

from compressctl.core.errors import UserError
from compressctl.search.fleet import load_fleet
from tests.conftest import REPO, cli

pytestmark = pytest.mark.unit

# Paths relative to the working directory, as fleet paths are. Each test runs in a folder laid out like the
# repository after `make sample-models` (a clean clone has no sample_models/): the fleet's checks ask only
# that a model path exists, so empty stand-ins serve and no TensorFlow is needed.
LENET, MLP, DIGITS = "sample_models/lenet5_digits", "sample_models/mlp_digits", "sample_models/digits.npz"
INT8, FP16 = "recipes/cpu-int8.yaml", "recipes/gpu-fp16.yaml"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    for model in (LENET, MLP):
        (root / model).mkdir(parents=True)
    (root / DIGITS).write_bytes(b"")
    (root / "recipes").symlink_to(REPO / "recipes")
    return root


@pytest.fixture(autouse=True)
def _in_the_workspace(monkeypatch, workspace):
    monkeypatch.chdir(workspace)


def fleet(tmp_path, text: str):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return str(path)


def errors_of(path: str) -> list[str]:
    with pytest.raises(UserError) as info:
        load_fleet(path)
    return str(info.value).splitlines()


def test_every_model_with_every_recipe_and_a_model_limited_to_some(tmp_path):
    path = fleet(
        tmp_path,
        f"models:\n  - {{name: lenet, model: {LENET}, data: {DIGITS}}}\n"
        f"  - {{name: mlp, model: {MLP}, recipes: [gpu-fp16]}}\n"
        f"recipes: [{INT8}, {FP16}]\nset: ['bench.runs=5']\n",
    )
    parsed, pairs = load_fleet(path)
    assert [p.key for p in pairs] == ["lenet/cpu-int8", "lenet/gpu-fp16", "mlp/gpu-fp16"]
    assert [p.run_dir for p in pairs][0] == "runs/lenet/cpu-int8"
    assert pairs[0].overrides == ["bench.runs=5"] and pairs[0].data_path == DIGITS and pairs[2].data_path is None
    assert pairs[2].recipe_text.startswith("# yaml-language-server")
    assert parsed.set == ["bench.runs=5"]


def test_a_typo_in_a_model_entry_names_line_column_and_the_field(tmp_path):
    path = fleet(tmp_path, f"models:\n  - {{name: lenet, modl: {LENET}}}\nrecipes: [{INT8}]\n")
    assert errors_of(path) == [
        f"{path}:2:5 models[0].model: required field is missing",
        f"{path}:2:19 models[0].modl: unknown field; did you mean 'model'? (allowed: data, model, name, recipes)",
    ]


def test_an_unknown_top_level_key(tmp_path):
    path = fleet(tmp_path, f"models:\n  - {{name: a, model: {LENET}}}\nrecipe: [{INT8}]\n")
    assert f"{path}:3:1 recipe: unknown field; did you mean 'recipes'? (allowed: models, recipes, set)" in errors_of(
        path
    )


def test_paths_that_do_not_exist_are_each_one_line(tmp_path):
    path = fleet(
        tmp_path,
        f"models:\n  - name: a\n    model: {tmp_path}/nope\n    data: {tmp_path}/none.npz\n"
        f"recipes: [{INT8}, {tmp_path}/r.yaml]\n",
    )
    assert errors_of(path) == [
        f"{path}:3:12 models[0].model: {tmp_path}/nope: not found",
        f"{path}:4:11 models[0].data: {tmp_path}/none.npz: not found",
        f"{path}:5:{13 + len(INT8)} recipes[1]: {tmp_path}/r.yaml: recipe file not found",
    ]


def test_a_bad_override_points_at_the_fleet_files_set_entry(tmp_path):
    path = fleet(tmp_path, f"models: [{{name: a, model: {LENET}}}]\nrecipes: [{INT8}]\nset:\n  - bench.runz=3\n")
    (line,) = errors_of(path)
    assert line.startswith(f"{path}:4:5 set[0] bench.runz=3: bench.runz: unknown field; did you mean 'runs'?")


def test_a_recipe_that_does_not_validate_is_bad_input(tmp_path):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("targets:\n  - type: cpu\n    mode: int9\n")
    path = fleet(tmp_path, f"models: [{{name: a, model: {LENET}}}]\nrecipes: [{recipe}]\n")
    (line,) = errors_of(path)
    assert line.startswith(f"{recipe}:3:11 targets[0].mode: must be one of")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: [{name: a, model: M}, {name: a, model: M}]\nrecipes: [R]\n",
         ":1:64 models[1].name: model name 'a' is used twice"),
        ("models: [{name: a, model: M, recipes: [nope]}]\nrecipes: [R]\n",
         ":1:66 models[0].recipes[0]: 'nope' is not one of the fleet's recipes"),
        ("models: [{name: a, model: M}]\nrecipes: [R, R]\n",
         ":2:34 recipes[1]: two recipes share the file name 'cpu-int8'"),
        ("models: [{name: ../up, model: M}]\nrecipes: [R]\n", ":1:17 models[0].name: "),
        ("models: []\nrecipes: [R]\n", ":1:9 models: must have at least 1 item(s)"),
        ("- a\n", ":1:1 the fleet file must be a mapping"),
    ],
    ids=["duplicate-name", "unknown-recipe-for-a-model", "same-recipe-stem", "name-with-a-slash", "no-models", "list"],
)  # fmt: skip
def test_schema_rules(tmp_path, text, expected):
    path = fleet(tmp_path, text.replace("M", LENET).replace("R", INT8))
    lines = errors_of(path)
    assert any(line.startswith(path + expected) for line in lines), lines


def test_the_cli_exits_2_for_a_bad_fleet_and_writes_nothing(tmp_path, workspace):
    path = fleet(tmp_path, f"models:\n  - {{name: lenet, model: {LENET}, dta: {DIGITS}}}\nrecipes: [{INT8}]\n")
    out = tmp_path / "out"
    result = cli("batch", path, "--out", out, "--json", cwd=workspace)
    assert result.returncode == 2, result.stderr
    assert f"{path}:2:55 models[0].dta: unknown field; did you mean 'data'?" in result.stderr
    assert not out.exists()
