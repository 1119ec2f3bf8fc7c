"""How the conversion worker turns a request into TFLiteConverter settings, checked on the real converter."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tf():
    from compressctl.core.env import tf as load

    return load()


def spec(saved_model, tmp_path, mode, **extra):
    request = {"saved_model": str(saved_model), "out": str(tmp_path / "m.tflite"), "mode": mode, **extra}
    if mode == "int8":
        calibration = tmp_path / "calibration.npy"
        np.save(calibration, np.full((3, 8, 8, 1), 0.5, np.float32))
        request["calibration"] = str(calibration)
    return request


def test_float32_asks_for_no_optimization(tf, tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import build_converter

    converter = build_converter(tf, spec(tiny_cnn_path, tmp_path, "float32"))
    assert list(converter.optimizations) == []
    assert converter.representative_dataset is None


def test_float16_restricts_types_to_float16(tf, tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import build_converter

    converter = build_converter(tf, spec(tiny_cnn_path, tmp_path, "float16"))
    assert list(converter.optimizations) == [tf.lite.Optimize.DEFAULT]
    assert list(converter.target_spec.supported_types) == [tf.float16]


def test_dynamic_with_sparsity_adds_the_sparsity_optimization(tf, tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import build_converter

    converter = build_converter(tf, spec(tiny_cnn_path, tmp_path, "dynamic", sparsity=True))
    assert list(converter.optimizations) == [tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    assert converter.representative_dataset is None


def test_int8_feeds_each_calibration_sample_as_a_batch_of_one(tf, tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import build_converter

    converter = build_converter(tf, spec(tiny_cnn_path, tmp_path, "int8"))
    batches = list(converter.representative_dataset())
    assert len(batches) == 3 and all(b[0].shape == (1, 8, 8, 1) for b in batches)
    assert converter.inference_input_type == tf.float32  # float I/O unless asked


def test_integer_only_int8_io_sets_ops_and_io_types(tf, tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import build_converter

    request = spec(tiny_cnn_path, tmp_path, "int8", integer_only=True, io_dtype="uint8")
    converter = build_converter(tf, request)
    assert list(converter.target_spec.supported_ops) == [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    assert converter.inference_input_type == tf.uint8 and converter.inference_output_type == tf.uint8


def test_a_failed_conversion_is_one_message_not_an_exception(tiny_cnn_path, tmp_path):
    from compressctl.backends.convert_worker import handle

    answer = handle({"saved_model": str(tmp_path / "missing"), "out": str(tmp_path / "m.tflite"), "mode": "float32"})
    assert set(answer) == {"error"} and "\n" not in answer["error"]
    assert not (tmp_path / "m.tflite").exists()


MLIR_DUMP = (
    '<unknown>:0: error: loc(callsite(fused["AvgPool:", "densenet/quant_pool2_pool/AvgPool@__inference_<lambda>_91"]'
    ' at callsite(fused["StatefulPartitionedCall:", "StatefulPartitionedCall@__inference_signature_wrapper_9"]'
    ' at fused["StatefulPartitionedCall:", "StatefulPartitionedCall"]))): error: \'tfl.average_pool_2d\' op'
    " quantization parameters violate the same scale constraint: !quant.uniform<i8:f32, 0.047:-1> vs."
    " !quant.uniform<i8:f32, 0.046>\n"
    '<unknown>:0: note: loc(fused["StatefulPartitionedCall:", "StatefulPartitionedCall"]): called from\n'
)


@pytest.mark.unit
def test_a_converter_diagnostic_becomes_the_op_the_layer_and_why():
    from compressctl.backends.convert_worker import converter_message

    class ConverterError(Exception):
        pass

    message = converter_message(ConverterError(MLIR_DUMP + MLIR_DUMP))
    assert message == (
        "ConverterError: op 'tfl.average_pool_2d' (layer pool2_pool): quantization parameters violate the same "
        "scale constraint"
    )
    assert converter_message(ValueError("line one\nline two")) == "ValueError: line one"


def _dense_kernel_scales(path):
    """The number of scales of each int8 Dense kernel (2-D int8 tensors) of the file at ``path``."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_tensor_details()
    return [
        len(t["quantization_parameters"]["scales"]) for t in details if t["dtype"] == np.int8 and len(t["shape"]) == 2
    ]


@pytest.mark.parametrize("layer_errors", [False, True])
def test_per_tensor_dense_holds_with_and_without_the_layer_error_analysis(tiny_cnn_path, tmp_path, layer_errors):
    """The pipeline's int8 requests carry the layer-error analysis, whose quantizer writes the artifact:
    it once ignored per_tensor_dense, so the older-runtime fallback was per channel again."""
    from compressctl.backends.convert_worker import handle

    request = spec(tiny_cnn_path, tmp_path, "int8", per_tensor_dense=True)
    if layer_errors:
        request["quantization"] = {"layer_errors": True}
    assert "error" not in handle(request)
    scales = _dense_kernel_scales(request["out"])
    assert scales and all(n == 1 for n in scales), scales
    (tmp_path / "pc").mkdir()
    per_channel = spec(tiny_cnn_path, tmp_path / "pc", "int8", quantization={"layer_errors": layer_errors})
    assert "error" not in handle(per_channel)
    assert max(_dense_kernel_scales(per_channel["out"])) > 1  # the default, per output channel
