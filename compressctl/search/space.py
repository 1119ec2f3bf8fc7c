"""The search space against the recipe: every key a ``--set`` path to a real field, every value valid.

A space key is applied to the parsed recipe exactly as ``--set KEY=VALUE`` would be, at both ends
of its range (or with each choice), and the result validated as a whole recipe: a typo in a key
(``stages.0.target_sparsty``), an index past the end, or a range that leaves a field's bounds is
one ``file:line:col search.space.KEY: …`` error, exit 2, before anything runs.
"""

from __future__ import annotations

import copy
import json
import math

import yaml

from compressctl.core.errors import UserError
from compressctl.recipe.errors import node_at
from compressctl.recipe.schema import Recipe, Source, apply_override, read_with_overrides, validate
from compressctl.recipe.search_spec import Dimension


def _where(source: Source, loc: tuple) -> str:
    if source.node is None:
        return source.path
    mark = node_at(source.node, loc, want_key=True).start_mark
    return f"{source.path}:{mark.line + 1}:{mark.column + 1}"


def assignment(key: str, value) -> str:
    """``key=value`` with the value written as YAML that reads back as the same value."""
    return f"{key}={json.dumps(value)}"


def check_space(data: dict, source: Source, space: dict[str, Dimension]) -> None:
    """Raise UserError (one line per problem) unless every key and value applies to the recipe."""
    problems = []
    for key, dim in space.items():
        where = _where(source, ("search", "space", key))
        shown = f"{where} search.space.{key}"
        for value in dim.edge_values():
            trial = copy.deepcopy(data)
            trial.pop("search", None)
            probe = Source(path=source.path, node=None, text=source.text)
            try:
                apply_override(trial, assignment(key, value), probe, shown=shown)
                validate(trial, probe)
            except UserError as exc:
                problems.extend(line for line in str(exc).splitlines() if line not in problems)
                break
    if problems:
        raise UserError("\n".join(problems))


def load_search_recipe(path: str, overrides=(), flags=None) -> tuple[Recipe, dict, Source]:
    """The validated recipe, the raw data it came from (overrides applied) and its source."""
    data, source = read_with_overrides(path, overrides, flags)
    recipe = validate(data, source)
    if recipe.search is None:
        raise UserError(f"{path}:1:1 the recipe has no `search:` section; add one (see recipes/search.yaml)")
    check_space(data, source, recipe.search.space)
    if recipe.search.target is not None and recipe.search.target not in recipe.target_names():
        where = _where(source, ("search", "target"))
        raise UserError(
            f"{where} search.target: no target named {recipe.search.target!r} "
            f"(targets: {', '.join(recipe.target_names())})"
        )
    if recipe.search.per_layer is not None:
        index = recipe.search.per_layer.stage
        if index >= len(recipe.stages) or recipe.stages[index].type != "prune":
            where = _where(source, ("search", "per_layer", "stage"))
            raise UserError(f"{where} search.per_layer.stage: stages[{index}] is not a prune stage")
    if recipe.search.early_stopping is not None:
        from compressctl.search import early_stop

        where = _where(source, ("search", "early_stopping", "grace_epochs"))
        early_stop.check(recipe.search.early_stopping, recipe.stages, recipe.search.space, where)
    return recipe, data, source


def overrides_for(params: dict) -> list[str]:
    """The ``--set`` assignments that turn the recipe into one trial's recipe."""
    return [assignment(key, value) for key, value in params.items()]


def resolved_recipe(data: dict, source: Source, params: dict, updates: dict) -> Recipe:
    """The recipe of one trial: parameters applied, ``updates`` (model, data, out) set, no search section."""
    trial = copy.deepcopy(data)
    trial.pop("search", None)
    probe = Source(path=source.path, text=source.text)
    for item in overrides_for(params):
        apply_override(trial, item, probe)
    trial.update({k: v for k, v in updates.items() if v is not None})
    return validate(trial, probe)


def recipe_yaml(recipe: Recipe, header: str = "") -> str:
    dumped = recipe.model_dump(mode="json", by_alias=True, exclude={"search"})
    return header + yaml.safe_dump(dumped, sort_keys=False, allow_unicode=True)


def to_optuna(space: dict[str, Dimension]) -> dict:
    """Optuna distributions keyed by the space's own keys (values in the sampler's terms: ``Dimension.sampled``)."""
    from optuna import distributions as d

    out = {}
    for key, dim in space.items():
        if dim.kind == "uniform":
            out[key] = d.FloatDistribution(*dim.uniform)
        elif dim.kind == "loguniform":
            out[key] = d.FloatDistribution(*dim.loguniform, log=True)
        elif dim.kind == "sparsity":  # the density, log scale (Dimension.sampled maps it back)
            low, high = dim.sparsity
            out[key] = d.FloatDistribution(1 - high, 1 - low, log=True)
        elif dim.kind == "int":
            out[key] = d.IntDistribution(*dim.integer)
        else:
            out[key] = d.CategoricalDistribution(list(dim.choice))
    return out


def grid_size(space: dict[str, Dimension]) -> int:
    return math.prod(len(d.choice) for d in space.values())
