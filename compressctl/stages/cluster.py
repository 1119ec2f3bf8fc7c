"""Weight clustering (weight sharing): each layer's weights take one of N trained centroid values."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from compressctl.core.errors import first_line
from compressctl.model.params import FineTune, LayerSelection, check_per_layer, first_match
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    clone_with,
    kernel_arrays,
    measure_unique,
    require_keras,
    unweighted,
)

__all__ = ["Cluster", "measure_unique"]

CENTROID_INIT = {
    "kmeans++": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density": "DENSITY_BASED",
    "random": "RANDOM",
}


class Cluster(Stage):
    """Share weights: cluster each selected layer's kernel into ``number_of_clusters`` values."""

    type = "cluster"
    order = 2
    leaves = "the shared weights"
    blocks = "new zeros would break the shared weights"
    figures = (Figure("unique_weights", "int", "≤ {value} unique weights per layer"),)
    layer_figures = (Figure("unique_weights", "int", heading="unique weights"), Figure("clusters", "int"))

    class Params(LayerSelection, FineTune):
        type: Literal["cluster"]
        number_of_clusters: int = Field(16, ge=2, le=256, description="Distinct weight values per layer.")
        layers: dict[str, int] = Field(
            default_factory=dict,
            description="Per-layer cluster counts: layer selector (name regex, type:, role:, feeds:) → clusters; "
            "the first match wins.",
        )
        centroid_init: Literal["kmeans++", "linear", "density", "random"] = Field(
            "kmeans++", description="How the centroids start (TFMOT CentroidInitialization)."
        )
        preserve_sparsity: bool = Field(
            True, description="Keep zeros at zero (pruned weights stay pruned: prune → cluster)."
        )

        @field_validator("layers")
        @classmethod
        def _layer_counts(cls, value):
            return check_per_layer(value, lambda c: 2 <= c <= 256, "clusters", "[2, 256]")

    @classmethod
    def supports(cls, layer) -> bool | str:
        reason = unweighted(layer, "cluster")
        if reason:
            return reason
        from compressctl.core.env import tfmot

        tfmot()
        from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry

        if clustering_registry.ClusteringRegistry.supports(layer):
            return True
        return f"TFMOT cannot cluster {type(layer).__name__}"

    def clusters_for(self, layer_name: str) -> int | None:
        if not self.params.selects(layer_name):
            return None
        count = first_match(self.params.layers, layer_name)
        return self.params.number_of_clusters if count is None else count

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "cluster")
        from compressctl.core.env import tfmot

        mot = tfmot()
        from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster as experimental

        p = self.params
        init = getattr(mot.clustering.keras.CentroidInitialization, CENTROID_INIT[p.centroid_init])
        skipped, counts = [], {}

        def wrap(layer):
            clusters = self.clusters_for(layer.name)
            arrays = kernel_arrays(layer)
            if clusters is None or not arrays:
                return layer
            supported = self.supports(layer)
            if supported is not True:
                skipped.append({"layer": layer.name, "reason": supported})
                return layer
            # k-means++ needs more distinct values than clusters; with preserve_sparsity it sees
            # only the non-zero weights.
            distinct = min(int(np.unique(a[a != 0] if p.preserve_sparsity else a).size) for a in arrays)
            if distinct <= clusters:
                kind = "distinct non-zero weights" if p.preserve_sparsity else "distinct weights"
                skipped.append(
                    {"layer": layer.name, "reason": f"{distinct} {kind} are too few for {clusters} clusters"}
                )
                return layer
            try:
                wrapped = experimental.cluster_weights(
                    layer,
                    number_of_clusters=clusters,
                    cluster_centroids_init=init,
                    preserve_sparsity=p.preserve_sparsity,
                )
            except (ValueError, TypeError) as exc:
                skipped.append({"layer": layer.name, "reason": first_line(exc)})
                return layer
            counts[layer.name] = clusters
            return wrapped

        wrapped = clone_with(model, wrap, "cluster")
        if not counts:
            return StageResult(model=model, skipped_layers=skipped, notes=["no layer was selected for clustering"])
        ctx.fit(wrapped, p.epochs, p.learning_rate, p.batch_size, "cluster")
        stripped = mot.clustering.keras.strip_clustering(wrapped)
        return StageResult(model=stripped, skipped_layers=skipped, **measure_unique(stripped, counts))
