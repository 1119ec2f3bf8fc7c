"""The recipe: a declarative YAML description of one compression run.

Loading keeps the line and column of every YAML node, so a validation error reads
``recipes/x.yaml:7:5 stages[0].target_sparsity: must be < 1``. ``--set a.b=c`` overrides are
applied to the parsed data before validation, so they are validated like the file itself.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from compressctl.core.errors import UserError, require_file
from compressctl.core.strict import StrictModel
from compressctl.datasets.specs import DataSpec  # data sources: pure pydantic, no TensorFlow
from compressctl.model import selectors
from compressctl.recipe.errors import format_errors, render_loc, where
from compressctl.recipe.run_spec import Bench, Threads, Training  # noqa: F401 - Threads: re-exported
from compressctl.recipe.search_spec import Search  # the search: section, read only by `compressctl search`
from compressctl.stages import STAGES, legal_order, order_problem
from compressctl.targets import TARGETS

MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_NODES = 20_000

Stage = Annotated[Union[tuple(s.Params for s in STAGES.values())], Field(discriminator="type")]  # noqa: UP007
Target = Annotated[Union[tuple(t.Params for t in TARGETS.values())], Field(discriminator="type")]  # noqa: UP007

# Stages that rebuild the model's layers come first; then those that train through TFMOT
# wrappers, in the only order TFMOT can stack them. Each stage class declares its place.
LEGAL_ORDER = tuple(legal_order())


class Task(StrictModel):
    # Metrics and their directions live in compressctl.core.metrics; regression metrics score one linear output.
    metric: Literal["accuracy", "top_k_accuracy", "auc", "mae", "mse", "rmse"] | None = Field(
        None,
        description="accuracy: argmax (or > 0.5 for one sigmoid output); top_k_accuracy: label in top k; auc: area "
        "under the ROC curve (one-vs-rest mean for several classes); mae, mse, rmse: regression errors (lower is "
        "better). Default: mse when the model has one linear output and the labels are floats other than 0/1, "
        "else accuracy.",
    )
    top_k: int = Field(5, ge=1, le=1000, description="k for top_k_accuracy.")


class Gates(StrictModel):
    """Goals every artifact must meet; a miss makes the run exit 1."""

    max_metric_drop: float | None = Field(
        None,
        ge=0,
        le=1e9,
        description="Largest allowed worsening of the metric in its direction: baseline − artifact for accuracy and "
        "auc (0.01 = one point, at most 1), artifact − baseline for mae, mse, rmse (in the labels' units).",
    )
    min_compression_ratio: float | None = Field(None, gt=0, description="Smallest baseline size / artifact size.")
    min_compression_ratio_gzip: float | None = Field(
        None, gt=0, description="Smallest baseline gzip size / artifact gzip size."
    )
    min_speedup: float | None = Field(None, gt=0, description="Smallest baseline p50 / artifact p50.")
    max_size_bytes: int | None = Field(None, ge=1, description="Largest allowed artifact size in bytes.")
    max_flash_bytes: int | None = Field(
        None, ge=1, description="Largest allowed model array in bytes (mcu targets: artifacts[].mcu.flash_bytes)."
    )
    max_arena_bytes: int | None = Field(
        None, ge=1, description="Largest allowed TFLM tensor arena in bytes (mcu targets: artifacts[].mcu.arena_bytes)."
    )
    targets: list[str] | None = Field(None, description="Target names the gates apply to (default: all).")


class Recipe(StrictModel):
    """A compression run: model and data in, stages in order, one artifact per target out."""

    version: Literal[1] = Field(1, description="Recipe format version.")
    name: str | None = Field(None, description="Short name of the recipe.")
    description: str = Field("", description="One line on what the recipe is for.")
    model: str | None = Field(None, description="Keras model path (SavedModel dir, .h5, .keras); --model overrides.")
    data: DataSpec | None = Field(
        None,
        description="A path to an npz with x_train, y_train, x_test, y_test, or {format: images | tfrecord | csv "
        "| python | npz, ...}; --data overrides with an npz path.",
    )
    out: str | None = Field(None, description="Run directory; --out overrides.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for every random choice.")
    task: Task = Field(default_factory=Task)
    training: Training = Field(default_factory=Training)
    stages: list[Stage] = Field(default_factory=list, max_length=32, description="Techniques, run in order.")
    targets: list[Target] = Field(
        default_factory=lambda: [TARGETS["cpu"].Params(type="cpu")],
        min_length=1,
        max_length=16,
        description="Artifacts to write, one folder each.",
    )
    bench: Bench = Field(default_factory=Bench)
    gates: Gates = Field(default_factory=Gates)
    search: Search | None = Field(None, description="What `compressctl search` varies and optimises; `run` ignores it.")

    @model_validator(mode="after")
    def _drop_within_metric_range(self):
        # accuracy, top_k_accuracy and auc lie in [0, 1]: a larger allowed drop is a slip (1 meaning 1 %?).
        drop = self.gates.max_metric_drop
        if drop is not None and drop > 1 and self.task.metric not in ("mae", "mse", "rmse"):
            raise PydanticCustomError(
                "metric_drop_range",
                "{drop} is more than 1, but {metric} lies in [0, 1] (0.01 = one point); larger drops are for "
                "the regression metrics mae, mse and rmse (set task.metric)",
                {"drop": f"{drop:g}", "metric": self.task.metric or "the default metric (accuracy unless regression)"},
            )
        return self

    @field_validator("stages")
    @classmethod
    def _stage_order(cls, stages):
        types = [s.type for s in stages]
        problem = order_problem(types)
        if problem:
            i, reason = problem
            shown = " → ".join(f"[{t}]" if j == i else t for j, t in enumerate(types))
            raise PydanticCustomError(
                "stage_order",
                "{reason} ({shown}); a legal order is " + " → ".join(LEGAL_ORDER),
                {"reason": reason, "shown": shown, "index": i},
            )
        return stages

    @field_validator("targets")
    @classmethod
    def _unique_target_names(cls, targets):
        seen = set()
        for i, t in enumerate(targets):
            name = t.name or t.type
            if name in seen:
                raise PydanticCustomError(
                    "duplicate_target",
                    "two targets are named {name}; give one a distinct `name`",
                    {"name": name, "index": i},
                )
            seen.add(name)
        return targets

    @model_validator(mode="after")
    def _gates_name_real_targets(self):
        names = self.target_names()
        for i, name in enumerate(self.gates.targets or []):
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                raise PydanticCustomError(
                    "unknown_gate_target",
                    "no target is named {name}{hint} (targets: {names})",
                    {
                        "name": repr(name),
                        "hint": f"; did you mean {hint[0]!r}?" if hint else "",
                        "names": ", ".join(names),
                        "at": ("gates", "targets", i),
                    },
                )
        return self

    def target_names(self) -> list[str]:
        return [t.name or t.type for t in self.targets]


# --------------------------------------------------------------------------- loading


@dataclass
class Source:
    """Where recipe data came from, to point error messages at a line."""

    path: str
    node: yaml.Node | None = None
    overrides: dict[tuple, str] = field(default_factory=dict)  # loc prefix → how the user wrote it
    text: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


class _NodeCounter:
    def __init__(self):
        self.sizes: dict[int, int] = {}

    def size(self, node) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        self.sizes[key] = 1  # guards against recursive aliases
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(self.size(k) + self.size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(self.size(v) for v in node.value)
        else:
            total = 1
        self.sizes[key] = min(total, 10 * MAX_RECIPE_NODES)
        return self.sizes[key]


def _yaml_error(path: str, exc: yaml.YAMLError) -> UserError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if "python/" in str(exc) or "could not determine a constructor" in str(exc):
        problem = f"tag not allowed ({problem}); recipes are plain YAML"
    return UserError(f"{where} {problem}")


def parse_yaml(text: str, path: str) -> tuple[object, yaml.Node | None]:
    """Safe-load YAML text, refusing oversized documents and alias bombs."""
    if len(text.encode()) > MAX_RECIPE_BYTES:
        raise UserError(f"{path}: recipe is larger than {MAX_RECIPE_BYTES // 1024} KiB")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _NodeCounter().size(node) > MAX_RECIPE_NODES:
            raise UserError(f"{path}: recipe expands to more than {MAX_RECIPE_NODES} YAML nodes (alias expansion?)")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    return data, node


def read_recipe(path: str | Path) -> tuple[dict, Source]:
    path_str = str(path)
    p = Path(path)
    require_file(p, "recipe", "a recipe file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path_str}: cannot read recipe ({exc})") from None
    data, node = parse_yaml(text, path_str)
    if data is None:
        # An empty file is far more likely a wrong path or an unsaved editor than a wish for defaults.
        raise UserError(
            f"{path_str}:1:1 the recipe is empty (or only comments); write at least `targets:` "
            "(`compressctl init MODEL` writes a starter recipe)"
        )
    if not isinstance(data, dict):
        raise UserError(f"{path_str}:1:1 the recipe must be a YAML mapping of keys, got {type(data).__name__}")
    return data, Source(path=path_str, node=node, text=text)


def apply_override(data: dict, assignment: str, source: Source, shown: str | None = None) -> None:
    """Apply one ``a.b.0.c=value`` to the parsed recipe (value parsed as YAML)."""
    shown = shown or f"--set {assignment}"
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise UserError(f"{shown}: expected key=value, e.g. stages.0.target_sparsity=0.8")
    parts = [p for p in key.strip().split(".")]
    if any(not p for p in parts):
        raise UserError(f"{shown}: empty segment in key {key!r}")
    value, _ = parse_yaml(raw, shown)
    target = data
    loc: list = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(target, list):
            if not part.isdigit():
                raise UserError(f"{shown}: {render_loc(loc)} is a list; use an index, e.g. {'.'.join(parts[:i])}.0")
            index = int(part)
            if index >= len(target):
                raise UserError(f"{shown}: {render_loc(loc)} has {len(target)} item(s); index {index} is out of range")
            loc.append(index)
            if last:
                target[index] = value
            else:
                if target[index] is None:
                    target[index] = {}
                target = target[index]
        elif isinstance(target, dict):
            loc.append(part)
            if last:
                target[part] = value
            else:
                if target.get(part) is None:
                    target[part] = [] if parts[i + 1].isdigit() else {}
                target = target[part]
        else:
            raise UserError(f"{shown}: {render_loc(loc)} is a single value, not a mapping or list")
    source.overrides[tuple(loc)] = shown


def validate(data: dict, source: Source) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_errors(exc, source, data, Recipe)) from None


def load_recipe(path: str | Path, overrides: list[str] = (), flags: dict[str, str | None] | None = None) -> Recipe:
    """Read, override and validate a recipe. Raises UserError with file:line:col messages."""
    recipe, _ = load_recipe_with_source(path, overrides, flags)
    return recipe


def read_with_overrides(path, overrides=(), flags=None) -> tuple[dict, Source]:
    """The recipe's raw data with ``--set`` overrides and the CLI's ``--model/--data/--out`` flags applied."""
    data, source = read_recipe(path)
    for assignment in overrides:
        apply_override(data, assignment, source)
    for key, value in (flags or {}).items():
        if value is not None:
            data[key] = str(value)
            source.overrides[(key,)] = f"--{key} {value}"
    return data, source


def load_recipe_with_source(path, overrides=(), flags=None) -> tuple[Recipe, Source]:
    data, source = read_with_overrides(path, overrides, flags)
    return validate(data, source), source


def to_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe (every default written out) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def json_schema() -> dict:
    schema = Recipe.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "compressctl recipe"
    return schema


# --------------------------------------------------------------------------- checks against the model


def layer_patterns(params) -> list[tuple[tuple, str]]:
    """(location within the stage, regex) of every layer-name pattern a stage's params hold."""
    found = []
    for field_name in ("include", "exclude"):
        for i, pattern in enumerate(getattr(params, field_name, None) or []):
            found.append(((field_name, i), pattern))
    layers = getattr(params, "layers", None)
    if isinstance(layers, dict):
        found.extend((("layers", pattern), pattern) for pattern in layers)
    return found


