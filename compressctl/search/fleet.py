"""The fleet file of ``compressctl batch``: models (with their data) and recipes, every model with every recipe.

Validated like a recipe: strict schema (an unknown key is a ``FILE:LINE:COL field: unknown field`` line),
then every model, data and recipe path must exist, then every recipe validates with the fleet's ``set``
overrides and each model's paths applied. Any of these is a UserError (exit 2) before anything runs.
Paths are relative to the directory compressctl runs from, as in recipes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from compressctl.core.errors import UserError, require_file
from compressctl.core.strict import StrictModel
from compressctl.recipe.errors import format_errors, where
from compressctl.recipe.schema import Source, apply_override, parse_yaml, validate

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class FleetModel(StrictModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=100, description="Folder name under DIR/runs/.")
    model: str = Field(min_length=1, description="Model path: SavedModel dir, .h5 or .keras.")
    data: str | None = Field(None, min_length=1, description="Data set (default: each recipe's own).")
    recipes: list[str] | None = Field(
        None, min_length=1, description="Only these of the fleet's recipes (path or stem) for this model."
    )


class Fleet(StrictModel):
    models: list[FleetModel] = Field(min_length=1)
    recipes: list[str] = Field(min_length=1)
    set: list[str] = Field(default_factory=list, description="--set overrides applied to every run.")

    @model_validator(mode="after")
    def _names_unique(self):
        seen: set[str] = set()
        for i, entry in enumerate(self.models):
            if entry.name in seen:
                raise PydanticCustomError(
                    "duplicate_name",
                    "model name '{name}' is used twice",
                    {"name": entry.name, "at": ("models", i, "name")},
                )
            seen.add(entry.name)
        stems: set[str] = set()
        for i, path in enumerate(self.recipes):
            if Path(path).stem in stems:
                raise PydanticCustomError(
                    "duplicate_recipe",
                    "two recipes share the file name '{stem}' (runs go to DIR/runs/<model>/<recipe file stem>/)",
                    {"stem": Path(path).stem, "at": ("recipes", i)},
                )
            stems.add(Path(path).stem)
        known = set(self.recipes) | stems
        for i, entry in enumerate(self.models):
            for j, name in enumerate(entry.recipes or ()):
                if name not in known:
                    raise PydanticCustomError(
                        "unknown_recipe",
                        "'{name}' is not one of the fleet's recipes",
                        {"name": name, "at": ("models", i, "recipes", j)},
                    )
        return self


@dataclass
class Pair:
    """One run of the batch: a model with a recipe (the recipe's text travels to the worker)."""

    model: str  # the fleet's name for it
    recipe: str  # the recipe's path as the fleet gives it
    model_path: str
    data_path: str | None
    recipe_text: str
    overrides: list[str]

    @property
    def key(self) -> str:
        return f"{self.model}/{Path(self.recipe).stem}"

    @property
    def run_dir(self) -> str:
        return f"runs/{self.key}"


def _read(path: str) -> tuple[dict, Source]:
    require_file(path, "fleet file", "a fleet YAML file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read fleet file ({exc})") from None
    data, node = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise UserError(f"{path}:1:1 the fleet file must be a mapping with `models:` and `recipes:`")
    return data, Source(path=path, node=node, text=text)


def _check_paths(fleet: Fleet, source: Source) -> None:
    errors = []
    for i, entry in enumerate(fleet.models):
        for field in ("model", "data"):
            value = getattr(entry, field)
            if value is not None and not Path(value).exists():
                errors.append(f"{where(source, ('models', i, field))} models[{i}].{field}: {value}: not found")
    for i, path in enumerate(fleet.recipes):
        if not Path(path).is_file():
            errors.append(f"{where(source, ('recipes', i))} recipes[{i}]: {path}: recipe file not found")
    if errors:
        raise UserError("\n".join(errors))


def _pair(fleet: Fleet, source: Source, entry: FleetModel, recipe_path: str) -> Pair:
    """The pair, after its recipe validated with the fleet's overrides and the model's paths."""
    text = Path(recipe_path).read_text(encoding="utf-8")
    data, node = parse_yaml(text, recipe_path)
    if not isinstance(data, dict):
        raise UserError(f"{recipe_path}:1:1 the recipe must be a YAML mapping of keys")
    recipe_source = Source(path=recipe_path, node=node, text=text)
    overrides = list(fleet.set)
    for i, assignment in enumerate(overrides):
        apply_override(data, assignment, recipe_source, shown=f"{where(source, ('set', i))} set[{i}] {assignment}")
    for key in ("model", "data"):
        value = getattr(entry, key)
        if value is not None:
            data[key] = value
            recipe_source.overrides[(key,)] = f"{where(source, ('models', fleet.models.index(entry), key))}"
    validate(data, recipe_source)
    return Pair(entry.name, recipe_path, entry.model, entry.data, text, overrides)


def load_fleet(path: str) -> tuple[Fleet, list[Pair]]:
    """The fleet and its runs (every model with each of its recipes), or a UserError naming FILE:LINE:COL."""
    data, source = _read(path)
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_errors(exc, source, data, Fleet)) from None
    _check_paths(fleet, source)
    pairs = []
    for entry in fleet.models:
        chosen = entry.recipes
        for recipe_path in fleet.recipes:
            if chosen is None or recipe_path in chosen or Path(recipe_path).stem in chosen:
                pairs.append(_pair(fleet, source, entry, recipe_path))
    return fleet, pairs
