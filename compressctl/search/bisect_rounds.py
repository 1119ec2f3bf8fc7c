"""The rounds of a bisecting search (``search.per_layer.bisect``): bisection trials, then the sampler.

Each round is one Tune loop whose trials are the next allowances' points (compressctl.search.bisect
holds the arithmetic); the trials after the bisection are the sampler's, in the narrowed ranges.
``state`` is search.json's ``bisect`` record, updated as trials finish.
"""

from __future__ import annotations

import time
from dataclasses import replace

from compressctl.core.events import Event
from compressctl.search import bisect as bisection
from compressctl.search.tune_loop import TuneLoop, run_tune


def record(trials: int, previous: dict, done: list[dict]) -> dict:
    """search.json's ``bisect``: the allowance of each bisection trial (those a resumed search kept), the bracket."""
    kept = {t["id"] for t in done}
    allowances = {k: v for k, v in (previous.get("bisect") or {}).get("allowances", {}).items() if k in kept}
    return {"trials": trials, "allowances": allowances, "bracket": None, "space": None}


def run(request, loop: TuneLoop, curves: dict, state: dict) -> None:
    """The bisection rounds (as many trials a round as run at a time), then the sampler in the narrowed ranges."""
    gate = loop.recipe.gates.max_metric_drop
    started = time.monotonic()
    inverse = {key: internal for internal, key in loop.keys.items()}
    others = {k: bisection.default_value(loop.data, k, d) for k, d in loop.space.items() if k not in curves}
    left = loop.remaining
    while left > 0 and not loop.interrupted["flag"]:
        budget = None if loop.budget is None else loop.budget - (time.monotonic() - started)
        if budget is not None and budget <= 0:
            return
        lo, hi = bisection.bracket(state["allowances"], loop.trials, gate)
        state["bracket"] = [lo, hi]
        count = min(loop.concurrent, state["trials"] - len(state["allowances"]), left)
        if count <= 0:
            break
        allowances = bisection.next_allowances(lo, hi, count)
        points = [{**others, **bisection.layer_sparsities(curves, a, loop.space)} for a in allowances]
        for a in allowances:
            loop.emit(Event("step", f"bisection: each layer's one-shot drop up to {100 * a:.2f} pt"))
        before = len(loop.trials)
        internal = [{inverse[k]: loop.space[k].unsampled(v) for k, v in p.items()} for p in points]
        run_tune(request, replace(loop, points=internal, remaining=count, done=list(loop.trials), budget=budget))
        for trial in loop.trials[before:]:
            match = next((a for a, p in zip(allowances, points, strict=True) if _same(trial["params"], p)), None)
            if match is not None:
                state["allowances"][trial["id"]] = match
        left -= len(loop.trials) - before
        state["bracket"] = list(bisection.bracket(state["allowances"], loop.trials, gate))
        loop.write_record()
        if len(loop.trials) == before:  # nothing ran (interrupted, out of time)
            return
    if left <= 0 or loop.interrupted["flag"]:
        return
    lo, hi = state["bracket"] or (bisection.LOWEST, bisection.HIGHEST)
    found = any(not bisection.too_far(t, gate) for t in loop.trials if t["id"] in state["allowances"])
    space = bisection.narrowed(curves, loop.space, lo, hi, found)
    state["space"] = {k: space[k].to_json() for k in curves}
    loop.write_record()
    budget = None if loop.budget is None else loop.budget - (time.monotonic() - started)
    if budget is None or budget > 0:
        run_tune(request, replace(loop, space=space, remaining=left, done=list(loop.trials), budget=budget))


def _same(params: dict, point: dict) -> bool:
    return params.keys() == point.keys() and all(
        abs(float(params[k]) - float(v)) < 1e-6 if isinstance(v, float) else params[k] == v for k, v in point.items()
    )