def check_layer_names(
    recipe: Recipe, layer_names: list[str], source: Source | None, model: str, table: list | None = None
) -> None:
    """Refuse a layer selector (per-layer key, include or exclude) that matches no layer of the model.

    A typo there would otherwise leave the layer at the stage's default, or untouched, and pass CI.
    Names a restructuring stage creates (``fc1_lowrank``) count for the stages after it. ``type:``,
    ``role:`` and ``feeds:`` selectors are checked against ``table`` (``selectors.layer_table``) up to
    the first restructuring stage; after it, when the stage binds them to the model it is given.
    """
    names = list(layer_names)
    problems = []
    for index, params in enumerate(recipe.stages):
        for loc, pattern in layer_patterns(params):
            full = ("stages", index, *loc)
            at = where(source, full, want_key=loc[0] == "layers") if source is not None else "recipe:"
            if not selectors.is_name_pattern(pattern):
                if table is not None and not selectors.resolve(pattern, table):
                    problems.append(f"{at} {render_loc(full)}: {selectors.describe_miss(pattern, table)}")
                continue
            if any(re.fullmatch(pattern, name) for name in names):
                continue
            hint = difflib.get_close_matches(pattern, names, n=1)
            problems.append(
                f"{at} {render_loc(full)}: {pattern!r} matches no layer of {model}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" (layers: {', '.join(names)})"
            )
        names = STAGES[params.type].renamed(names)
        if STAGES[params.type].restructures:
            table = None
    if problems:
        raise UserError("\n".join(problems))


