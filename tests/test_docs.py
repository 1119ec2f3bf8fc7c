"""The documentation says only what compressctl accepts: every recipe snippet validates, every command parses."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.unit

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# A snippet that shows part of a recipe is checked on top of this, so that it validates on its own.
BASE = {"name": "snippet", "targets": [{"type": "cpu"}]}


def blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for lang, body in BLOCK.findall(page.read_text()):
            if lang == kind:
                found.append((f"{page.relative_to(REPO)}", body))
    return found


def _recipe_fields() -> set[str]:
    from compressctl.recipe.schema import Recipe

    return set(Recipe.model_fields)


@pytest.mark.parametrize(("page", "body"), blocks("yaml"), ids=lambda v: v if v.endswith(".md") else "")
def test_every_yaml_snippet_is_a_valid_recipe(page, body):
    from compressctl.recipe.schema import Source, validate

    data = yaml.safe_load(body)
    if data is None:  # comments only (the editor's $schema line)
        return
    assert isinstance(data, dict), f"{page}: a YAML snippet that is not a mapping"
    assert set(data) <= _recipe_fields(), f"{page}: keys no recipe has: {set(data) - _recipe_fields()}"
    merged = {**BASE, **data}
    validate(merged, Source(f"{page} snippet", yaml.safe_dump(merged, sort_keys=False)))


def command_lines() -> list[tuple[str, list[str]]]:
    found = []
    for page, body in blocks("sh") + blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():  # continuation lines joined
            words = shlex.split(line, comments=True)
            if words[:1] == ["compressctl"]:
                found.append((page, words[1:]))
    return found


@pytest.mark.parametrize(("page", "args"), command_lines(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_documented_command_line_parses(page, args):
    """Each `compressctl …` line in a sh block names a command and options that exist (nothing is run)."""
    import click
    import typer

    from compressctl.cli import app

    group = typer.main.get_command(app)
    if args[0].startswith("-"):  # an option of compressctl itself (--install-completion)
        group.make_context("compressctl", list(args), resilient_parsing=True)
        assert any(args[0] in param.opts for param in group.params), f"{page}: no option {args[0]}"
        return
    name, *rest = args
    command = group.get_command(click.Context(group), name)
    assert command is not None, f"{page}: no command {name!r}"
    command.make_context(name, [arg for arg in rest if arg != "--help"])


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_bytes()) <= 16 * 1024


def test_the_readme_zoo_table_is_the_one_make_bench_measured():
    import json

    from benchmarks.zoo import readme_table

    zoo = json.loads((REPO / "benchmarks" / "results.json").read_text())["zoo"]
    table = readme_table(zoo)
    readme = (REPO / "README.md").read_text().splitlines()
    assert table[0] in readme, "the README has no zoo table"
    start = readme.index(table[0])
    assert readme[start : start + len(table)] == table
