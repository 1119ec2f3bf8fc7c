"""Layer selectors: parsing, binding to a model's layers, roles on real graphs, and their recipe errors."""

import pytest

from compressctl.model import selectors
from compressctl.model.selectors import LayerInfo
from tests.conftest import write_recipe


def _table():
    return [
        LayerInfo("rescale", "Rescaling"),
        LayerInfo("stem", "Conv2D", 200, True, {"first"}, {"Activation"}),
        LayerInfo("act", "Activation"),
        LayerInfo("body", "Conv2D", 9000, True, {"hidden", "largest"}, {"Multiply"}),
        LayerInfo("gate", "Dense", 40, True, {"hidden"}, {"Multiply"}),
        LayerInfo("mul", "Multiply"),
        LayerInfo("head", "Dense", 300, True, {"output"}, {"Softmax"}),
        LayerInfo("softmax", "Softmax"),
    ]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("b.*", ["body"]),
        ("type:Dense", ["gate", "head"]),
        ("type:Conv2D|Dense", ["stem", "body", "gate", "head"]),
        ("role:output", ["head"]),
        ("role:first", ["stem"]),
        ("role:largest", ["body"]),
        ("role:hidden", ["body", "gate"]),
        ("feeds:Multiply", ["body", "gate"]),
        ("name:s.*", ["stem", "softmax"]),
    ],
)
def test_selectors_resolve_by_name_type_role_and_consumer(text, names):
    assert selectors.resolve(text, _table()) == names


@pytest.mark.unit
@pytest.mark.parametrize(
    ("item", "text"),
    [("fc.*", "fc.*"), ({"type": "Dense"}, "type:Dense"), ({"role": "output"}, "role:output"), ({"name": "x"}, "x")],
)
def test_mapping_form_normalizes_to_the_string_form(item, text):
    assert selectors.normalize(item) == text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("role:outptu", "unknown role 'outptu'"),
        ({"kind": "Dense"}, "unknown selector key 'kind'"),
        ({"type": "Dense", "role": "output"}, "a layer selector is"),
        ("type:(", "invalid regular expression"),
        ("type:", "selects nothing"),
    ],
)
def test_bad_selectors_are_refused_with_one_line(item, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        selectors.normalize(item)


@pytest.mark.unit
def test_binding_turns_selectors_into_exact_names_and_keeps_the_first_match():
    from compressctl.stages.prune import Prune

    params = Prune.Params(
        type="prune",
        layers={"role:output": 0.8, "type:Dense": 0.95, "b.*": 0.9},
        exclude=[{"role": "first"}],
    )
    bound, origin = selectors.bind(params, _table())
    assert bound.exclude == ["stem"]
    assert bound.layers == {"head": 0.8, "gate|head": 0.95, "b.*": 0.9}
    assert origin["head"] == "role:output"
    stage = Prune(bound)
    assert stage.target_for("head") == 0.8  # output wins over type:Dense: first match in recipe order
    assert stage.target_for("gate") == 0.95
    assert stage.target_for("stem") is None  # excluded by role


@pytest.mark.unit
def test_binding_a_selector_that_matches_nothing_names_its_field():
    from compressctl.stages.prune import Prune

    params = Prune.Params(type="prune", layers={"type:LSTM": 0.5})
    with pytest.raises(selectors.Unmatched, match=r"'type:LSTM' matches no layer .*layer types: .*Conv2D") as err:
        selectors.bind(params, _table())
    assert err.value.loc == ("layers", "type:LSTM")


def _se_model():
    """Rescaling → conv → hard-swish-like Multiply → squeeze-excite gate → Dense → Softmax layer."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    x = inputs = k.Input((8, 8, 1))
    x = k.layers.Rescaling(1 / 255, name="rescale")(x)
    x = k.layers.Conv2D(8, 3, name="stem")(x)
    x = k.layers.Multiply(name="hswish")([x, k.layers.Activation("hard_sigmoid", name="hsig")(x)])
    s = k.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    s = k.layers.Conv2D(8, 1, activation="sigmoid", name="excite")(s)
    x = k.layers.Multiply(name="scale")([x, s])
    x = k.layers.Flatten(name="flat")(x)
    x = k.layers.Dense(32, name="wide")(x)
    x = k.layers.Dense(3, name="logits")(x)
    outputs = k.layers.Softmax(name="probs")(x)
    return k.Model(inputs, outputs)


def test_roles_on_a_functional_model_look_through_layers_without_kernels():
    table = {row.name: row for row in selectors.layer_table(_se_model())}
    assert table["stem"].roles == {"first"}  # after the Rescaling preprocessing layer
    assert table["logits"].roles == {"output"}  # a Softmax layer follows it
    assert table["wide"].roles == {"hidden", "largest"}
    assert table["excite"].roles == {"hidden"}
    assert "Multiply" in table["excite"].feeds and "Multiply" in table["stem"].feeds
    assert not table["rescale"].kernel and table["rescale"].roles == set()


def test_a_recipe_selecting_by_role_and_type_prunes_those_layers(tmp_path, tiny_cnn_path, tiny_data):
    from compressctl import api

    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - type: prune
    target_sparsity: 0.5
    layers: {{"role:output": 0.2, "type:Dense": 0.9}}
    exclude: [{{role: first}}]
    epochs: 1
targets: [{{type: cpu, mode: float32}}]
bench: {{runs: 5, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0
    rows = {row["layer"]: row for row in result.report["stages"][0]["layers"]}
    assert rows["fc1"]["sparsity"] == pytest.approx(0.9, abs=0.02)
    assert rows["fc2"]["sparsity"] == pytest.approx(0.2, abs=0.05)
    assert rows["conv"]["target"] is None and rows["conv"]["sparsity"] < 0.05  # the first layer: excluded


def test_a_selector_that_matches_no_layer_is_refused_with_its_line(tmp_path, tiny_cnn_path, tiny_data):
    from tests.conftest import cli

    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - type: prune
    layers:
      "type:LSTM": 0.5
    epochs: 1
targets: [{{type: cpu, mode: float32}}]
""",
    )
    out = tmp_path / "run"
    proc = cli("run", str(recipe), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "recipe.yaml:7:7 stages[0].layers['type:LSTM']" in proc.stderr
    assert "'type:LSTM' matches no layer" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_inspect_shows_each_layers_roles(tiny_cnn_path):
    from compressctl import api

    roles = {row["name"]: row["roles"] for row in api.inspect(str(tiny_cnn_path))["layers"]}
    assert roles == {"conv": ["first"], "flatten": [], "fc1": ["hidden", "largest"], "fc2": ["output"]}
