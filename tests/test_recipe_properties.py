"""Mutated recipes never crash validation: each ends as a valid recipe or one clean UserError."""

import contextlib
import copy
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compressctl.core.errors import UserError
from compressctl.recipe.schema import Recipe, load_recipe
from tests.conftest import REPO

pytestmark = pytest.mark.unit

BASE = yaml.safe_load((REPO / "recipes" / "deep-compression.yaml").read_text())

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


ALL_PATHS = [p for p in paths(BASE) if p]


def parent_of(data, path):
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw):
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        try:
            parent = parent_of(data, path)
            key = path[-1]
            action = draw(st.sampled_from(["drop", "replace", "unknown", "reorder"]))
            if action == "drop":
                del parent[key]
            elif action == "replace":
                parent[key] = draw(odd_values)
            elif action == "unknown" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(odd_values)
            elif action == "reorder" and isinstance(data.get("stages"), list):
                data["stages"] = draw(st.permutations(data["stages"]))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_recipes_validate_or_fail_cleanly(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        assert isinstance(load_recipe(path), Recipe)
    except UserError as exc:
        message = str(exc)
        assert message
        assert all(line.startswith(str(path)) for line in message.splitlines()), message
        assert "Traceback" not in message


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_cli_validate_exits_0_or_2_without_traceback(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = subprocess.run(
        [sys.executable, "-m", "compressctl", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if result.returncode == 2:
        assert result.stderr.startswith("error: ")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_loader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("r") / "recipe.yaml"
    path.write_text(text)
    with contextlib.suppress(UserError):
        load_recipe(path)
