"""Layer sensitivity: prune (and cluster) one layer at a time at several levels, measure the metric.

This is the per-layer analysis behind Deep Compression's thresholds: each layer's kernel is pruned
by magnitude (one shot, no fine-tuning) to each level, or shared into N values by 1-D k-means,
while every other layer keeps its weights, and the Keras model is scored on the test split. The
result says how far each layer can go before the metric suffers; the search bounds each layer's
sparsity range with it (``search.per_layer``) and ``init --search`` writes those ranges.

Every layer of the model gets a row; layers without a kernel say so instead of carrying figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from compressctl.core import metrics
from compressctl.core.events import Emit, Event, ignore

DEFAULT_LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
DEFAULT_CLUSTERS = (4, 8, 16, 32)


def prune_array(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero the smallest-magnitude fraction ``sparsity`` of ``w``."""
    k = int(round(sparsity * w.size))
    if k <= 0:
        return w.copy()
    flat = np.abs(w).reshape(-1)
    threshold_index = np.argpartition(flat, k - 1)[:k]
    out = w.copy().reshape(-1)
    out[threshold_index] = 0
    return out.reshape(w.shape)


def cluster_array(w: np.ndarray, clusters: int, iterations: int = 20) -> np.ndarray:
    """Share ``w``'s values among ``clusters`` centroids: 1-D k-means from linearly spaced centroids."""
    flat = w.reshape(-1).astype(np.float64)
    centroids = np.linspace(flat.min(), flat.max(), clusters)
    for _ in range(iterations):
        assign = np.abs(flat[:, None] - centroids[None, :]).argmin(axis=1)
        sums = np.bincount(assign, weights=flat, minlength=clusters)
        counts = np.bincount(assign, minlength=clusters)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids):
            break
        centroids = moved
    assign = np.abs(flat[:, None] - centroids[None, :]).argmin(axis=1)
    return centroids[assign].reshape(w.shape).astype(w.dtype)


def layer_bound(row: dict, max_drop: float) -> float | None:
    """The first level whose one-shot drop exceeds ``max_drop`` (fine-tuning recovers some of it),
    the last level tried when none does, or None for a layer without figures."""
    prune = row.get("prune")
    if not prune:
        return None
    levels = sorted(prune, key=float)
    for level in levels:
        if prune[level]["drop"] > max_drop:
            return float(level)
    return float(levels[-1])


def analyse(
    model_path: str,
    data_path: str,
    levels=DEFAULT_LEVELS,
    clusters=DEFAULT_CLUSTERS,
    trust_model: bool = False,
    custom_objects: str | None = None,
    emit: Emit = ignore,
) -> dict:
    """The sensitivity table of one model on one data set (nothing written)."""
    from compressctl.core.env import seed_everything
    from compressctl.core.errors import UserError
    from compressctl.datasets.arrays import check_against_model, load_npz
    from compressctl.model.loading import load_model, task_info
    from compressctl.stages.base import kernel_weights, model_layers

    data = load_npz(data_path)
    handle = load_model(model_path, trust_model=trust_model, custom_objects=custom_objects)
    check_against_model(data, handle.input_shape, handle.output_units, str(handle.path))
    if handle.keras is None:
        raise UserError(f"{handle.path}: an inference-only SavedModel has no Keras layers to analyse")
    seed_everything(0)
    task = task_info(handle, data.x_train)
    model = handle.keras

    def score() -> float:
        return task.score(model.predict(data.x_test, batch_size=256, verbose=0), data.y_test)

    baseline = score()
    emit(Event("step", f"baseline {task.metric_name} {baseline:.4f} on {len(data.x_test)} test samples"))
    rows = []
    layers = model_layers(model)
    for index, layer in enumerate(layers):
        variables = kernel_weights(layer)
        row = {"name": layer.name, "class": type(layer).__name__, "params": int(layer.count_params())}
        if hasattr(layer, "layers"):
            row["note"] = "nested model: analyse it separately"
        elif not variables:
            row["note"] = "no kernel to prune or cluster"
        if "note" in row:
            rows.append(row)
            continue
        emit(Event("step", f"layer {index + 1}/{len(layers)}: {layer.name}"))
        originals = [v.numpy() for v in variables]
        row["kernel_weights"] = int(sum(a.size for a in originals))
        try:
            row["prune"] = {}
            for level in levels:
                for v, a in zip(variables, originals, strict=True):
                    v.assign(prune_array(a, level))
                row["prune"][f"{level:g}"] = _measured(baseline, score(), task)
            row["cluster"] = {}
            for n in clusters:
                for v, a in zip(variables, originals, strict=True):
                    v.assign(cluster_array(a, n))
                row["cluster"][str(n)] = _measured(baseline, score(), task)
        finally:
            for v, a in zip(variables, originals, strict=True):
                v.assign(a)
        channels = _channel_sensitivity(model, layer, levels, data, task, baseline)
        if channels is not None:
            row["prune_channels"] = channels
        rows.append(row)
    return {
        "schema_version": 1,
        "model": str(handle.path),
        "data": str(data.path),
        "metric": task.metric_name,
        "baseline_metric": baseline,
        "method": "one layer at a time, one shot (no fine-tuning): magnitude pruning; 1-D k-means weight sharing; "
        "channel pruning (the prune_channels stage, lowest-L1 filters or units removed, its channel group with it)",
        "levels": [float(v) for v in levels],
        "clusters": [int(n) for n in clusters],
        "layers": rows,
    }


