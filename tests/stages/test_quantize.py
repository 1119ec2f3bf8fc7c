import numpy as np
import pytest

from compressctl.stages.base import kernel_arrays
from compressctl.stages.prune import Prune
from compressctl.stages.quantize import Quantize


def test_qat_wraps_layers_and_trains(tiny_cnn, stage_ctx):
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(tiny_cnn, stage_ctx)
    names = [type(layer).__name__ for layer in result.model.layers]
    assert "QuantizeLayer" in names
    assert names.count("QuantizeWrapperV2") >= 3
    assert result.measured["quantized_layers"] >= 3
    assert stage_ctx.evaluate(result.model) > 0.7


def test_pqat_preserves_sparsity(tiny_cnn, stage_ctx):
    pruned = Prune(Prune.Params(type="prune", target_sparsity=0.8, epochs=2, learning_rate=1e-3)).apply(
        tiny_cnn, stage_ctx
    )
    zeros_before = kernel_arrays(pruned.model.get_layer("fc1"))[0] == 0
    result = Quantize(Quantize.Params(type="quantize", epochs=1, preserve=["sparsity"])).apply(pruned.model, stage_ctx)
    assert result.measured["sparsity"] >= 0.75
    wrapper = next(layer for layer in result.model.layers if layer.name.endswith("fc1"))
    (kernel,) = kernel_arrays(wrapper)
    assert np.all(kernel[zeros_before] == 0)


def test_pcqat_keeps_the_zeros_of_a_convolution_after_one_without_zeros(stage_ctx):
    # TFMOT's cluster-preserving registry shares one Conv2D weight quantizer, which stops preserving
    # sparsity for good at the first layer without zeros; each layer gets its own here.
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="dense_conv")(inputs)
    h = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="sparse_conv")(h)
    outputs = k.layers.Dense(3, activation="softmax", name="out")(k.layers.GlobalAveragePooling2D()(h))
    model = k.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for name, zeros in (("dense_conv", 0.0), ("sparse_conv", 0.8)):
        kernel, bias = model.get_layer(name).get_weights()
        values = rng.choice([-0.3, -0.1, 0.1, 0.3], size=kernel.shape).astype(np.float32)  # four clusters
        values[rng.random(kernel.shape) < zeros] = 0
        model.get_layer(name).set_weights([values, bias])
    before = float(np.mean(model.get_layer("sparse_conv").get_weights()[0] == 0))
    result = Quantize(Quantize.Params(type="quantize", epochs=1, preserve=["sparsity", "clusters"])).apply(
        model, stage_ctx
    )
    (kernel,) = kernel_arrays(result.model.get_layer("quant_sparse_conv"))
    assert before > 0.75 and float(np.mean(kernel == 0)) == pytest.approx(before)
    # Clusters are per output channel for convolutions: four values and the zeros in each.
    assert max(np.unique(kernel[..., c]).size for c in range(kernel.shape[-1])) <= 5


@pytest.mark.parametrize("preserve", [["sparsity"], ["sparsity", "clusters"]])
def test_qat_keeps_the_zeros_of_depthwise_kernels(stage_ctx, preserve):
    # TFMOT's sparsity-preserving schemes cover Conv2D and Dense; a depthwise kernel gets plain QAT,
    # whose training moves its zeros off zero unless the stage holds them.
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    h = k.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(h)
    outputs = k.layers.Dense(3, activation="softmax", name="out")(k.layers.GlobalAveragePooling2D()(h))
    model = k.Model(inputs, outputs)
    kernel, bias = model.get_layer("dw").get_weights()
    rng = np.random.default_rng(0)
    kernel[rng.random(kernel.shape) < 0.8] = 0
    model.get_layer("dw").set_weights([kernel, bias])
    zeros = kernel == 0
    result = Quantize(Quantize.Params(type="quantize", epochs=2, preserve=preserve)).apply(model, stage_ctx)
    (trained,) = kernel_arrays(result.model.get_layer("quant_dw"))
    assert np.all(trained[zeros] == 0)
    assert np.any(trained[~zeros] != kernel[~zeros])  # the other weights did train
    row = next(r for r in result.layers if r["layer"] == "quant_dw")
    assert row["sparsity"] == pytest.approx(float(np.mean(zeros)), abs=1e-6)


