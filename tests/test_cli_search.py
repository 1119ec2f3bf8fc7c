"""The search, sensitivity and init --search commands through the CLI (the search itself: tests/search)."""

import json

from tests.conftest import cli, write_recipe


def test_help_lists_search_and_sensitivity():
    result = cli("--help")
    assert "search" in result.stdout and "sensitivity" in result.stdout
    assert "--address" in cli("search", "--help").stdout


def test_search_without_a_search_section_is_exit_2(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(tmp_path, "name: x\nstages: []\n")
    result = cli("search", recipe, "--model", tiny_cnn_path, "--data", tiny_data, "--out", tmp_path / "s")
    assert result.returncode == 2
    assert "no `search:` section" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_sensitivity_writes_table_and_plot(tmp_path, tiny_cnn_path, tiny_data):
    out = tmp_path / "sens"
    result = cli("sensitivity", tiny_cnn_path, "--data", tiny_data, "--out", out, "--levels", "0.5,0.95",
                 "--clusters", "4", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    assert [r["name"] for r in table["layers"]] == ["conv", "flatten", "fc1", "fc2"]
    assert table["layers"][1]["note"] == "no kernel to prune or cluster"
    assert {p.name for p in out.iterdir()} == {"sensitivity.json", "sensitivity.md", "sensitivity.png"}
    bad = cli("sensitivity", tiny_cnn_path, "--data", tiny_data, "--levels", "0.5,1.5")
    assert bad.returncode == 2 and "--levels" in bad.stderr


def test_init_search_writes_a_valid_search_recipe(tmp_path, tiny_cnn_path, tiny_data):
    out = tmp_path / "search.yaml"
    assert cli("init", tiny_cnn_path, "--search", "--out", out).returncode == 2  # needs --data
    result = cli("init", tiny_cnn_path, "--data", tiny_data, "--search", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stages"] == ["prune", "cluster", "quantize"]
    assert summary["space"] == [
        "stages.0.layers.conv",
        "stages.0.layers.fc1",
        "stages.0.layers.fc2",
        "stages.1.number_of_clusters",
    ]
    assert cli("validate", out).returncode == 0