def _channel_sensitivity(model, layer, levels, data, task, baseline: float) -> dict | None:
    """The metric after the prune_channels stage removes each level of this layer's channels (no fine-tuning).

    None when the stage cannot touch the layer; a level the stage refuses (it would remove every
    channel) is recorded with the reason.
    """
    import re

    from compressctl.core.errors import CompressctlError, first_line
    from compressctl.stages import STAGES
    from compressctl.stages.base import StageContext

    stage = STAGES["prune_channels"]
    if stage.supports(layer) is not True:
        return None
    ctx = StageContext(data=data, task=task, batch_size=64, seed=0)
    out = {}
    for level in levels:
        params = stage.Params(type=stage.type, ratio=0.0, layers={re.escape(layer.name): float(level)}, epochs=0)
        try:
            thinner = stage(params).apply(model, ctx).model
        except CompressctlError as exc:
            out[f"{level:g}"] = {"error": first_line(exc)}
            continue
        value = task.score(thinner.predict(data.x_test, batch_size=256, verbose=0), data.y_test)
        out[f"{level:g}"] = _measured(baseline, value, task)
    return out


def table(result: dict) -> tuple[list[str], list[list[str]]]:
    """Column headings and one row of cells per layer: the metric drop in points at each level
    (positive: worse), for ``sensitivity.md`` and the CLI alike."""
    levels = [f"{v:g}" for v in result["levels"]]
    clusters = [str(n) for n in result["clusters"]]
    head = ["layer", "class", "params"] + [f"prune {v}" for v in levels] + [f"cluster {n}" for n in clusters]
    head += [f"channels {v}" for v in levels]
    rows = []
    for row in result["layers"]:
        cells = [row["name"], row["class"], f"{row['params']:,}"]
        if "note" in row:
            cells += [row["note"]] + [""] * (len(head) - 4)
        else:
            channels = row.get("prune_channels") or {}
            cells += [_drop_cell(row["prune"][v]) for v in levels]
            cells += [_drop_cell(row["cluster"][n]) for n in clusters]
            cells += [_drop_cell(channels.get(v)) for v in levels]
        rows.append(cells)
    return head, rows


def render_markdown(result: dict) -> str:
    head, rows = table(result)
    lines = [
        f"# Layer sensitivity: {result['model']}",
        "",
        f"{result['metric']} drop (points) from the baseline {result['baseline_metric']:.4f}, "
        f"one layer changed at a time ({result['method']}).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def render_plot(result: dict) -> bytes:
    """PNG: metric against sparsity, one line per layer (matplotlib Agg)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for row in result["layers"]:
        if "prune" not in row:
            continue
        xs = [float(v) for v in row["prune"]]
        ys = [p["metric_value"] for p in row["prune"].values()]
        ax.plot(xs, ys, marker="o", label=row["name"])
    ax.axhline(result["baseline_metric"], color="grey", linestyle="--", linewidth=1, label="baseline")
    ax.set_xlabel("sparsity of one layer (the others untouched)")
    ax.set_ylabel(result["metric"])
    ax.set_title("Layer sensitivity to one-shot magnitude pruning")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def write(result: dict, out_dir: str | Path) -> list[str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sensitivity.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "sensitivity.md").write_text(render_markdown(result))
    (out / "sensitivity.png").write_bytes(render_plot(result))
    return ["sensitivity.json", "sensitivity.md", "sensitivity.png"]


def _measured(baseline: float, value: float, task) -> dict:
    """A cell of the analysis: the metric, and how much worse than the baseline in its direction."""
    return {"metric_value": value, "drop": round(metrics.drop(task.metric, baseline, value), 6)}


def _drop_cell(cell: dict | None) -> str:
    if cell is None:
        return ""
    return "refused" if "error" in cell else f"{cell['drop'] * 100:+.2f}"
