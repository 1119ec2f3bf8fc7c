"""report.md: the run's measured results as a Markdown document."""

from __future__ import annotations

from compressctl.core import metrics
from compressctl.report import quantization
from compressctl.report.compat import compat_markdown
from compressctl.report.record import RunRecord
from compressctl.report.summary import (
    artifact_rows,
    kib,
    layer_table,
    notices,
    stage_measured,
    summary_columns,
    throughput_table,
)

__all__ = ["artifact_rows", "render_markdown"]


def _table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    align = ["---:" if i in numeric else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _storage_lines(record: RunRecord) -> list[str]:
    """Where each artifact's stored bytes go, by encoding of its constant tensors."""
    rows = []
    for a in record.artifacts:
        if not a.storage:
            continue
        parts = [f"{e.encoding} {kib(e.bytes)} ({e.params:,} values)" for e in a.storage]
        parts.append(f"other {kib(a.other_bytes or 0)}")
        bits = a.bits_per_weight()
        rows.append([a.target, kib(a.size_bytes), f"{bits:.2f}" if bits else "", "; ".join(parts)])
    if not rows:
        return []
    return ["", "## Stored bytes", "", *_table(["artifact", "size", "bits/value", "by encoding"], rows, {1, 2})]


def _throughput_lines(record: RunRecord) -> list[str]:
    """Samples per second at each of bench.batch_sizes, beside the batch-1 latency."""
    headers, rows, notes = throughput_table(record)
    if not rows:
        return []
    lines = ["", "## Throughput", "", "Samples per second with the interpreter's input resized to each batch size.", ""]
    return lines + _table(headers, rows, set(range(1, len(headers)))) + [f"\n- {note}" for note in notes]


def render_markdown(record: RunRecord) -> str:
    metric = record.metric.name
    lines = [
        f"# compressctl run: {record.name}",
        "",
        f"Model `{record.model.path}` ({record.model.format}), data `{record.data.path}` "
        f"({record.data.test_samples} test samples). Metric: {metric}, measured on every artifact "
        "through the LiteRT interpreter; latency timed alternately in one process "
        f"({record.baseline.measured_on}).",
        # What loading the model involved (an inference-only SavedModel, a Keras 3 file converted to tf_keras).
        *[f"\nModel note: {note}." for note in record.model.notes],
        "",
        "Stored: the .tflite file's bytes, what a device holds and loads (the ratio to the float32 file leads); "
        "download: its gzip -9 size, what fetching it costs.",
        "",
    ]
    columns = summary_columns(record)
    summary = [[r[key] for key, _ in columns] for r in artifact_rows(record)]
    lines += _table([heading for _, heading in columns], summary, set(range(1, len(columns))))
    lines += [f"\n**{lead}** {text}" for _, lead, text in notices(record)]
    lines += _storage_lines(record)
    lines += _throughput_lines(record)
    lines += quantization.markdown_lines(record)  # artifact notes, float ops, layer-wise error
    if record.stages:
        lines += ["", "## Stages", "", "| stage | seconds | " + metric + " | measured |", "| --- | ---: | ---: | --- |"]
        for s in record.stages:
            lines.append(
                f"| {s.type} | {s.seconds:.1f} | {metrics.format_value(metric, s.metric_value)} | {stage_measured(s)} |"
            )
        for s in record.stages:
            headers, rows = layer_table(s)
            if rows:
                lines += ["", f"### {s.type}: per layer", "", *_table(headers, rows, set(range(1, len(headers))))]
            for skipped in s.skipped_layers:
                lines.append(f"\n- left as is: `{skipped.layer}`: {skipped.reason}")
    if record.gates:
        rows = [
            [g.name, g.target, f"{g.operator()} {g.threshold}", g.shown_value(), "pass" if g.passed else "FAIL"]
            for g in record.gates
        ]
        lines += ["", "## Gates", "", *_table(["gate", "target", "required", "value", "result"], rows, {2, 3})]
    lines += compat_markdown(record)  # backend, op versions, oldest runtime, runtimes that loaded it
    env = record.environment
    packages = ", ".join(f"{k} {v}" for k, v in env.packages.items() if v)
    lines += [
        "",
        "## Environment",
        "",
        f"{env.cpu} ({env.cpu_count} CPUs), {env.threads} thread(s); {packages}."
        + (f" SIMD: {' '.join(env.cpu_features)}." if env.cpu_features else ""),
    ]
    return "\n".join(lines) + "\n"
