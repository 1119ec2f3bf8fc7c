"""Weight clustering (weight sharing): each layer's weights take one of N trained centroid values.

``grid: int4`` puts the shared values on the int4 grid of their tensor, so that 4-bit weight storage
(the LiteRT Quantizer's channelwise ``weight-only-int4`` / ``dynamic-int4``) holds the clustered
weights exactly: after the centroids are trained, each output channel's values are snapped to
multiples of that channel's int4 scale, ``max|w| / 7`` — the scale the quantizer's symmetric
min/max computes from the same weights, so its quantization is then lossless (as QAT's per-channel
fake quantization does for int8). The snap happens inside the stage, so the metric measured after
it is the metric of the weights the file stores.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from compressctl.core.errors import first_line
from compressctl.model.params import FineTune, LayerSelection, check_per_layer, first_match
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    clone_with,
    kernel_arrays,
    kernel_weights,
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

# grid → the values one output channel can hold in that many bits (int4: -8..7; the symmetric grid uses -7..7).
GRID_BITS = {"int4": 4}
GRID_LEVELS = {"int4": 7}
# Keras layers whose kernel the quantizer quantizes per output channel, and the Keras kernel axes that
# index one channel (the TFLite weight's quantized dimension): Dense/Conv kernels end in the output
# channels; a depthwise kernel [h, w, in, multiplier] becomes TFLite's [1, h, w, in·multiplier].
GRID_CHANNEL_AXES = {
    "Dense": (-1,),
    "Conv1D": (-1,),
    "Conv2D": (-1,),
    "Conv3D": (-1,),
    "DepthwiseConv2D": (2, 3),
}


def snap_to_grid(kernel: np.ndarray, channel_axes: tuple[int, ...], levels: int = 7) -> np.ndarray:
    """``kernel`` with each output channel's values on its symmetric integer grid: multiples of
    ``max|w| / levels`` of that channel (zeros stay zero; an all-zero channel stays so)."""
    axes = tuple(a % kernel.ndim for a in channel_axes)
    reduce = tuple(a for a in range(kernel.ndim) if a not in axes)
    bound = np.max(np.abs(kernel), axis=reduce, keepdims=True).astype(np.float32)
    scale = np.where(bound > 0, bound / np.float32(levels), np.float32(1))
    steps = np.clip(np.rint(kernel / scale), -levels, levels)
    return (steps * scale).astype(kernel.dtype)


def per_channel_unique(kernel: np.ndarray, channel_axes: tuple[int, ...]) -> int:
    """The most distinct values any one output channel of ``kernel`` holds."""
    axes = tuple(a % kernel.ndim for a in channel_axes)
    moved = np.moveaxis(kernel, axes, tuple(range(kernel.ndim - len(axes), kernel.ndim)))
    rows = moved.reshape(-1, int(np.prod([kernel.shape[a] for a in axes]))).T
    return max((int(np.unique(row).size) for row in rows), default=0)


class Cluster(Stage):
    """Share weights: cluster each selected layer's kernel into ``number_of_clusters`` values."""

    type = "cluster"
    order = 2
    leaves = "the shared weights"
    blocks = "new zeros would break the shared weights"
    figures = (
        Figure("unique_weights", "int", "≤ {value} unique weights per layer"),
        Figure("unique_per_channel", "int", "≤ {value} per output channel (grid)"),  # with grid only
    )
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
        grid: Literal["int4"] | None = Field(
            None,
            description="Snap each output channel's shared values to its int4 grid (multiples of max|w|/7), so "
            "the LiteRT Quantizer's channelwise int4 weights store the clustered model exactly; at most 16 clusters.",
        )

        @model_validator(mode="after")
        def _clusters_fit_the_grid(self):
            if self.grid is None:
                return self
            most = 2 ** GRID_BITS[self.grid]
            counts = [(("number_of_clusters",), self.number_of_clusters)]
            counts += [(("layers", name), count) for name, count in self.layers.items()]
            for at, count in counts:
                if count > most:
                    raise PydanticCustomError(
                        "clusters_over_grid",
                        "{count} clusters cannot be stored in {bits} bits (grid: {grid} holds at most {most} "
                        "values per channel): use at most {most} clusters, or drop `grid`",
                        {"count": count, "bits": GRID_BITS[self.grid], "grid": self.grid, "most": most, "at": at},
                    )
            return self

        @field_validator("layers")
        @classmethod
        def _layer_counts(cls, value):
            return check_per_layer(value, lambda c: 2 <= c <= 256, "clusters", "[2, 256]")

    @classmethod
    def supports(cls, layer) -> bool | str:
        reason = unweighted(layer, "cluster")
        if reason:
            return reason
        from compressctl.core.internals import tfmot as tfmot_internals

        if tfmot_internals.can_cluster(layer):
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
        from compressctl.core.internals import tfmot as tfmot_internals

        mot = tfmot()

        p = self.params
        init = getattr(mot.clustering.keras.CentroidInitialization, CENTROID_INIT[p.centroid_init])
        skipped, counts = [], {}
        few = {}  # layers with no more distinct values than clusters: not clustered, still snapped with grid

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
                also = f"; snapped to the {p.grid} grid" if p.grid else ""
                skipped.append(
                    {"layer": layer.name, "reason": f"{distinct} {kind} are too few for {clusters} clusters{also}"}
                )
                few[layer.name] = clusters
                return layer
            try:
                wrapped = tfmot_internals.cluster_weights(
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
            snapped = self._snap(model, few, skipped) if p.grid and few else []
            notes = ["no layer was selected for clustering", *snapped]
            return StageResult(model=model, skipped_layers=skipped, notes=notes)
        ctx.fit(wrapped, p.epochs, p.learning_rate, p.batch_size, "cluster")
        stripped = mot.clustering.keras.strip_clustering(wrapped)
        # A layer with fewer distinct values than clusters is snapped too: int4 would round it all the same.
        notes = self._snap(stripped, {**counts, **few}, skipped) if p.grid else []
        measured = measure_unique(stripped, counts)
        if p.grid:
            widest = {}
            for layer in stripped.layers:
                axes = GRID_CHANNEL_AXES.get(type(layer).__name__)
                if layer.name in counts and axes is not None:
                    widest[layer.name] = max(per_channel_unique(a, axes) for a in kernel_arrays(layer))
            for row in measured["layers"]:
                if row["layer"] in widest:
                    row["unique_per_channel"] = widest[row["layer"]]
            measured["measured"]["unique_per_channel"] = max(widest.values(), default=0)
        return StageResult(model=stripped, skipped_layers=skipped, notes=notes, **measured)

    def _snap(self, model, counts: dict[str, int], skipped: list[dict]) -> list[str]:
        """Snap the kernels of the layers in ``counts`` to their int4 grid (``grid``); layers it cannot are named in
        ``skipped``."""
        levels = GRID_LEVELS[self.params.grid]
        moved, done = 0.0, []
        for layer in model.layers:
            if layer.name not in counts:
                continue
            axes = GRID_CHANNEL_AXES.get(type(layer).__name__)
            if axes is None:
                skipped.append(
                    {
                        "layer": layer.name,
                        "reason": f"grid {self.params.grid}: {type(layer).__name__} is clustered but not snapped "
                        f"(its weights' quantized dimension is not known here: {', '.join(GRID_CHANNEL_AXES)} are)",
                    }
                )
                continue
            for variable in kernel_weights(layer):
                kernel = variable.numpy()
                snapped = snap_to_grid(kernel, axes, levels)
                scale = float(np.max(np.abs(kernel))) or 1.0
                moved = max(moved, float(np.max(np.abs(snapped - kernel))) / scale)
                variable.assign(snapped)
            done.append(layer.name)
        if not done:
            return [f"grid {self.params.grid}: no clustered layer could be snapped"]
        return [
            f"grid {self.params.grid}: {len(done)} layer(s) snapped to each output channel's int4 grid "
            f"(max|w|/7); the largest move was {100 * moved:.1f} % of a kernel's largest weight"
        ]
