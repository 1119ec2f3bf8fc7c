"""Quantization backend and runtime compatibility of each artifact, as report.md and report.html show them.

Rendered from report.json alone (``artifacts[].quantization`` and ``artifacts[].runtime``); a
report written before these fields existed renders without the section.
"""

from __future__ import annotations

from html import escape


def compat_rows(report: dict) -> list[dict]:
    rows = []
    for a in report.get("artifacts", []):
        runtime, quantization = a.get("runtime"), a.get("quantization")
        if not runtime and not quantization:
            continue
        runtime = runtime or {}
        quantization = quantization or {}
        ops = ", ".join(
            f"{o['op']} v{o['version']}" + (f" ×{o['count']}" if o["count"] > 1 else "") for o in runtime.get("ops", [])
        )
        checked = "; ".join(
            f"{c['runtime']}: " + ("runs" if c["loads"] else f"FAILS ({c['error']})")
            for c in runtime.get("checked", [])
        )
        floats = quantization.get("float_ops") or []
        rows.append(
            {
                "target": a["target"],
                "backend": quantization.get("backend", ""),
                "scheme": quantization.get("scheme", ""),
                "min": runtime.get("min_tflite_version") or "unknown",
                "required": runtime.get("required", ""),
                "ops": ops,
                "checked": checked,
                "float_ops": ", ".join(f"{f['op']} {f['name']} ({f['reason']})" for f in floats),
                "notes": [n for n in (runtime.get("note"), _not_in_table(runtime)) if n],
                "table": runtime.get("table", ""),
            }
        )
    return rows


def _not_in_table(runtime: dict) -> str:
    missing = runtime.get("not_in_table")
    return f"not in TFLite's op-version table: {', '.join(missing)}" if missing else ""


def compat_markdown(report: dict) -> list[str]:
    rows = compat_rows(report)
    if not rows:
        return []
    lines = [
        "",
        "## Quantization and runtime compatibility",
        "",
        "| artifact | backend | scheme | oldest TFLite runtime | required | loaded by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['backend']} | {r['scheme']} | {r['min']} | {r['required']} | {r['checked']} |"
        )
    for r in rows:
        lines.append(f"\n- **{r['target']}** ops: {r['ops']}")
        if r["float_ops"]:
            lines.append(f"  - weights left in float: {r['float_ops']}")
        lines += [f"  - {note}" for note in r["notes"]]
    lines.append(f"\nOldest runtime from TFLite's op-version table ({rows[0]['table']}).")
    return lines


def compat_html(report: dict) -> str:
    from compressctl.report.html import table  # here: html.py imports this module

    rows = compat_rows(report)
    if not rows:
        return ""
    parts = [
        "<h2>Quantization and runtime compatibility</h2>",
        table(
            ["artifact", "backend", "scheme", "oldest TFLite runtime", "required", "loaded by"],
            [[r["target"], r["backend"], r["scheme"], r["min"], r["required"], r["checked"]] for r in rows],
        ),
    ]
    for r in rows:
        items = [f"<li>ops: {escape(r['ops'])}</li>"]
        if r["float_ops"]:
            items.append(f"<li>weights left in float: {escape(r['float_ops'])}</li>")
        items += [f"<li>{escape(n)}</li>" for n in r["notes"]]
        parts.append(
            f"<details><summary>{escape(r['target'])}: ops and versions</summary><ul>{''.join(items)}</ul></details>"
        )
    parts.append(f"<p class=meta>Oldest runtime from TFLite's op-version table ({escape(rows[0]['table'])}).</p>")
    return "\n".join(parts)
