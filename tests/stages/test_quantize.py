import numpy as np

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


def test_exclude_leaves_layers_unquantized(tiny_cnn, stage_ctx):
    result = Quantize(Quantize.Params(type="quantize", epochs=1, exclude=["fc2"])).apply(tiny_cnn, stage_ctx)
    layers = {layer.name: type(layer).__name__ for layer in result.model.layers}
    assert layers["fc2"] == "Dense"
    assert layers["quant_fc1"] == "QuantizeWrapperV2"


def residual_bn_model():
    from compressctl.tfenv import keras, seed_everything

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
    from compressctl.stages.quantize import Quantize
    from compressctl.tfenv import keras

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
    from compressctl.data import load_npz
    from compressctl.evaluate import TaskInfo
    from compressctl.stages.base import StageContext
    from compressctl.stages.quantize import Quantize
    from compressctl.tfenv import keras

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
