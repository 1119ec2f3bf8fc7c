"""Issue 18: hard-swish, hard-sigmoid, swish/SiLU, GELU and squeeze-excite gates become int8 ops.

TFMOT's default registry annotates neither ``Multiply`` nor the ``TFOpLambda`` layers that Keras's
own MobileNetV3 code is made of (``x + 3.0``, ``* (1/6)``), and refuses ``Activation("hard_sigmoid")``;
compressctl.stages.qat_configs gives them output ranges. Every tensor of every op of the full-int8
artifact must then be 8-bit (int32 only for constants: biases, shapes).
"""

import numpy as np
import pytest

from compressctl.stages.quantize import Quantize
from tests.helpers.models import convert_for_edgetpu


def block(kind: str):
    """Conv → BatchNorm → the activation under test → pooling → softmax head, on 8×8×3 inputs."""
    from compressctl.core.env import keras, seed_everything, tf

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.BatchNormalization(name="bn")(k.layers.Conv2D(8, 3, padding="same", name="conv")(inputs))
    if kind == "hard_swish":  # as keras.applications.MobileNetV3 writes it
        h = k.layers.Multiply(name="hs_mul")([h, k.layers.ReLU(6.0, name="hs_relu6")(h + 3.0) * (1.0 / 6.0)])
    elif kind in ("hard_sigmoid", "swish", "gelu"):
        h = k.layers.Activation(kind, name="act")(h)
    elif kind == "silu_op":
        h = tf().nn.silu(h)
    elif kind == "se_swish":  # EfficientNet: swish, then a sigmoid squeeze-excite gate
        h = k.layers.Activation("swish", name="act")(h)
        s = k.layers.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(h)
        s = k.layers.Conv2D(2, 1, activation="swish", name="se_reduce")(s)
        h = k.layers.Multiply(name="se_excite")([h, k.layers.Conv2D(8, 1, activation="sigmoid", name="se_expand")(s)])
    elif kind == "se_hard":  # MobileNetV3: a hard-sigmoid squeeze-excite gate
        s = k.layers.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(h)
        s = k.layers.Conv2D(8, 1, name="se_expand")(k.layers.Conv2D(2, 1, activation="relu", name="se_reduce")(s))
        h = k.layers.Multiply(name="se_excite")([h, k.layers.ReLU(6.0, name="se_relu6")(s + 3.0) * (1.0 / 6.0)])
    elif kind == "se_dense":  # a gate through Dense(activation="hard_sigmoid"), which TFMOT cannot wrap itself
        s = k.layers.Dense(8, activation="hard_sigmoid", name="se_dense")(k.layers.GlobalAveragePooling2D()(h))
        h = k.layers.Multiply(name="se_excite")([h, k.layers.Reshape((1, 1, 8), name="se_reshape")(s)])
    elif kind == "avgpool":  # DenseNet's transition: a 1×1 convolution, then 2×2 average pooling
        h = k.layers.Activation("relu", name="act")(h)
        h = k.layers.AveragePooling2D(2, name="pool")(k.layers.Conv2D(8, 1, name="transition")(h))
        grown = k.layers.Conv2D(4, 3, padding="same", activation="relu", name="grow")(h)
        h = k.layers.Concatenate(name="dense_concat")([h, grown])  # a dense block reads the pool's output
    h = k.layers.GlobalAveragePooling2D(name="gap")(h)
    return k.Model(inputs, k.layers.Dense(3, activation="softmax", name="head")(h))


def quadrant_ctx():
    from compressctl.datasets.arrays import Dataset
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.stages.base import StageContext
    from tests.conftest import quadrant_data

    data = quadrant_data(n_train=96, n_test=32, shape=(8, 8, 3))
    return StageContext(data=Dataset(path=None, **data), task=TaskInfo(binary=False, from_logits=False), batch_size=32)


