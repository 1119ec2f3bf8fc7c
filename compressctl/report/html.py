"""report.html: one self-contained page (inline CSS, plots as inline base64 PNG) rendered from report.json.

Renders only from the report dict, so ``compressctl report RUN_DIR --format html`` re-creates the
page of any run without touching a model. Every piece of text from the report is escaped; the
page's Content-Security-Policy allows no network, no script, only inline styles and data: images.
"""

from __future__ import annotations

import base64
import struct
import traceback
from collections.abc import Callable
from html import escape

from compressctl.core import metrics
from compressctl.report import quantization
from compressctl.report.compat import compat_html
from compressctl.report.record import RunRecord
from compressctl.report.summary import (
    TABLE_COLUMNS,
    artifact_rows,
    format_row,
    layer_table,
    notices,
    stage_measured,
    summary_columns,
    throughput_table,
)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { color-scheme: light; --fg: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --bg-alt: #f5f7fa;
  --ok: #1e7d32; --bad: #b3261e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 24px 28px 48px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
p.meta { color: var(--muted); margin: 4px 0; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 12px;
  vertical-align: middle; margin-left: 8px; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.none { background: #777; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
th { white-space: nowrap; }
tr.baseline td { color: var(--muted); }
td.pass { color: var(--ok); font-weight: 600; } td.fail { color: var(--bad); font-weight: 600; }
.notice { border-left: 4px solid var(--bad); background: #fdf2f1; padding: 6px 12px; margin: 8px 0; }
.notice.info { border-color: #c77c02; background: #fff8e6; }
.plots { display: flex; flex-wrap: wrap; gap: 18px; }
figure { margin: 0; padding: 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff;
  max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; }
/* The caption wraps at the image's width instead of widening the figure. */
figcaption { contain: inline-size; color: var(--muted); font-size: 12.5px; margin-top: 6px; }
p.plot-error { color: var(--bad); }
details { margin: 6px 0; } summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
"""


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def img_tag(png: bytes, plot_id: str, alt: str) -> str:
    width, height = png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="plot" id="{escape(plot_id)}" alt="{escape(alt)}" width="{width}" height="{height}" '
        f'src="data:image/png;base64,{data}">'
    )


def figure(plot_id: str, title: str, caption: str, draw: Callable[[], bytes | None]) -> str:
    """One plot in a <figure>; a plot that fails to draw becomes a visible note, not a lost report."""
    try:
        png = draw()
    except Exception as exc:  # noqa: BLE001 - a broken plot must not cost the run its report
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return (
            f'<figure><p class="plot-error">plot {escape(title)} could not be drawn: '
            f"{escape(type(exc).__name__)}: {escape(str(exc))} ({escape(where.name)}:{where.lineno})</p></figure>"
        )
    if png is None:
        return ""
    return f"<figure>{img_tag(png, plot_id, title)}<figcaption>{escape(caption)}</figcaption></figure>"


def _cell(cell, numeric: bool) -> str:
    """A table cell: text, or (text, css class) for a cell styled by its content."""
    text, css = cell if isinstance(cell, tuple) else (cell, "")
    classes = " ".join(c for c in ("num" if numeric else "", css) if c)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}>{escape(str(text))}</td>"


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), row_classes=None) -> str:
    num = ' class="num"'
    head = "".join(f"<th{num if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        cls = f' class="{escape(row_classes[index])}"' if row_classes and row_classes[index] else ""
        cells = "".join(_cell(c, i in numeric) for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body></html>\n"
    )


def _status(record: RunRecord) -> str:
    if record.failed_targets:
        return '<span class="badge bad">target failed</span>'
    if not record.gates:
        return '<span class="badge none">no gates</span>'
    failed = sum(1 for g in record.gates if not g.passed)
    if failed:
        return f'<span class="badge bad">{failed} gate(s) FAILED</span>'
    return f'<span class="badge ok">all {len(record.gates)} gate(s) passed</span>'


def _summary(record: RunRecord) -> str:
    columns = summary_columns(record)  # the stored ratio first, the gzip (download) size beside the stored one
    headers = [columns[0][1], "file", *(heading for _, heading in columns[1:])]
    rows, classes = [], []
    for index, r in enumerate(artifact_rows(record)):
        rows.append([r["name"], r["path"], *(r[key] for key, _ in columns[1:])])
        classes.append("baseline" if index == 0 else "artifact")
    html = table(headers, rows, numeric=set(range(2, len(headers))), row_classes=classes)
    html += (
        "<p class=meta>Stored: the .tflite file's bytes, what a device holds and loads; download: its "
        "gzip -9 size, what fetching it costs.</p>"
    )
    notes = []
    for kind, lead, text in notices(record):
        notes.append(f'<p class="notice{" info" if kind == "info" else ""}"><b>{escape(lead)}</b> {escape(text)}</p>')
    notes += quantization.html_notes(record)  # per-artifact notes (not smaller, slower, float ops)
    return html + "".join(notes) + _throughput(record)


def _throughput(record: RunRecord) -> str:
    """Samples per second at each of bench.batch_sizes, beside the batch-1 latency (empty when none)."""
    headers, rows, notes = throughput_table(record)
    if not rows:
        return ""
    html = "<h3>Throughput</h3><p class=meta>Samples per second with the interpreter's input resized to each batch "
    html += "size.</p>" + table(headers, rows, numeric=set(range(1, len(headers))))
    return html + "".join(f'<p class="notice info">{escape(note)}</p>' for note in notes)


def _quantization(record: RunRecord) -> list[str]:
    if not any(a.quantization for a in record.artifacts):
        return []
    return ["<h2>Quantization</h2>", quantization.html_section(record, figure, table)]


def _gates(record: RunRecord) -> str:
    if not record.gates:
        return "<p class=meta>The recipe sets no gates.</p>"
    rows = []
    for g in record.gates:
        result = ("pass", "pass") if g.passed else ("FAIL", "fail")
        rows.append([g.name, g.target, f"{g.operator(ascii_only=False)} {g.threshold}", g.shown_value(), result])
    return table(["gate", "target", "required", "measured", "result"], rows, numeric={2, 3})


def _plots(record: RunRecord) -> str:
    from compressctl.report import plots

    metric = record.metric.name
    figures = [
        figure(
            "plot-size",
            "size per artifact",
            "Bytes of each .tflite file and of its gzip -9 stream (log scale); labels: size and ratio to the "
            "float32 baseline. gzip stands in for the entropy coding a deployment may add.",
            lambda: plots.size_plot(record),
        )
    ]
    if any(a.storage for a in record.artifacts):
        figures.append(
            figure(
                "plot-storage",
                "where the stored bytes go",
                "Bytes of each artifact's .tflite file by the encoding of its constant tensors (read from the "
                "flatbuffer), and the rest: graph, quantization parameters, metadata and alignment.",
                lambda: plots.storage_plot(record),
            )
        )
    if record.artifacts:
        figures.append(
            figure(
                "plot-metric",
                f"{metric} delta",
                f"The {metric} of each artifact through the LiteRT interpreter minus the Keras baseline's, "
                "on the test split; the dashed line is the recipe's max_metric_drop gate.",
                lambda: plots.metric_plot(record),
            )
        )
        figures.append(
            figure(
                "plot-latency",
                "latency and speed-up",
                "Latency per inference (batch 1), timed alternately with the baseline in one process: the bar "
                "spans p50 to p99. Speed-up is baseline p50 / artifact p50.",
                lambda: plots.latency_plot(record),
            )
        )
    for index, stage in enumerate(record.stages):
        figures.append(
            figure(
                f"plot-layers-{index + 1}",
                f"per-layer measurements after {stage.type}",
                f"Measured on the Keras model after stage {index + 1} ({stage.type}): the share of zero "
                "weights and the number of distinct non-zero values per layer (parameters in brackets); "
                "red ticks mark the recipe's targets.",
                lambda stage=stage: plots.layers_plot(stage),
            )
        )
    for index, stage in enumerate(record.stages):  # structured pruning: channels and MACs per layer
        if any(r.get("channels_before") is not None for r in stage.layers):
            figures.append(
                figure(
                    f"plot-channels-{index + 1}",
                    f"channels per layer, {stage.type}",
                    f"Output channels of each layer before and after stage {index + 1} ({stage.type}), and its "
                    "multiply-accumulates per inference, counted from the Keras model's shapes.",
                    lambda stage=stage: plots.channels_plot(stage),
                )
            )
    if record.stages:
        figures.append(
            figure(
                "plot-stages",
                "stages",
                f"The {metric} of the Keras model after each stage (test split) and the time each stage took.",
                lambda: plots.stages_plot(record),
            )
        )
    return '<div class="plots">' + "".join(f for f in figures if f) + "</div>"


def _stages(record: RunRecord) -> str:
    if not record.stages:
        return "<p class=meta>No training stages: post-training conversion only.</p>"
    rows = []
    for i, s in enumerate(record.stages):
        measured = stage_measured(s).removesuffix(" (cached)")
        kind = f"{s.type} (cached)" if s.cached else s.type
        rows.append(
            [f"{i + 1}", kind, f"{s.seconds:.1f}", metrics.format_value(record.metric.name, s.metric_value), measured]
        )
    parts = [table(["#", "stage", "seconds", record.metric.name, "measured"], rows, numeric={0, 2, 3})]
    for i, s in enumerate(record.stages):
        headers, layer_rows = layer_table(s)
        if not layer_rows and not s.skipped_layers:
            continue
        parts.append(f"<details><summary>stage {i + 1} ({escape(s.type)}): per layer</summary>")
        if layer_rows:
            parts.append(table(headers, layer_rows, numeric=set(range(1, len(headers)))))
        if s.skipped_layers:
            items = "".join(f"<li><code>{escape(k.layer)}</code>: {escape(k.reason)}</li>" for k in s.skipped_layers)
            parts.append(f"<p>Left as they are:</p><ul>{items}</ul>")
        parts.append("</details>")
    return "".join(parts)


def _environment(record: RunRecord) -> str:
    env = record.environment
    packages = ", ".join(f"{k} {v}" for k, v in env.packages.items() if v)
    cpu = f"{env.cpu} ({env.cpu_count if env.cpu_count is not None else '?'} CPUs), {env.threads} thread(s)"
    if env.cpu_features:  # the SIMD features that decide int8 speed
        cpu += f", SIMD: {' '.join(env.cpu_features)}"
    return (
        f"<p>{escape(cpu)}; runtime {escape(str(env.runtime or '?'))}; "
        f"Python {escape(env.python)} on {escape(env.platform)}.</p>"
        f"<p>{escape(packages)}</p>"
    )


def render_html(record: RunRecord) -> str:
    """The whole page for one run, from its record (report.json)."""
    model, data = record.model, record.data
    meta = (
        f"Model <code>{escape(model.path)}</code> ({escape(model.format)}), "
        f"data <code>{escape(data.path)}</code> ({data.test_samples} "
        f"test samples), recipe <code>{escape(record.recipe.path or '?')}</code>. "
        f"Metric: {escape(record.metric.name)}, measured on every artifact through the LiteRT "
        f"interpreter; latency timed alternately in one process ({escape(record.baseline.measured_on)})."
    )
    meta += "".join(f" Model note: {escape(note)}." for note in model.notes)
    seconds = record.seconds
    footer = (
        f"{escape(record.tool.name)} {escape(record.tool.version)}, "
        f"run created {escape(record.created)}"
        + (f", took {seconds:.0f} s" if seconds is not None else "")
        + ". Every figure is measured on the files written; re-render with "
        "<code>compressctl report RUN_DIR --format html</code>."
    )
    body = "\n".join(
        [
            f"<h1>compressctl run: {escape(record.name)} {_status(record)}</h1>",
            f"<p class=meta>{meta}</p>",
            "<h2>Summary</h2>",
            _summary(record),
            "<h2>Gates</h2>",
            _gates(record),
            "<h2>Plots</h2>",
            _plots(record),
            "<h2>Stages</h2>",
            _stages(record),
            *_quantization(record),  # float ops and layer-wise error (report/quantization.py)
            compat_html(record, table),  # quantization backend and runtime compatibility (report/compat.py)
            "<h2>Environment</h2>",
            _environment(record),
            f"<footer>{footer}</footer>",
        ]
    )
    return page(f"compressctl: {record.name}", body)


def render_compare_html(rows: list[dict], by: str = "size_bytes", notes: list[str] = ()) -> str:
    """The compare page: one table across runs and targets and the Pareto plot."""
    from compressctl.report import plots

    metric = rows[0]["metric"] if rows else "metric"
    headers = [label if key != "metric_value" else metric for key, label in TABLE_COLUMNS] + ["Pareto"]
    cells = [[*format_row(r).values(), "yes" if r["pareto"] else ""] for r in rows]
    classes = ["baseline" if r.get("baseline") else "" for r in rows]
    numeric = set(range(2, len(headers) - 1))
    axis = "gzip size" if by == "gzip_bytes" else "size"
    plot = figure(
        "plot-pareto",
        "Pareto front",
        f"Each artifact's {metric} against its {axis} (log scale), coloured by latency p50. Ringed points are "
        f"non-dominated: no other artifact is both smaller (by {axis}) and at least as good on {metric}.",
        lambda: plots.pareto_plot(rows, by),
    )
    runs = sorted({r["run"] for r in rows})
    body = "\n".join(
        [
            f"<h1>compressctl compare: {len(runs)} run(s), {len(rows)} artifact(s)</h1>",
            f"<p class=meta>Runs: {escape(', '.join(runs))}. Pareto front by {escape(axis)} and {escape(metric)}.</p>",
            *(f'<p class="notice info">{escape(n)}</p>' for n in notes),
            table(headers, cells, numeric=numeric, row_classes=classes),
            f'<div class="plots">{plot}</div>',
        ]
    )
    return page("compressctl compare", body)
