import json

import numpy as np
import pytest
from pydantic import ValidationError

from compressctl import api
from compressctl.core.errors import UserError
from compressctl.stages.lowrank import LowRank
from tests.conftest import write_recipe
from tests.helpers.models import residual_model


def params(**kw):
    kw.setdefault("epochs", 0)
    return LowRank.Params(type="lowrank", **kw)


def plant_rank(layer, rank, seed=0):
    """Replace the layer's kernel by one of exactly ``rank``, so a factorization can be exact."""
    weights = layer.get_weights()
    shape = weights[0].shape
    rng = np.random.default_rng(seed)
    m, n = shape[-2], shape[-1]
    kernel = rng.normal(0, 0.3, (m, rank)) @ rng.normal(0, 0.3, (rank, n))
    weights[0] = kernel.reshape(shape).astype(np.float32)
    layer.set_weights(weights)


def test_exactly_one_rank_rule_is_required():
    with pytest.raises(ValidationError, match="exactly one of energy, rank or rank_ratio"):
        LowRank.Params(type="lowrank")
    with pytest.raises(ValidationError, match=r"\(got energy, rank_ratio\)"):
        LowRank.Params(type="lowrank", energy=0.9, rank_ratio=0.5)
    assert LowRank.Params(type="lowrank", rank=3, epochs=0).epochs == 0


def test_rank_for_each_rule():
    singular = np.array([3.0, 2.0, 1.0, 1.0, 0.5])  # squares 9, 4, 1, 1, 0.25: total 15.25
    assert LowRank(params(energy=0.5)).rank_for(singular) == 1  # 9 / 15.25 = 0.59
    assert LowRank(params(energy=0.85)).rank_for(singular) == 2  # 13 / 15.25 = 0.852
    assert LowRank(params(energy=0.86)).rank_for(singular) == 3
    assert LowRank(params(energy=1.0)).rank_for(singular) == 5
    assert LowRank(params(rank=3)).rank_for(singular) == 3
    assert LowRank(params(rank=50)).rank_for(singular) == 5
    assert LowRank(params(rank_ratio=0.4)).rank_for(singular) == 2
    assert LowRank(params(rank_ratio=0.01)).rank_for(singular) == 1


def test_sequential_dense_factorization_shrinks_and_keeps_names(tiny_cnn, stage_ctx):
    before = tiny_cnn.count_params()
    accuracy_before = stage_ctx.evaluate(tiny_cnn)
    result = LowRank(params(rank=8, epochs=2, learning_rate=1e-3)).apply(tiny_cnn, stage_ctx)
    model = result.model
    names = [layer.name for layer in model.layers]
    assert names == ["conv", "flatten", "fc1_lowrank", "fc1", "fc2"]
    # fc1 is 288×32: rank 8 costs 8·(288+32) = 2,560 weights instead of 9,216.
    assert model.get_layer("fc1_lowrank").get_weights()[0].shape == (288, 8)
    assert model.get_layer("fc1").get_weights()[0].shape == (8, 32)
    assert model.get_layer("fc1").get_config()["activation"] == "relu"
    assert model.count_params() == before - 9216 + 2560
    assert result.measured == {"params_before": before, "params_after": before - 6656, "factorized_layers": 1}
    (row,) = result.layers
    assert row["layer"] == "fc1" and row["rank"] == 8 and row["full_rank"] == 32
    assert (row["params_before"], row["params_after"]) == (9216 + 32, 2560 + 32)
    assert 0 < row["energy_kept"] < 1
    reasons = {r["layer"]: r["reason"] for r in result.skipped_layers}
    assert "3×3 kernel" in reasons["conv"]
    assert "saves nothing" in reasons["fc2"]  # 32×3: rank 3 would cost 105 > 96
    assert stage_ctx.evaluate(model) >= accuracy_before - 0.05


def test_exact_rank_factorization_reproduces_outputs_in_a_functional_model(stage_ctx):
    model = residual_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(stage_ctx.data.x_train, stage_ctx.data.y_train, epochs=1, batch_size=32, verbose=0)
    plant_rank(model.get_layer("proj"), 3)
    plant_rank(model.get_layer("fc"), 4, seed=1)
    x = stage_ctx.data.x_test[:32]
    expected = model.predict(x, verbose=0)
    result = LowRank(params(energy=0.999999)).apply(model, stage_ctx)
    factored = result.model
    ranks = {row["layer"]: row["rank"] for row in result.layers}
    assert ranks == {"proj": 3, "fc": 4}
    assert factored.count_params() < model.count_params()
    assert factored.get_layer("proj_lowrank").get_weights()[0].shape == (1, 1, 16, 3)
    assert factored.get_layer("proj").get_weights()[0].shape == (1, 1, 3, 16)
    # Every downstream layer still reads from the layer with the original name.
    assert factored.get_layer("bn_b").input.name.startswith("proj/")
    assert factored.get_layer("proj").input.name.startswith("proj_lowrank/")
    np.testing.assert_allclose(factored.predict(x, verbose=0), expected, atol=1e-5)


