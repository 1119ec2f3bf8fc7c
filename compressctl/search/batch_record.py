"""DIR/batch.json and DIR/report.html of ``compressctl batch``: every run's status and figures, each model's best."""

from __future__ import annotations

import html
from pathlib import Path

from compressctl.core.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_STAGE_FAILED
from compressctl.search.record import cell_text

FIGURES = (
    "metric_value",
    "metric_delta",
    "size_bytes",
    "gzip_bytes",
    "compression_ratio",
    "compression_ratio_gzip",
    "latency_ms_p50",
)
STATUSES = ("ok", "gate_failed", "failed", "pending")


def artifact_figures(report: dict) -> list[dict]:
    """Each artifact of a run's report.json: its target and figures."""
    return [
        {
            "target": a["target"],
            "path": a["path"],
            **{key: a[key] for key in FIGURES if key != "latency_ms_p50"},
            "latency_ms_p50": a["latency_ms"]["p50"],
        }
        for a in report.get("artifacts", [])
    ]


def run_figures(report: dict) -> dict:
    """A run's entry fields read from its report.json: the first artifact's figures, gates, every artifact."""
    artifacts = artifact_figures(report)
    first = artifacts[0] if artifacts else {}
    return {
        "metric": report["metric"]["name"],
        "target": first.get("target"),
        **{key: first.get(key) for key in FIGURES},
        "gates_passed": bool(report.get("passed")),
        "gates": [
            {k: g.get(k) for k in ("name", "target", "threshold", "value", "passed")} for g in report.get("gates", [])
        ],
        "artifacts": artifacts,
    }


def empty_run(pair) -> dict:
    """A run's entry before it ran (status ``pending``)."""
    return {
        "model": pair.model,
        "recipe": pair.recipe,
        "run_dir": pair.run_dir,
        "status": "pending",
        "error": None,
        "node": None,
        "seconds": None,
        "metric": None,
        "target": None,
        **dict.fromkeys(FIGURES),
        "gates_passed": None,
        "gates": [],
        "artifacts": [],
    }


def best_per_model(runs: list[dict], models: list[str]) -> dict:
    """Per model, its smallest artifact (gzip bytes) among its runs that met every gate; None when none did."""
    best = {}
    for model in models:
        choices = [
            (a["gzip_bytes"], -(a["metric_delta"] or 0.0), r["run_dir"], a)
            for r in runs
            if r["model"] == model and r["status"] == "ok"
            for a in r["artifacts"]
        ]
        if not choices:
            best[model] = None
            continue
        _, _, run_dir, artifact = min(choices, key=lambda c: c[:3])
        run = next(r for r in runs if r["run_dir"] == run_dir)
        best[model] = {"recipe": run["recipe"], "run_dir": run_dir, **artifact}
    return best


def exit_code(runs: list[dict]) -> int:
    """3 when a run failed, else 1 when one missed a gate, else 0."""
    statuses = {r["status"] for r in runs}
    if statuses & {"failed", "pending"}:
        return EXIT_STAGE_FAILED
    return EXIT_GATE_FAILED if "gate_failed" in statuses else EXIT_OK


def build(header: dict, runs: list[dict]) -> dict:
    models = header["models"]
    return {
        **header,
        "runs": runs,
        "counts": {status: sum(r["status"] == status for r in runs) for status in STATUSES},
        "best": best_per_model(runs, models),
        "exit_code": exit_code(runs),
    }


def _cell(value, kind: str) -> str:
    return html.escape(cell_text(value, kind))


_COLUMNS = (
    ("model", "model", "text"),
    ("recipe", "recipe", "text"),
    ("status", "status", "text"),
    ("target", "target", "text"),
    ("gzip", "gzip_bytes", "bytes"),
    ("ratio", "compression_ratio", "ratio"),
    ("gzip ratio", "compression_ratio_gzip", "ratio"),
    ("metric Δ", "metric_delta", "pt"),
    ("p50 ms", "latency_ms_p50", "ms"),
    ("node", "node", "text"),
    ("seconds", "seconds", "text"),
    ("error", "error", "text"),
)


def render_html(batch: dict) -> str:
    """One table of every model × recipe run, then each model's best artifact within the gates."""
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _, _ in _COLUMNS)
    rows = []
    for run in batch["runs"]:
        cells = []
        for _, key, kind in _COLUMNS:
            value = run.get(key)
            if key == "recipe":
                value = Path(value).stem
            cell = _cell(value, kind)
            if key == "model":
                cell = f'<a href="{html.escape(run["run_dir"])}/report.html">{cell}</a>'
            cells.append(f"<td>{cell}</td>")
        rows.append(f'<tr class="{html.escape(run["status"])}">{"".join(cells)}</tr>')
    best_rows = []
    for model, best in batch["best"].items():
        if best is None:
            best_rows.append(f"<tr><td>{html.escape(model)}</td><td colspan=5>no run met every gate</td></tr>")
            continue
        link = f"{best['run_dir']}/{best['path']}"
        best_rows.append(
            f"<tr><td>{html.escape(model)}</td><td>{html.escape(Path(best['recipe']).stem)}</td>"
            f"<td>{html.escape(best['target'])}</td><td>{_cell(best['gzip_bytes'], 'bytes')}</td>"
            f"<td>{_cell(best['compression_ratio_gzip'], 'ratio')}</td><td>{_cell(best['metric_delta'], 'pt')}</td>"
            f'<td><a href="{html.escape(link)}">{html.escape(best["path"])}</a></td></tr>'
        )
    counts = ", ".join(f"{n} {status}" for status, n in batch["counts"].items() if n)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>compressctl batch</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+4){text-align:left}"
        "tr.failed{background:#fdd}tr.gate_failed{background:#ffd}</style></head><body>"
        f"<h1>compressctl batch: {html.escape(batch['fleet']['path'])}</h1>"
        f"<p>{len(batch['runs'])} runs ({html.escape(counts)}); exit code {batch['exit_code']}</p>"
        f"<h2>Every model × recipe</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
        "<h2>Best artifact per model within the gates (smallest gzip)</h2>"
        "<table><tr><th>model</th><th>recipe</th><th>target</th><th>gzip</th><th>gzip ratio</th><th>metric Δ</th>"
        f"<th>artifact</th></tr>{''.join(best_rows)}</table></body></html>"
    )
