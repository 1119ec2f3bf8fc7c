"""The report's plots, drawn with matplotlib's Agg canvas into PNG bytes.

matplotlib is imported inside the functions (never when compressctl is imported), and only its
object-oriented API is used: no pyplot, so no global figure state and no GUI backend is touched,
which keeps a Jupyter session that imports compressctl on its own backend.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compressctl.report.record import RunRecord, StageRow

from compressctl.core import metrics

BASELINE_COLOR = "#8c8c8c"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
RAW_COLOR, GZIP_COLOR = "#4c72b0", "#dd8452"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def new_figure(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    # No Software/date metadata: the same report renders to the same bytes.
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def figure_style():
    import matplotlib

    return matplotlib.rc_context(STYLE)


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, where it cannot hide a bar or a point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def model_labels(record: RunRecord) -> list[str]:
    return ["baseline"] + [a.target for a in record.artifacts]


def _colors(n_artifacts: int) -> list[str]:
    return [BASELINE_COLOR] + [PALETTE[i % len(PALETTE)] for i in range(n_artifacts)]


def size_plot(record: RunRecord) -> bytes:
    """Raw and gzip size of the baseline and every artifact (log scale), with the ratios."""
    base = record.baseline
    artifacts = record.artifacts
    labels = model_labels(record)
    raw = [base.size_bytes] + [a.size_bytes for a in artifacts]
    gz = [base.gzip_bytes] + [a.gzip_bytes for a in artifacts]
    ratios = [(1.0, 1.0)] + [(a.compression_ratio, a.compression_ratio_gzip) for a in artifacts]
    with figure_style():
        fig, (ax,) = new_figure(max(5.0, 1.6 * len(labels) + 2), 3.6)
        xs = list(range(len(labels)))
        width = 0.38
        ax.bar([x - width / 2 for x in xs], raw, width, label="size", color=RAW_COLOR)
        ax.bar([x + width / 2 for x in xs], gz, width, label="gzip -9", color=GZIP_COLOR)
        ax.set_yscale("log")
        for x, r, g, (ratio, ratio_gz) in zip(xs, raw, gz, ratios, strict=True):
            ax.annotate(f"{_kib(r)}\n{ratio:.2f}×", (x - width / 2, r), ha="center", va="bottom", fontsize=7)
            ax.annotate(f"{_kib(g)}\n{ratio_gz:.2f}×", (x + width / 2, g), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(xs, labels)
        ax.set_ylabel("bytes (log scale)")
        ax.set_ylim(min(gz + raw) / 3, max(raw + gz) * 6)
        ax.set_title("Size against the float32 baseline (label: size, ratio)")
        ax.legend(loc="upper right")
        return to_png(fig)


ENCODING_COLORS = {"float32": "#4c72b0", "float16": "#64b5cd", "int8": "#55a868", "int4": "#8172b3", "int32": "#ccb974"}


def storage_plot(record: RunRecord) -> bytes | None:
    """Each artifact's stored bytes, stacked by encoding of its constant tensors, and the other bytes."""
    artifacts = [a for a in record.artifacts if a.storage]
    if not artifacts:
        return None
    encodings = sorted(
        {e.encoding for a in artifacts for e in a.storage},
        key=lambda name: list(ENCODING_COLORS).index(name) if name in ENCODING_COLORS else 99,
    )
    with figure_style():
        fig, (ax,) = new_figure(7.0, 0.6 * len(artifacts) + 1.6)
        ys = list(range(len(artifacts)))
        left = [0.0] * len(artifacts)
        extra = iter(PALETTE[4:])
        for encoding in [*encodings, "other"]:
            widths = []
            for a in artifacts:
                if encoding == "other":
                    widths.append(a.other_bytes or 0)
                else:
                    widths.append(sum(e.bytes for e in a.storage if e.encoding == encoding))
            color = BASELINE_COLOR if encoding == "other" else ENCODING_COLORS.get(encoding) or next(extra, "#999999")
            ax.barh(ys, widths, left=left, label=encoding, color=color)
            left = [x + w for x, w in zip(left, widths, strict=True)]
        for y, a in zip(ys, artifacts, strict=True):
            bits = a.bits_per_weight()
            text = f"{_kib(a.size_bytes)}" + (f", {bits:.2f} bits/value" if bits else "")
            ax.annotate(text, (left[y], y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_yticks(ys, [a.target for a in artifacts])
        ax.invert_yaxis()
        ax.set_xlim(0, max(left) * 1.35)
        ax.set_xlabel("bytes in the stored file")
        ax.set_title("Where the stored bytes go")
        _legend_outside(ax)
        return to_png(fig)


def metric_plot(record: RunRecord) -> bytes:
    """Each artifact's metric change against the baseline, in percentage points, with the gate."""
    metric, higher_is_better = record.metric.name, record.metric.higher_is_better
    # Accuracy-like metrics in points and percent; errors such as mae in their own units.
    scale, unit, pct = (100, " pt", " %") if metrics.is_fraction(metric) else (1, "", "")
    worse = -1 if higher_is_better else 1  # the sign of a change for the worse
    artifacts = record.artifacts
    base = record.baseline.metric_value
    drops = [g.threshold for g in record.gates if g.name == "max_metric_drop"]
    with figure_style():
        fig, (ax,) = new_figure(6.4, max(1.6, 0.55 * len(artifacts) + 1.3))
        ys = list(range(len(artifacts)))
        deltas = [scale * a.metric_delta for a in artifacts]
        limit = worse * scale * min(drops) if drops else None
        colors = [
            "#c44e52" if (limit is not None and worse * (d - limit) > 1e-9) else _colors(len(artifacts))[i + 1]
            for i, d in enumerate(deltas)
        ]
        ax.barh(ys, deltas, color=colors, height=0.55)
        ax.axvline(0, color="#333333", linewidth=0.8)
        if limit is not None:
            ax.axvline(
                limit, color="#c44e52", linestyle="--", linewidth=1, label=f"gate: drop ≤ {abs(limit):.4g}{unit}"
            )
            _legend_outside(ax)
        span = max([abs(d) for d in deltas] + [abs(limit) if limit is not None else 0, 0.5 if scale == 100 else 1e-6])
        ax.set_xlim(-span * 1.6, span * 1.6)
        for y, d, a in zip(ys, deltas, artifacts, strict=True):
            ax.annotate(
                f" {d:+.4g}{unit} ({scale * a.metric_value:.4g}{pct}) ",
                (d, y),
                va="center",
                ha="left" if d >= 0 else "right",
                fontsize=8,
            )
        ax.set_yticks(ys, [a.target for a in artifacts])
        ax.invert_yaxis()
        ax.set_xlabel(f"{metric} − baseline {metric}" + (" (percentage points)" if scale == 100 else ""))
        ax.set_title(f"{metric} change (baseline {scale * base:.4g}{pct})")
        return to_png(fig)


def latency_plot(record: RunRecord) -> bytes:
    """p50/p90/p99 of every model (left) and the speed-up of each artifact at p50 (right)."""
    base = record.baseline
    artifacts = record.artifacts
    labels = model_labels(record)
    lat = [base.latency_ms] + [a.latency_ms for a in artifacts]
    speedups = [a.speedup for a in artifacts]
    colors = _colors(len(artifacts))
    with figure_style():
        height = max(2.0, 0.55 * len(labels) + 1.4)
        fig, (ax, ax2) = new_figure(9.0, height, ncols=2)
        ys = list(range(len(labels)))
        for y, latency, color in zip(ys, lat, colors, strict=True):
            ax.plot([latency.p50, latency.p99], [y, y], color=color, linewidth=6, alpha=0.35)
            ax.plot(latency.p50, y, "o", color=color, label="p50" if y == 0 else None)
            ax.plot(latency.p90, y, "D", color=color, markersize=5, label="p90" if y == 0 else None)
            ax.plot(latency.p99, y, "^", color=color, markersize=6, label="p99" if y == 0 else None)
            ax.annotate(f"  p50 {latency.p50:.3g} ms", (latency.p99, y), va="center", fontsize=7)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, max(latency.p99 for latency in lat) * 1.45)
        ax.set_xlabel("latency per inference, ms (batch 1)")
        ax.set_title("Latency: p50 ● p90 ◆ p99 ▲")
        _legend_outside(ax)
        ays = list(range(len(artifacts)))
        ax2.barh(ays, speedups, color=colors[1:], height=0.55)
        ax2.axvline(1, color="#333333", linewidth=0.8, linestyle="--")
        for y, s in zip(ays, speedups, strict=True):
            ax2.annotate(f" {s:.2f}×", (s, y), va="center", fontsize=8)
        ax2.set_yticks(ays, [a.target for a in artifacts])
        ax2.invert_yaxis()
        ax2.set_xlim(0, max(speedups + [1.0]) * 1.3)
        ax2.set_xlabel("speed-up (baseline p50 / artifact p50)")
        ax2.set_title(f"Speed-up ({base.measured_on})")
        return to_png(fig)


def layers_plot(stage: StageRow) -> bytes | None:
    """Per-layer sparsity and unique weight values after one stage (None when it measured neither)."""
    rows = stage.layers
    with_sparsity = [r for r in rows if r.get("sparsity") is not None]
    with_unique = [r for r in rows if r.get("unique_weights") is not None]
    if not with_sparsity and not with_unique:
        return None
    panels = [p for p in (with_sparsity, with_unique) if p]
    with figure_style():
        height = max(2.0, 0.3 * max(len(p) for p in panels) + 1.4)
        fig, axes = new_figure(4.6 * len(panels), height, ncols=len(panels))
        axes = iter(axes)
        if with_sparsity:
            ax = next(axes)
            ys = list(range(len(with_sparsity)))
            values = [100 * r["sparsity"] for r in with_sparsity]
            ax.barh(ys, values, color=RAW_COLOR, height=0.6, label="measured")
            targets = [(y, 100 * r["target"]) for y, r in zip(ys, with_sparsity, strict=True) if r.get("target")]
            if targets:
                _target_ticks(ax, targets, "target")
            for y, v in zip(ys, values, strict=True):
                ax.annotate(f" {v:.1f} %", (v, y), va="center", fontsize=7)
            ax.set_yticks(ys, [_layer_label(r) for r in with_sparsity])
            ax.invert_yaxis()
            ax.set_xlim(0, 118)
            ax.set_xlabel("zero weights, % of the layer's kernel")
            ax.set_title(f"Sparsity after {stage.type}")
        if with_unique:
            ax = next(axes)
            ys = list(range(len(with_unique)))
            values = [r["unique_weights"] for r in with_unique]
            ax.barh(ys, values, color=GZIP_COLOR, height=0.6, label="measured")
            targets = [(y, r["clusters"]) for y, r in zip(ys, with_unique, strict=True) if r.get("clusters")]
            if targets:
                _target_ticks(ax, targets, "clusters set")
            for y, v in zip(ys, values, strict=True):
                ax.annotate(f" {v:,}", (v, y), va="center", fontsize=7)
            ax.set_xscale("log")
            ax.set_xlim(0.8, max(values) * 8)
            ax.set_yticks(ys, [_layer_label(r) for r in with_unique])
            ax.invert_yaxis()
            ax.set_xlabel("distinct non-zero weight values (log scale)")
            ax.set_title(f"Unique weights after {stage.type}")
        return to_png(fig)


def channels_plot(stage: StageRow) -> bytes | None:
    """Per-layer channels before and after a structured-pruning stage, and its MACs (None without channels)."""
    rows = [r for r in stage.layers if r.get("channels_before") is not None]
    if not rows:
        return None
    with figure_style():
        fig, (ax, ax2) = new_figure(9.2, max(2.0, 0.34 * len(rows) + 1.4), ncols=2)
        ys = list(range(len(rows)))
        before = [r["channels_before"] for r in rows]
        after = [r["channels_after"] for r in rows]
        ax.barh([y - 0.2 for y in ys], before, height=0.4, color=BASELINE_COLOR, label="before")
        ax.barh([y + 0.2 for y in ys], after, height=0.4, color=RAW_COLOR, label="after")
        for y, b, a in zip(ys, before, after, strict=True):
            ax.annotate(f" {a} of {b}", (max(a, b), y), va="center", fontsize=7)
        ax.set_yticks(ys, [r["layer"] for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, max(before) * 1.35)
        ax.set_xlabel("output channels (filters or units)")
        ax.set_title(f"Channels per layer, {stage.type}")
        _legend_outside(ax)
        macs_before = [r.get("macs_before") or 0 for r in rows]
        macs_after = [r.get("macs_after") or 0 for r in rows]
        ax2.barh([y - 0.2 for y in ys], macs_before, height=0.4, color=BASELINE_COLOR, label="before")
        ax2.barh([y + 0.2 for y in ys], macs_after, height=0.4, color=GZIP_COLOR, label="after")
        ax2.set_yticks(ys, [r["layer"] for r in rows])
        ax2.invert_yaxis()
        ax2.set_xlabel("multiply-accumulates per inference")
        ax2.set_title("MACs per layer")
        _legend_outside(ax2)
        return to_png(fig)


def _target_ticks(ax, targets: list[tuple[int, float]], label: str) -> None:
    ys = [y for y, _ in targets]
    ax.plot([t for _, t in targets], ys, "|", color="#a01010", markersize=18, markeredgewidth=2.5, label=label)
    _legend_outside(ax)


def _layer_label(row: dict) -> str:
    params = row.get("params")
    return f"{row['layer']} ({params:,})" if isinstance(params, int) else str(row["layer"])


def stages_plot(record: RunRecord) -> bytes | None:
    """The metric after each stage (from the baseline on) and each stage's time."""
    stages = record.stages
    if not stages:
        return None
    metric = record.metric.name
    scale = 100 if metrics.is_fraction(metric) else 1
    labels = [f"{i + 1}. {s.type}" for i, s in enumerate(stages)]
    with figure_style():
        fig, (ax, ax2) = new_figure(9.0, 3.0, ncols=2)
        xs = list(range(len(stages) + 1))
        values = [scale * record.baseline.metric_value] + [scale * s.metric_value for s in stages]
        ax.plot(xs, values, "o-", color=RAW_COLOR)
        for x, v in zip(xs, values, strict=True):
            ax.annotate(f"{v:.4g}", (x, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
        low, high = min(values), max(values)
        pad = max(0.5 if scale == 100 else 1e-6, (high - low) * 0.3)
        ax.set_ylim(low - pad, min(100.5, high + pad) if scale == 100 and high <= 100 else high + pad)
        ax.set_xticks(xs, ["baseline", *labels])
        ax.set_ylabel(f"{metric}{', %' if scale == 100 else ''} (Keras model, test split)")
        ax.set_title(f"{metric} after each stage")
        seconds = [s.seconds for s in stages]
        ax2.bar(range(len(stages)), seconds, color=GZIP_COLOR, width=0.55)
        for x, s in enumerate(seconds):
            ax2.annotate(f"{s:.1f} s", (x, s), ha="center", va="bottom", fontsize=8)
        ax2.set_xticks(range(len(stages)), labels)
        ax2.set_ylim(0, max(seconds + [0.1]) * 1.25)
        ax2.set_ylabel("seconds")
        ax2.set_title("Time per stage")
        return to_png(fig)


def pareto_plot(rows: list[dict], by: str) -> bytes:
    """Compare: size (log x) against metric (y), coloured by p50; the non-dominated points ringed and joined."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize

    metric = rows[0].get("metric", "metric") if rows else "metric"
    higher_is_better = rows[0].get("higher_is_better", True) if rows else True
    scale = 100 if metrics.is_fraction(metric) else 1
    with figure_style():
        fig, (ax,) = new_figure(8.0, 4.8)
        xs = [r[by] for r in rows]
        ys = [scale * r["metric_value"] for r in rows]
        p50 = [r["p50_ms"] for r in rows]
        positive = [p for p in p50 if p and p > 0]
        if positive and max(positive) / min(positive) > 20:
            norm = LogNorm(min(positive), max(positive))
        else:
            low = min(positive) if positive else 0.0
            high = max(positive) if positive else 1.0
            norm = Normalize(low, high if high > low else low + 1e-9)
        cmap = colormaps["viridis"]
        scatter = ax.scatter(xs, ys, c=p50, cmap=cmap, norm=norm, s=70, zorder=3, edgecolors="white")
        front = sorted((r[by], scale * r["metric_value"]) for r in rows if r.get("pareto"))
        if front:
            fx = [x for x, _ in front]
            fy = [y for _, y in front]
            ax.step(fx, fy, where="post", color="#c44e52", linewidth=1, alpha=0.7, zorder=2)
            ax.scatter(fx, fy, s=190, facecolors="none", edgecolors="#c44e52", linewidths=1.6, zorder=4)
            ax.scatter([], [], s=90, facecolors="none", edgecolors="#c44e52", label="Pareto front\n(non-dominated)")
            ax.legend(loc="lower left")
        # Identical points (the same artifact in two runs) share one label instead of overprinting.
        labels: dict[tuple, list[str]] = {}
        for r, x, y in zip(rows, xs, ys, strict=True):
            labels.setdefault((x, y), []).append(f"{r['run']}/{r['target']}")
        for (x, y), names in labels.items():
            ax.annotate(", ".join(names), (x, y), textcoords="offset points", xytext=(7, 5), fontsize=7)
        ax.set_xscale("log")
        if xs:
            ax.set_xlim(min(xs) / 2, max(xs) * 3)
        if ys:
            pad = max(0.5 if scale == 100 else 1e-6, (max(ys) - min(ys)) * 0.15)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_xlabel(("gzip -9 size" if by == "gzip_bytes" else "size") + ", bytes (log scale)")
        ax.set_ylabel(f"{metric}, %" if scale == 100 else metric)
        better = "up" if higher_is_better else "down"
        ax.set_title(f"{metric} against {'gzip size' if by == 'gzip_bytes' else 'size'}: {better} and left is better")
        bar = fig.colorbar(scatter, ax=ax)
        bar.set_label("latency p50, ms")
        return to_png(fig)
