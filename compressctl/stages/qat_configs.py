"""QAT for the element-wise layers TFMOT's default 8-bit registry leaves out.

MobileNetV3's hard-swish (``x * relu6(x + 3) / 6``), EfficientNet's swish and squeeze-excite gate,
and ``Activation("hard_sigmoid")`` are built from ``Multiply`` layers, ``TFOpLambda`` layers (the
``x + 3.0`` and ``* (1/6)`` of Keras's own code) and activations the default registry does not
know. Left unannotated they get no fake-quant range, and the converter keeps them in float with
QUANTIZE/DEQUANTIZE around them, so the model is not fully integer and an Edge TPU target fails.
Each gets an output fake-quant here, so every tensor between them has a trained int8 range.

Sigmoid, tanh and softmax outputs are left as they are: their int8 kernels use a fixed output
scale, which a trained range would only have to be requantized to.
"""

from __future__ import annotations

from compressctl.core.internals import keras as keras_internals
from compressctl.core.internals import tfmot as tfmot_internals

# TFOpLambda functions (their config's ``function``) that compute an element-wise value worth a range.
ELEMENTWISE_OPS = frozenset(
    {
        "__operators__.add",
        "math.add",
        "math.subtract",
        "math.multiply",
        "math.truediv",
        "math.divide",
        "math.maximum",
        "math.minimum",
        "nn.relu",
        "nn.relu6",
        "nn.silu",
        "nn.swish",
        "nn.gelu",
    }
)
# Activation layers the default registry refuses (it raises) or gives no range; swish/gelu/relu it handles.
EXTRA_ACTIVATIONS = frozenset({"hard_sigmoid", "hard_swish", "hard_silu", "silu"})
# Layers (no weights) the default registry has no config for, whose int8 kernels take any output range.
OUTPUT_ONLY_LAYERS = ("Multiply", "Subtract", "Maximum", "Minimum", "Average")

# Layers whose int8 kernel keeps the input's scale (TFLite's AVERAGE_POOL_2D requires it): a trained
# output range of their own makes the converter fail ("violate the same scale constraint"), so they
# get none and the converter carries the input's range through (DenseNet's transition blocks).
SAME_SCALE_LAYERS = ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")

_CONFIG = []
_OP_LAYER = []


def output_config_class():
    """A registered QuantizeConfig that fake-quantizes a layer's output only (8-bit, asymmetric)."""
    if not _CONFIG:
        from compressctl.core.env import keras, tfmot

        mot = tfmot()
        quantizers = mot.quantization.keras.quantizers

        @keras().utils.register_keras_serializable(package="compressctl")
        class OutputQuantizeConfig(mot.quantization.keras.QuantizeConfig):
            def get_weights_and_quantizers(self, layer):
                return []

            def get_activations_and_quantizers(self, layer):
                return []

            def set_quantize_weights(self, layer, quantize_weights):
                pass

            def set_quantize_activations(self, layer, quantize_activations):
                pass

            def get_output_quantizers(self, layer):
                return [
                    quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)
                ]

            def get_config(self):
                return {}

        _CONFIG.append(OutputQuantizeConfig)
    return _CONFIG[0]


def op_layer_class():
    """A registered layer computing one element-wise TensorFlow function of its input and constants.

    It stands in for a ``TFOpLambda`` during QAT: TFMOT's wrappers cannot carry a ``TFOpLambda``
    through their clones (its input structure is kept nested, and the unwrapped call fails), and a
    layer of our own can be annotated like any other. It runs the same TensorFlow function, so the
    converted ops are the same.
    """
    if not _OP_LAYER:
        from compressctl.core.env import keras

        k = keras()

        @k.utils.register_keras_serializable(package="compressctl")
        class ElementwiseOp(k.layers.Layer):
            def __init__(self, function, **kwargs):
                super().__init__(**kwargs)
                self.function = function
                self._op = keras_internals.op_symbol(function)

            def call(self, inputs, *args, **kwargs):
                for context in ("name", "training", "mask"):
                    kwargs.pop(context, None)
                return self._op(inputs, *args, **kwargs)

            def compute_output_shape(self, input_shape):
                return input_shape  # element-wise, with scalar constants (see _constant_operands)

            def get_config(self):
                return {**super().get_config(), "function": self.function}

        _OP_LAYER.append(ElementwiseOp)
    return _OP_LAYER[0]


