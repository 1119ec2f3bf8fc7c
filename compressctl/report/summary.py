"""Rows and short texts shared by report.md, report.html and the CLI, so all say the same thing the same way."""

from __future__ import annotations

from compressctl.core import metrics
from compressctl.report import figures
from compressctl.report.record import RunRecord, StageRow


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f} %"


def delta(x: float) -> str:
    return f"{100 * x:+.2f} pt"


def stage_measured(stage: StageRow) -> str:
    """The stage's own figures as its class declared them (``report.figures``), in one line."""
    text = ", ".join(figures.summary("stage", stage.type, stage.measured())).replace(", →", " →")
    return text + (" (cached)" if stage.cached else "")


# The summary table's columns, as (row key, heading), in report.md, report.html and the CLI alike: the
# stored ratio leads (``compression_ratio``: the file's raw bytes, what a device holds and loads), then
# the stored size, and the gzip size beside it (what a download costs) with its ratio.
SUMMARY_COLUMNS = (
    ("name", "artifact"),
    ("ratio", "stored ratio"),
    ("size", "stored"),
    ("gzip", "download (gzip)"),
    ("ratio_gzip", "gzip ratio"),
    ("metric", None),  # headed by the metric's name
    ("delta", "Δ"),
    ("p50", "p50 ms"),
    ("speedup", "speed-up"),
)


def summary_columns(record: RunRecord) -> list[tuple[str, str]]:
    """The summary table's (row key, heading) pairs for this record (the metric column named after it)."""
    return [(key, heading or record.metric.name) for key, heading in SUMMARY_COLUMNS]


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


def layer_table(stage: StageRow) -> tuple[list[str], list[list[str]]]:
    """The per-layer table of one stage, (headers, rows): the layer, its parameters, and the stage's columns.

    Every column but the first is numeric. Empty when the stage reported no layers.
    """
    if not stage.layers:
        return [], []
    declared = figures.declared("stage", stage.type) or figures.Declared()
    keys = ["params", *(k for k in stage.layer_columns() if k != "params")]
    # How each column reads: as the stage declared it; ``params`` and undeclared figures as they are.
    shown = {k: declared.layer_figure(k) or figures.Figure(k, show=None if k == "params" else "{value}") for k in keys}
    headers = ["layer"] + [shown[k].column for k in keys]
    rows = []
    for row in stage.layers:
        rows.append([str(row["layer"])] + ["" if row.get(k) is None else shown[k].text(row[k]) for k in keys])
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
    ("flash_bytes", "flash"),
    ("arena_bytes", "arena"),
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
        "flash_bytes": "" if row.get("flash_bytes") is None else f"{row['flash_bytes']:,}",
        "arena_bytes": "" if row.get("arena_bytes") is None else f"{row['arena_bytes']:,}",
    }


def notices(record: RunRecord) -> list[tuple[str, str, str]]:
    """What a reader must see below the summary, as (kind, bold lead, text): failed targets
    (kind "failure"), then each artifact's target lines, the figures its target declared, and its
    fallback (kind "info")."""
    out = [("failure", f"Target {f.target} failed:", f.error) for f in record.failed_targets]
    for a in record.artifacts:
        out += [("info", heading, f"{text}.") for heading, text in a.target_lines()]
        own = figures.summary("target", a.type, a.figures())  # the scalar figures the target declared
        if own:
            out.append(("info", f"{a.target}:", ", ".join(own) + "."))
        if a.fallback:
            out.append(("info", a.target, f"fell back to {a.conversion}: {a.fallback.reason}."))
    return out


def throughput_table(record: RunRecord) -> tuple[list[str], list[list[str]], list[str]]:
    """Samples per second at each of bench.batch_sizes, beside the batch-1 p50: (headers, rows, notes).

    Baseline first, then the artifacts; a batch size a model could not take reads "not run", its reason
    in the notes. Empty when the run timed no batch sizes."""
    models = [("baseline (float32)", record.baseline.latency_ms), *((a.label, a.latency_ms) for a in record.artifacts)]
    sizes = sorted({t.batch_size for _, latency in models for t in latency.throughput})
    if not sizes:
        return [], [], []
    headers = ["artifact", "p50 ms (batch 1)", *(f"batch {n}: samples/s" for n in sizes)]
    rows, notes = [], []
    for name, latency in models:
        found = {t.batch_size: t for t in latency.throughput}
        cells = []
        for n in sizes:
            entry = found.get(n)
            if entry is None or entry.samples_per_s is None:
                cells.append("not run")
                if entry is not None and entry.not_run:
                    notes.append(f"{name} at batch {n}: {entry.not_run}")
            else:
                cells.append(f"{entry.samples_per_s:,.0f}")
        rows.append([name, f"{latency.p50:.3f}", *cells])
    return headers, rows, notes
