"""report.md: the run's measured results as a Markdown document."""

from __future__ import annotations

from compressctl.report.compat import compat_markdown
from compressctl.report.summary import edgetpu_summary, stage_measured


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _delta(x: float) -> str:
    return f"{100 * x:+.2f} pt"


def artifact_rows(report: dict) -> list[dict]:
    """Baseline first, then artifacts: the rows that every summary table shows."""
    base = report["baseline"]
    rows = [
        {
            "name": "baseline (float32)",
            "path": base["artifact"],
            "size": _kib(base["size_bytes"]),
            "gzip": _kib(base["gzip_bytes"]),
            "ratio": "1.00×",
            "ratio_gzip": "1.00×",
            "metric": _pct(base["metric_value"]),
            "delta": "",
            "p50": f"{base['latency_ms']['p50']:.3f}",
            "speedup": "1.00×",
        }
    ]
    for a in report["artifacts"]:
        rows.append(
            {
                "name": f"{a['target']} ({a['conversion']})",
                "path": a["path"],
                "size": _kib(a["size_bytes"]),
                "gzip": _kib(a["gzip_bytes"]),
                "ratio": f"{a['compression_ratio']:.2f}×",
                "ratio_gzip": f"{a['compression_ratio_gzip']:.2f}×",
                "metric": _pct(a["metric_value"]),
                "delta": _delta(a["metric_delta"]),
                "p50": f"{a['latency_ms']['p50']:.3f}",
                "speedup": f"{a['speedup']:.2f}×",
            }
        )
    return rows


def render_markdown(report: dict) -> str:
    metric = report["metric"]
    lines = [
        f"# compressctl run: {report.get('recipe', {}).get('name') or report['model']['path']}",
        "",
        f"Model `{report['model']['path']}` ({report['model']['format']}), data `{report['data']['path']}` "
        f"({report['data']['test_samples']} test samples). Metric: {metric}, measured on every artifact "
        "through the LiteRT interpreter; latency timed alternately in one process "
        f"({report['baseline']['measured_on']}).",
        "",
        "| artifact | size | gzip | ratio | gzip ratio | " + metric + " | Δ | p50 ms | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in artifact_rows(report):
        lines.append(
            f"| {r['name']} | {r['size']} | {r['gzip']} | {r['ratio']} | {r['ratio_gzip']} | {r['metric']} "
            f"| {r['delta']} | {r['p50']} | {r['speedup']} |"
        )
    for failure in report.get("failed_targets", []):
        lines.append(f"\n**Target {failure['target']} failed:** {failure['error']}")
    for a in report["artifacts"]:
        mapping = edgetpu_summary(a)
        if mapping:
            lines.append(f"\n**Edge TPU** {mapping}.")
        if a.get("fallback"):
            lines.append(f"\n**{a['target']}** fell back to {a['conversion']}: {a['fallback']['reason']}.")
    if report["stages"]:
        lines += ["", "## Stages", "", "| stage | seconds | " + metric + " | measured |", "| --- | ---: | ---: | --- |"]
        for s in report["stages"]:
            measured = stage_measured(s)
            lines.append(f"| {s['type']} | {s['seconds']:.1f} | {_pct(s['metric_value'])} | {measured} |")
        for s in report["stages"]:
            if s.get("layers"):
                lines += ["", f"### {s['type']}: per layer", ""]
                lines += ["| layer | params | sparsity | unique weights | rank | params before → after |"]
                lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
                for row in s["layers"]:
                    sparsity = row.get("sparsity")
                    params = row.get("params")
                    change = f"{row['params_before']:,} → {row['params_after']:,}" if "params_before" in row else ""
                    lines.append(
                        f"| {row['layer']} | {'' if params is None else f'{params:,}'} "
                        f"| {'' if sparsity is None else _pct(sparsity)} | {row.get('unique_weights', '')} "
                        f"| {row.get('rank', '')} | {change} |"
                    )
            for skipped in s.get("skipped_layers", []):
                lines.append(f"\n- left as is: `{skipped['layer']}`: {skipped['reason']}")
    if report["gates"]:
        lines += [
            "",
            "## Gates",
            "",
            "| gate | target | threshold | value | result |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for g in report["gates"]:
            value = f"{g['value']:.4g}" if isinstance(g["value"], float) else g["value"]
            lines.append(
                f"| {g['name']} | {g['target']} | {g['threshold']} | {value} | {'pass' if g['passed'] else 'FAIL'} |"
            )
    lines += compat_markdown(report)  # backend, op versions, oldest runtime, runtimes that loaded it
    env = report["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
    lines += [
        "",
        "## Environment",
        "",
        f"{env['cpu']} ({env['cpu_count']} CPUs), {env['threads']} thread(s); {packages}.",
    ]
    return "\n".join(lines) + "\n"