def not_8bit(path):
    """(op, tensor, dtype) for every op tensor that is neither 8-bit nor an int32 constant."""
    from compressctl.litert.interpreter import load_interpreter
    from compressctl.targets.edgetpu_ops import graph_from_interpreter

    graph = graph_from_interpreter(load_interpreter(path, xnnpack=False))
    tensors = graph["tensors"]
    return [
        (op["op"], tensors[i]["name"], tensors[i]["dtype"])
        for op in graph["ops"]
        for i in op["inputs"] + op["outputs"]
        if tensors[i]["dtype"] not in ("int8", "uint8")
        and not (tensors[i]["dtype"] == "int32" and tensors[i]["constant"])
    ]


KINDS = ["hard_swish", "hard_sigmoid", "swish", "silu_op", "gelu", "se_swish", "se_hard", "se_dense", "avgpool"]


@pytest.mark.parametrize("kind", KINDS)
def test_qat_annotates_the_activation_and_every_tensor_converts_to_int8(kind, tmp_path):
    ctx = quadrant_ctx()
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(block(kind), ctx)
    assert result.skipped_layers == []
    wrapped = {type(layer.layer).__name__ for layer in result.model.layers if hasattr(layer, "quantize_config")}
    if kind in ("hard_swish", "se_hard", "se_swish", "se_dense"):
        assert "Multiply" in wrapped
    if kind in ("hard_swish", "se_hard"):
        assert "ElementwiseOp" in wrapped  # the TFOpLambda `+ 3.0` and `* (1/6)`
    path = convert_for_edgetpu(result.model, (8, 8, 3), ctx.data.x_train[:32], tmp_path, io_dtype="int8")
    assert not_8bit(path) == []


def test_qat_model_with_the_new_configs_saves_and_loads_under_quantize_scope(tmp_path):
    """The run cache stores QAT models as SavedModels and loads them under quantize_scope."""
    from compressctl.core.env import keras, tfmot

    ctx = quadrant_ctx()
    model = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(block("se_hard"), ctx).model
    model.save(str(tmp_path / "qat"), save_format="tf")
    with tfmot().quantization.keras.quantize_scope():
        loaded = keras().models.load_model(str(tmp_path / "qat"), compile=False)
    x = ctx.data.x_test[:4]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_post_training_int8_of_every_activation_is_integer_only(tmp_path):
    ctx = quadrant_ctx()
    for kind in KINDS:
        path = convert_for_edgetpu(block(kind), (8, 8, 3), ctx.data.x_train[:32], tmp_path / kind, io_dtype="int8")
        assert not_8bit(path) == [], kind


def test_supports_accepts_element_wise_ops_with_constants_only():
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((4,))
    other = k.Input((4,))
    scaled = inputs * (1.0 / 6.0)
    summed = inputs + other  # two tensors: no stand-in layer carries that call
    model = k.Model([inputs, other], [scaled, summed])
    lambdas = [layer for layer in model.layers if type(layer).__name__ == "TFOpLambda"]
    by_output = {layer.output.ref(): layer for layer in lambdas}
    assert Quantize.supports(by_output[scaled.ref()]) is True
    assert Quantize.supports(by_output[summed.ref()]) is not True
    assert Quantize.supports(k.layers.Multiply()) is True
    assert Quantize.supports(k.layers.Activation("hard_sigmoid")) is True


