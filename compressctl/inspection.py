"""``compressctl inspect``: the model's layers and which technique applies to each (and why not)."""

from __future__ import annotations

from compressctl.modelio import load_model
from compressctl.targets.edgetpu import keras_layer_support


def _layer_support(layer, mot, registries) -> dict:
    from compressctl.stages.base import kernel_arrays

    prune_registry, clustering_registry, quant_registry = registries
    kind = type(layer).__name__
    has_kernel = bool(kernel_arrays(layer))
    if hasattr(layer, "layers"):
        reason = "nested model: inspect and compress it separately"
        return {"prune": reason, "cluster": reason, "quantize": reason, "lowrank": reason, "edgetpu": reason}
    prune = (
        True
        if has_kernel and prune_registry.PruneRegistry.supports(layer)
        else ("no weights to prune" if not has_kernel else f"TFMOT cannot prune {kind}")
    )
    cluster = (
        True
        if has_kernel and clustering_registry.ClusteringRegistry.supports(layer)
        else ("no weights to cluster" if not has_kernel else f"TFMOT cannot cluster {kind}")
    )
    # issue 10: the quantize stage's own answer, so inspect/init and QAT agree on every layer
    from compressctl.stages.quantize import Quantize

    quantize = Quantize.supports(layer)
    # Predicted from the layer class and settings against the Edge TPU's documented ops; the
    # edgetpu target's mapping (or the compiler's log) is the authority on a converted model.
    edgetpu = keras_layer_support(layer)
    return {"prune": prune, "cluster": cluster, "quantize": quantize, "lowrank": _lowrank(layer), "edgetpu": edgetpu}


def _lowrank(layer) -> bool | str:
    """Whether the lowrank stage can factorize this layer (it still only does so where it saves)."""
    kind = type(layer).__name__
    if not layer.weights:
        return "no weights"
    if kind == "Dense":
        return True
    if kind in ("Conv1D", "Conv2D"):
        size = tuple(getattr(layer, "kernel_size", ()))
        return True if all(k == 1 for k in size) else f"{kind} kernel {size} is not 1×1"
    return f"lowrank factorizes Dense and 1×1 convolutions, not {kind}"


def inspect_model(path: str, trust_model: bool = False, custom_objects: str | None = None) -> dict:
    handle = load_model(path, trust_model=trust_model, custom_objects=custom_objects)
    info = {
        "model": str(handle.path),
        "format": handle.format,
        "input_shape": [None if d is None else int(d) for d in handle.input_shape],
        "output_shape": [None if d is None else int(d) for d in handle.output_shape],
        "trainable": handle.trainable,
        "notes": list(handle.notes),
        "layers": [],
    }
    if handle.keras is None:
        info["notes"].append("no Keras layers to show; only post-training targets (cpu int8/dynamic) apply")
        return info
    from compressctl.tfenv import tfmot

    mot = tfmot()
    from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    registries = (prune_registry, clustering_registry, default_8bit_quantize_registry.Default8BitQuantizeRegistry())
    model = handle.keras
    info["params"] = int(model.count_params())
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        row = {"name": layer.name, "class": type(layer).__name__, "params": int(layer.count_params())}
        row.update(_layer_support(layer, mot, registries))
        info["layers"].append(row)
    return info