def test_high_energy_factorization_of_a_trained_model_stays_close(tiny_cnn, stage_ctx):
    x = stage_ctx.data.x_test
    expected = tiny_cnn.predict(x, verbose=0)
    # 0.99 would need rank 29 of 32, which saves nothing on a 288×32 kernel.
    result = LowRank(params(energy=0.9, include=["fc1"])).apply(tiny_cnn, stage_ctx)
    (row,) = result.layers
    assert row["energy_kept"] >= 0.9 and row["rank"] < 29
    outputs = result.model.predict(x, verbose=0)
    assert np.allclose(outputs, expected, atol=1e-3)
    assert np.all(outputs.argmax(1) == expected.argmax(1))


def test_strided_1x1_convolution(stage_ctx):
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((8, 8, 4))
    h = k.layers.Conv2D(24, 1, strides=2, activation="relu", name="squeeze")(inputs)
    outputs = k.layers.Conv2D(2, 3, name="tail")(h)
    model = k.Model(inputs, outputs)
    plant_rank(model.get_layer("squeeze"), 2)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 4)).astype(np.float32)
    result = LowRank(params(rank=2)).apply(model, stage_ctx)
    first, second = result.model.get_layer("squeeze_lowrank"), result.model.get_layer("squeeze")
    assert first.strides == (2, 2) and second.strides == (1, 1)
    assert second.get_config()["activation"] == "relu"
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_sequential_without_input_layer_keeps_its_input_shape(stage_ctx):
    from compressctl.core.env import keras

    k = keras()
    model = k.Sequential([k.layers.Dense(40, input_shape=(30,), name="d1"), k.layers.Dense(2, name="d2")])
    plant_rank(model.get_layer("d1"), 5)
    x = np.random.default_rng(1).normal(size=(6, 30)).astype(np.float32)
    result = LowRank(params(rank=5)).apply(model, stage_ctx)
    assert tuple(result.model.input_shape) == (None, 30)
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_include_exclude_and_min_params(stage_ctx):
    model = residual_model()
    only_fc = LowRank(params(rank=2, include=["fc", "head"], exclude=["head"])).apply(model, stage_ctx)
    assert [row["layer"] for row in only_fc.layers] == ["fc"]
    small = LowRank(params(rank=2, min_params=300)).apply(model, stage_ctx)
    reasons = {r["layer"]: r["reason"] for r in small.skipped_layers}
    assert "fewer than min_params" in reasons["proj"]  # 16×16 = 256 weights
    assert [row["layer"] for row in small.layers] == ["fc"]  # 16×32 = 512


def test_nothing_to_factorize_returns_the_model(tiny_cnn, stage_ctx):
    result = LowRank(params(energy=1.0)).apply(tiny_cnn, stage_ctx)
    assert result.model is tiny_cnn
    assert result.notes == ["no layer was factorized"]
    assert result.measured["params_after"] == result.measured["params_before"]


def test_subclassed_model_is_refused(stage_ctx):
    from compressctl.core.env import keras

    k = keras()

    class Net(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(3)

        def call(self, x):
            return self.dense(k.layers.Flatten()(x))

    model = Net()
    model(stage_ctx.data.x_test[:1])
    with pytest.raises(UserError, match="subclassed model"):
        LowRank(params(rank=1)).apply(model, stage_ctx)


@pytest.mark.slow
def test_lowrank_then_distill_run_end_to_end(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - type: lowrank
    rank: 6
    epochs: 1
    learning_rate: 0.001
  - type: distill
    student: {{width: 0.5}}
    epochs: 8
    learning_rate: 0.003
targets:
  - type: cpu
    calibration_samples: 50
bench: {{runs: 20, warmup: 2, rounds: 2}}
gates:
  max_metric_drop: 0.2
""",
    )
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == 0
    report = json.loads((out / "report.json").read_text())
    lowrank, distill = report["stages"]
    assert lowrank["params_after"] < lowrank["params_before"] == report["model"]["params"]
    assert distill["teacher_params"] == lowrank["params_after"]
    assert distill["student_params"] < distill["teacher_params"]
    assert distill["student_metric_value"] == pytest.approx(distill["metric_value"])
    (artifact,) = report["artifacts"]
    assert artifact["compression_ratio"] > 4  # int8 alone gives about 4
    assert (out / "report.md").read_text().count("fc1_lowrank") >= 1
