"""Quantization backend and runtime compatibility of each artifact, as report.md and report.html show them.

Rendered from the run record alone (``artifacts[].quantization`` and ``artifacts[].runtime``); a
report written before these fields existed renders without the section.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compressctl.report.record import RunRecord


def _op_text(o) -> str:
    declared = f" (declared v{o.declared}: its INT4 tensors make it v{o.version})" if o.declared is not None else ""
    return f"{o.op} v{o.version}" + (f" ×{o.count}" if o.count > 1 else "") + declared


def compat_rows(record: RunRecord) -> list[dict]:
    rows = []
    for a in record.artifacts:
        runtime, quantization = a.runtime, a.quantization
        if not runtime and not quantization:
            continue
        ops = ", ".join(_op_text(o) for o in runtime.ops) if runtime else ""
        checked = "; ".join(
            f"{c.runtime}: " + ("runs" if c.loads else f"FAILS ({c.error})")
            for c in (runtime.checked if runtime else [])
        )
        floats = quantization.float_ops if quantization else []
        missing = runtime.not_in_table if runtime else None
        rows.append(
            {
                "target": a.target,
                "backend": (quantization.backend if quantization else None) or "",
                "scheme": (quantization.scheme if quantization else None) or "",
                "min": (runtime.min_tflite_version if runtime else None) or "unknown",
                "required": (runtime.required if runtime else None) or "",
                "ops": ops,
                "checked": checked,
                "float_ops": ", ".join(f"{f.op} {f.name} ({f.reason})" for f in floats),
                "notes": [
                    n
                    for n in (
                        runtime.note if runtime else None,
                        f"not in TFLite's op-version table: {', '.join(missing)}" if missing else None,
                    )
                    if n
                ],
                "table": (runtime.table if runtime else None) or "",
            }
        )
    return rows


def compat_markdown(record: RunRecord) -> list[str]:
    rows = compat_rows(record)
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
    tables = [r["table"] for r in rows if r["table"]]
    if tables:
        lines.append(f"\nOldest runtime from TFLite's op-version table ({tables[0]}).")
    return lines


def compat_html(record: RunRecord, table) -> str:
    rows = compat_rows(record)
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
    tables = [r["table"] for r in rows if r["table"]]
    if tables:
        parts.append(f"<p class=meta>Oldest runtime from TFLite's op-version table ({escape(tables[0])}).</p>")
    return "\n".join(parts)
