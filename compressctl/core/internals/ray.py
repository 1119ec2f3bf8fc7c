"""Ray's internals: the Optuna study behind Ray Tune's ``OptunaSearch``.

``OptunaSearch``'s public way to tell it finished trials (``evaluated_rewards``) takes one objective
only; a resumed multi-objective search adds its trials to the study itself.
"""

from __future__ import annotations

from compressctl.core.internals.base import Internal
from compressctl.core.internals.base import check as check_internals

DISTRIBUTION = "ray"


def _optuna_search():
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space={"x": optuna.distributions.CategoricalDistribution([0, 1])}, metric="score", mode="max", seed=0
    )


INTERNALS = (
    Internal("an OptunaSearch", "_ot_study", "telling a resumed search the trials it already ran", _optuna_search),
)


def optuna_study(searcher):
    """The ``optuna.Study`` an ``OptunaSearch`` samples from."""
    return searcher._ot_study


def check() -> list[str]:
    """One line per internal above that the installed Ray lacks."""
    return check_internals(DISTRIBUTION, INTERNALS, __name__)
