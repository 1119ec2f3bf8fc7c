"""The report's quantization section: artifact notes, ops kept in float, layer-wise error (table and plot)."""

from __future__ import annotations

from html import escape

SHOWN_LAYERS = 12


def _scheme(a: dict) -> str:
    q = a.get("quantization") or {}
    return f"{q.get('backend', '?')}, {q.get('scheme', '?')}"


def markdown_lines(report: dict) -> list[str]:
    """Notes per artifact, then per quantized artifact its float ops and worst layers."""
    lines = []
    for a in report.get("artifacts", []):
        for note in a.get("notes") or []:
            lines.append(f"\n**{a['target']}**: {note}.")
    quantized = [a for a in report.get("artifacts", []) if a.get("quantization")]
    if not quantized:
        return lines
    lines += ["", "## Quantization"]
    for a in quantized:
        q = a["quantization"]
        lines += ["", f"### {a['target']} ({_scheme(a)})", ""]
        selective = q.get("selective")
        if selective and selective.get("kept_in_float"):
            lines.append(
                f"Full int8 lost {100 * selective['full_int8']['metric_drop']:.2f} points on "
                f"{selective['checked_on']}; budget {100 * selective['max_metric_drop']:.2f} "
                f"({selective['budget_from']}); size cost {selective['size_cost_bytes']:+,} bytes."
            )
            lines.append("")
        for op in q.get("float_ops") or []:
            lines.append(f"- float: `{op['name']}` ({op['op']}): {op['reason']}")
        errors = q.get("layer_errors") or []
        if errors:
            lines += ["", f"Layer-wise error, worst first ({q.get('layer_errors_method', '')}):", ""]
            lines += ["| layer | op | SNR dB | RMSE |", "| --- | --- | ---: | ---: |"]
            for row in errors[:SHOWN_LAYERS]:
                lines.append(f"| `{row['name']}` | {row['op']} | {row['snr_db']:.2f} | {row['rmse']:.4g} |")
            if len(errors) > SHOWN_LAYERS:
                lines.append(f"\n({len(errors) - SHOWN_LAYERS} more in report.json)")
        elif q.get("layer_errors_error"):
            lines.append(f"\nNo layer-wise error: {q['layer_errors_error']}")
    return lines


def html_notes(report: dict) -> list[str]:
    return [
        f'<p class="notice info"><b>{escape(a["target"])}</b> {escape(note)}</p>'
        for a in report.get("artifacts", [])
        for note in a.get("notes") or []
    ]


def html_section(report: dict, figure, table) -> str:
    """Per quantized artifact: the ops kept in float and the layer-wise error, as a plot and a table."""
    parts = []
    for index, a in enumerate(report.get("artifacts", [])):
        q = a.get("quantization")
        if not q:
            continue
        parts.append(f"<h3>{escape(a['target'])} ({escape(_scheme(a))})</h3>")
        float_ops = q.get("float_ops") or []
        if float_ops:
            items = "".join(
                f"<li><code>{escape(op['name'])}</code> ({escape(op['op'])}): {escape(op['reason'])}</li>"
                for op in float_ops
            )
            parts.append(f"<p>Ops computed in float:</p><ul>{items}</ul>")
        errors = q.get("layer_errors") or []
        if errors:
            parts.append(
                figure(
                    f"plot-quant-{index + 1}",
                    f"layer-wise quantization error of {a['target']}",
                    f"SNR of each quantized op's output against float, worst first ({q.get('layer_errors_method')}).",
                    lambda a=a: layer_error_plot(a),
                )
            )
            rows = [[r["name"], r["op"], f"{r['snr_db']:.2f}", f"{r['rmse']:.4g}"] for r in errors]
            parts.append(
                "<details><summary>every layer</summary>"
                + table(["layer", "op", "SNR dB", "RMSE"], rows, numeric={2, 3})
                + "</details>"
            )
        elif q.get("layer_errors_error"):
            parts.append(f"<p>No layer-wise error: {escape(q['layer_errors_error'])}</p>")
    return "".join(parts) or "<p class=meta>No quantized artifact.</p>"


def layer_error_plot(artifact: dict) -> bytes | None:
    """Horizontal bars: SNR (dB) of the worst quantized ops of one artifact; lower is worse."""
    from compressctl.report.plots import _new_figure, _style, to_png

    rows = (artifact.get("quantization") or {}).get("layer_errors") or []
    rows = rows[:SHOWN_LAYERS]
    if not rows:
        return None
    with _style():
        fig, (ax,) = _new_figure(9.0, max(1.8, 0.32 * len(rows) + 1.0))
        ys = list(range(len(rows)))
        values = [r["snr_db"] for r in rows]
        colors = ["#d62728" if v < 20 else "#ff7f0e" if v < 30 else "#2ca02c" for v in values]
        ax.barh(ys, values, color=colors, height=0.6)
        for y, r in zip(ys, rows, strict=True):
            label = f" {r['snr_db']:.1f} dB, RMSE {r['rmse']:.3g}"
            ax.annotate(label, (max(r["snr_db"], 0), y), va="center", fontsize=7)
        labels = [f"{r['op']} {r['name'][:40]}" for r in rows]
        ax.set_yticks(ys, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(min(0, min(values)), max(values + [10]) * 1.35)
        ax.set_xlabel("SNR, dB (float signal power / quantization error power); below 20 dB in red")
        ax.set_title(f"{artifact['target']}: layer-wise quantization error, worst first")
        return to_png(fig)
