"""Channel groups of a Keras model, and the rebuild of a thinner model with chosen channels removed.

Removing output channels of a layer is only possible when every layer that reads them follows:
the next convolution or Dense drops the matching input rows, a BatchNormalization or depthwise
convolution drops the same channels, a Flatten maps each channel to the positions it occupies in
the flat vector. Layers joined by Add, Multiply (and the other element-wise merges) must keep the
same channels, so they form one **channel group** that is pruned as one; Concatenate places its
inputs' channels side by side. A layer the analysis cannot follow (a Reshape, a cross-channel
Softmax, a shared layer) leaves the channels that reach it whole, with the reason; the channels
that set the model's output are never pruned.

The analysis reads the model's config and its layers' shapes and weights; no TensorFlow import
happens here (the rebuild imports it through compressctl.tfenv).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

# Layers whose output channels are ranked and removed (filters / units), and their config key.
PRODUCERS = {"Conv1D": "filters", "Conv2D": "filters", "Dense": "units"}
# Layers that keep their input's channels and hold per-channel weights that follow a pruning.
PER_CHANNEL = ("BatchNormalization", "DepthwiseConv1D", "DepthwiseConv2D", "PReLU")
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


def graph(model) -> tuple[list[dict], list[str]]:
    """Layer entries in topological order, each with the names it reads, and the output layers' names."""
    config = model.get_config()
    entries = []
    if "output_layers" not in config:  # Sequential: a chain
        previous = None
        for entry in config["layers"]:
            name = entry["config"]["name"]
            entries.append({"name": name, "class": entry["class_name"], "config": entry["config"], "reads": []})
            if entry["class_name"] != "InputLayer" and previous is not None:
                entries[-1]["reads"] = [previous]
            previous = name
        # A Sequential without an InputLayer entry reads the model input in its first layer.
        if entries and entries[0]["class"] != "InputLayer":
            entries[0]["reads"] = []
        return entries, [previous] if previous else []
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes") or []
        item = {"name": entry["name"], "class": entry["class_name"], "config": entry["config"], "reads": []}
        if len(nodes) > 1:
            item["shared"] = len(nodes)
        elif nodes:
            refs = nodes[0]
            if isinstance(refs, dict):  # newer config formats: {"args": ..., "kwargs": ...}
                item["unreadable"] = True
            else:
                item["reads"] = [ref[0] for ref in refs]
                if any(ref[2] != 0 or (len(ref) > 3 and ref[3]) for ref in refs):
                    item["unreadable"] = True
        entries.append(item)
    return entries, [ref[0] for ref in config["output_layers"]]


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