def register_classes() -> None:
    """Register this module's Keras classes, so that a QAT model saved without traced functions (the
    stage cache, run/cache.py) reloads from its config in a process that has not run QAT yet."""
    output_config_class()
    op_layer_class()


def _constant_operands(layer) -> bool:
    """True when every call of the op takes a single tensor first and only constants after it.

    A layer the training stages before QAT left as it was is called once per model they built around
    it (pruning and clustering clone the model and share the unwrapped layers), so it has a node per
    model; every one of them must be a call on one tensor.
    """
    from compressctl.core.env import tf

    nodes = keras_internals.inbound_nodes(layer)  # Keras keeps a layer's calls only here
    if not nodes:
        return False
    for node in nodes:
        args, kwargs = node.call_args, node.call_kwargs
        if not args or not hasattr(args[0], "shape"):
            return False
        rest = tf().nest.flatten([list(args[1:]), kwargs])
        if any(hasattr(value, "shape") and hasattr(value, "dtype") for value in rest):
            return False
    return True


def rewrite(layer):
    """The layer QAT annotates in place of ``layer``: an :func:`op_layer_class` for a TFOpLambda."""
    if type(layer).__name__ == "TFOpLambda":
        return op_layer_class()(layer.get_config()["function"], name=layer.name)
    return layer


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def output_only(layer) -> bool:
    """True for a built-in layer this module gives an output range (and the default registry does not)."""
    kind = type(layer).__name__
    if _OP_LAYER and isinstance(layer, _OP_LAYER[0]):
        return True
    if kind == "TFOpLambda":
        return layer.get_config().get("function") in ELEMENTWISE_OPS and _constant_operands(layer)
    if kind in OUTPUT_ONLY_LAYERS:
        return True
    if kind == "Activation":
        return _activation_name(layer) in EXTRA_ACTIVATIONS
    return False


def fused_activation_unsupported(layer) -> str | None:
    """The name of a weighted layer's own ``activation`` that TFMOT's fake-quant cannot wrap and this module can.

    TFMOT wraps a Dense or convolution's activation only for a few functions (relu, swish, gelu,
    sigmoid, ...); ``Dense(activation="hard_sigmoid")`` made the whole quantize_apply fail. Only
    activations checked to convert are taken (an output range after ELU made the converter fail).
    """
    if type(layer).__name__ == "Activation" or not layer.weights:
        return None
    name = _activation_name(layer)
    return name if name in EXTRA_ACTIVATIONS else None


def own_config(layer, registry):
    """The QuantizeConfig compressctl gives ``layer`` in place of the default registry's, or None.

    An element-wise layer (:func:`output_only`) gets an output range, an average pooling none (it keeps
    its input's scale, :data:`SAME_SCALE_LAYERS`). A weighted layer whose own
    activation TFMOT cannot wrap keeps the default weight quantizers and gets an output range after
    the activation instead of one around it (the converter carries it back through the
    MINIMUM/MAXIMUM/RELU ops such activations become).
    """
    if output_only(layer):
        return output_config_class()()
    if type(layer).__name__ in SAME_SCALE_LAYERS:
        return tfmot_internals.no_op_quantize_config()
    if fused_activation_unsupported(layer) and registry.supports(layer):
        base = registry.get_quantize_config(layer)
        if getattr(base, "activation_attrs", None) == ["activation"]:
            return type(base)(base.weight_attrs, [], True)
    return None
