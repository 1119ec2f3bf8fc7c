"""What the TensorFlow, tf_keras, TFMOT and LiteRT adapters return, on tiny models (needs TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from compressctl.core.internals import keras as keras_internals
from compressctl.core.internals import litert as litert_internals
from compressctl.core.internals import tensorflow as tf_internals
from compressctl.core.internals import tfmot as tfmot_internals


@pytest.fixture(scope="module")
def functional():
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((4,))
    hidden = k.layers.Dense(3, activation="relu", name="hidden")(inputs)
    return k.Model(inputs, k.layers.Dense(2, name="out")(hidden))


@pytest.fixture(scope="module")
def tflite_file(functional, tmp_path_factory):
    from compressctl.core.env import tf

    path = tmp_path_factory.mktemp("internals") / "model.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(functional).convert())
    return path


def test_keras_graph_internals(functional):
    from compressctl.core.env import keras

    k = keras()
    assert keras_internals.history_layer(functional.outputs[0]).name == "out"
    assert keras_internals.is_graph_network(functional)
    assert not keras_internals.is_graph_network(type("Subclassed", (k.Model,), {"call": lambda self, x: x})())
    assert keras_internals.nodes_by_depth(functional)
    assert len(keras_internals.inbound_nodes(functional.get_layer("hidden"))) == 1
    assert keras_internals.is_symbolic(functional.outputs[0]) and not keras_internals.is_symbolic(3.0)


def test_keras_op_symbol():
    add = keras_internals.op_symbol("math.add")
    assert add.__name__ == "add" and float(add(1.0, 2.0)) == 3.0


def test_tfmot_registries_and_configs(functional):
    dense = functional.get_layer("hidden")
    assert tfmot_internals.can_prune(dense) and tfmot_internals.can_cluster(dense)
    assert tfmot_internals.default_8bit_registry().supports(dense)
    assert tfmot_internals.no_op_quantize_config().get_weights_and_quantizers(dense) == []


def test_interpreter_ops_from_litert_and_tensorflow(tflite_file):
    from compressctl.core.env import tf
    from compressctl.litert.interpreter import load_interpreter

    litert_ops = litert_internals.ops_details(load_interpreter(tflite_file, xnnpack=False))
    lite = tf().lite
    without_delegates = lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = lite.Interpreter(model_path=str(tflite_file), experimental_op_resolver_type=without_delegates)
    interpreter.allocate_tensors()
    tf_ops = tf_internals.interpreter_ops(interpreter)
    assert [op["op_name"] for op in litert_ops] == [op["op_name"] for op in tf_ops]
    assert {"index", "op_name", "inputs", "outputs"} <= set(litert_ops[0])
    assert [op["op_name"] for op in litert_ops].count("FULLY_CONNECTED") == 2


def test_calibrate_only_then_mlir_quantize_gives_an_int8_model(functional):
    from compressctl.core.env import tf

    tensorflow = tf()
    converter = tensorflow.lite.TFLiteConverter.from_keras_model(functional)
    converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
    samples = np.random.default_rng(0).random((8, 1, 4)).astype("float32")
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.experimental_new_quantizer = True
    tf_internals.calibrate_only(converter)
    tf_internals.per_tensor_dense(converter)
    calibrated = converter.convert()
    quantized = tf_internals.mlir_quantize(calibrated, fully_quantize=False, denylisted_nodes=None)
    interpreter = tensorflow.lite.Interpreter(model_content=quantized)
    interpreter.allocate_tensors()
    assert any(d["dtype"] == np.int8 for d in interpreter.get_tensor_details())
    assert not any(d["dtype"] == np.int8 for d in _details(calibrated, tensorflow))


def _details(flatbuffer: bytes, tensorflow) -> list[dict]:
    interpreter = tensorflow.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    return interpreter.get_tensor_details()
