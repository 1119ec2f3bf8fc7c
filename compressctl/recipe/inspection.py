"""``compressctl inspect``: the model's layers and which technique applies to each (and why not).

Every answer comes from the stage and target classes themselves (``Stage.supports``,
``Target.supports``), so ``inspect``, ``init`` and the stages cannot disagree.
"""

from __future__ import annotations

from compressctl.model.loading import load_model, output_layer_activation
from compressctl.model.selectors import layer_table
from compressctl.stages import STAGE_TYPES
from compressctl.stages.base import nested_model
from compressctl.targets import TARGETS
from compressctl.targets.base import Target


def techniques() -> list[tuple[str, object]]:
    """(column name, class) for every stage and target with a per-layer answer, stages in legal order."""
    stages = [(cls.type, cls) for cls in STAGE_TYPES if cls.per_layer]
    targets = [(name, cls) for name, cls in TARGETS.items() if cls.supports.__func__ is not Target.supports.__func__]
    return stages + targets


def layer_support(layer) -> dict[str, bool | str]:
    """Each technique's answer for one layer: True, or the reason it does not apply."""
    if nested_model(layer):
        reason = "nested model: inspect and compress it separately"
        return {name: reason for name, _ in techniques()}
    return {name: cls.supports(layer) for name, cls in techniques()}


def weight_shapes(layer) -> dict[str, list[int]]:
    """The layer's own weights by short name (``kernel``, ``bias``, ``moving_mean``...) and shape."""
    shapes = {}
    for weight in layer.weights:
        short = weight.name.split("/")[-1].split(":")[0]
        while short in shapes:  # two weights of one name (nested layers): keep both
            short += "_"
        shapes[short] = [int(d) for d in weight.shape]
    return shapes


def inspect_model(path: str, trust_model: bool = False, custom_objects: str | None = None) -> dict:
    handle = load_model(path, trust_model=trust_model, custom_objects=custom_objects)
    info = {
        "model": str(handle.path),
        "format": handle.format,
        "input_shape": [None if d is None else int(d) for d in handle.input_shape],
        "output_shape": [None if d is None else int(d) for d in handle.output_shape],
        "trainable": handle.trainable,
        "notes": list(handle.notes),
        "techniques": [name for name, _ in techniques()],
        "layers": [],
        # What `init` sizes its gates from (issue 18): the output it scores, each layer's weight shapes.
        "output_units": int(handle.output_units),
    }
    if handle.keras is None:
        info["notes"].append("no Keras layers to show; only post-training targets (cpu int8/dynamic) apply")
        return info
    model = handle.keras
    info["params"] = int(model.count_params())
    try:
        info["output_activation"] = output_layer_activation(model)
    except (AttributeError, IndexError, TypeError):  # a graph whose output layer cannot be traced
        info["output_activation"] = None
    roles = {row.name: sorted(row.roles) for row in layer_table(model)}  # what role: selectors pick
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        row = {"name": layer.name, "class": type(layer).__name__, "params": int(layer.count_params())}
        row["roles"] = roles.get(layer.name, [])
        row["weights"] = weight_shapes(layer)
        row.update(layer_support(layer))
        info["layers"].append(row)
    _channel_groups(model, info)  # issue 12: structured pruning
    return info


def _channel_groups(model, info: dict) -> None:
    """Which layers prune_channels can thin (its ``supports``, then the group's ties) and the groups found."""
    from compressctl.model.channels import analyze
    from compressctl.stages.prune_channels import PruneChannels

    try:
        analysis = analyze(model)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:  # a config the analysis cannot read
        info["channel_groups"] = []
        info["notes"].append(f"channel groups could not be traced: {exc}")
        analysis = None
    else:
        info["channel_groups"] = analysis.describe()
    for row in info["layers"]:
        support = PruneChannels.supports(model.get_layer(row["name"]))
        if support is True and analysis is not None:
            support = analysis.layer_reason(row["name"]) or True
        row["prune_channels"] = support
