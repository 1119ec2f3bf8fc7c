"""Layer selectors: how a recipe names the layers a stage touches, on any model.

Wherever a recipe names layers (a stage's ``layers`` map keys, ``include`` and ``exclude``), a
selector is one of:

- a regular expression matched against the whole layer name, as before (``fc.*``, ``conv1``);
- ``type:REGEX``: layers whose Keras class name matches (``type:Dense``, ``type:Conv2D|DepthwiseConv2D``);
- ``role:ROLE``: layers by their place in the model, counted over the layers that hold a kernel
  (Dense, convolutions, embeddings…; activations, pooling, normalization and the like are looked
  through):

  - ``role:output``: the kernel layers that produce a model output (the classifier, even when a
    Softmax or Activation layer follows it);
  - ``role:first``: the kernel layers that read a model input (after any preprocessing layers);
  - ``role:largest``: the kernel layer with the most parameters;
  - ``role:hidden``: every kernel layer that is neither first nor output;
- ``feeds:TYPE``: the kernel layers whose output reaches a layer of class TYPE through layers without a
  kernel (``feeds:Multiply``: the layers feeding a squeeze-and-excite gate or a hard-swish).

``include`` and ``exclude`` also take the mapping form: ``{type: Dense}``, ``{role: output}``,
``{feeds: Multiply}``, ``{name: "fc.*"}``. A selector that matches no layer of the model is an error,
as a mistyped name is. Before a stage runs, its selectors are *bound* to the model it is given: each
becomes a regular expression of the exact names it selects, so the stages only ever match names.

Pure: the layer table is built from a model object's public attributes and ``channels.graph``; no
TensorFlow import happens here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("name", "type", "role", "feeds")
ROLES = {
    "output": "the kernel layers that produce a model output",
    "first": "the kernel layers that read a model input",
    "largest": "the kernel layer with the most parameters",
    "hidden": "the kernel layers that are neither first nor output",
}
_PREFIX = re.compile(r"(name|type|role|feeds):(.*)", re.S)


@dataclass(frozen=True)
class Selector:
    kind: str  # name, type, role or feeds
    value: str

    @property
    def text(self) -> str:
        return self.value if self.kind == "name" else f"{self.kind}:{self.value}"


@dataclass
class LayerInfo:
    name: str
    kind: str  # the Keras class name
    params: int = 0
    kernel: bool = False
    roles: set[str] = field(default_factory=set)
    feeds: set[str] = field(default_factory=set)  # class names this layer's output reaches through kernel-less layers


def parse(text: str) -> Selector:
    """The selector a string spells; ValueError (one line) when it cannot be one."""
    match = _PREFIX.fullmatch(text)
    kind, value = (match.group(1), match.group(2)) if match else ("name", text)
    if kind == "role":
        if value not in ROLES:
            raise ValueError(f"unknown role {value!r} in {text!r}; roles: {', '.join(ROLES)}")
        return Selector(kind, value)
    if not value:
        raise ValueError(f"{text!r} selects nothing: give a {'regular expression' if kind == 'name' else 'class name'}")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return Selector(kind, value)


def normalize(item) -> str:
    """A selector given as a string or as a one-key mapping ({type: Dense}), as its string form."""
    if isinstance(item, str):
        parse(item)
        return item
    if isinstance(item, dict) and len(item) == 1:
        ((kind, value),) = item.items()
        if kind not in KINDS:
            raise ValueError(f"unknown selector key {kind!r}; use one of {', '.join(KINDS)}")
        if not isinstance(value, str):
            raise ValueError(f"selector {kind}: expects a string, got {value!r}")
        text = value if kind == "name" else f"{kind}:{value}"
        parse(text)
        return text
    raise ValueError(
        f"a layer selector is a name regex or one of {{name: …}}, {{type: …}}, {{role: …}}, {{feeds: …}}; got {item!r}"
    )


def is_name_pattern(text: str) -> bool:
    return parse(text).kind == "name"


def matches(selector: Selector, layer: LayerInfo) -> bool:
    if selector.kind == "name":
        return re.fullmatch(selector.value, layer.name) is not None
    if selector.kind == "type":
        return re.fullmatch(selector.value, layer.kind) is not None
    if selector.kind == "role":
        return selector.value in layer.roles
    return any(re.fullmatch(selector.value, kind) for kind in layer.feeds)


def resolve(text: str, table: list[LayerInfo]) -> list[str]:
    """The names of the layers a selector picks, in model order."""
    selector = parse(text)
    return [layer.name for layer in table if matches(selector, layer)]


def exact(names: list[str]) -> str:
    """A regular expression that matches exactly these names."""
    return "|".join(re.escape(name) for name in names)


def describe_miss(text: str, table: list[LayerInfo]) -> str:
    """Why a selector matched nothing, with what the model does have."""
    selector = parse(text)
    if selector.kind == "type" or selector.kind == "feeds":
        kinds = sorted({layer.kind for layer in table})
        return f"{text!r} matches no layer of the model (layer types: {', '.join(kinds)})"
    if selector.kind == "role":
        return f"{text!r} matches no layer of the model ({ROLES[selector.value]}: none)"
    names = [layer.name for layer in table]
    shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    return f"{text!r} matches no layer of the model (layers: {shown})"


# --------------------------------------------------------------------------- binding to a model


def selector_fields(params) -> list[str]:
    return [name for name in ("include", "exclude") if getattr(params, name, None)]


def needs_binding(params) -> bool:
    """Whether a stage's params hold any selector other than a name regex."""
    texts = [t for name in selector_fields(params) for t in getattr(params, name)]
    layers = getattr(params, "layers", None)
    if isinstance(layers, dict):
        texts += list(layers)
    return any(not is_name_pattern(t) for t in texts)


