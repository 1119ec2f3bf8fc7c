"""Short texts shared by report.md and report.html, so both say the same thing the same way."""

from __future__ import annotations

# Keys a stage may measure, in the order shown, with how to show each value.
_MEASURED = (
    ("sparsity", lambda v: f"sparsity {100 * v:.1f} %"),
    ("unique_weights", lambda v: f"≤ {v} unique weights per layer"),
    ("quantized_layers", lambda v: f"{v} layers quantization-aware"),
    ("factorized_layers", lambda v: f"{v} layers factorized"),
    ("params_before", lambda v: f"params {v:,}"),
    ("params_after", lambda v: f"→ {v:,}"),
    ("pruned_layers", lambda v: f"{v} layers thinned"),
    ("macs_before", lambda v: f"MACs {v:,}"),
    ("macs_after", lambda v: f"→ {v:,}"),
    ("teacher_metric_value", lambda v: f"teacher {100 * v:.2f} %"),
    ("student_metric_value", lambda v: f"student {100 * v:.2f} %"),
    ("teacher_params", lambda v: f"teacher params {v:,}"),
    ("student_params", lambda v: f"student params {v:,}"),
)


def stage_measured(stage: dict) -> str:
    parts = [show(stage[key]) for key, show in _MEASURED if stage.get(key) is not None]
    text = ", ".join(parts).replace(", →", " →")
    return text + (" (cached)" if stage.get("cached") else "")


def edgetpu_summary(artifact: dict) -> str | None:
    """One line on where an Edge TPU artifact's ops run, or None for other targets."""
    record = artifact.get("edgetpu")
    if not record:
        return None
    mapping = record.get("mapping") or {}
    on_tpu, total = mapping.get("ops_on_tpu"), mapping.get("ops_total")
    source = "edgetpu_compiler" if record.get("compiled") else "predicted"
    text = f"{artifact['target']}: {on_tpu} of {total} ops on the Edge TPU ({source}; {record.get('status')})"
    first_cpu = mapping.get("first_cpu_op")
    if isinstance(first_cpu, dict):
        why = f" ({first_cpu['reason']})" if first_cpu.get("reason") else ""
        text += f"; from {first_cpu['op']} (op {first_cpu['index']}){why} on, ops run on the CPU"
    compiled = record.get("compiled_artifact")
    if compiled:
        text += f"; compiled model {compiled.get('path')}"
    return text


CHANNEL_HEADERS = ["layer", "channels before → after", "params before → after", "MACs before → after", "ratio"]


def channel_rows(stage: dict) -> list[list[str]]:
    """Per-layer rows of a structured-pruning stage (empty for stages that report no channels)."""
    rows = []
    for r in stage.get("layers") or []:
        if r.get("channels_before") is None:
            continue
        rows.append(
            [
                r["layer"],
                f"{r['channels_before']:,} → {r['channels_after']:,}",
                f"{r['params_before']:,} → {r['params_after']:,}",
                f"{r.get('macs_before') or 0:,} → {r.get('macs_after') or 0:,}",
                "" if r.get("ratio") is None else f"{r['ratio']:g}",
            ]
        )
    return rows
