"""A trial's figures, status and score, read from the report.json of its own run directory."""

from __future__ import annotations

import math

from compressctl.core import metrics

FIGURES = (
    "metric_value",
    "metric_delta",
    "size_bytes",
    "gzip_bytes",
    "compression_ratio",
    "compression_ratio_gzip",
    "latency_ms_p50",
    "speedup",
    "higher_is_better",
)
FAILED_SCORE = 1e3  # a trial with no artifact: worse than any measured one for the sampler
MAX_VIOLATION = 10.0


def trial_figures(report: dict, target: str) -> dict | None:
    """The scored artifact's figures, copied from the run's report.json; None when it has none."""
    artifact = next((a for a in report.get("artifacts", []) if a["target"] == target), None)
    if artifact is None:
        return None
    return {
        "metric_value": artifact["metric_value"],
        "metric_delta": artifact["metric_delta"],
        "size_bytes": artifact["size_bytes"],
        "gzip_bytes": artifact["gzip_bytes"],
        "compression_ratio": artifact["compression_ratio"],
        "compression_ratio_gzip": artifact["compression_ratio_gzip"],
        "latency_ms_p50": artifact["latency_ms"]["p50"],
        "speedup": artifact["speedup"],
        # The metric's direction (lower is better for mae): the front and the best trial follow it.
        "higher_is_better": metrics.from_report(report)[1],
    }


def goodness(trial: dict) -> float:
    """The trial's metric, signed so that larger is better whatever the metric's direction."""
    sign = 1.0 if trial.get("higher_is_better", True) is not False else -1.0
    return sign * float(trial["metric_value"])


def status_of(report: dict, target: str) -> tuple[str, str | None]:
    """ok (every gate passed), gate_failed, or failed (the scored artifact is missing)."""
    failed = next((f for f in report.get("failed_targets", []) if f["target"] == target), None)
    if failed is not None:
        return "failed", f"target {target} failed: {failed['error']}".splitlines()[0]
    if trial_figures(report, target) is None:
        return "failed", f"no artifact for target {target}"
    if report.get("failed_targets"):
        others = ", ".join(f["target"] for f in report["failed_targets"])
        return "gate_failed", f"other target(s) failed: {others}"
    return ("ok", None) if report.get("passed") else ("gate_failed", None)


def violation(gates: list[dict]) -> float:
    """How far the failed gates missed, relative to their thresholds (0 when all passed)."""
    total = 0.0
    for gate in gates:
        if gate.get("passed") or gate.get("value") is None:
            continue
        threshold = float(gate["threshold"])
        total += min(abs(float(gate["value"]) - threshold) / max(abs(threshold), 1e-3), MAX_VIOLATION)
    return total


def objective_value(figures: dict, objective: str, size_key: str) -> float:
    key = {"latency_p50": "latency_ms_p50", "pareto": size_key}.get(objective, objective)
    return float(figures[key])


def score(trial: dict, objective: str, size_key: str, gates: list[dict] = ()) -> dict:
    """What the sampler minimises (``score``), or for pareto the size and metric pair.

    A trial that missed a gate scores worse than any that passed: ln(value) plus 5 and five times
    its relative violation, so the sampler still learns which way the gate lies.
    """
    if trial["status"] in ("failed", "stopped"):  # no artifact: a stopped trial never reached its targets
        return {"score": FAILED_SCORE, "size": FAILED_SCORE * 1e9, "metric": 0.0}
    value = objective_value(trial, objective, size_key)
    penalty = 0.0 if trial["status"] == "ok" else 5.0 * (1.0 + violation(gates))
    return {
        "score": math.log(max(value, 1e-9)) + penalty,
        "size": float(trial[size_key]),
        "metric": goodness(trial),
    }


def choose_best(trials: list[dict], objective: str, size_key: str) -> dict | None:
    """The trial that passed every gate with the smallest objective (ties: better metric, earlier id)."""
    passed = [t for t in trials if t["status"] == "ok"]
    if not passed:
        return None
    return min(passed, key=lambda t: (objective_value(t, objective, size_key), -goodness(t), t["id"]))
