"""How channels pass through each kind of Keras layer: the tables of layer kinds and the tracer.

``Tracer`` walks the layer entries of ``channel_graph.graph`` in order and gives each layer's
output a ``Layout``: a producer (Conv/Dense) starts a new channel group, a BatchNormalization or
depthwise convolution follows its input's channels, a Flatten or Reshape maps them to new
positions, Add/Multiply tie groups into one, Concatenate places them side by side, and a layer it
cannot follow is blocked, leaving the channels that reach it whole.
"""

from __future__ import annotations

import numpy as np

from compressctl.model.channel_groups import GroupBuilder, Layout, Segment

# Layers whose output channels are ranked and removed (filters / units), and their config key.
PRODUCERS = {
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Dense": "units",
    "SeparableConv1D": "filters",
    "SeparableConv2D": "filters",
}
# Layers that keep their input's channels and hold per-channel weights that follow a pruning.
PER_CHANNEL = ("BatchNormalization", "DepthwiseConv1D", "DepthwiseConv2D", "PReLU", "Normalization")
# Layers without weights that act on each channel separately (or only on the spatial axes).
PASS_THROUGH = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "ThresholdedReLU",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "UpSampling1D",
    "UpSampling2D",
}
# Element-wise merges: every input carries the same channels, so their groups become one.
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
# Activations that mix channels (a softmax over the channel axis changes if one is removed).
CROSS_CHANNEL_ACTIVATIONS = {"softmax", "log_softmax"}
# TFOpLambda functions (``tf.<function>`` as the layer's config names it) that act on each value
# alone, given a tensor and scalar constants: ``x + 3``, ``x * (1 / 6)``, ``tf.nn.relu6(x)``.
ELEMENTWISE_OPS = {
    "__operators__.add",
    "__operators__.sub",
    "math.add",
    "math.add_n",
    "math.subtract",
    "math.multiply",
    "math.truediv",
    "math.divide",
    "math.divide_no_nan",
    "math.floordiv",
    "math.maximum",
    "math.minimum",
    "math.pow",
    "math.square",
    "math.sqrt",
    "math.rsqrt",
    "math.exp",
    "math.log",
    "math.log1p",
    "math.abs",
    "math.negative",
    "math.reciprocal",
    "math.sigmoid",
    "math.tanh",
    "math.softplus",
    "math.erf",
    "nn.relu",
    "nn.relu6",
    "nn.leaky_relu",
    "nn.elu",
    "nn.selu",
    "nn.gelu",
    "nn.silu",
    "nn.swish",
    "nn.sigmoid",
    "nn.tanh",
    "nn.softplus",
    "clip_by_value",
    "identity",
    "cast",
    "stop_gradient",
}
# TFOpLambda reductions that keep the channel axis when it is not among the reduced axes.
REDUCE_OPS = {"math.reduce_mean", "math.reduce_max", "math.reduce_min", "math.reduce_sum", "reduce_mean"}
# Layers that scale or shift each channel by constants in their config (only a scalar follows a pruning).
SCALING = {"Rescaling"}
# Layers that mix the channels of a position: pruning one changes the others.
MIXING = {
    "Softmax": "a softmax over the channels mixes them",
    "LayerNormalization": "normalizes across the channels",
    "UnitNormalization": "normalizes across the channels",
    "Permute": "moves the channel axis",
    "RepeatVector": "changes the axes",
}


