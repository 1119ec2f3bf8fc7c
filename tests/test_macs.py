"""MACs from a Keras model's shapes and from a .tflite file's tensors (model/macs.py, litert/macs.py)."""

import numpy as np
import pytest

from compressctl.litert.macs import op_macs, tflite_macs
from compressctl.model.macs import keras_macs
from tests.conftest import CHANNEL_MODELS, channel_cnn


def to_tflite(model, path):
    from compressctl.core.env import tf

    tensorflow = tf()
    spec = tensorflow.TensorSpec([1, *model.input_shape[1:]], tensorflow.float32)
    fn = tensorflow.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    path.write_bytes(tensorflow.lite.TFLiteConverter.from_concrete_functions([fn], model).convert())
    return path


def test_keras_counts_by_hand():
    counts = keras_macs(channel_cnn())["layers"]
    # conv1: 6×6 outputs × 8 filters × 3×3×1; conv2: 4×4 × 8 × 3×3×8; fc1: 32 × 16; fc2: 16 × 3
    assert counts == {"conv1": 6 * 6 * 8 * 9, "conv2": 4 * 4 * 8 * 72, "fc1": 32 * 16, "fc2": 16 * 3}


def test_depthwise_counts_one_window_per_output():
    counts = keras_macs(CHANNEL_MODELS["mobilenet"]())["layers"]
    assert counts["depthwise"] == 8 * 8 * 48 * 9
    assert counts["expand"] == 8 * 8 * 48 * 16 and counts["project"] == 8 * 8 * 16 * 48


@pytest.mark.parametrize("kind", sorted(CHANNEL_MODELS))
def test_tflite_count_matches_the_keras_count(kind, tmp_path):
    model = CHANNEL_MODELS[kind]()
    counted = tflite_macs(to_tflite(model, tmp_path / "m.tflite"))
    assert counted["total"] == keras_macs(model)["total"] > 0
    assert {row["op"] for row in counted["ops"]} <= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def test_op_shapes():
    assert op_macs("CONV_2D", [(1, 8, 8, 3), (16, 3, 3, 3)], [(1, 8, 8, 16)]) == 8 * 8 * 16 * 27
    assert op_macs("DEPTHWISE_CONV_2D", [(1, 8, 8, 4), (1, 3, 3, 8)], [(1, 6, 6, 8)]) == 6 * 6 * 8 * 9
    assert op_macs("FULLY_CONNECTED", [(1, 100), (10, 100)], [(1, 10)]) == 1000
    assert op_macs("BATCH_MATMUL", [(1, 4, 5), (1, 5, 6)], [(1, 4, 6)]) == 4 * 6 * 5
    assert op_macs("TRANSPOSE_CONV", [(4,), (8, 3, 3, 4), (1, 5, 5, 4)], [(1, 10, 10, 8)]) == 25 * 8 * 9 * 4
    assert op_macs("ADD", [(1, 4), (1, 4)], [(1, 4)]) == 0


def test_pruned_tflite_counts_fewer(tmp_path):
    from compressctl.model.channels import analyze, rebuild

    model = channel_cnn()
    analysis = analyze(model)
    keep = {root: np.arange(g.channels // 2) for root, g in analysis.groups.items() if not g.fixed}
    thin = rebuild(model, analysis, keep)
    before = tflite_macs(to_tflite(model, tmp_path / "a.tflite"))["total"]
    after = tflite_macs(to_tflite(thin, tmp_path / "b.tflite"))["total"]
    assert after == keras_macs(thin)["total"] and after < before / 2
