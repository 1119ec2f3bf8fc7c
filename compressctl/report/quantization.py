"""The report's quantization section: artifact notes, ops kept in float, layer-wise error (table and plot)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compressctl.report.record import Artifact, RunRecord

SHOWN_LAYERS = 12


def _scheme(a: Artifact) -> str:
    q = a.quantization
    return f"{q.backend or '?'}, {q.scheme or '?'}"


def _snr(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _rmse(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def markdown_lines(record: RunRecord) -> list[str]:
    """Notes per artifact, then per quantized artifact its float ops and worst layers."""
    lines = [f"\n**{a.target}**: {note}." for a in record.artifacts for note in a.notes]
    quantized = [a for a in record.artifacts if a.quantization]
    if not quantized:
        return lines
    lines += ["", "## Quantization"]
    for a in quantized:
        q = a.quantization
        lines += ["", f"### {a.target} ({_scheme(a)})", ""]
        s = q.selective
        if s and s.kept_in_float:
            lines.append(
                f"Full {s.scheme or 'int8'} lost {100 * s.full_int8['metric_drop']:.2f} points on {s.checked_on}; "
                + (f"{len(s.kept_in_float)} op(s) kept in {s.kept_as}; " if s.kept_as else "")
                + "budget "
                f"{100 * s.max_metric_drop:.2f} ({s.budget_from}); size cost {s.size_cost_bytes:+,} bytes."
            )
            lines.append("")
        for op in q.float_ops:
            lines.append(f"- float: `{op.name}` ({op.op}): {op.reason}")
        if q.layer_errors:
            lines += ["", f"Layer-wise error, worst first ({q.layer_errors_method or ''}):", ""]
            lines += ["| layer | op | SNR dB | RMSE |", "| --- | --- | ---: | ---: |"]
            for row in q.layer_errors[:SHOWN_LAYERS]:
                lines.append(f"| `{row.name}` | {row.op} | {_snr(row.snr_db)} | {_rmse(row.rmse)} |")
            if len(q.layer_errors) > SHOWN_LAYERS:
                lines.append(f"\n({len(q.layer_errors) - SHOWN_LAYERS} more in report.json)")
        elif q.layer_errors_error:
            lines.append(f"\nNo layer-wise error: {q.layer_errors_error}")
    return lines


def html_notes(record: RunRecord) -> list[str]:
    return [
        f'<p class="notice info"><b>{escape(a.target)}</b> {escape(note)}</p>'
        for a in record.artifacts
        for note in a.notes
    ]


def html_section(record: RunRecord, figure, table) -> str:
    """Per quantized artifact: the ops kept in float and the layer-wise error, as a plot and a table."""
    parts = []
    for index, a in enumerate(record.artifacts):
        q = a.quantization
        if not q:
            continue
        parts.append(f"<h3>{escape(a.target)} ({escape(_scheme(a))})</h3>")
        if q.float_ops:
            items = "".join(
                f"<li><code>{escape(op.name)}</code> ({escape(op.op)}): {escape(op.reason)}</li>" for op in q.float_ops
            )
            parts.append(f"<p>Ops computed in float:</p><ul>{items}</ul>")
        if q.layer_errors:
            parts.append(
                figure(
                    f"plot-quant-{index + 1}",
                    f"layer-wise quantization error of {a.target}",
                    f"SNR of each quantized op's output against float, worst first ({q.layer_errors_method}).",
                    lambda a=a: layer_error_plot(a),
                )
            )
            rows = [[r.name, r.op, _snr(r.snr_db), _rmse(r.rmse)] for r in q.layer_errors]
            parts.append(
                "<details><summary>every layer</summary>"
                + table(["layer", "op", "SNR dB", "RMSE"], rows, numeric={2, 3})
                + "</details>"
            )
        elif q.layer_errors_error:
            parts.append(f"<p>No layer-wise error: {escape(q.layer_errors_error)}</p>")
    return "".join(parts) or "<p class=meta>No quantized artifact.</p>"


def layer_error_plot(artifact: Artifact) -> bytes | None:
    """Horizontal bars: SNR (dB) of the worst quantized ops of one artifact; lower is worse."""
    from compressctl.report.plots import figure_style, new_figure, to_png

    rows = [r for r in (artifact.quantization.layer_errors if artifact.quantization else []) if r.snr_db is not None]
    rows = rows[:SHOWN_LAYERS]
    if not rows:
        return None
    with figure_style():
        fig, (ax,) = new_figure(9.0, max(1.8, 0.32 * len(rows) + 1.0))
        ys = list(range(len(rows)))
        values = [r.snr_db for r in rows]
        colors = ["#d62728" if v < 20 else "#ff7f0e" if v < 30 else "#2ca02c" for v in values]
        ax.barh(ys, values, color=colors, height=0.6)
        for y, r in zip(ys, rows, strict=True):
            ax.annotate(f" {r.snr_db:.1f} dB, RMSE {_rmse(r.rmse)}", (max(r.snr_db, 0), y), va="center", fontsize=7)
        ax.set_yticks(ys, [f"{r.op} {r.name[:40]}" for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(min(0, min(values)), max([*values, 10]) * 1.35)
        ax.set_xlabel("SNR, dB (float signal power / quantization error power); below 20 dB in red")
        ax.set_title(f"{artifact.target}: layer-wise quantization error, worst first")
        return to_png(fig)
