"""TensorFlow's internals: the TFLite converter's private switches, its quantizer and its interpreter's op listing.

- ``TFLiteConverter._experimental_calibrate_only``: convert to a calibrated, not yet quantized model,
  which ``mlir_quantize`` then quantizes (the recipe ``tf.lite.experimental.QuantizationDebugger``
  follows), so one calibration serves selective quantization and the layer-wise errors.
- ``TFLiteConverter._experimental_disable_per_channel_quantization_for_dense_layers``: one scale per
  Dense kernel, which keeps FULLY_CONNECTED at an op version older runtimes know.
- ``tensorflow.lite.python.convert.mlir_quantize``: the quantizer, with ops denylisted (kept in
  float) and NumericVerify instrumentation.
- ``tf.lite.Interpreter._get_ops_details``: the op listing of TensorFlow's interpreter (LiteRT's is in
  ``compressctl.core.internals.litert``).
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal, resolve
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "tensorflow"


def _converter():
    """A TFLite converter (its private switches are set per instance in ``__init__``)."""
    from compressctl.core.env import tf

    tensorflow = tf()
    function = tensorflow.function(lambda x: x + 1.0, input_signature=[tensorflow.TensorSpec([1], tensorflow.float32)])
    return tensorflow.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)


def _tensorflow(dotted: str):
    def find():
        from compressctl.core.env import tf

        tf()
        return resolve(dotted)

    return find


_CONVERTER = "a tf.lite.TFLiteConverter"
_QUANTIZE_PARAMETERS = (
    "fully_quantize",
    "enable_numeric_verify",
    "denylisted_nodes",
    "input_data_type",
    "output_data_type",
)

INTERNALS = (
    Internal(_CONVERTER, "_experimental_calibrate_only", "calibrating once for layer-wise errors", _converter),
    Internal(
        _CONVERTER,
        "_experimental_disable_per_channel_quantization_for_dense_layers",
        "per-tensor Dense kernels (older runtimes' FULLY_CONNECTED)",
        _converter,
    ),
    Internal(
        "tensorflow.lite.python.convert",
        "mlir_quantize",
        "quantizing a calibrated model with ops kept in float",
        _tensorflow("tensorflow.lite.python.convert"),
        _QUANTIZE_PARAMETERS,
    ),
    Internal(
        "tensorflow.lite.Interpreter",
        "_get_ops_details",
        "the ops of a NumericVerify-instrumented model",
        _tensorflow("tensorflow.lite.Interpreter"),
    ),
)


def calibrate_only(converter) -> None:
    """Make ``converter.convert()`` return the calibrated model, not yet quantized."""
    converter._experimental_calibrate_only = True


def per_tensor_dense(converter) -> None:
    """Quantize Dense kernels with one scale per tensor instead of one per output channel."""
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True


def mlir_quantize(calibrated: bytes, **kwargs) -> bytes:
    """TFLite's quantizer on a calibrated model (``calibrate_only``); keyword arguments as TensorFlow's."""
    from compressctl.core.env import tf

    tf()
    from tensorflow.lite.python import convert as lite_convert

    return lite_convert.mlir_quantize(calibrated, **kwargs)


def interpreter_ops(interpreter) -> list[dict]:
    """Every op of a ``tf.lite.Interpreter``: ``index``, ``op_name``, ``inputs``, ``outputs``."""
    return interpreter._get_ops_details()


def check() -> list[str]:
    """One line per internal above that the installed TensorFlow lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
