"""Recipe gates: goals each artifact must meet. A missed gate makes the run exit 1."""

from __future__ import annotations

from compressctl import metrics
from compressctl.recipe import Gates

# gate name → (artifact field it reads, True when larger values are better)
GATES = {
    "max_metric_drop": ("metric_drop", False),
    "min_compression_ratio": ("compression_ratio", True),
    "min_compression_ratio_gzip": ("compression_ratio_gzip", True),
    "min_speedup": ("speedup", True),
    "max_size_bytes": ("size_bytes", False),
}


def evaluate_gates(gates: Gates, baseline: dict, artifacts: list[dict], metric: str = "accuracy") -> list[dict]:
    """One row per (gate, artifact): name, target, threshold, measured value, passed.

    ``max_metric_drop`` reads the drop in the metric's direction (compressctl.metrics.drop): baseline −
    artifact where higher is better, artifact − baseline for errors such as mae.
    """
    rows = []
    for artifact in artifacts:
        if gates.targets is not None and artifact["target"] not in gates.targets:
            continue
        values = dict(artifact, metric_drop=metrics.drop(metric, baseline["metric_value"], artifact["metric_value"]))
        for name, (key, larger_is_better) in GATES.items():
            threshold = getattr(gates, name)
            if threshold is None:
                continue
            value = values[key]
            # A hair of tolerance so that a drop of exactly the threshold passes despite float rounding.
            passed = value >= threshold - 1e-9 if larger_is_better else value <= threshold + 1e-9
            rows.append(
                {"name": name, "target": artifact["target"], "threshold": threshold, "value": value, "passed": passed}
            )
    return rows


def describe(gate: dict) -> str:
    """One line per gate; a failure starts with FAILED, so a CI log search finds it."""
    value = gate["value"]
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    op = "<=" if gate["name"].startswith("max_") else ">="
    verdict = "passed" if gate["passed"] else "FAILED"
    return f"{verdict} gate {gate['name']} [{gate['target']}]: {shown} (required {op} {gate['threshold']})"
