"""Optuna's internals: where ``GridSampler`` keeps its grid, and how it recognises a told grid point.

A resumed search tells the sampler the trials it already ran; a grid sampler skips a grid point only
when the told trial carries that point's id among its (shuffled) grid as the ``grid_id`` system
attribute, with the grid's ``search_space`` beside it, which is how GridSampler marks the trials it
samples itself.
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "optuna"


def _grid_sampler():
    import optuna

    return optuna.samplers.GridSampler({"x": [0, 1]}, seed=0)


INTERNALS = tuple(
    Internal("a GridSampler", name, "telling a resumed grid search which grid points it already ran", _grid_sampler)
    for name in ("_param_names", "_all_grids", "_search_space")
)


def grid_point_attrs(sampler, params: dict) -> dict:
    """The system attributes that mark a trial with ``params`` as a point of ``sampler``'s grid ({} if none)."""
    point = tuple(params[name] for name in sampler._param_names)
    if point not in sampler._all_grids:
        return {}
    return {"grid_id": sampler._all_grids.index(point), "search_space": sampler._search_space}


def check() -> list[str]:
    """One line per internal above that the installed Optuna lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
