"""Recipe checks that need the model, before any stage trains (compressctl.recipe.schema.check_stages)."""

import pytest

from compressctl.core.errors import UserError
from compressctl.recipe.schema import check_stages, load_recipe_with_source
from tests.conftest import write_recipe


def checked(tmp_path, model, text, overrides=()):
    path = write_recipe(tmp_path, text)
    recipe, source = load_recipe_with_source(path, list(overrides))
    check_stages(recipe, model, str(path), source)
    return path


def test_the_error_names_the_recipe_line_of_the_field(tmp_path, tiny_cnn):
    with pytest.raises(UserError) as error:
        checked(tmp_path, tiny_cnn, "stages:\n  - type: prune_channels\n    ratio: 0.99\n")
    assert str(error.value).startswith(f"{tmp_path / 'recipe.yaml'}:3:12 stages[0].ratio: 0.99 would remove every")


def test_an_override_is_named_as_written(tmp_path, tiny_cnn):
    with pytest.raises(UserError, match=r"^--set stages.0.multiple_of=64: stages\[0\].multiple_of: 64 is larger"):
        checked(tmp_path, tiny_cnn, "stages:\n  - type: prune_channels\n", ["stages.0.multiple_of=64"])


def test_good_fields_and_later_stages_pass(tmp_path, tiny_cnn):
    checked(tmp_path, tiny_cnn, "stages:\n  - type: prune_channels\n    layers: {fc1: 0.5}\n  - type: prune\n")
    # After a stage that rebuilds the layers, prune_channels checks itself on the model it is given.
    checked(tmp_path, tiny_cnn, "stages:\n  - type: lowrank\n    rank: 2\n  - type: prune_channels\n    include: [x]\n")