def check_stages(recipe: Recipe, model, recipe_path: str = "", source: Source | None = None) -> None:
    """Stage fields that depend on the model (``Stage.check``: channel counts, ratios), before any training.

    Checked against the loaded model up to the first stage that rebuilds the layers; after it, a
    stage checks itself when it runs, on the model it is given.
    """
    if model is None:
        return
    table = selectors.layer_table(model) if any(selectors.needs_binding(p) for p in recipe.stages) else []
    for index, params in enumerate(recipe.stages):
        bound, origin = bind_selectors(params, table, index, source, recipe_path)
        stage = STAGES[params.type](bound)
        problems = stage.check(model)
        if problems:
            field_path, message = problems[0]
            if len(field_path) > 1 and field_path[0] == "layers":  # a bound key: point at the recipe's own
                field_path = ("layers", origin.get(field_path[1], field_path[1]), *field_path[2:])
            loc = ("stages", index, *field_path)
            # A per-layer key points at the key itself; any other field at its value.
            at = where(source, loc, want_key=len(field_path) > 1) if source is not None else f"{recipe_path}:"
            raise UserError(f"{at} {render_loc(loc)}: {message}")
        if stage.restructures:
            return


def bind_selectors(params, table: list, index: int, source: Source | None = None, recipe_path: str = ""):
    """A stage's params with its type/role/feeds selectors bound to the model's layers (``selectors.bind``).

    Returns (bound params, {bound key: recipe key}); a selector that matches nothing is a UserError
    naming the recipe line.
    """
    try:
        return selectors.bind(params, table)
    except selectors.Unmatched as exc:
        loc = ("stages", index, *exc.loc)
        at = where(source, loc, want_key=exc.loc[0] == "layers") if source is not None else f"{recipe_path}:"
        raise UserError(f"{at} {render_loc(loc)}: {exc}") from None
