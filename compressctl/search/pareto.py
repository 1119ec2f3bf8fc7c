"""The Pareto front of size against metric: no other trial is as small and as good, and better in one."""

from __future__ import annotations


def front(points: list[tuple[str, float, float]]) -> list[str]:
    """Ids on the front of (id, size to minimise, metric to maximise) points, smallest size first."""
    on = []
    for pid, size, metric in points:
        dominated = any(
            s <= size and m >= metric and (s < size or m > metric) for other, s, m in points if other != pid
        )
        if not dominated:
            on.append((size, -metric, pid))
    return [pid for _, _, pid in sorted(on)]


def trial_front(trials: list[dict], size_key: str) -> list[str]:
    from compressctl.search.objective import goodness  # the metric signed so that larger is better

    measured = [(t["id"], t[size_key], goodness(t)) for t in trials if t.get(size_key) is not None]
    return front(measured)
