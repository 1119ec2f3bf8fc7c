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
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Segment:
    """A run of channels along the last axis that belong to one group (or to none: fixed)."""

    group: int | None
    size: int
    repeat: int = 1  # each channel spans this many consecutive positions (a depthwise multiplier)


@dataclass
class Layout:
    """What the last axis of a tensor holds: segments side by side, repeated ``spatial`` times
    (after a Flatten, positions are outer and channels inner)."""

    segments: list[Segment]
    spatial: int = 1

    @property
    def channels(self) -> int:
        return sum(s.size * s.repeat for s in self.segments)

    @property
    def width(self) -> int:
        return self.spatial * self.channels


@dataclass
class Group:
    id: int
    channels: int
    producers: list[str] = field(default_factory=list)  # the layers whose filters/units these are
    followers: list[str] = field(default_factory=list)  # BatchNormalization, depthwise, next layers
    tied_by: list[str] = field(default_factory=list)  # the Add/Multiply/Concatenate layers joining them
    fixed: str | None = None  # why the group's channels cannot be removed

    def as_dict(self) -> dict:
        return {
            "group": self.id,
            "channels": self.channels,
            "layers": list(self.producers),
            "followers": list(self.followers),
            "tied_by": list(self.tied_by),
            "prunable": self.fixed is None,
            "reason": self.fixed,
        }


@dataclass
class Analysis:
    groups: dict[int, Group]  # by root id
    producer_group: dict[str, int]  # producer layer → root id of its output group
    inputs: dict[str, Layout]  # layer → layout of its input
    outputs: dict[str, Layout]  # layer → layout of its output
    kinds: dict[str, str]  # layer → class name
    blocked: dict[str, str]  # layer → why the analysis could not follow it
    reshapes: dict[str, int] = field(default_factory=dict)  # Reshape → index of its target's channel entry
    _parent: dict[int, int] = field(default_factory=dict, repr=False)

    def find(self, group: int | None) -> int | None:
        if group is None:
            return None
        while self._parent[group] != group:
            group = self._parent[group]
        return group

    def group_of(self, layer: str) -> Group | None:
        root = self.producer_group.get(layer)
        return None if root is None else self.groups[root]

    def layer_reason(self, layer: str) -> str | None:
        """None when the layer's output channels can be removed, else why not."""
        if layer in self.blocked:
            return self.blocked[layer]
        group = self.group_of(layer)
        if group is None:
            return "no filters or units of its own"
        return group.fixed

    def describe(self) -> list[dict]:
        """The groups of the model, in order of their first producer, as plain dicts."""
        return [g.as_dict() for g in sorted(self.groups.values(), key=lambda g: g.id)]

    def indices(self, layout: Layout, keep: dict[int, np.ndarray]) -> np.ndarray:
        """Positions along the last axis of a tensor with ``layout`` that survive ``keep``."""
        parts, offset = [], 0
        for seg in layout.segments:
            root = self.find(seg.group)
            kept = keep.get(root) if root is not None else None
            kept = np.arange(seg.size) if kept is None else np.asarray(kept)
            expanded = (kept[:, None] * seg.repeat + np.arange(seg.repeat)[None, :]).ravel()
            parts.append(offset + expanded)
            offset += seg.size * seg.repeat
        per_position = np.concatenate(parts) if parts else np.arange(0)
        if layout.spatial == 1:
            return per_position
        return (np.arange(layout.spatial)[:, None] * offset + per_position[None, :]).ravel()


