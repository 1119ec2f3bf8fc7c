"""Recipe gates: goals each artifact must meet. A missed gate makes the run exit 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compressctl.report.record import Artifact, Baseline, Gate

if TYPE_CHECKING:
    from compressctl.recipe.schema import Gates

# gate name → (artifact figure it reads, True when larger values are better)
GATES = {
    "max_metric_drop": ("metric_drop", False),
    "min_compression_ratio": ("compression_ratio", True),
    "min_compression_ratio_gzip": ("compression_ratio_gzip", True),
    "min_speedup": ("speedup", True),
    "max_size_bytes": ("size_bytes", False),
    "max_flash_bytes": ("mcu.flash_bytes", False),  # mcu artifacts only: the others have no such figure
    "max_arena_bytes": ("mcu.arena_bytes", False),
}


def metric_drop(baseline: Baseline, artifact: Artifact, higher_is_better: bool = True) -> float:
    """How much worse than the baseline the artifact's metric is (negative when it is better)."""
    if higher_is_better:
        return baseline.metric_value - artifact.metric_value
    return artifact.metric_value - baseline.metric_value


def evaluate_gates(
    gates: Gates, baseline: Baseline, artifacts: list[Artifact], higher_is_better: bool = True
) -> list[Gate]:
    """One row per (gate, artifact): name, target, threshold, measured value, passed."""
    rows = []
    for artifact in artifacts:
        if gates.targets is not None and artifact.target not in gates.targets:
            continue
        for name, (figure, larger_is_better) in GATES.items():
            threshold = getattr(gates, name)
            if threshold is None:
                continue
            if figure == "metric_drop":
                value = metric_drop(baseline, artifact, higher_is_better)
            elif figure.startswith("mcu."):
                if artifact.mcu is None:
                    continue
                value = getattr(artifact.mcu, figure.removeprefix("mcu."))
            else:
                value = getattr(artifact, figure)
            # A hair of tolerance so that a drop of exactly the threshold passes despite float rounding.
            passed = value >= threshold - 1e-9 if larger_is_better else value <= threshold + 1e-9
            rows.append(Gate(name=name, target=artifact.target, threshold=threshold, value=value, passed=passed))
    return rows


def describe(gate: Gate) -> str:
    """One line per gate; a failure starts with FAILED, so a CI log search finds it."""
    verdict = "passed" if gate.passed else "FAILED"
    required = f"{gate.operator()} {gate.threshold}"
    return f"{verdict} gate {gate.name} [{gate.target}]: {gate.shown_value()} (required {required})"