class Unmatched(ValueError):
    """A selector that matches no layer: ``loc`` is its place in the stage's params."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


def bind(params, table: list[LayerInfo]):
    """``params`` with every type/role/feeds selector replaced by a regex of the exact names it selects.

    Returns (bound params, {bound layers-map key: the recipe's key}). Raises ``Unmatched`` for a
    selector that picks no layer. Name regexes stay as written (checked elsewhere, with hints).
    """
    if not needs_binding(params):
        return params, {}
    update, origin = {}, {}

    def bound(text: str, loc: tuple) -> str:
        if is_name_pattern(text):
            return text
        names = resolve(text, table)
        if not names:
            raise Unmatched(loc, describe_miss(text, table))
        return exact(names)

    for name in selector_fields(params):
        update[name] = [bound(t, (name, i)) for i, t in enumerate(getattr(params, name))]
    layers = getattr(params, "layers", None)
    if isinstance(layers, dict) and layers:
        mapped = {}
        for key, value in layers.items():
            new = bound(key, ("layers", key))
            if new not in mapped:  # two selectors picking the same layers: the first wins, as in matching
                mapped[new] = value
                origin[new] = key
        update["layers"] = mapped
    return params.model_copy(update=update), origin


# --------------------------------------------------------------------------- the layer table of a model


def _kernel(layer) -> bool:
    if hasattr(layer, "layers"):  # a nested model counts as one kernel layer when it has weights
        return bool(getattr(layer, "built", True) and layer.count_params())
    # Kernels, depthwise/pointwise/recurrent kernels and embeddings: the weights compression acts on.
    return any(w.name.endswith(("kernel:0", "embeddings:0")) for w in layer.weights)


def layer_table(model) -> list[LayerInfo]:
    """Every layer of ``model`` (InputLayer aside) with its class, parameter count and roles."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    table = {
        layer.name: LayerInfo(
            layer.name, type(layer).__name__, int(layer.count_params()) if layer.built else 0, _kernel(layer)
        )
        for layer in layers
    }
    order = [layer.name for layer in layers]
    reads, outputs = _edges(model, order)
    _assign_roles(table, order, reads, outputs)
    return [table[name] for name in order]


def _edges(model, order: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Which layers each layer reads, and the output layers; a chain in model order when unreadable."""
    try:
        from compressctl.model.channels import graph

        entries, outputs = graph(model)
        reads = {e["name"]: [r for r in e["reads"] if r in order] for e in entries if e["name"] in order}
        if set(reads) == set(order) and outputs:
            return reads, [o for o in outputs if o in order]
    except Exception:  # noqa: BLE001 - a model whose config cannot be read is treated as a chain
        pass
    return {name: ([order[i - 1]] if i else []) for i, name in enumerate(order)}, order[-1:]


def _assign_roles(table: dict[str, LayerInfo], order, reads, outputs) -> None:
    # Forward: reached from a model input through kernel-less layers only.
    open_from_input = {}
    for name in order:
        parents = reads.get(name) or []
        from_input = not parents or any(open_from_input.get(p, False) for p in parents)
        if table[name].kernel and from_input:
            table[name].roles.add("first")
        open_from_input[name] = from_input and not table[name].kernel
    # Backward: what each layer's output reaches through kernel-less layers.
    consumers: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for parent in reads.get(name) or []:
            consumers[parent].append(name)
    reaches_output, reached_kinds = {}, {}
    for name in reversed(order):
        out = name in outputs
        kinds: set[str] = set()
        for child in consumers[name]:
            kinds.add(table[child].kind)
            if not table[child].kernel:
                out = out or reaches_output[child]
                kinds |= reached_kinds[child]
        reaches_output[name], reached_kinds[name] = out, kinds
        if table[name].kernel:
            table[name].feeds = kinds
            if out:
                table[name].roles.add("output")
    kernels = [table[n] for n in order if table[n].kernel]
    if kernels:
        max(kernels, key=lambda info: info.params).roles.add("largest")
    for info in kernels:
        if not info.roles & {"first", "output"}:
            info.roles.add("hidden")