def test_exclude_leaves_layers_unquantized(tiny_cnn, stage_ctx):
    result = Quantize(Quantize.Params(type="quantize", epochs=1, exclude=["fc2"])).apply(tiny_cnn, stage_ctx)
    layers = {layer.name: type(layer).__name__ for layer in result.model.layers}
    assert layers["fc2"] == "Dense"
    assert layers["quant_fc1"] == "QuantizeWrapperV2"


def residual_bn_model():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    h = k.layers.BatchNormalization(name="bn_a")(h)
    h = k.layers.ReLU(name="relu_a")(h)
    r = k.layers.Conv2D(8, 3, padding="same", name="conv_b")(h)
    r = k.layers.BatchNormalization(name="bn_b")(r)
    h = k.layers.Add(name="add")([h, r])
    h = k.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = k.layers.Dense(3, activation="softmax", name="head")(h)
    return k.Model(inputs, outputs)


def test_qat_folds_batchnorm_in_residual_models(stage_ctx):
    model = residual_bn_model()
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(model, stage_ctx)
    assert result.skipped_layers == []
    names = [layer.name for layer in result.model.layers]
    assert "quant_conv_a" in names and "quant_head" in names
    outputs = result.model.predict(stage_ctx.data.x_test[:4], verbose=0)
    assert outputs.shape == (4, 3) and np.all(np.isfinite(outputs))


def test_supports_names_why_a_layer_gets_no_qat():
    from compressctl.core.env import keras
    from compressctl.stages.quantize import Quantize

    k = keras()

    class Custom(k.layers.Layer):
        def call(self, x):
            return x * 2

    assert Quantize.supports(k.layers.Dense(3)) is True
    assert Quantize.supports(k.layers.BatchNormalization()) is True  # folded into the convolution
    assert "preprocessing" in Quantize.supports(k.layers.Normalization())
    assert "recurrent" in Quantize.supports(k.layers.GRU(4))
    assert "custom layer" in Quantize.supports(Custom())


def test_pcqat_leaves_normalization_unannotated_and_keeps_its_adapted_state(tabular_norm):
    from compressctl.core.env import keras
    from compressctl.datasets.arrays import load_npz
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.stages.base import StageContext
    from compressctl.stages.quantize import Quantize

    model_path, data_path = tabular_norm
    model = keras().models.load_model(str(model_path), compile=False)
    ctx = StageContext(data=load_npz(data_path), task=TaskInfo(binary=True, from_logits=False), batch_size=32)
    before = ctx.evaluate(model)
    # The cluster-preserving registry used to ask TFMOT for Normalization's config and fail.
    stage = Quantize(Quantize.Params(type="quantize", epochs=1, preserve=["sparsity", "clusters"]))
    result = stage.apply(model, ctx)
    assert [s["layer"] for s in result.skipped_layers] == ["norm"]
    assert "preprocessing" in result.skipped_layers[0]["reason"]
    assert result.measured["quantized_layers"] == 2
    # quantize_apply copies the weights; the adapted mean and variance must apply again.
    assert ctx.evaluate(result.model) >= before - 0.03


def test_inspect_gives_the_stage_s_own_answer(tabular_norm):
    from compressctl import api

    rows = {row["name"]: row for row in api.inspect(str(tabular_norm[0]))["layers"]}
    assert rows["fc1"]["quantize"] is True
    assert "preprocessing" in rows["norm"]["quantize"]


