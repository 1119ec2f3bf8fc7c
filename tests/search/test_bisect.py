"""The bisection's arithmetic: sensitivity curves, sparsities at an allowance, the bracket and the narrowed ranges."""

import pytest

from compressctl.recipe.search_spec import Dimension
from compressctl.search import bisect

pytestmark = pytest.mark.unit

ROW = {"prune": {"0.5": {"drop": 0.0}, "0.7": {"drop": 0.02}, "0.9": {"drop": 0.1}, "0.95": {"drop": 0.08}}}


def test_the_curve_starts_dense_and_never_falls():
    assert bisect.curve(ROW) == [(0.0, 0.0), (0.5, 0.0), (0.7, 0.02), (0.9, 0.1), (0.95, 0.1)]
    assert bisect.curve({"prune": {"0.5": {"drop": -0.01}}}) == [(0.0, 0.0), (0.5, 0.0)]


def test_sparsity_at_an_allowance_is_interpolated_between_levels():
    points = bisect.curve(ROW)
    assert bisect.sparsity_at(points, 0.01) == pytest.approx(0.6)
    assert bisect.sparsity_at(points, 0.06) == pytest.approx(0.8)
    assert bisect.sparsity_at(points, 0.0) == 0.5  # no loss at all: as far as the flat start goes
    assert bisect.sparsity_at(points, 0.5) == 0.95  # nothing loses that much: the last level
    assert bisect.sparsity_at([(0.0, 0.0), (0.5, 0.3)], 0.03) == pytest.approx(0.05)


def test_layer_sparsities_stay_in_each_range_and_round_as_trials_record_them():
    curves = {"a": bisect.curve(ROW), "b": [(0.0, 0.0), (0.5, 0.3)]}
    space = {"a": Dimension(sparsity=(0.5, 0.9)), "b": Dimension(sparsity=(0.3, 0.99))}
    assert bisect.layer_sparsities(curves, 0.5, space) == {"a": 0.9, "b": 0.5}
    assert bisect.layer_sparsities(curves, 0.0, space) == {"a": 0.5, "b": 0.3}
    assert bisect.layer_sparsities(curves, 0.0001, space) == {"a": 0.501, "b": 0.3}
    assert bisect.layer_sparsities(curves, 0.01 / 3, space)["a"] == round(0.5 + 0.2 / 6, 6)


def test_the_bracket_moves_with_each_verdict():
    trials = [
        {"id": "0001", "status": "ok", "metric_delta": -0.004},
        {"id": "0002", "status": "gate_failed", "metric_delta": -0.03},
        {"id": "0003", "status": "gate_failed", "metric_delta": 0.002},  # a size gate missed: not far enough
        {"id": "0004", "status": "failed", "metric_delta": None},
        {"id": "0005", "status": "ok", "metric_delta": -0.001},  # not a bisection trial
    ]
    allowances = {"0001": 0.02, "0002": 0.2, "0003": 0.04, "0004": 0.5}
    assert bisect.bracket(allowances, trials, 0.01) == (0.04, 0.2)
    assert bisect.bracket({}, trials, 0.01) == (bisect.LOWEST, bisect.HIGHEST)
    assert bisect.bracket({"0004": 0.5}, trials, 0.01) == (bisect.LOWEST, 0.5)


def test_too_far_follows_the_metrics_direction():
    mae = {"status": "gate_failed", "metric_delta": 0.3, "higher_is_better": False}
    assert bisect.too_far(mae, 0.2) and not bisect.too_far({**mae, "metric_delta": -0.3}, 0.2)
    assert bisect.too_far({"status": "stopped"}, 0.01)
    assert not bisect.too_far({"status": "gate_failed", "metric_delta": -0.5}, None)


def test_next_allowances_split_the_bracket_on_a_log_scale():
    assert bisect.next_allowances(0.01, 1.0, 1) == [pytest.approx(0.1)]
    assert bisect.next_allowances(0.01, 0.08, 2) == [pytest.approx(0.02), pytest.approx(0.04)]


def test_narrowed_ranges_hold_both_ends_of_the_bracket():
    curves = {"a": bisect.curve(ROW)}
    space = {"a": Dimension(sparsity=(0.5, 0.95)), "lr": Dimension(loguniform=(1e-4, 1e-2))}
    out = bisect.narrowed(curves, space, 0.04, 0.09, found=True)
    assert out["a"].sparsity == (pytest.approx(0.75), pytest.approx(0.875))
    assert out["lr"] is space["lr"]
    assert bisect.narrowed(curves, space, 0.04, 0.1, found=False)["a"].sparsity[0] == 0.5
    flat = {"a": [(0.0, 0.0), (0.5, 0.0)]}  # both ends at the last level: still a range
    low, high = bisect.narrowed(flat, space, 0.04, 0.1, found=True)["a"].sparsity
    assert low < high <= 0.95


def test_other_dimensions_keep_the_recipes_value_or_the_middle():
    data = {"stages": [{"learning_rate": 0.001, "number_of_clusters": 16}]}
    lr = Dimension(loguniform=(1e-4, 1e-2))
    assert bisect.default_value(data, "stages.0.learning_rate", lr) == 0.001
    assert bisect.default_value({}, "stages.0.learning_rate", lr) == pytest.approx(1e-3)
    assert bisect.default_value(data, "stages.0.number_of_clusters", Dimension(choice=[8, 16, 32])) == 16
    assert bisect.default_value(data, "stages.0.number_of_clusters", Dimension(choice=[4, 8])) == 8
    assert bisect.default_value(data, "stages.0.epochs", Dimension(int=(1, 5))) == 3
    assert bisect.default_value(data, "stages.3.x", Dimension(uniform=(0.0, 1.0))) == 0.5
