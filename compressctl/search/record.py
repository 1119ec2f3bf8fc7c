"""DIR/search.json and DIR/report.html of a search, rewritten whole after every finished trial.

search.json is written to a temporary file and renamed over the old one, so at any moment (an
interrupted search included) it is a consistent record of the trials that finished.
"""

from __future__ import annotations

import json
import os
import tempfile
from html import escape
from pathlib import Path

from compressctl.search.objective import FIGURES, choose_best
from compressctl.search.pareto import trial_front

# search.json's trial fields (DESIGN.md), in order: the trial's own, then the figures from its report.json.
# `node`: the IP of the Ray node the trial ran on (None when it never started on one).
# `stopped_at_epoch`: the epoch after which early stopping ended the trial (status `stopped`), else None.
TRIAL_KEYS = ("id", "params", "status", "error", "run_dir", "node", "seconds", "stopped_at_epoch", *FIGURES)


def build(header: dict, trials: list[dict], size_key: str, objective: str, best_recipe: str | None) -> dict:
    trials = sorted(trials, key=lambda t: t["id"])
    best = choose_best(trials, objective, size_key)
    return {
        "schema_version": 1,
        **header,
        "trials": [{k: t.get(k) for k in TRIAL_KEYS} for t in trials],
        "pareto": trial_front(trials, size_key),
        "best": {"trial": best["id"], "recipe": best_recipe} if best is not None and best_recipe else None,
    }


def write_json_atomic(path: Path, payload: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> dict | None:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and payload.get("schema_version") == 1 else None


def front_plot(search: dict, size_key: str) -> bytes | None:
    from compressctl.report.plots import figure_style, new_figure, to_png

    measured = [t for t in search["trials"] if t.get(size_key) is not None]
    if not measured:
        return None
    front = set(search["pareto"])
    best = (search.get("best") or {}).get("trial")
    with figure_style():
        fig, (ax,) = new_figure(7.5, 4.6)
        for status, color in (("ok", "#1e7d32"), ("gate_failed", "#b3261e")):
            pts = [t for t in measured if t["status"] == status]
            if pts:
                ax.scatter(
                    [t[size_key] / 1024 for t in pts],
                    [t["metric_value"] for t in pts],
                    s=28,
                    color=color,
                    label="passed every gate" if status == "ok" else "missed a gate",
                    zorder=3,
                )
        ring = sorted((t for t in measured if t["id"] in front), key=lambda t: t[size_key])
        if ring:
            xs = [t[size_key] / 1024 for t in ring]
            ys = [t["metric_value"] for t in ring]
            ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="black", linewidths=1.4, label="Pareto front")
            ax.step(xs, ys, where="post", color="black", linewidth=0.8, alpha=0.6)
        for t in measured:
            if t["id"] == best or t["id"] in front:
                ax.annotate(t["id"], (t[size_key] / 1024, t["metric_value"]), fontsize=7, xytext=(4, 4),
                            textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        for axis in (ax.xaxis,):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(f"{'gzip size' if size_key == 'gzip_bytes' else 'size'} of the artifact (KiB, log scale)")
        ax.set_ylabel(search.get("metric") or "metric")
        ax.set_title("Trials: metric against size (front ringed)")
        ax.legend(loc="lower right")
        return to_png(fig)


def cell_text(value, kind: str) -> str:
    """One figure as a table shows it: ``bytes``, ``ratio``, ``pct``, ``pt`` (a change), ``ms`` or as it is."""
    if value is None:
        return ""
    if kind == "bytes":
        return f"{value / 1024:,.1f} KiB"
    if kind == "ratio":
        return f"{value:.2f}×"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "pt":
        return f"{100 * value:+.2f} pt"
    if kind == "ms":
        return f"{value:.3f}"
    return str(value)


def render_html(search: dict) -> str:
    from compressctl.report.html import figure, page, table

    size_key = search["objective"].get("pareto_size", "gzip_bytes")
    best = (search.get("best") or {}).get("trial")
    front = set(search["pareto"])
    counts = {s: sum(t["status"] == s for t in search["trials"]) for s in ("ok", "gate_failed", "failed", "stopped")}
    engine = search["engine"]
    badge = (
        '<span class="badge ok">a trial passed every gate</span>'
        if best
        else ('<span class="badge bad">no trial passed every gate</span>')
    )
    head = (
        f"<h1>compressctl search: {escape(search['recipe'].get('name') or search['recipe']['path'])}{badge}</h1>"
        f'<p class="meta">objective: {escape(json.dumps(search["objective"]))}; engine {escape(engine["name"])} '
        f"{escape(str(engine.get('version')))} at {escape(str(engine['address']))}, "
        f"{engine.get('max_concurrent')} concurrent trial(s) of {engine.get('cpus_per_trial')} CPU(s); "
        f"{len(search['trials'])} trials: {counts['ok']} passed, {counts['gate_failed']} missed a gate, "
        f"{counts['failed']} failed"
        + (f", {counts['stopped']} stopped by early stopping" if counts["stopped"] else "")
        + "</p>"
    )
    if best:
        head += f'<p class="meta">best: trial {escape(best)}, reproduced by <code>compressctl run best.yaml</code></p>'
    plot = figure(
        "pareto",
        "metric against size",
        "Every measured trial; the Pareto front (no trial as small and as good) is ringed.",
        lambda: front_plot(search, size_key),
    )
    headers = ["trial", "status", "metric", "Δ", "size", "gzip", "ratio", "gzip ratio", "p50 ms", "speed-up",
               "s", "front", "parameters / error"]  # fmt: skip
    rows, classes = [], []
    for t in search["trials"]:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        rows.append(
            [
                t["id"] + (" (best)" if t["id"] == best else ""),
                (t["status"], "pass" if t["status"] == "ok" else "fail"),
                cell_text(t["metric_value"], "pct"),
                cell_text(t["metric_delta"], "pt"),
                cell_text(t["size_bytes"], "bytes"),
                cell_text(t["gzip_bytes"], "bytes"),
                cell_text(t["compression_ratio"], "ratio"),
                cell_text(t["compression_ratio_gzip"], "ratio"),
                cell_text(t["latency_ms_p50"], "ms"),
                cell_text(t["speedup"], "ratio"),
                cell_text(t["seconds"], ""),
                "*" if t["id"] in front else "",
                params + (f" — {t['error']}" if t["error"] else ""),
            ]
        )
        classes.append("")
    body = head + f'<h2>Pareto front</h2><div class="plots">{plot}</div><h2>Trials</h2>'
    body += table(headers, rows, numeric=set(range(2, 11)), row_classes=classes)
    body += f"<footer>search.json schema_version {search['schema_version']}</footer>"
    return page("compressctl search", body)
