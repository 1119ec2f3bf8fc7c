"""Reading a Keras model's layer graph: which layers each layer reads, in topological order.

A functional model is read from its live graph (each layer's inbound nodes, with the non-tensor
arguments of each call), a Sequential from its config. Nothing here knows about channels.
"""

from __future__ import annotations

from compressctl.core.internals import keras as keras_internals


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
    if not keras_internals.is_graph_network(model) or type(model).__name__ == "Sequential":
        return _sequential_graph(model)
    in_model = keras_internals.nodes_by_depth(model)
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
    outputs = [keras_internals.history_layer(t).name for t in model.outputs]
    return entries, outputs


def _constants(node) -> list:
    """The arguments of a layer call that are not tensors (its name and None left out)."""
    args = list(node.call_args[1:]) + [v for k, v in node.call_kwargs.items() if k != "name"]
    if node.call_args and not keras_internals.is_symbolic(node.call_args[0]):
        args.insert(0, node.call_args[0])  # ``3 - x`` puts the constant first
    flat = []
    for arg in args:
        for value in arg if isinstance(arg, list | tuple) else [arg]:
            if value is not None and not keras_internals.is_symbolic(value):
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
