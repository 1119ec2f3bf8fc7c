"""The result of the channel analysis: channel layouts, channel groups and the union-find that builds them.

A ``Layout`` says which group each position of a tensor's last axis belongs to; ``GroupBuilder``
creates a group per producer and joins groups a merge ties together; ``Analysis`` is what the
tracer leaves behind, read by the rebuild and by the pruning stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


class GroupBuilder:
    """Channel groups under construction: a union-find over the groups' ids."""

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

    def analysis(self, *, producer_group, inputs, outputs, kinds, blocked, reshapes) -> Analysis:
        """The finished result: each group keyed by its root id, each producer mapped to its root."""
        parent = dict(self.parent)
        groups = {self.find(gid): g for gid, g in self.groups.items()}
        analysis = Analysis(
            groups={root: groups[root] for root in sorted(groups)},
            producer_group={},
            inputs=inputs,
            outputs=outputs,
            kinds=kinds,
            blocked=blocked,
            reshapes=reshapes,
            _parent=parent,
        )
        analysis.producer_group = {layer: analysis.find(gid) for layer, gid in producer_group.items()}
        for root, group in analysis.groups.items():
            group.id = root
        return analysis