def analyze(model) -> Analysis:
    """Channel groups of a Sequential or functional Keras model."""
    entries, output_names = graph(model)
    b = _Builder()
    outputs: dict[str, Layout] = {}
    inputs: dict[str, Layout] = {}
    kinds: dict[str, str] = {}
    blocked: dict[str, str] = {}
    producer_group: dict[str, int] = {}

    def fresh(width: int) -> Layout:
        return Layout([Segment(None, int(width))])

    for entry in entries:
        name, kind, cfg = entry["name"], entry["class"], entry["config"]
        kinds[name] = kind
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            outputs[name] = fresh(shape[-1] if shape and shape[-1] is not None else 0)
            continue
        layer = model.get_layer(name)
        try:
            out_shape = _shape(layer.output_shape)
            in_shape = _shape(layer.input_shape) if not isinstance(layer.input_shape, list) else None
        except (AttributeError, RuntimeError, ValueError):
            out_shape, in_shape = (), None
        if entry["reads"]:
            read = [outputs.get(r) for r in entry["reads"]]
        else:  # a Sequential's first layer reads the model input, whose channels are fixed
            read = [fresh(in_shape[-1] if in_shape and in_shape[-1] is not None else 0)]
        out_width = int(out_shape[-1]) if out_shape and out_shape[-1] is not None else 0

        def block(reason: str, name=name, kind=kind, read=read, out_width=out_width) -> None:
            blocked[name] = reason
            for layout in read:
                if layout is not None:
                    b.fix_layout(layout, f"read by {kind} layer {name}, which channel pruning cannot rewire ({reason})")
            outputs[name] = fresh(out_width)

        if any(layout is None for layout in read) or entry.get("unreadable"):
            block("its inputs could not be traced")
            continue
        if entry.get("shared"):
            block(f"shared layer, called {entry['shared']} times")
            continue
        if hasattr(layer, "layers"):
            block("nested model")
            continue
        single = read[0] if len(read) == 1 else None
        if kind in PRODUCERS:
            if single is None:
                block("more than one input")
                continue
            if kind != "Dense" and (not _channels_last(cfg) or cfg.get("groups", 1) != 1):
                block("channels_first or grouped convolution")
                continue
            if single.width != (in_shape[-1] if in_shape else -1):
                block("input channels do not match the traced layout")
                continue
            inputs[name] = single
            b.follow(single, name)
            gid = b.new(int(cfg[PRODUCERS[kind]]), name)
            producer_group[name] = gid
            if cfg.get("activation") in CROSS_CHANNEL_ACTIVATIONS:
                b.fix(gid, f"{name} applies {cfg['activation']} across its outputs")
            outputs[name] = Layout([Segment(gid, int(cfg[PRODUCERS[kind]]))])
            continue
        widens = kind.startswith("Depthwise") and cfg.get("depth_multiplier", 1) > 1
        follows = kind in PASS_THROUGH or kind in PER_CHANNEL
        if follows and single is not None and not widens and single.width != out_width:
            block("output channels differ from its input's")
            continue
        if kind in PER_CHANNEL:
            if single is None:
                block("more than one input")
                continue
            rank = len(in_shape) if in_shape else 0
            if kind == "BatchNormalization" and not _last_axis(cfg, rank):
                block("normalizes an axis other than the channels")
                continue
            if kind.startswith("Depthwise") and not _channels_last(cfg):
                block("channels_first")
                continue
            if kind.startswith("Depthwise") and single.spatial != 1:
                block("reads a flattened tensor")
                continue
            inputs[name] = single
            b.follow(single, name)
            multiplier = int(cfg.get("depth_multiplier", 1)) if kind.startswith("Depthwise") else 1
            if multiplier == 1:
                outputs[name] = single
            else:
                segments = [Segment(s.group, s.size, s.repeat * multiplier) for s in single.segments]
                outputs[name] = Layout(segments, single.spatial)
            if outputs[name].width != out_width:
                block("output channels differ from the traced layout")
            continue
        if kind in PASS_THROUGH:
            if single is None:
                block("more than one input")
                continue
            if cfg.get("activation") in CROSS_CHANNEL_ACTIVATIONS:
                block(f"{cfg['activation']} mixes channels")
                continue
            if not _channels_last(cfg):
                block("channels_first")
                continue
            outputs[name] = single
            continue
        if kind == "Flatten":
            if single is None or not _channels_last(cfg) or not in_shape or any(d is None for d in in_shape[1:]):
                block("needs a known channels_last input shape")
                continue
            spatial = int(np.prod(in_shape[1:-1])) if len(in_shape) > 2 else 1
            outputs[name] = Layout(single.segments, single.spatial * spatial)
            continue
        if kind in MERGES or (kind == "Concatenate" and not _last_axis(cfg, len(out_shape))):
            first = read[0]
            same = all(
                layout.spatial == first.spatial
                and len(layout.segments) == len(first.segments)
                and all(
                    (s.size, s.repeat) == (t.size, t.repeat)
                    for s, t in zip(layout.segments, first.segments, strict=True)
                )
                for layout in read
            )
            if not same or first.width != out_width:
                block("its inputs' channels are laid out differently (broadcasting?)")
                continue
            segments = []
            for index, seg in enumerate(first.segments):
                column = [layout.segments[index] for layout in read]
                groups = [s.group for s in column]
                if any(g is None for g in groups):
                    for g in groups:
                        b.fix(g, f"joined by {kind} layer {name} to channels that cannot be pruned")
                    segments.append(Segment(None, seg.size, seg.repeat))
                    continue
                for g in groups[1:]:
                    b.union(groups[0], g, name)
                tied = b.groups[b.find(groups[0])].tied_by
                if name not in tied:
                    tied.append(name)
                segments.append(Segment(groups[0], seg.size, seg.repeat))
            outputs[name] = Layout(segments, first.spatial)
            continue
        if kind == "Concatenate":
            if any(layout.spatial != 1 for layout in read):
                block("concatenates flattened tensors")
                continue
            segments = [seg for layout in read for seg in layout.segments]
            for seg in segments:
                if seg.group is not None:
                    group = b.groups[b.find(seg.group)]
                    if name not in group.tied_by:
                        group.tied_by.append(name)
            outputs[name] = Layout(segments)
            if outputs[name].width != out_width:
                block("output channels differ from the traced layout")
            continue
        block(f"{kind} is not a layer channel pruning can follow")

    for name in output_names:
        for seg in (outputs.get(name) or Layout([])).segments:
            if seg.group is not None:  # the clearest reason wins over any found before
                b.groups[b.find(seg.group)].fixed = "sets the model's output"
    parent = dict(b.parent)
    groups = {b.find(gid): g for gid, g in b.groups.items()}
    analysis = Analysis(
        groups={root: groups[root] for root in sorted(groups)},
        producer_group={},
        inputs=inputs,
        outputs=outputs,
        kinds=kinds,
        blocked=blocked,
        _parent=parent,
    )
    analysis.producer_group = {layer: analysis.find(gid) for layer, gid in producer_group.items()}
    for root, group in analysis.groups.items():
        group.id = root
    return analysis


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
    from compressctl.tfenv import keras

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
    cls = k.Sequential if isinstance(model, k.Sequential) else k.Model
    thin = cls.from_config(config)
    for layer in thin.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        weights = model.get_layer(layer.name).get_weights()
        if weights:
            layer.set_weights(slice_weights(analysis, layer.name, weights, keep))
    return thin


def slice_weights(analysis: Analysis, name: str, weights: list[np.ndarray], keep: dict) -> list[np.ndarray]:
    """The layer's weights with the removed input and output channels dropped."""
    kind = analysis.kinds.get(name)
    if name in analysis.blocked or name not in analysis.inputs:
        return weights
    in_index = analysis.indices(analysis.inputs[name], keep)
    if kind in PRODUCERS:
        root = analysis.producer_group[name]
        out_index = keep.get(root)
        kernel = np.take(weights[0], in_index, axis=-2)
        if out_index is not None:
            kernel = np.take(kernel, out_index, axis=-1)
        rest = [w if out_index is None else np.take(w, out_index, axis=-1) for w in weights[1:]]
        return [kernel, *rest]
    if kind.startswith("Depthwise"):
        out_index = analysis.indices(analysis.outputs[name], keep)
        kernel = np.take(weights[0], in_index, axis=-2)
        return [kernel, *[np.take(w, out_index, axis=-1) for w in weights[1:]]]
    # BatchNormalization's four vectors, PReLU's alpha: one value per position of the last axis.
    width = analysis.inputs[name].width
    return [np.take(w, in_index, axis=-1) if w.shape and w.shape[-1] == width else w for w in weights]
