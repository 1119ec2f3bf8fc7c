"""Bisection of one compression level before the per-layer search (``search.per_layer.bisect``).

A search whose per-layer ranges are drawn at random rarely lands near its metric gate: draws in
many dimensions come out either all safe or past the gate. Bisection first finds how far the
whole model can go. Its one knob is an *allowance*: the one-shot drop (no fine-tuning) each layer
may lose on its own, read on the layer sensitivity curves. At allowance ``a`` every layer gets the
largest sparsity whose one-shot drop is at most ``a`` (interpolated between the levels analysed),
so a sensitive layer stays dense while a robust one goes far. Each finished trial moves one end
of the bracket: a trial that met the metric gate raises the lower end, one that lost more than
the gate allows (or failed, or was stopped) lowers the upper end; the next allowances split the
bracket evenly on a log scale, as many at a time as trials run at a time.

After the bisection trials the sampler searches each layer in a narrowed range: from the
sparsity at the highest allowance that met the gate to the sparsity at the lowest that missed
it. Every other dimension keeps the recipe's value (or its range's middle) while bisecting.
The state is rebuilt from search.json's ``bisect`` record on ``--resume``.
"""

from __future__ import annotations

import math

from compressctl.recipe.search_spec import Dimension

LOWEST = 0.002  # 0.2 points lost by one layer alone: every layer near its lowest sparsity
HIGHEST = 1.0  # any loss: every layer at its highest level
SPAN = 0.002  # a narrowed range at least this wide (Dimension needs low < high)


def curve(row: dict) -> list[tuple[float, float]]:
    """(sparsity, one-shot drop) from 0 to the last level analysed, the drop made non-decreasing."""
    points = [(0.0, 0.0)]
    for level in sorted(row.get("prune") or {}, key=float):
        drop = max(float(row["prune"][level]["drop"]), points[-1][1])
        points.append((float(level), drop))
    return points


def sparsity_at(points: list[tuple[float, float]], allowance: float) -> float:
    """The largest sparsity on the curve whose drop is at most ``allowance`` (linear between levels)."""
    for (s0, d0), (s1, d1) in zip(points, points[1:], strict=False):
        if d1 > allowance:
            if d1 <= d0:
                return s0
            return s0 + (allowance - d0) / (d1 - d0) * (s1 - s0)
    return points[-1][0]


def layer_sparsities(rows: dict[str, list], allowance: float, space: dict[str, Dimension]) -> dict[str, float]:
    """Each per-layer key's sparsity at ``allowance``, within its range, to 6 decimals (as trials record it)."""
    out = {}
    for key, points in rows.items():
        low, high = space[key].sparsity
        out[key] = round(min(max(sparsity_at(points, allowance), low), high), 6)
    return out


def default_value(data: dict, key: str, dim: Dimension):
    """The recipe's value at ``key`` when the dimension can take it, else its range's middle."""
    value = _at(data, key)
    if dim.kind == "choice":
        return value if value in dim.choice else dim.choice[len(dim.choice) // 2]
    low, high = dim.edge_values()
    if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
        return int(value) if dim.kind == "int" else float(value)
    if dim.kind == "int":
        return (low + high) // 2
    if dim.kind == "loguniform":
        return math.sqrt(low * high)
    if dim.kind == "sparsity":
        return round(1 - math.sqrt((1 - low) * (1 - high)), 6)
    return (low + high) / 2


def _at(data, key: str):
    node = data
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def too_far(trial: dict, max_metric_drop: float | None) -> bool:
    """Whether the trial compressed past the metric budget (a failed or stopped one counts as past it)."""
    if trial["status"] in ("failed", "stopped"):
        return True
    if max_metric_drop is None or trial.get("metric_delta") is None:
        return False
    drop = -trial["metric_delta"] if trial.get("higher_is_better", True) is not False else trial["metric_delta"]
    return drop > max_metric_drop + 1e-12


def bracket(allowances: dict[str, float], trials: list[dict], max_metric_drop: float | None) -> tuple[float, float]:
    """[lower, upper] after the bisection trials finished so far: the highest allowance within the budget
    (LOWEST if none) and the lowest past it (HIGHEST if none)."""
    lo, hi = LOWEST, HIGHEST
    for trial in trials:
        a = allowances.get(trial["id"])
        if a is None:
            continue
        if too_far(trial, max_metric_drop):
            hi = min(hi, a)
        else:
            lo = max(lo, a)
    if lo >= hi:  # noisy trials crossed: keep the last verdicts' order sensible
        lo, hi = min(lo, hi), max(lo, hi)
    return lo, hi


def next_allowances(lo: float, hi: float, count: int) -> list[float]:
    """``count`` allowances splitting (lo, hi) evenly on a log scale."""
    ratio = math.log(hi / lo)
    return [lo * math.exp(ratio * (j + 1) / (count + 1)) for j in range(count)]


def narrowed(
    rows: dict[str, list], space: dict[str, Dimension], lo: float, hi: float, found: bool
) -> dict[str, Dimension]:
    """The per-layer dimensions between the bracket's ends: [sparsity at lo, sparsity at hi] within each
    range (from the range's low end when no allowance met the gate). A trial below lo would be larger
    than the one that met the gate there, so the sampler spends its trials on the band where it binds."""
    out = dict(space)
    for key, points in rows.items():
        low, high = space[key].sparsity
        top = min(max(sparsity_at(points, hi), low + SPAN), high)
        bottom = max(min(max(sparsity_at(points, lo), low), top - SPAN), 0.0) if found else low
        out[key] = Dimension(sparsity=(round(bottom, 6), round(top, 6)))
    return out
