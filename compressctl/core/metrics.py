"""Task metrics: each name's direction, its score on raw model outputs, and how reports show it.

Pure NumPy; no TensorFlow. The one place that knows which way is better for a metric, so gates,
compare's Pareto front and the search all apply the same rule: ``metric_delta`` is always
artifact − baseline, and a *drop* is the change in the worse direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSIFICATION = ("accuracy", "top_k_accuracy", "auc")
REGRESSION = ("mae", "mse", "rmse")
NAMES = CLASSIFICATION + REGRESSION
# Metrics that lie in [0, 1]; reports show them as percentages and their deltas in points.
FRACTIONS = CLASSIFICATION


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    regression: bool
    fraction: bool  # a value in [0, 1], shown as a percentage


def metric(name: str) -> Metric:
    """The metric called ``name`` (``top_5_accuracy`` etc. count as top_k_accuracy)."""
    base = _base_name(name)
    if base not in NAMES:
        raise ValueError(f"unknown metric {name!r} (known: {', '.join(NAMES)})")
    return Metric(
        name=base, higher_is_better=base in CLASSIFICATION, regression=base in REGRESSION, fraction=base in FRACTIONS
    )


def _base_name(name: str) -> str:
    if name.startswith("top_") and name.endswith("_accuracy") and name[4:-9].isdigit():
        return "top_k_accuracy"
    return name


def higher_is_better(name: str) -> bool:
    return metric(name).higher_is_better


def is_regression(name: str) -> bool:
    return _base_name(name) in REGRESSION


def drop(name: str, baseline: float, value: float) -> float:
    """How much worse ``value`` is than ``baseline`` in the metric's direction (negative: better)."""
    return baseline - value if higher_is_better(name) else value - baseline


def better(name: str, a: float, b: float) -> bool:
    return a > b if higher_is_better(name) else a < b


# --------------------------------------------------------------------------- reports


def from_report(report: dict) -> tuple[str, bool]:
    """(name, higher_is_better) of a report's ``metric``: the object written now, or an older plain string."""
    value = report.get("metric")
    if isinstance(value, dict):
        name = str(value.get("name", "metric"))
        hib = value.get("higher_is_better")
        return name, bool(hib) if hib is not None else _direction_or_default(name)
    name = str(value) if value is not None else "accuracy"
    return name, _direction_or_default(name)


def _direction_or_default(name: str) -> bool:
    try:
        return higher_is_better(name)
    except ValueError:
        return True


def is_fraction(name: str) -> bool:
    try:
        return metric(name).fraction
    except ValueError:
        return True  # older reports only held accuracy-like metrics


def format_value(name: str, value: float | None) -> str:
    """A metric value as reports show it: a percentage for accuracy-like metrics, else the number."""
    if value is None:
        return ""
    return f"{100 * value:.2f} %" if is_fraction(name) else f"{value:.4g}"


def format_delta(name: str, delta: float | None) -> str:
    """artifact − baseline: points for accuracy-like metrics, else the signed number."""
    if delta is None:
        return ""
    return f"{100 * delta:+.2f} pt" if is_fraction(name) else f"{delta:+.4g}"


# --------------------------------------------------------------------------- scores


def score(name: str, outputs: np.ndarray, labels: np.ndarray, *, from_logits: bool = False, top_k: int = 5) -> float:
    """The metric of raw model outputs (probabilities, logits or regression values) against labels."""
    base = _base_name(name)
    outputs = np.asarray(outputs, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if base in REGRESSION:
        return regression_score(base, outputs, labels)
    single = outputs.ndim == 1 or outputs.reshape(len(outputs), -1).shape[1] == 1
    if base == "auc":
        return auc(outputs, labels, from_logits=from_logits)
    if single:
        threshold = 0.0 if from_logits else 0.5
        return float(np.mean((outputs.reshape(-1) > threshold).astype(int) == labels))
    outputs = outputs.reshape(len(outputs), -1)
    if base == "top_k_accuracy":
        k = min(top_k, outputs.shape[1])
        top = np.argsort(-outputs, axis=1)[:, :k]
        return float(np.mean(np.any(top == labels[:, None], axis=1)))
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def regression_score(name: str, outputs: np.ndarray, labels: np.ndarray) -> float:
    """mae, mse or rmse of a single regression output against float labels."""
    outputs = np.asarray(outputs, dtype=np.float64)
    predicted = outputs.reshape(len(outputs), -1)[:, 0]
    error = predicted - np.asarray(labels, dtype=np.float64).reshape(-1)
    if name == "mae":
        return float(np.mean(np.abs(error)))
    mse = float(np.mean(error**2))
    return float(np.sqrt(mse)) if name == "rmse" else mse


def auc(outputs: np.ndarray, labels: np.ndarray, from_logits: bool = False) -> float:
    """Area under the ROC curve: binary from one output, else one-vs-rest averaged over classes.

    Computed exactly from ranks (the Mann-Whitney statistic, ties counted half), so it needs no
    thresholds. Logits rank like probabilities, so ``from_logits`` changes nothing for one output;
    several logits are turned into probabilities first, since a class's rank depends on the others.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    outputs = outputs.reshape(len(outputs), -1)
    if outputs.shape[1] == 1:
        return _binary_auc(outputs[:, 0], labels == 1)
    if from_logits:
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        outputs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    areas = [_binary_auc(outputs[:, c], labels == c) for c in range(outputs.shape[1])]
    areas = [a for a in areas if not np.isnan(a)]
    return float(np.mean(areas)) if areas else float("nan")


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # undefined with a single class present
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
