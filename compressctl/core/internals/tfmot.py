"""TFMOT's internals: the registries of the layers it can prune, cluster and quantize, and two APIs it does not export.

- ``PruneRegistry.supports`` and ``ClusteringRegistry.supports``: whether TFMOT can prune or cluster
  a layer (what ``inspect`` shows and what the stages skip), without wrapping it.
- ``clustering.keras.experimental.cluster.cluster_weights``: clustering with ``preserve_sparsity``
  (the public ``cluster_weights`` has no such option).
- ``Default8BitQuantizeRegistry``: the default QuantizeConfig of each layer QAT annotates.
- ``default_8bit_quantize_configs.NoOpQuantizeConfig``: a layer annotated with no quantizer of its own.
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal, resolve
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "tensorflow-model-optimization"

_CORE = "tensorflow_model_optimization.python.core"
PRUNE_REGISTRY = f"{_CORE}.sparsity.keras.prune_registry"
CLUSTERING_REGISTRY = f"{_CORE}.clustering.keras.clustering_registry"
EXPERIMENTAL_CLUSTER = f"{_CORE}.clustering.keras.experimental.cluster"
QUANTIZE_REGISTRY = f"{_CORE}.quantization.keras.default_8bit.default_8bit_quantize_registry"
QUANTIZE_CONFIGS = f"{_CORE}.quantization.keras.default_8bit.default_8bit_quantize_configs"


def _module(dotted: str):
    """``dotted``, imported once TFMOT is (TensorFlow must be configured first)."""
    from compressctl.core.env import tfmot

    tfmot()
    return resolve(dotted)


def _finder(dotted: str):
    return lambda: _module(dotted)


INTERNALS = (
    Internal(
        f"{PRUNE_REGISTRY}.PruneRegistry",
        "supports",
        "which layers prune can wrap",
        _finder(f"{PRUNE_REGISTRY}.PruneRegistry"),
    ),
    Internal(
        f"{CLUSTERING_REGISTRY}.ClusteringRegistry",
        "supports",
        "which layers cluster can wrap",
        _finder(f"{CLUSTERING_REGISTRY}.ClusteringRegistry"),
    ),
    Internal(
        EXPERIMENTAL_CLUSTER,
        "cluster_weights",
        "clustering that preserves sparsity",
        _finder(EXPERIMENTAL_CLUSTER),
        ("number_of_clusters", "cluster_centroids_init", "preserve_sparsity"),
    ),
    Internal(QUANTIZE_REGISTRY, "Default8BitQuantizeRegistry", "QAT's default configs", _finder(QUANTIZE_REGISTRY)),
    Internal(
        QUANTIZE_CONFIGS, "NoOpQuantizeConfig", "layers QAT annotates without quantizers", _finder(QUANTIZE_CONFIGS)
    ),
)


def can_prune(layer) -> bool:
    """True when TFMOT's prune registry knows ``layer``'s class."""
    return bool(_module(PRUNE_REGISTRY).PruneRegistry.supports(layer))


def can_cluster(layer) -> bool:
    """True when TFMOT's clustering registry knows ``layer``'s class."""
    return bool(_module(CLUSTERING_REGISTRY).ClusteringRegistry.supports(layer))


def cluster_weights(layer, **kwargs):
    """TFMOT's experimental ``cluster_weights`` (it takes ``preserve_sparsity``)."""
    return _module(EXPERIMENTAL_CLUSTER).cluster_weights(layer, **kwargs)


def default_8bit_registry():
    """A new ``Default8BitQuantizeRegistry``."""
    return _module(QUANTIZE_REGISTRY).Default8BitQuantizeRegistry()


def no_op_quantize_config():
    """A new ``NoOpQuantizeConfig``: the layer is annotated, with no quantizer of its own."""
    return _module(QUANTIZE_CONFIGS).NoOpQuantizeConfig()


def check() -> list[str]:
    """One line per internal above that the installed TFMOT lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
