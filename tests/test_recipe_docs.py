"""The committed schema and recipe reference match what the code generates; bundled recipes point editors at it.

When a sync test fails, run `make schema` and commit recipes/recipe.schema.json and docs/recipes.md.
"""

import json
import re

import pytest

from compressctl.recipe import bundled
from compressctl.recipe.docs import render_recipe_docs
from compressctl.recipe.schema import json_schema
from compressctl.stages import STAGES
from compressctl.targets import TARGETS
from tests.conftest import REPO

pytestmark = pytest.mark.unit

SCHEMA_FILE = REPO / "recipes" / "recipe.schema.json"
DOCS_FILE = REPO / "docs" / "recipes.md"
BUNDLED = sorted((REPO / "recipes").glob("*.yaml"))


def test_committed_schema_is_what_compressctl_schema_prints():
    expected = json.dumps(json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == expected, "recipes/recipe.schema.json is stale: run `make schema`"


def test_committed_recipe_reference_is_what_the_code_generates():
    assert DOCS_FILE.read_text() == render_recipe_docs(), "docs/recipes.md is stale: run `make schema`"


@pytest.mark.parametrize("path", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_recipe_starts_with_the_schema_comment(path):
    first = path.read_text().splitlines()[0]
    assert first == f"{bundled.SCHEMA_COMMENT}recipe.schema.json"
    assert (path.parent / "recipe.schema.json").is_file()


def test_the_reference_lists_every_type_and_field():
    text = render_recipe_docs()
    schema = json_schema()
    for registry, kind in ((STAGES, "stage"), (TARGETS, "target")):
        for tag, cls in registry.items():
            assert f'<a id="{kind}-{tag}"></a>' in text and f"### {kind} `{tag}`" in text
            section = text.split(f"### {kind} `{tag}`")[1].split("\n### ")[0].split("\n## ")[0]
            for field in cls.Params.model_fields:
                assert f"| `{field}` |" in section, (tag, field)
    for name in ("task", "training", "bench", "gates"):
        section = text.split(f"## `{name}`")[1].split("\n## ")[0]
        ref = schema["properties"][name]["$ref"].rsplit("/", 1)[-1]
        for field in schema["$defs"][ref]["properties"]:
            assert f"| `{field}` |" in section, (name, field)
    for field in schema["properties"]:
        assert f"| `{field}` |" in text.split("## Top level")[1].split("\n## ")[0]


def test_a_field_row_has_type_default_bounds_and_description():
    text = render_recipe_docs()
    prune = text.split("### stage `prune`")[1]
    row = next(line for line in prune.splitlines() if line.startswith("| `target_sparsity` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == [
        "`target_sparsity`",
        "number",
        "`0.5`",
        "≥ 0, < 1",
        "Fraction of each layer's weights set to zero (layers not in `layers`).",
    ]
    # Defaults built by a factory are not in the schema; they still appear.
    include = next(line for line in prune.splitlines() if line.startswith("| `include` |"))
    assert "| `[]` |" in include
    # Every anchor the reference links to exists.
    for anchor in re.findall(r"\]\(#([\w-]+)\)", text):
        assert f'<a id="{anchor}"></a>' in text, anchor


def test_bundled_recipes_are_found_from_the_package():
    found = {r["name"]: r for r in bundled.bundled_recipes()}
    assert {p.stem for p in BUNDLED} <= set(found)
    assert found["cpu-int8"]["description"].startswith("Post-training full-int8")
    assert bundled.schema_file() == SCHEMA_FILE.resolve()
