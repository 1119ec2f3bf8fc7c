"""Each library adapter (compressctl.core.internals.*) still finds every internal it declares.

When a library release drops or renames one, its adapter's test fails naming the attribute, the
library's installed version and the adapter to update. The adapters of libraries that need
TensorFlow (tensorflow, tf_keras, TFMOT) build tiny TensorFlow objects; the others are `unit`.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from compressctl.core import internals
from compressctl.core.internals import base
from compressctl.core.internals.base import Internal

WITHOUT_TENSORFLOW = {"litert", "optuna", "ray"}
ADAPTERS = sorted(info.name for info in pkgutil.iter_modules(internals.__path__) if info.name != "base")


def _adapter(name: str):
    return importlib.import_module(f"compressctl.core.internals.{name}")


def test_the_adapters_are_the_five_libraries():
    assert ADAPTERS == ["keras", "litert", "optuna", "ray", "tensorflow", "tfmot"]


@pytest.mark.unit
@pytest.mark.parametrize("name", ADAPTERS)
def test_each_adapter_declares_its_internals_of_an_installed_library(name):
    adapter = _adapter(name)
    assert adapter.INTERNALS, f"{adapter.__name__} declares no internals"
    assert all(internal.name.startswith("_") or "." in internal.owner for internal in adapter.INTERNALS)
    assert base.version(adapter.DISTRIBUTION) != "(not installed)", adapter.DISTRIBUTION
    assert callable(adapter.check)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.unit) if n in WITHOUT_TENSORFLOW else n for n in ADAPTERS]
)
def test_the_installed_library_still_has_every_internal_its_adapter_uses(name):
    problems = _adapter(name).check()
    assert problems == [], "\n".join(problems)


@pytest.mark.unit
def test_a_missing_attribute_is_named_with_the_library_version_and_the_adapter():
    import pytest as library

    problems = base.check(
        "pytest",
        (
            Internal("json", "_default_encoder", "present"),
            Internal("json", "_no_such_name", "a test"),
            Internal("json.no_such_module", "anything", "a test"),
            Internal("json", "dumps", "a test", parameters=("indent", "no_such_keyword")),
            Internal("an instance", "_gone", "a test", make=lambda: object()),
        ),
        "compressctl.core.internals.example",
    )
    assert len(problems) == 4, problems
    assert all(p.startswith(f"pytest {library.__version__}: ") for p in problems)
    assert all(p.endswith("update compressctl.core.internals.example)") for p in problems)
    assert "json has no attribute _no_such_name" in problems[0]
    assert "json.no_such_module cannot be found" in problems[1]
    assert "json.dumps no longer takes no_such_keyword" in problems[2]
    assert "an instance has no attribute _gone" in problems[3]


@pytest.mark.unit
def test_optuna_grid_attrs_mark_told_trials_as_visited_grid_points():
    import optuna

    from compressctl.core.internals import optuna as optuna_internals

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    distributions = {"x": optuna.distributions.CategoricalDistribution([0, 1])}

    def new_trials(mark: bool) -> int:
        study = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [0, 1]}, seed=0))
        for x in (0, 1):
            attrs = optuna_internals.grid_point_attrs(study.sampler, {"x": x}) if mark else {}
            trial = optuna.trial.create_trial(
                params={"x": x}, distributions=distributions, values=[0.0], system_attrs=attrs
            )
            study.add_trial(trial)
        study.optimize(lambda trial: float(trial.suggest_categorical("x", [0, 1])), n_trials=5)
        return len(study.trials) - 2

    # Told as grid points, the whole grid is done: the sampler stops after one (repeated) trial.
    assert new_trials(mark=True) == 1
    assert new_trials(mark=False) == 2
    sampler = optuna.samplers.GridSampler({"x": [0, 1]}, seed=0)
    assert set(optuna_internals.grid_point_attrs(sampler, {"x": 1})) == {"grid_id", "search_space"}
    assert optuna_internals.grid_point_attrs(sampler, {"x": 2}) == {}


@pytest.mark.unit
def test_ray_optuna_search_keeps_its_study():
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from compressctl.core.internals import ray as ray_internals

    searcher = OptunaSearch(
        space={"x": optuna.distributions.CategoricalDistribution([0, 1])}, metric=["a", "b"], mode=["min", "max"]
    )
    study = ray_internals.optuna_study(searcher)
    assert isinstance(study, optuna.Study)
    assert len(study.directions) == 2
