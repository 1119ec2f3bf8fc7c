"""Rows and short texts shared by report.md, report.html and the CLI, so all say the same thing the same way."""

from __future__ import annotations

from compressctl.core import metrics
from compressctl.report.record import RunRecord, StageRow

# Keys a stage may measure, in the order shown, with how to show each value.
_MEASURED = (
    ("sparsity", lambda v: f"sparsity {100 * v:.1f} %"),
    ("unique_weights", lambda v: f"≤ {v} unique weights per layer"),
    ("quantized_layers", lambda v: f"{v} layers quantization-aware"),
    ("factorized_layers", lambda v: f"{v} layers factorized"),
    ("params_before", lambda v: f"params {v:,}"),
    ("params_after", lambda v: f"→ {v:,}"),
    ("pruned_layers", lambda v: f"{v} layers thinned"),
    ("macs_before", lambda v: f"MACs {v:,}"),
    ("macs_after", lambda v: f"→ {v:,}"),
    ("teacher_metric_value", lambda v: f"teacher {100 * v:.2f} %"),
    ("student_metric_value", lambda v: f"student {100 * v:.2f} %"),
    ("teacher_params", lambda v: f"teacher params {v:,}"),
    ("student_params", lambda v: f"student params {v:,}"),
)


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f} %"


def delta(x: float) -> str:
    return f"{100 * x:+.2f} pt"


def stage_measured(stage: StageRow) -> str:
    parts = [show(stage.figure(key)) for key, show in _MEASURED if stage.figure(key) is not None]
    text = ", ".join(parts).replace(", →", " →")
    return text + (" (cached)" if stage.cached else "")


def artifact_rows(record: RunRecord) -> list[dict]:
    """Baseline first, then artifacts: the rows that every summary table shows."""
    base, name = record.baseline, record.metric.name
    rows = [
        {
            "name": "baseline (float32)",
            "path": base.artifact,
            "size": kib(base.size_bytes),
            "gzip": kib(base.gzip_bytes),
            "ratio": "1.00×",
            "ratio_gzip": "1.00×",
            "metric": metrics.format_value(name, base.metric_value),
            "delta": "",
            "p50": f"{base.latency_ms.p50:.3f}",
            "speedup": "1.00×",
        }
    ]
    for a in record.artifacts:
        rows.append(
            {
                "name": a.label,
                "path": a.path,
                "size": kib(a.size_bytes),
                "gzip": kib(a.gzip_bytes),
                "ratio": f"{a.compression_ratio:.2f}×",
                "ratio_gzip": f"{a.compression_ratio_gzip:.2f}×",
                "metric": metrics.format_value(name, a.metric_value),
                "delta": metrics.format_delta(name, a.metric_delta),
                "p50": f"{a.latency_ms.p50:.3f}",
                "speedup": f"{a.speedup:.2f}×",
            }
        )
    return rows


def _count(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


# Per-layer figure → (column heading, how to show a value); figures not listed show as they are.
LAYER_COLUMNS = {
    "params": ("params", _count),
    "sparsity": ("sparsity", pct),
    "target": ("target sparsity", pct),
    "unique_weights": ("unique weights", _count),
    "clusters": ("clusters", _count),
    "rank": ("rank", _count),
    "full_rank": ("full rank", _count),
    "params_before": ("params before", _count),
    "params_after": ("params after", _count),
    "energy_kept": ("energy kept", pct),
    "width_before": ("width before", _count),
    "width_after": ("width after", _count),
    "channels_before": ("channels before", _count),
    "channels_after": ("channels after", _count),
    "macs_before": ("MACs before", _count),
    "macs_after": ("MACs after", _count),
    "ratio": ("ratio", lambda v: f"{v:g}"),
}


def layer_table(stage: StageRow) -> tuple[list[str], list[list[str]]]:
    """The per-layer table of one stage, (headers, rows): the layer, its parameters, and the stage's columns.

    Every column but the first is numeric. Empty when the stage reported no layers.
    """
    if not stage.layers:
        return [], []
    keys = ["params", *(k for k in stage.layer_columns() if k != "params")]
    headers = ["layer"] + [LAYER_COLUMNS.get(k, (k.replace("_", " "), None))[0] for k in keys]
    rows = []
    for row in stage.layers:
        cells = [str(row["layer"])]
        for k in keys:
            value = row.get(k)
            show = LAYER_COLUMNS.get(k, (None, str))[1]
            cells.append("" if value is None else show(value))
        rows.append(cells)
    return headers, rows


# (row key, column heading) of the compare table, shown by the CLI and the compare page.
TABLE_COLUMNS = (
    ("run", "run"),
    ("target", "target"),
    ("size_bytes", "size"),
    ("gzip_bytes", "gzip"),
    ("compression_ratio", "ratio"),
    ("compression_ratio_gzip", "gzip ratio"),
    ("metric_value", "metric"),
    ("metric_delta", "Δ"),
    ("p50_ms", "p50 ms"),
    ("speedup", "speed-up"),
)


def format_row(row: dict) -> dict[str, str]:
    """The compare table's cells for one row of ``compare.compare_reports``, as text."""
    return {
        "run": row["run"],
        "target": row["target"],
        "size_bytes": f"{row['size_bytes']:,}",
        "gzip_bytes": f"{row['gzip_bytes']:,}",
        "compression_ratio": f"{row['compression_ratio']:.2f}×",
        "compression_ratio_gzip": f"{row['compression_ratio_gzip']:.2f}×",
        "metric_value": metrics.format_value(row["metric"], row["metric_value"]),
        "metric_delta": "" if row["baseline"] else metrics.format_delta(row["metric"], row["metric_delta"]),
        "p50_ms": f"{row['p50_ms']:.3f}",
        "speedup": f"{row['speedup']:.2f}×",
    }


def notices(record: RunRecord) -> list[tuple[str, str, str]]:
    """What a reader must see below the summary, as (kind, bold lead, text): failed targets
    (kind "failure"), then each artifact's target lines and fallback (kind "info")."""
    out = [("failure", f"Target {f.target} failed:", f.error) for f in record.failed_targets]
    for a in record.artifacts:
        out += [("info", heading, f"{text}.") for heading, text in a.target_lines()]
        if a.fallback:
            out.append(("info", a.target, f"fell back to {a.conversion}: {a.fallback.reason}."))
    return out
