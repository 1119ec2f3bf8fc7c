import pytest

from compressctl.search.pareto import front

pytestmark = pytest.mark.unit


def test_front_keeps_only_undominated_points():
    points = [("a", 10, 0.9), ("b", 20, 0.95), ("c", 20, 0.9), ("d", 5, 0.5), ("e", 10, 0.9)]
    # c is dominated by a (smaller, as good); a and e tie and both stay
    assert front(points) == ["d", "a", "e", "b"]


def test_single_point_is_the_front():
    assert front([("x", 1, 0.1)]) == ["x"]
