"""Start QAT's activation ranges from the model's measured ranges, not TFMOT's fixed [-6, 6].

TFMOT initialises every activation quantizer's range to [-6, 6] and moves it by an exponential
moving average with decay 0.999 while training, so a fine-tune of a few hundred steps keeps
ranges near ±6. A model whose activations reach past 6 (swish, squeeze-excite gates, residual
sums: EfficientNet, MobileNetV3) is then clipped hard; one that stays far inside wastes most of
the int8 levels. Before QAT trains, :func:`calibrate` runs calibration samples through the float
model and sets each quantizer's range to the minimum and maximum seen at its point (0 always
inside, as TFLite requires); training moves them from there.

The quantizers are found by their variables' names, the one TFMOT internal read here:
``{output,post_activation,pre_activation}_{min,max}`` on a ``quant_<layer>`` wrapper and
``<name>_{min,max}`` on a QuantizeLayer. ``tests/stages/test_qat_ranges.py`` fails, naming them,
when a TFMOT release renames them.
"""

from __future__ import annotations

import contextlib

import numpy as np

OUTPUT_RANGES = ("output", "post_activation")  # the wrapped layer's output
INPUT_RANGE = "pre_activation"  # the layer's output before its activation function
BATCH = 16


def calibrate(float_model, qat_model, samples: np.ndarray) -> int:
    """Set ``qat_model``'s activation ranges from ``float_model`` on ``samples``; how many were set."""
    from compressctl.core.env import keras

    k = keras()
    if len(float_model.inputs) != 1 or len(qat_model.inputs) != 1:
        return 0  # calibration samples feed one input
    ranges = _measure_where_possible(k, float_model, samples)
    quantize_layers = [layer for layer in qat_model.layers if type(layer).__name__ == "QuantizeLayer"]
    with contextlib.suppress(ValueError):  # an input the probe cannot take as an output: TFMOT's range stays
        ranges |= _measure(k, qat_model, [(("quantize", q.name), q.input) for q in quantize_layers], samples)
    return _assign(qat_model, ranges)


def _measure_where_possible(k, model, samples: np.ndarray) -> dict:
    """The float model's ranges; on a fresh copy when its layers' outputs lie in another model's graph."""
    try:
        return _measure(k, model, _float_points(k, model), samples)
    except ValueError:  # "graph disconnected": layers shared with the model an earlier stage started from
        pass
    try:
        copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return _measure(k, copy, _float_points(k, copy), samples)
    except Exception:  # noqa: BLE001 - a layer that does not clone: TFMOT's starting ranges stay
        return {}


def _measure(k, model, points: list, samples: np.ndarray) -> dict:
    """{key: (min, max)} of each (key, tensor) point over ``samples``, 0 included."""
    inputs = {id(tensor) for tensor in model.inputs}
    direct = [(key, tensor) for key, tensor in points if id(tensor) in inputs]
    inner = [(key, tensor) for key, tensor in points if id(tensor) not in inputs]
    low = np.full(len(inner), np.inf)
    high = np.full(len(inner), -np.inf)
    if inner:
        probe = k.Model(model.inputs, [tensor for _, tensor in inner])
        for start in range(0, len(samples), BATCH):
            values = probe(samples[start : start + BATCH], training=False)
            for i, value in enumerate(values if isinstance(values, (list, tuple)) else [values]):
                value = np.asarray(value)
                low[i] = min(low[i], float(value.min()))
                high[i] = max(high[i], float(value.max()))
    ranges = {key: (min(0.0, float(samples.min())), max(0.0, float(samples.max()))) for key, _ in direct}
    for (key, _), lo, hi in zip(inner, low, high, strict=True):
        if np.isfinite(lo):
            ranges[key] = (min(0.0, lo), max(0.0, hi))
    return ranges


def range_variables(wrapper) -> dict[str, object]:
    """The activation range variables of one QAT layer, by their short name (``output_min``...)."""
    found = {}
    for variable in wrapper.weights:
        short = variable.name.split("/")[-1].split(":")[0]
        if short.endswith(("_min", "_max")) and tuple(variable.shape) == ():
            found[short] = variable
    return found


def _assign(qat_model, ranges: dict) -> int:
    count = 0
    for layer in qat_model.layers:
        kind = type(layer).__name__
        if kind == "QuantizeLayer":
            keys = {f"{layer.name}": ("quantize", layer.name)}
        elif hasattr(layer, "layer"):  # QuantizeWrapper: quant_<name> around <name>
            inner = layer.layer.name
            keys = {point: ("out", inner) for point in OUTPUT_RANGES} | {INPUT_RANGE: ("pre", inner)}
        else:
            continue
        for short, variable in range_variables(layer).items():
            point, end = short.rsplit("_", 1)
            key = keys.get(point)
            if key in ranges:
                variable.assign(ranges[key][0] if end == "min" else ranges[key][1])
                count += 1
    return count


def _float_points(k, model) -> list:
    """(key, tensor) pairs: each layer's output, and the output before the activation of layers that have one."""
    points = []
    for layer in model.layers:
        if isinstance(layer, k.layers.InputLayer):
            continue
        try:
            tensor = layer.output
        except (AttributeError, RuntimeError, ValueError):
            continue  # a layer called more than once has no single output
        if isinstance(tensor, (list, tuple)):
            continue
        points.append((("out", layer.name), tensor))
        linear = _linear_twin(k, layer)
        if linear is not None:
            points.append((("pre", layer.name), linear))
    return points


def _linear_twin(k, layer):
    """``layer``'s output before its activation function (a copy with a linear activation), or None."""
    activation = getattr(layer, "activation", None)
    if activation is None or getattr(activation, "__name__", "") == "linear":
        return None
    if isinstance(layer, k.layers.Activation):
        return layer.input
    try:
        config = {**layer.get_config(), "activation": "linear", "name": f"{layer.name}__pre_activation"}
        twin = type(layer).from_config(config)
        tensor = twin(layer.input)
        twin.set_weights(layer.get_weights())
    except Exception:  # noqa: BLE001 - a layer that cannot be copied keeps TFMOT's starting range
        return None
    return tensor