def _shape(value) -> tuple:
    """A layer's single input/output shape (Keras may report a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return tuple(value)


def _last_axis(cfg: dict, rank: int) -> bool:
    axis = cfg.get("axis", -1)
    if isinstance(axis, list | tuple):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis in (-1, rank - 1)


def _channels_last(cfg: dict) -> bool:
    return cfg.get("data_format", "channels_last") in ("channels_last", None)


def _per_channel_constant(value) -> bool:
    """Whether a call or config constant has more than one value (it may differ per channel)."""
    if isinstance(value, str | bool) or value is None:
        return False
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return True
    if array.dtype == object:
        return True
    return array.dtype.kind in "biufc" and array.size > 1


class _Step:
    """One layer being traced: what it reads, its shapes, and how to leave it whole."""

    def __init__(self, tracer: Tracer, entry: dict):
        self.entry, self.t = entry, tracer
        self.name, self.kind, self.cfg = entry["name"], entry["class"], entry["config"]
        self.layer = tracer.model.get_layer(self.name)
        try:
            self.out_shape = _shape(self.layer.output_shape)
            in_shape = self.layer.input_shape
            self.in_shape = _shape(in_shape) if not isinstance(in_shape, list) else None
        except (AttributeError, RuntimeError, ValueError, TypeError):
            self.out_shape, self.in_shape = (), None
        if entry["reads"]:
            self.read = [tracer.outputs.get(r) for r in entry["reads"]]
        else:  # a Sequential's first layer reads the model input, whose channels are fixed
            self.read = [_fresh(self.in_shape[-1] if self.in_shape and self.in_shape[-1] is not None else 0)]
        last = self.out_shape[-1] if self.out_shape else None
        self.out_width = int(last) if isinstance(last, int | np.integer) else 0
        self.single = self.read[0] if len(self.read) == 1 else None

    def block(self, reason: str) -> None:
        t = self.t
        t.blocked[self.name] = reason
        for layout in self.read:
            if layout is not None:
                t.b.fix_layout(
                    layout, f"read by {self.kind} layer {self.name}, which channel pruning cannot rewire ({reason})"
                )
        t.outputs[self.name] = _fresh(self.out_width)

    def emit(self, layout: Layout, check: bool = True) -> None:
        """Record the output layout; a width that does not match the layer's output leaves it whole."""
        self.t.outputs[self.name] = layout
        if check and layout.width != self.out_width:
            self.block("output channels differ from the traced layout")


def _fresh(width: int) -> Layout:
    return Layout([Segment(None, int(width))])


def _prunable(layout: Layout | None) -> bool:
    return layout is not None and any(seg.group is not None for seg in layout.segments)


