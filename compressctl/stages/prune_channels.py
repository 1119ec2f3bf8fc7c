"""Structured pruning: remove whole filters and units, so the model itself gets thinner (and faster).

Weight pruning zeroes weights inside dense kernels, which at batch 1 do the same work; removing a
filter removes its share of the layer's and the next layer's work on every runtime. Each channel
group (compressctl.model.channels) is ranked by a criterion, its lowest ``ratio`` is removed, and a
thinner model is rebuilt with the surviving weights copied.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from compressctl.core.errors import UserError
from compressctl.model.params import FineTune, LayerSelection, check_patterns, first_match
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    require_graph_model,
    require_keras,
)

CRITERIA = ("l1", "l2", "gamma", "taylor")


class PruneChannels(Stage):
    """Rank the filters/units of each channel group, remove the lowest ``ratio``, rebuild, fine-tune."""

    type = "prune_channels"
    order = 0  # it rebuilds the model's layers, as lowrank does
    restructures = True
    leaves = "a thinner architecture"
    why_first = "channel pruning rebuilds the layers"
    figures = (
        Figure("params_before", "int", "params {value:,}"),
        Figure("params_after", "int", "→ {value:,}"),
        Figure("pruned_layers", "int", "{value} layers thinned"),
        Figure("macs_before", "int", "MACs {value:,}"),
        Figure("macs_after", "int", "→ {value:,}"),
    )
    layer_figures = (
        Figure("channels_before", "int"),
        Figure("channels_after", "int"),
        Figure("params_before", "int"),
        Figure("params_after", "int"),
        Figure("macs_before", "int", heading="MACs before"),
        Figure("macs_after", "int", heading="MACs after"),
        Figure("ratio", "float", "{value:g}"),
    )

    class Params(LayerSelection, FineTune):
        type: Literal["prune_channels"]
        ratio: float = Field(
            0.5,
            ge=0,
            lt=1,
            description="Fraction of each selected layer's filters or units removed (layers not in `layers`).",
        )
        layers: dict[str, float] = Field(
            default_factory=dict,
            description="Per-layer ratio: layer selector (name regex, type:, role:, feeds:) → fraction removed; "
            "the first match in recipe order wins. Every selector must match a layer of the model.",
        )
        criterion: Literal["l1", "l2", "gamma", "taylor"] = Field(
            "l1",
            description="How channels are ranked: l1 or l2 norm of each filter, |gamma| of the BatchNormalization "
            "after it, or first-order Taylor (Σ gradient × weight of the filter)² on a few training batches.",
        )
        taylor_batches: int = Field(8, ge=1, le=10_000, description="Training batches the taylor criterion reads.")
        multiple_of: int = Field(
            1, ge=1, le=4096, description="Round each layer's kept channels to a multiple of this (8 suits SIMD)."
        )
        epochs: int = Field(2, ge=0, le=1000, description="Fine-tuning epochs after removing channels (0: none).")
        learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")
        teacher: Literal["none", "original"] = Field(
            "none",
            description="original: fine-tune by distillation from the unpruned model (the stage's input); "
            "none: on the labels alone.",
        )
        alpha: float = Field(
            0.1, ge=0, le=1, description="With teacher: original, the weight of the hard-label loss (1 − alpha: KL)."
        )
        temperature: float = Field(4.0, gt=0, le=100, description="With teacher: original, the softmax temperature.")

        @field_validator("layers")
        @classmethod
        def _layer_ratios(cls, value):
            check_patterns(value)
            for pattern, ratio in value.items():
                if not 0 <= ratio < 1:
                    raise ValueError(f"ratio for {pattern!r} must be in [0, 1), got {ratio}")
            return value

    @classmethod
    def supports(cls, layer) -> bool | str:
        from compressctl.model.channels import PRODUCERS

        kind = type(layer).__name__
        if hasattr(layer, "layers"):
            return "nested model: inspect and compress it separately"
        if kind.startswith("Depthwise"):
            return "depthwise: follows the channels of the layer that feeds it"
        if kind not in PRODUCERS:
            return f"{kind} has no filters or units to remove"
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            return "channels_first"
        if config.get("groups", 1) != 1:
            return "grouped convolution"
        return True

    # ------------------------------------------------------------------ selection

    def ratio_for(self, layer_name: str) -> tuple[float, tuple] | None:
        """The ratio for a layer and the recipe field it comes from, or None when the layer is not selected."""
        if not self.params.selects(layer_name):
            return None
        for pattern in self.params.layers:
            if re.fullmatch(pattern, layer_name):
                return first_match(self.params.layers, layer_name), ("layers", pattern)
        return self.params.ratio, ("ratio",)

    def plan(self, model, analysis) -> tuple[dict, list[dict], list[tuple[tuple, str]]]:
        """Kept-channel counts per group, layers left whole (with why), and problems (recipe field, message)."""
        from compressctl.model.channels import keep_count

        p = self.params
        names = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
        problems = []
        for field_name, patterns in (("layers", list(p.layers)), ("include", p.include), ("exclude", p.exclude)):
            for pattern in patterns:
                if not any(re.fullmatch(pattern, n) for n in names):
                    loc = (field_name, pattern) if field_name == "layers" else (field_name,)
                    shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
                    problems.append((loc, f"{pattern!r} matches no layer of the model (layers: {shown})"))
        counts, skipped = {}, []
        for root, group in analysis.groups.items():
            selected = [(name, self.ratio_for(name)) for name in group.producers]
            chosen = [(name, r) for name, r in selected if r is not None and r[0] > 0]
            if not chosen:
                continue
            if group.fixed:
                skipped += [{"layer": name, "reason": group.fixed} for name, _ in chosen]
                continue
            left_out = [name for name, r in selected if r is None]
            if left_out:
                reason = f"tied to {', '.join(left_out)} (Add/Multiply), which the selection leaves whole"
                skipped += [{"layer": name, "reason": reason} for name, _ in chosen]
                continue
            # Layers of one group share their channels: the most cautious ratio among them applies.
            name, (ratio, loc) = min(selected, key=lambda item: item[1][0])
            if ratio == 0:
                continue
            if p.multiple_of > group.channels:
                problems.append(
                    (("multiple_of",), f"{p.multiple_of} is larger than {name}'s {group.channels} channels")
                )
                continue
            keep = keep_count(group.channels, ratio, p.multiple_of)
            if keep == 0:
                problems.append(
                    (loc, f"{ratio:g} would remove every one of {name}'s {group.channels} channels; lower it")
                )
                continue
            if keep < group.channels:
                counts[root] = (keep, ratio)
        return counts, skipped, problems

    def check(self, model) -> list[tuple[tuple, str]]:
        """Problems with this stage's fields on ``model``, found before any training: (field path, message)."""
        analysis = _analyze(model)
        if isinstance(analysis, str):  # reported when the stage runs, as a note
            return []
        _, _, problems = self.plan(model, analysis)
        return problems

    # ------------------------------------------------------------------ ranking

    def scores(self, model, analysis, ctx: StageContext) -> tuple[dict[int, np.ndarray], list[str]]:
        """A score per channel of every group (higher: more important), and notes on how it was ranked."""
        notes = []
        per_layer = {}
        criterion = self.params.criterion
        if criterion == "taylor":
            per_layer = self._taylor(model, analysis, ctx)
        scores = {}
        for root, group in analysis.groups.items():
            if group.fixed:
                continue
            total = np.zeros(group.channels)
            if criterion == "gamma":
                gammas = _bn_gammas(model, analysis, root)
                if gammas:
                    for values in gammas:
                        total += _normalised(np.abs(values))
                    scores[root] = total
                    continue
                notes.append(f"no BatchNormalization follows {', '.join(group.producers)}: ranked by l1 instead")
            for name in group.producers:
                kernel = _filter_weights(model.get_layer(name))[0].numpy()
                flat = kernel.reshape(-1, kernel.shape[-1])
                if criterion == "taylor":
                    values = per_layer[name]
                elif criterion == "l2":
                    values = np.sqrt((flat.astype(np.float64) ** 2).sum(0))
                else:
                    values = np.abs(flat.astype(np.float64)).sum(0)
                # Members of a group may differ in scale; each contributes its channels' share.
                total += _normalised(values)
            scores[root] = total
        return scores, notes

    def _taylor(self, model, analysis, ctx: StageContext) -> dict[str, np.ndarray]:
        """Molchanov et al. (2019): (Σ over a filter's weights of gradient × weight)², summed over batches."""
        from compressctl.core.env import tf

        tensorflow = tf()
        producers = [name for g in analysis.groups.values() if not g.fixed for name in g.producers]
        variables = {name: [v for v in _filter_weights(model.get_layer(name)) if v.trainable] for name in producers}
        flat = [v for name in producers for v in variables[name]]
        loss_fn = ctx.task.loss()
        batch, count = self.params.batch_size or ctx.batch_size, self.params.taylor_batches
        totals = {name: 0.0 for name in producers}
        flat_labels = ctx.task.binary or ctx.task.regression
        for xb, yb in _train_batches(ctx, batch, count):
            labels = yb.astype(np.float32).reshape(-1, 1) if flat_labels else yb
            with tensorflow.GradientTape() as tape:
                loss = loss_fn(labels, model(xb, training=False))
            grads = tape.gradient(loss, flat)
            cursor = 0
            for name in producers:
                contribution = 0.0
                for variable in variables[name]:
                    g, w = grads[cursor], variable
                    cursor += 1
                    if g is None:
                        continue
                    product = (g * w).numpy()
                    contribution = contribution + product.reshape(-1, product.shape[-1]).sum(0)
                totals[name] = totals[name] + np.asarray(contribution, dtype=np.float64) ** 2
        return totals

    # ------------------------------------------------------------------ apply

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, self.type)
        from compressctl.model.channels import PRODUCERS, rebuild
        from compressctl.model.macs import keras_macs

        require_graph_model(model, self.type)
        analysis = _analyze(model)
        if isinstance(analysis, str):  # the model stays as it is; the run goes on
            return self._unchanged(model, [], f"no channel was removed: {analysis}")
        counts, skipped, problems = self.plan(model, analysis)
        if problems:
            loc, message = problems[0]
            raise UserError(f"stage {self.type}: {'.'.join(map(str, loc))}: {message}")
        for name, reason in analysis.blocked.items():
            if analysis.kinds.get(name) in PRODUCERS and self.params.selects(name):
                skipped.append({"layer": name, "reason": reason})
        if not counts:
            wanted = self.params.ratio > 0 or any(r > 0 for r in self.params.layers.values())
            why = ": no selected layer can be thinned (the skipped layers say why)" if wanted and skipped else ""
            return self._unchanged(model, skipped, f"no channel was removed{why}")
        scores, notes = self.scores(model, analysis, ctx)
        keep = {}
        for root, (count, _) in counts.items():
            # Highest scores survive; ties keep the lower index (a stable order).
            ranked = np.argsort(-scores[root], kind="stable")
            keep[root] = np.sort(ranked[:count])
        try:
            thin = rebuild(model, analysis, keep)
        except Exception as exc:  # noqa: BLE001 - an internal failure: the model stays, the run goes on
            why = f"the thinner model could not be rebuilt (internal error {type(exc).__name__}; please report it)"
            return self._unchanged(model, skipped, f"no channel was removed: {why}")
        params_before, macs_before = int(model.count_params()), keras_macs(model)
        macs_after = keras_macs(thin)
        rows = self._rows(model, thin, analysis, counts, macs_before, macs_after)
        if self.params.epochs > 0:
            self._fine_tune(model, thin, ctx)
        return StageResult(
            model=thin,
            measured={
                "params_before": params_before,
                "params_after": int(thin.count_params()),
                "macs_before": macs_before["total"],
                "macs_after": macs_after["total"],
                "pruned_layers": sum(1 for r in rows if r["group"] is not None and r["ratio"] is not None),
            },
            layers=rows,
            skipped_layers=skipped,
            notes=notes + (["fine-tuned by distillation from the unpruned model"] if self._distills else []),
        )

    @staticmethod
    def _unchanged(model, skipped: list[dict], note: str) -> StageResult:
        from compressctl.model.macs import keras_macs

        params, macs = int(model.count_params()), keras_macs(model)["total"]
        return StageResult(
            model=model,
            measured={
                "params_before": params,
                "params_after": params,
                "macs_before": macs,
                "macs_after": macs,
                "pruned_layers": 0,
            },
            skipped_layers=skipped,
            notes=[note],
        )

    @property
    def _distills(self) -> bool:
        return self.params.teacher == "original" and self.params.epochs > 0

    def _rows(self, model, thin, analysis, counts, macs_before, macs_after) -> list[dict]:
        """One row per layer whose channels or inputs changed: channels, parameters and MACs before and after."""
        rows = []
        for layer in thin.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            old = model.get_layer(layer.name)
            before, after = int(old.count_params()), int(layer.count_params())
            root = analysis.producer_group.get(layer.name)
            channels_before = _channels(old)
            channels_after = _channels(layer)
            if (before == after and channels_before == channels_after) or not (before or after):
                continue
            rows.append(
                {
                    "layer": layer.name,
                    "params": after,
                    "channels_before": channels_before,
                    "channels_after": channels_after,
                    "params_before": before,
                    "params_after": after,
                    "macs_before": macs_before["layers"].get(layer.name, 0),
                    "macs_after": macs_after["layers"].get(layer.name, 0),
                    "ratio": counts[root][1] if root in counts else None,
                    "group": root,
                }
            )
        return rows

    def _fine_tune(self, original, thin, ctx: StageContext) -> None:
        p = self.params
        if p.teacher != "original":
            ctx.fit(thin, p.epochs, p.learning_rate, p.batch_size, self.type)
            return
        from compressctl.stages.distillation import teacher_batches, train_student

        batches = teacher_batches(ctx, original, p.batch_size or ctx.batch_size)
        train_student(
            thin, batches, ctx, epochs=p.epochs, learning_rate=p.learning_rate, batch_size=p.batch_size,
            alpha=p.alpha, temperature=p.temperature, label=self.type,
        )  # fmt: skip