def test_edge_tpu_names_the_layer_of_an_op_it_lacks_and_the_remedy(tmp_path, monkeypatch):
    """Post-training conversion fuses hard-swish into HARD_SWISH, which the Edge TPU lacks."""
    from compressctl.targets.edgetpu import EdgeTpuTarget

    ctx = quadrant_ctx()
    path = convert_for_edgetpu(block("hard_swish"), (8, 8, 3), ctx.data.x_train[:32], tmp_path, io_dtype="int8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    events = []
    target = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu", io_dtype="int8", compiler="never"))
    first = target.finish(path, path.parent, events.append)["edgetpu"]["mapping"]["first_cpu_op"]
    assert first["op"] == "HARD_SWISH" and first["layer"] == "hs_mul"
    assert "(layer 'hs_mul')" in first["reason"] and "quantize stage" in first["reason"]
    (warning,) = [event for event in events if event.kind == "warn"]
    assert "HARD_SWISH" in warning.message and "run on the CPU" in warning.message


def test_float_ops_are_named_with_their_layers():
    from compressctl.targets.edgetpu import describe, float_ops, layer_of

    assert layer_of("MobilenetV3small/multiply_12/mul") == "multiply_12"
    assert layer_of("model/quant_conv/Conv2D;model/quant_conv/BiasAdd") == "conv"
    graph = {
        "ops": [
            {"index": 0, "op": "CONV_2D", "inputs": [0], "outputs": [1]},
            {"index": 1, "op": "MUL", "inputs": [1], "outputs": [2]},
        ],
        "tensors": {
            0: {"name": "input", "dtype": "int8"},
            1: {"name": "model/quant_conv/Conv2D", "dtype": "int8"},
            2: {"name": "model/multiply/mul", "dtype": "float32"},
        },
    }
    rows = float_ops(graph)
    assert rows == [{"index": 1, "op": "MUL", "layer": "multiply"}]
    assert describe(rows) == "MUL (op 1, layer 'multiply')"


def mobilenet_v3_small():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    return keras().applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)


@pytest.mark.slow
def test_mobilenet_v3_small_post_training_is_int8_and_the_edge_tpu_names_hard_swish(tmp_path, monkeypatch):
    from compressctl.targets.edgetpu import EdgeTpuTarget

    x = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32) * 255
    model = mobilenet_v3_small()
    path = convert_for_edgetpu(model, (32, 32, 3), x, tmp_path, io_dtype="int8")
    assert not_8bit(path) == []
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    target = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu", io_dtype="int8", compiler="never"))
    first = target.finish(path, path.parent, lambda event: None)["edgetpu"]["mapping"]["first_cpu_op"]
    assert first["op"] == "HARD_SWISH"
    assert type(model.get_layer(first["layer"])).__name__ == "Multiply"  # the hard-swish's own layer


@pytest.mark.slow
def test_mobilenet_v3_small_after_qat_is_int8_and_predicted_wholly_on_the_edge_tpu(tmp_path):
    """The run recipes/edgetpu.yaml makes; it used to exit 3 with 9 float tensors (multiply_12/mul)."""
    from compressctl.datasets.arrays import Dataset
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.litert.interpreter import load_interpreter
    from compressctl.stages.base import StageContext
    from compressctl.targets.edgetpu import predict_mapping
    from compressctl.targets.edgetpu_ops import graph_from_interpreter

    rng = np.random.default_rng(0)
    x, y = rng.random((32, 32, 32, 3), dtype=np.float32) * 255, rng.integers(0, 10, 32)
    # One batch: its eager step is faster than tracing the annotated model's training step.
    ctx = StageContext(data=Dataset(None, x, y, x[:8], y[:8]), task=TaskInfo(binary=False, from_logits=False),
                       batch_size=32, run_eagerly=True)  # fmt: skip
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(mobilenet_v3_small(), ctx)
    assert result.skipped_layers == []
    path = convert_for_edgetpu(result.model, (32, 32, 3), x[:16], tmp_path)  # uint8 I/O, as the recipe
    assert not_8bit(path) == []
    mapping = predict_mapping(graph_from_interpreter(load_interpreter(path, xnnpack=False)))
    assert mapping["first_cpu_op"] is None and mapping["ops_on_tpu"] == mapping["ops_total"]


def test_qat_after_pruning_still_annotates_the_element_wise_ops(tmp_path):
    """Pruning shares the layers it leaves unwrapped with its clone, so `x + 3.0` is called once per model."""
    from compressctl.stages.prune import Prune

    ctx = quadrant_ctx()
    pruned = Prune(Prune.Params(type="prune", target_sparsity=0.5, epochs=1)).apply(block("hard_swish"), ctx).model
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(pruned, ctx)
    assert result.skipped_layers == []
    wrapped = {type(layer.layer).__name__ for layer in result.model.layers if hasattr(layer, "quantize_config")}
    assert "ElementwiseOp" in wrapped
    path = convert_for_edgetpu(result.model, (8, 8, 3), ctx.data.x_train[:32], tmp_path, io_dtype="int8")
    assert not_8bit(path) == []
