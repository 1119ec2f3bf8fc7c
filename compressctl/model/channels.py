"""Channel groups of a Keras model, and the rebuild of a thinner model with chosen channels removed.

Removing output channels of a layer is only possible when every layer that reads them follows:
the next convolution or Dense drops the matching input rows, a BatchNormalization or depthwise
convolution drops the same channels, a Flatten maps each channel to the positions it occupies in
the flat vector. Layers joined by Add, Multiply (and the other element-wise merges, a squeeze-and-
excite gate included) must keep the same channels, so they form one **channel group** that is
pruned as one; Concatenate places its inputs' channels side by side. Element-wise TensorFlow ops
on Keras tensors (``x + 3``, ``x * (1 / 6)``: TFOpLambda layers) and a Reshape that keeps the
channel axis pass the channels on. A layer the analysis cannot follow (a grouped convolution, a
cross-channel Softmax, a shared or custom layer) leaves the channels that reach it whole, with
the reason; the channels that set the model's output are never pruned.

A functional model is read from its live Keras graph (each layer's inbound node), a Sequential
from its config, together with the layers' shapes and weights; no TensorFlow import happens here
(the rebuild imports it through compressctl.core.env).

The graph is read in compressctl.model.channel_graph, the rules of each kind of layer and the
tracer live in compressctl.model.channel_rules, and the groups and the analysis result in
compressctl.model.channel_groups; this module joins them and rebuilds the thinner model.
"""

from __future__ import annotations

import copy

import numpy as np

from compressctl.model.channel_graph import graph
from compressctl.model.channel_groups import Analysis, Layout, Segment
from compressctl.model.channel_rules import PRODUCERS, Tracer, reduce_axis

__all__ = ["PRODUCERS", "Analysis", "analyze", "graph", "keep_count", "rebuild", "slice_weights"]


def analyze(model) -> Analysis:
    """Channel groups of a Sequential or functional Keras model."""
    entries, output_names = graph(model)
    tracer = Tracer(model)
    for entry in entries:
        reduce_axis(entry, model)
        tracer.visit(entry)
    b = tracer.b
    for name in output_names:
        for seg in (tracer.outputs.get(name) or Layout([])).segments:
            if seg.group is not None:  # the clearest reason wins over any found before
                b.groups[b.find(seg.group)].fixed = "sets the model's output"
    if tracer.unconfigurable:
        reason = f"the model cannot be rebuilt: {', '.join(tracer.unconfigurable)} has no readable config"
        for group in b.groups.values():
            group.fixed = group.fixed or reason
    return b.analysis(
        producer_group=tracer.producer_group,
        inputs=tracer.inputs,
        outputs=tracer.outputs,
        kinds=tracer.kinds,
        blocked=tracer.blocked,
        reshapes=tracer.reshapes,
    )


def keep_count(channels: int, ratio: float, multiple_of: int = 1) -> int:
    """How many of ``channels`` survive removing ``ratio`` of them, rounded to a multiple of ``multiple_of``.

    0 means the ratio would remove every channel (the caller refuses that).
    """
    keep = channels - int(np.floor(ratio * channels + 0.5))  # halves round up, not to even
    if keep <= 0:
        return 0
    if multiple_of > 1:
        keep = max(multiple_of, int(np.floor(keep / multiple_of + 0.5)) * multiple_of)
    return min(keep, channels)


def rebuild(model, analysis: Analysis, keep: dict[int, np.ndarray]):
    """A new model with only the ``keep`` channels of each group, the surviving weights copied."""
    from compressctl.core.env import keras

    k = keras()
    keep = {root: np.sort(np.asarray(kept, dtype=np.int64)) for root, kept in keep.items()}
    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        # Recorded input sizes no longer hold once widths change; the rebuild infers them.
        entry.pop("build_config", None)
        name = entry["config"].get("name")
        root = analysis.producer_group.get(name)
        if root is not None and root in keep:
            entry["config"][PRODUCERS[entry["class_name"]]] = int(len(keep[root]))
        if name in analysis.reshapes:  # its target shape names the channels (or the flat width)
            target, axis = list(entry["config"]["target_shape"]), analysis.reshapes[name]
            if target[axis] != -1:
                target[axis] = int(len(analysis.indices(analysis.outputs[name], keep)))
            entry["config"]["target_shape"] = target
    cls = k.Sequential if isinstance(model, k.Sequential) else k.Model
    # The model's own classes, registered or not (a custom layer the analysis left whole).
    custom = {type(layer).__name__: type(layer) for layer in model.layers}
    with k.utils.custom_object_scope(custom):
        thin = cls.from_config(config)
    for layer in thin.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        weights = model.get_layer(layer.name).get_weights()
        if weights:
            layer.set_weights(slice_weights(analysis, layer.name, weights, keep))
            if type(layer).__name__ == "Normalization":
                layer.finalize_state()  # its mean and variance tensors are computed from the weights
    return thin


def slice_weights(analysis: Analysis, name: str, weights: list[np.ndarray], keep: dict) -> list[np.ndarray]:
    """The layer's weights with the removed input and output channels dropped."""
    kind = analysis.kinds.get(name)
    if name in analysis.blocked or name not in analysis.inputs:
        return weights
    layout = analysis.inputs[name]
    in_index = analysis.indices(layout, keep)
    if kind in PRODUCERS:
        root = analysis.producer_group[name]
        out_index = keep.get(root)
        weights = list(weights)
        if kind.startswith("Separable"):
            # depthwise (…, in, multiplier), pointwise (…, in × multiplier, filters): each input
            # channel's copies sit side by side in the pointwise rows.
            multiplier = weights[0].shape[-1]
            weights[0] = np.take(weights[0], in_index, axis=-2)
            wide = Layout([Segment(s.group, s.size, s.repeat * multiplier) for s in layout.segments], layout.spatial)
            kernel = np.take(weights[1], analysis.indices(wide, keep), axis=-2)
            head, rest = weights[:1], weights[2:]
        else:
            kernel = np.take(weights[0], in_index, axis=-2)
            head, rest = [], weights[1:]
        if out_index is not None:
            kernel = np.take(kernel, out_index, axis=-1)
            rest = [np.take(w, out_index, axis=-1) for w in rest]
        return [*head, kernel, *rest]
    if kind.startswith("Depthwise"):
        out_index = analysis.indices(analysis.outputs[name], keep)
        kernel = np.take(weights[0], in_index, axis=-2)
        return [kernel, *[np.take(w, out_index, axis=-1) for w in weights[1:]]]
    # BatchNormalization's four vectors, PReLU's alpha, Normalization's mean and variance: one value
    # per position of the last axis.
    width = layout.width
    return [np.take(w, in_index, axis=-1) if w.shape and w.shape[-1] == width else w for w in weights]