class Tracer:
    """Walks the layers in order, giving each output a Layout; one method per kind of layer."""

    def __init__(self, model):
        self.model = model
        self.b = GroupBuilder()
        self.outputs: dict[str, Layout] = {}
        self.inputs: dict[str, Layout] = {}
        self.kinds: dict[str, str] = {}
        self.blocked: dict[str, str] = {}
        self.producer_group: dict[str, int] = {}
        self.reshapes: dict[str, int] = {}  # Reshape layer → index of its target_shape that holds the channels
        self.unconfigurable: list[str] = []

    def visit(self, entry: dict) -> None:
        name, kind, cfg = entry["name"], entry["class"], entry["config"]
        self.kinds[name] = kind
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            self.outputs[name] = _fresh(shape[-1] if shape and shape[-1] is not None else 0)
            return
        if entry.get("unconfigurable"):
            self.unconfigurable.append(f"{name} ({kind})")
        step = _Step(self, entry)
        if any(layout is None for layout in step.read) or entry.get("unreadable"):
            return step.block("its inputs could not be traced")
        if entry.get("shared"):
            return step.block(f"shared layer, called {entry['shared']} times")
        if hasattr(step.layer, "layers"):
            return step.block("nested model")
        if kind in PRODUCERS:
            return self.producer(step)
        if not any(_prunable(layout) for layout in step.read):
            # Nothing that reaches it can be pruned: whatever it does, its output channels are fixed.
            self.outputs[name] = _fresh(step.out_width)
            return
        handler = {
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Concatenate": self.concatenate,
            "TFOpLambda": self.tf_op,
        }.get(kind)
        if handler is None and kind in PER_CHANNEL:
            handler = self.per_channel
        elif handler is None and (kind in PASS_THROUGH or kind in SCALING):
            handler = self.pass_through
        elif handler is None and kind in MERGES:
            handler = self.merge
        if handler is None:
            reason = MIXING.get(kind, f"{kind} is not a layer channel pruning can follow")
            return step.block(reason)
        handler(step)

    # ---------------------------------------------------------------- producers

    def producer(self, step: _Step) -> None:
        kind, cfg, single = step.kind, step.cfg, step.single
        if single is None:
            return step.block("more than one input")
        if kind != "Dense" and not _channels_last(cfg):
            return step.block("channels_first")
        if cfg.get("groups", 1) != 1:
            return step.block(
                f"grouped convolution (groups={cfg['groups']}): its filters are tied to groups of input channels"
            )
        if single.width != (step.in_shape[-1] if step.in_shape else -1):
            return step.block("input channels do not match the traced layout")
        if kind.startswith("Separable") and single.spatial != 1:
            return step.block("reads a flattened tensor")
        self.inputs[step.name] = single
        self.b.follow(single, step.name)
        filters = int(cfg[PRODUCERS[kind]])
        gid = self.b.new(filters, step.name)
        self.producer_group[step.name] = gid
        if cfg.get("activation") in CROSS_CHANNEL_ACTIVATIONS:
            self.b.fix(gid, f"{step.name} applies {cfg['activation']} across its outputs")
        self.outputs[step.name] = Layout([Segment(gid, filters)])

    # ---------------------------------------------------------------- layers that keep the channels

    def per_channel(self, step: _Step) -> None:
        kind, cfg, single = step.kind, step.cfg, step.single
        if single is None:
            return step.block("more than one input")
        rank = len(step.in_shape) if step.in_shape else 0
        depthwise = kind.startswith("Depthwise")
        multiplier = int(cfg.get("depth_multiplier", 1)) if depthwise else 1
        if multiplier == 1 and single.width != step.out_width:
            return step.block("output channels differ from its input's")
        if kind in ("BatchNormalization", "Normalization") and not _last_axis(cfg, rank):
            return step.block("normalizes an axis other than the channels")
        if kind == "Normalization" and cfg.get("mean") is not None:
            return step.block("its mean and variance are constants of its config")
        if depthwise and not _channels_last(cfg):
            return step.block("channels_first")
        if depthwise and single.spatial != 1:
            return step.block("reads a flattened tensor")
        self.inputs[step.name] = single
        self.b.follow(single, step.name)
        if multiplier == 1:
            return step.emit(single)
        segments = [Segment(s.group, s.size, s.repeat * multiplier) for s in single.segments]
        step.emit(Layout(segments, single.spatial))

    def pass_through(self, step: _Step) -> None:
        cfg, single = step.cfg, step.single
        if single is None:
            return step.block("more than one input")
        if cfg.get("activation") in CROSS_CHANNEL_ACTIVATIONS:
            return step.block(f"{cfg['activation']} mixes channels")
        if not _channels_last(cfg):
            return step.block("channels_first")
        if step.kind in SCALING and any(_per_channel_constant(cfg.get(key)) for key in ("scale", "offset")):
            return step.block("scales each channel by a constant of its config")
        if single.width != step.out_width:
            return step.block("output channels differ from its input's")
        step.emit(single)

    def flatten(self, step: _Step) -> None:
        single, in_shape = step.single, step.in_shape
        if single is None or not _channels_last(step.cfg) or not in_shape or any(d is None for d in in_shape[1:]):
            return step.block("needs a known channels_last input shape")
        spatial = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
        step.emit(Layout(single.segments, single.spatial * spatial))

    def reshape(self, step: _Step) -> None:
        """A Reshape that keeps the channel axis (``(C,)`` → ``(1, 1, C)``) or flattens the tensor."""
        single, in_shape, out_shape = step.single, step.in_shape, step.out_shape
        target = list(step.cfg.get("target_shape") or [])
        if single is None or not in_shape or not out_shape or not target or None in in_shape[1:]:
            return step.block("needs a known input shape")
        if None in out_shape[1:]:
            return step.block("needs a known output shape")
        if len(out_shape) == 2 and len(in_shape) > 2:  # a flatten
            self.reshapes[step.name] = 0
            return self.flatten(step)
        same_positions = int(np.prod(in_shape[1:-1])) == int(np.prod(out_shape[1:-1]))
        if out_shape[-1] != in_shape[-1] or not same_positions or single.spatial != 1:
            return step.block("moves values between the channel axis and the others")
        self.reshapes[step.name] = len(target) - 1
        step.emit(single)

    # ---------------------------------------------------------------- layers that join tensors

    def merge(self, step: _Step) -> None:
        """Element-wise merges: the inputs' channels must match one to one and are pruned as one."""
        read = step.read
        # An input of one channel broadcasts over the others (a spatial gate): it keeps its channel
        # and ties nothing.
        if step.out_width > 1 and any(layout.width == step.out_width for layout in read):
            gates = [layout for layout in read if layout.width == 1 and layout.spatial == 1]
            for gate in gates:
                self.b.fix_layout(gate, f"broadcast over the channels of {step.kind} layer {step.name}")
            read = [layout for layout in read if not any(layout is gate for gate in gates)]
        first = read[0]
        same = all(
            layout.spatial == first.spatial
            and len(layout.segments) == len(first.segments)
            and all(
                (s.size, s.repeat) == (t.size, t.repeat) for s, t in zip(layout.segments, first.segments, strict=True)
            )
            for layout in read
        )
        if not same or first.width != step.out_width:
            return step.block("its inputs' channels are laid out differently (broadcasting?)")
        b, segments = self.b, []
        for index, seg in enumerate(first.segments):
            groups = [layout.segments[index].group for layout in read]
            if any(g is None for g in groups):
                for g in groups:
                    b.fix(g, f"joined by {step.kind} layer {step.name} to channels that cannot be pruned")
                segments.append(Segment(None, seg.size, seg.repeat))
                continue
            for g in groups[1:]:
                b.union(groups[0], g, step.name)
            segments.append(Segment(groups[0], seg.size, seg.repeat))
        layout = Layout(segments, first.spatial)
        b.tie(layout, step.name)
        step.emit(layout)

    def concatenate(self, step: _Step) -> None:
        if not _last_axis(step.cfg, len(step.out_shape)):
            return self.merge(step)  # along another axis the channels must match, as in an Add
        if any(layout.spatial != 1 for layout in step.read):
            return step.block("concatenates flattened tensors")
        layout = Layout([seg for layout in step.read for seg in layout.segments])
        self.b.tie(layout, step.name)
        step.emit(layout)

    def tf_op(self, step: _Step) -> None:
        """A TensorFlow function called on Keras tensors (``x + 3``, ``tf.nn.relu6(x)``): a TFOpLambda."""
        op = str(step.cfg.get("function", "?"))
        op = op.removeprefix("compat.v1.").removeprefix("compat.v2.")
        constants = step.entry.get("constants", [])
        if op in REDUCE_OPS and step.single is not None:
            axis = step.entry.get("reduce_axis")
            return self.pass_through(step) if axis is not None else step.block(f"tf.{op} over the channels")
        if op not in ELEMENTWISE_OPS:
            return step.block(f"tf.{op} is not an element-wise op channel pruning can follow")
        if any(_per_channel_constant(value) for value in constants):
            return step.block(f"tf.{op} with a constant of more than one value")
        if step.single is not None:
            return self.pass_through(step)
        self.merge(step)


def reduce_axis(entry: dict, model) -> None:
    """For a TFOpLambda reduction, note its axes when they leave the channel axis alone."""
    if entry["class"] != "TFOpLambda" or entry["config"].get("function") not in REDUCE_OPS:
        return
    layer = model.get_layer(entry["name"])
    nodes = [n for n in layer.inbound_nodes if not n.is_input]
    if len(nodes) != 1:
        return
    node = nodes[0]
    axis = node.call_kwargs.get("axis", node.call_args[1] if len(node.call_args) > 1 else None)
    keepdims = node.call_kwargs.get("keepdims", node.call_args[2] if len(node.call_args) > 2 else False)
    try:
        rank = len(_shape(layer.input_shape))
    except (AttributeError, RuntimeError, ValueError, TypeError):
        return
    axes = [axis] if isinstance(axis, int) else list(axis) if isinstance(axis, list | tuple) else None
    if axes and all(isinstance(a, int) and a % rank not in (0, rank - 1) for a in axes) and keepdims in (True, False):
        entry["reduce_axis"] = axes
        entry["constants"] = []  # the axes are not values the op computes with