def _train_batches(ctx: StageContext, batch: int, count: int):
    """``count`` shuffled train batches (x, y) as numpy arrays, from memory or streamed from the source."""
    if ctx.data.in_memory:
        x, y = ctx.data.x_train, ctx.data.y_train
        order = np.random.default_rng(ctx.seed).permutation(len(x))
        for step in range(count):
            index = order[(step * batch) % len(x) :][:batch]
            yield x[index], y[index]
        return
    yield from ctx.data.train_batches(batch, ctx.seed).repeat().take(count).as_numpy_iterator()


def _analyze(model):
    """The model's channel analysis, or why there is none (a sentence for the user)."""
    from compressctl.model.channels import analyze

    try:
        return analyze(model)
    except Exception as exc:  # noqa: BLE001 - a model the analysis cannot read is left whole, never a traceback
        return f"the model's channels could not be traced (internal error {type(exc).__name__}; please report it)"


def _filter_weights(layer) -> list:
    """The layer's weights with one slice per output channel on their last axis (kernel first, then bias):
    a separable convolution's pointwise kernel and bias, not its depthwise kernel."""
    depthwise = getattr(layer, "depthwise_kernel", None)
    return [w for w in layer.weights if w is not depthwise]


def _channels(layer) -> int | None:
    try:
        shape = layer.output_shape
    except (AttributeError, RuntimeError):
        return None
    if isinstance(shape, list):
        shape = shape[0]
    return None if shape[-1] is None else int(shape[-1])


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean() if values.size else 0.0
    return values / mean if mean > 0 else values


def _bn_gammas(model, analysis, root: int) -> list[np.ndarray]:
    """|gamma| of every BatchNormalization that reads exactly this group's channels."""
    found = []
    for name, layout in analysis.inputs.items():
        if analysis.kinds.get(name) != "BatchNormalization" or layout.spatial != 1 or len(layout.segments) != 1:
            continue
        if analysis.find(layout.segments[0].group) != root or layout.segments[0].repeat != 1:
            continue
        layer = model.get_layer(name)
        if getattr(layer, "scale", False):
            found.append(layer.gamma.numpy())
    return found