def test_qat_trains_around_custom_layers_its_clones_cannot_rebuild(stage_ctx):
    """TFMOT rebuilds every layer from its config; a custom layer whose config does not rebuild it
    used to fail QAT with "Unable to clone model". It is left unannotated, and kept as it was."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()

    class Gain(k.layers.Layer):  # weights, and a constructor argument its config lacks
        def __init__(self, start, **kwargs):
            super().__init__(**kwargs)
            self.start = start

        def build(self, shape):
            self.gain = self.add_weight("gain", shape=(shape[-1],), initializer=k.initializers.Constant(self.start))

        def call(self, x):
            return x * self.gain

    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    h = Gain(1.0, name="gain")(h)
    h = k.layers.Flatten(name="flatten")(h)
    outputs = k.layers.Dense(3, activation="softmax", name="fc")(h)
    model = k.Model(inputs, outputs)
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(model, stage_ctx)
    assert [row["layer"] for row in result.skipped_layers] == ["gain"]
    assert "custom layer" in result.skipped_layers[0]["reason"]
    layers = {layer.name: layer for layer in result.model.layers}
    assert layers["gain"] is model.get_layer("gain")  # the original instance, not a stand-in
    assert type(layers["quant_conv"]).__name__ == "QuantizeWrapperV2"
    assert type(layers["quant_fc"]).__name__ == "QuantizeWrapperV2"
    assert np.all(np.isfinite(result.model.predict(stage_ctx.data.x_test[:4], verbose=0)))
    # Excluded by name, it is kept out of the rebuilds all the same.
    excluded = Quantize(Quantize.Params(type="quantize", epochs=1, exclude=["gain"])).apply(model, stage_ctx)
    assert excluded.model.get_layer("gain") is model.get_layer("gain")


CUSTOM_LAYERS = """
import tf_keras as k


@k.utils.register_keras_serializable(package="issue18")
class Scale(k.layers.Layer):
    def build(self, shape):
        self.gain = self.add_weight("gain", shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.gain


@k.utils.register_keras_serializable(package="issue18")
class Double(k.layers.Layer):
    def call(self, x):
        return 2 * x
"""

QAT_EDGETPU = """
stages:
  - type: quantize
    epochs: 1
targets:
  - type: edgetpu
    io_dtype: int8
    calibration_samples: 50
    compiler: never
bench: {runs: 5, warmup: 1}
"""


@pytest.mark.slow
def test_qat_then_edgetpu_on_a_savedmodel_with_registered_custom_layers(tmp_path, tiny_data, monkeypatch):
    """Loaded without its code (no --custom-objects), each custom layer is revived from the SavedModel;
    its rebuilt copy has no weights, and QAT used to exit 3 ("Unable to clone model")."""
    import importlib
    import json
    import subprocess
    import sys

    from compressctl.core.env import keras, seed_everything
    from tests.conftest import REPO, quadrant_data, train, write_recipe

    (tmp_path / "issue18_layers.py").write_text(CUSTOM_LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    layers = importlib.import_module("issue18_layers")
    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    h = layers.Double(name="double")(layers.Scale(name="scale")(h))
    h = k.layers.Dense(16, activation="relu", name="fc1")(k.layers.Flatten(name="flatten")(h))
    model = train(k.Model(inputs, k.layers.Dense(3, activation="softmax", name="fc2")(h)), quadrant_data(), epochs=2)
    model.save(str(tmp_path / "custom"), save_format="tf")
    recipe = write_recipe(tmp_path, QAT_EDGETPU)
    done = subprocess.run(
        [sys.executable, "-m", "compressctl", "run", str(recipe), "--model", str(tmp_path / "custom"),
         "--data", str(tiny_data), "--out", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    (stage,) = report["stages"]
    assert [row["layer"] for row in stage["skipped_layers"]] == ["scale"]
    assert stage["quantized_layers"] >= 3
    (artifact,) = report["artifacts"]
    assert artifact["edgetpu"]["checks"]["fully_integer"] is True