def _shape(value) -> tuple:
    """A layer's single input/output shape (Keras may report a list of one)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return tuple(value)


def _layer_config(layer) -> dict | None:
    try:
        return layer.get_config()
    except Exception:  # noqa: BLE001 - a layer without get_config cannot be rebuilt, which analyze reports
        return None


def graph(model) -> tuple[list[dict], list[str]]:
    """Layer entries in topological order, each with the names it reads, and the output layers' names.

    Each entry has "name", "class", "config" and "reads"; "shared" (the number of calls) marks a layer
    called more than once, "unreadable" one whose inputs cannot be told apart, "unconfigurable" one
    whose config cannot be read, and "constants" the non-tensor arguments of its call (functional
    models only: a TFOpLambda's ``x + 3`` has ``[3]``). A functional model is read from its live
    graph, not its config: a layer called with extra arguments serializes them into its node entry.
    """
    if not getattr(model, "_is_graph_network", False) or type(model).__name__ == "Sequential":
        return _sequential_graph(model)
    in_model = getattr(model, "_nodes_by_depth", None)
    model_nodes = {id(node) for nodes in (in_model or {}).values() for node in nodes}
    entries = []
    for layer in model.layers:
        config = _layer_config(layer)
        item = {"name": layer.name, "class": type(layer).__name__, "config": config or {}, "reads": []}
        if config is None:
            item["unconfigurable"] = True
        nodes = [n for n in layer.inbound_nodes if not model_nodes or id(n) in model_nodes]
        nodes = [n for n in nodes if not n.is_input]
        if len(nodes) > 1:
            item["shared"] = len(nodes)
        for node in nodes:  # a shared layer reads what each of its calls reads
            for producer, _, tensor_index, _ in node.iterate_inbound():
                if producer.name not in item["reads"] or len(nodes) == 1:
                    item["reads"].append(producer.name)
                if tensor_index != 0:
                    item["unreadable"] = True
            item["constants"] = _constants(node)
        entries.append(item)
    outputs = [t._keras_history.layer.name for t in model.outputs]
    return entries, outputs


def _constants(node) -> list:
    """The arguments of a layer call that are not tensors (its name and None left out)."""
    args = list(node.call_args[1:]) + [v for k, v in node.call_kwargs.items() if k != "name"]
    if node.call_args and not hasattr(node.call_args[0], "_keras_history"):
        args.insert(0, node.call_args[0])  # ``3 - x`` puts the constant first
    flat = []
    for arg in args:
        for value in arg if isinstance(arg, list | tuple) else [arg]:
            if value is not None and not hasattr(value, "_keras_history"):
                flat.append(value)
    return flat


def _sequential_graph(model) -> tuple[list[dict], list[str]]:
    entries, previous = [], None
    for entry in model.get_config()["layers"]:
        name = entry["config"]["name"]
        entries.append({"name": name, "class": entry["class_name"], "config": entry["config"], "reads": []})
        if entry["class_name"] != "InputLayer" and previous is not None:
            entries[-1]["reads"] = [previous]
        previous = name
    # A Sequential without an InputLayer entry reads the model input in its first layer.
    if entries and entries[0]["class"] != "InputLayer":
        entries[0]["reads"] = []
    return entries, [previous] if previous else []


class _Builder:
    def __init__(self):
        self.parent: dict[int, int] = {}
        self.groups: dict[int, Group] = {}

    def new(self, channels: int, producer: str) -> int:
        gid = len(self.parent)
        self.parent[gid] = gid
        self.groups[gid] = Group(id=gid, channels=channels, producers=[producer])
        return gid

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            gid = self.parent[gid]
        return gid

    def fix(self, gid: int | None, reason: str) -> None:
        if gid is None:
            return
        group = self.groups[self.find(gid)]
        group.fixed = group.fixed or reason

    def union(self, a: int, b: int, via: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            if via not in self.groups[ra].tied_by:
                self.groups[ra].tied_by.append(via)
            return
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        g, h = self.groups[keep], self.groups.pop(gone)
        g.producers += h.producers
        g.followers += [f for f in h.followers if f not in g.followers]
        g.tied_by += [t for t in [*h.tied_by, via] if t not in g.tied_by]
        g.fixed = g.fixed or h.fixed

    def follow(self, layout: Layout, layer: str) -> None:
        for seg in layout.segments:
            if seg.group is not None:
                group = self.groups[self.find(seg.group)]
                if layer not in group.followers:
                    group.followers.append(layer)

    def tie(self, layout: Layout, layer: str) -> None:
        for seg in layout.segments:
            if seg.group is not None:
                tied = self.groups[self.find(seg.group)].tied_by
                if layer not in tied:
                    tied.append(layer)

    def fix_layout(self, layout: Layout, reason: str) -> None:
        for seg in layout.segments:
            self.fix(seg.group, reason)


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

    def __init__(self, tracer: _Tracer, entry: dict):
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


class _Tracer:
    """Walks the layers in order, giving each output a Layout; one method per kind of layer."""

    def __init__(self, model):
        self.model = model
        self.b = _Builder()
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


def analyze(model) -> Analysis:
    """Channel groups of a Sequential or functional Keras model."""
    entries, output_names = graph(model)
    tracer = _Tracer(model)
    for entry in entries:
        _reduce_axis(entry, model)
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
    parent = dict(b.parent)
    groups = {b.find(gid): g for gid, g in b.groups.items()}
    analysis = Analysis(
        groups={root: groups[root] for root in sorted(groups)},
        producer_group={},
        inputs=tracer.inputs,
        outputs=tracer.outputs,
        kinds=tracer.kinds,
        blocked=tracer.blocked,
        reshapes=tracer.reshapes,
        _parent=parent,
    )
    analysis.producer_group = {layer: analysis.find(gid) for layer, gid in tracer.producer_group.items()}
    for root, group in analysis.groups.items():
        group.id = root
    return analysis


def _reduce_axis(entry: dict, model) -> None:
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
