"""compressctl.core.metrics: each metric's direction, its score, and how a drop is measured."""

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

from compressctl.core import metrics

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "higher"),
    [("accuracy", True), ("top_5_accuracy", True), ("auc", True), ("mae", False), ("mse", False), ("rmse", False)],
)
def test_direction(name, higher):
    assert metrics.higher_is_better(name) is higher
    assert metrics.is_regression(name) is (not higher)


def test_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.metric("f1")


def test_drop_is_the_change_for_the_worse():
    assert metrics.drop("accuracy", 0.9, 0.88) == pytest.approx(0.02)
    assert metrics.drop("accuracy", 0.9, 0.95) == pytest.approx(-0.05)
    assert metrics.drop("mae", 40.0, 42.5) == pytest.approx(2.5)  # a larger error is worse
    assert metrics.drop("mae", 40.0, 39.0) == pytest.approx(-1.0)


def test_regression_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 30, 200)
    p = y + rng.normal(0, 5, 200)
    outputs = p.reshape(-1, 1).astype(np.float32)
    assert metrics.score("mae", outputs, y) == pytest.approx(mean_absolute_error(y, p), rel=1e-5)
    assert metrics.score("mse", outputs, y) == pytest.approx(mean_squared_error(y, p), rel=1e-5)
    assert metrics.score("rmse", outputs, y) == pytest.approx(np.sqrt(mean_squared_error(y, p)), rel=1e-5)


def test_auc_matches_scikit_learn_with_ties_binary_and_multiclass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = np.round(y * 0.3 + rng.random(300), 1)  # rounded: many ties
    assert metrics.score("auc", scores.reshape(-1, 1), y) == pytest.approx(roc_auc_score(y, scores))
    y3 = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y3]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = roc_auc_score(y3, probs, multi_class="ovr", average="macro")
    assert metrics.score("auc", probs, y3) == pytest.approx(expected)
    assert metrics.score("auc", logits, y3, from_logits=True) == pytest.approx(expected)


def test_accuracy_scores_as_before():
    outputs = np.array([[0.1, 0.9, 0.0], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    assert metrics.score("accuracy", outputs, [1, 1, 2]) == pytest.approx(2 / 3)
    assert metrics.score("top_k_accuracy", outputs, [1, 1, 2], top_k=2) == 1.0
    assert metrics.score("accuracy", np.array([[0.7], [-0.2]]), [1, 0], from_logits=True) == 1.0


def test_reports_old_and_new():
    assert metrics.from_report({"metric": {"name": "mae", "higher_is_better": False}}) == ("mae", False)
    assert metrics.from_report({"metric": "accuracy"}) == ("accuracy", True)  # reports before the object
    assert metrics.from_report({"metric": "top_5_accuracy"}) == ("top_5_accuracy", True)
    assert metrics.format_value("accuracy", 0.9812) == "98.12 %"
    assert metrics.format_delta("accuracy", -0.005) == "-0.50 pt"
    assert metrics.format_value("mae", 44.4313) == "44.43"
    assert metrics.format_delta("mae", 0.6164) == "+0.6164"
