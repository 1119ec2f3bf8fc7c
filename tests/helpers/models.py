"""Model builders and conversions several test modules use (the rest live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from compressctl.targets.edgetpu import EdgeTpuTarget


def residual_model():
    """Functional, with a 1×1 projection inside a residual block, BatchNorm, and two Dense layers."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(16, 3, padding="same", name="conv_a")(inputs)
    h = k.layers.BatchNormalization(name="bn_a")(h)
    h = k.layers.ReLU(name="relu_a")(h)
    r = k.layers.Conv2D(16, 1, name="proj")(h)
    r = k.layers.BatchNormalization(name="bn_b")(r)
    h = k.layers.Add(name="add")([h, r])
    h = k.layers.GlobalAveragePooling2D(name="gap")(h)
    h = k.layers.Dense(32, activation="relu", name="fc")(h)
    outputs = k.layers.Dense(3, activation="softmax", name="head")(h)
    return k.Model(inputs, outputs)


def convert_for_edgetpu(keras_model, shape, calibration, work: Path, io_dtype: str = "uint8") -> Path:
    """A batch-1 SavedModel of ``keras_model`` converted the way the target converts."""
    from compressctl.backends.convert import convert
    from compressctl.core.env import tf

    tensorflow = tf()
    spec = tensorflow.TensorSpec([1, *shape], tensorflow.float32, name="input")
    module = tensorflow.Module()
    module.model = keras_model
    function = tensorflow.function(lambda x: {"output": keras_model(x, training=False)})
    saved = work / "saved_model"
    tensorflow.saved_model.save(
        module, str(saved), signatures={"serving_default": function.get_concrete_function(spec)}
    )
    out = work / "edgetpu" / "model.tflite"
    out.parent.mkdir(parents=True, exist_ok=True)
    (conversion,) = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu", io_dtype=io_dtype)).conversions()
    convert(saved, out, conversion.mode, work / "convert", calibration=calibration, io_dtype=conversion.io_dtype,
            integer_only=conversion.integer_only)  # fmt: skip
    return out
