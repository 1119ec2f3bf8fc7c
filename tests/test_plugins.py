"""Extensions are one module each: a stage, a target and a data source from a package outside compressctl.

tests/plugins/demo defines ``demo_round`` (a stage), ``demo_float`` (a target) and ``demo_scaled`` (a data
source); no module of compressctl names them. Loaded as a user loads theirs (``COMPRESSCTL_PLUGINS`` or
an installed distribution's entry points), each is validated, listed, run end to end and reported with the
figures its class declares.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from benchmarks.zoo_models import quadrant_data
from tests.conftest import REPO, cli, write_recipe

PLUGINS = "stages=tests.plugins.demo.stage,targets=tests.plugins.demo.target,data_sources=tests.plugins.demo.source"
ENTRY_POINTS = """\
[compressctl.stages]
demo_round = tests.plugins.demo.stage

[compressctl.targets]
demo_float = tests.plugins.demo.target

[compressctl.data_sources]
demo_scaled = tests.plugins.demo.source
"""
RECIPE = """\
name: plugin-demo
data: {{format: demo_scaled, path: {data}, scale: 0.5}}
stages:
  - type: demo_round
    decimals: 1
targets:
  - type: demo_float
    board: nano
bench: {{runs: 5, warmup: 1, rounds: 1}}
"""


def env(**extra) -> dict:
    """The environment of a user's shell with the demo plugins named (the repository on the path)."""
    out = {k: v for k, v in os.environ.items() if k != "COMPRESSCTL_PLUGINS"}
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), out.get("PYTHONPATH", "")) if p)
    return {**out, **extra}


def installed(tmp_path) -> dict:
    """The environment with the plugins installed as a distribution: its metadata and entry points on the path."""
    dist = tmp_path / "site" / "compressctl_demo_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: compressctl-demo-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return env(PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO)]))


@pytest.mark.unit
@pytest.mark.parametrize("how", ["variable", "entry points"])
def test_a_recipe_of_plugins_validates_and_its_typos_name_the_field(tmp_path, how):
    environment = env(COMPRESSCTL_PLUGINS=PLUGINS) if how == "variable" else installed(tmp_path)
    recipe = write_recipe(tmp_path, RECIPE.format(data="data.npz"))
    done = cli("validate", recipe, env=environment)
    assert done.returncode == 0, done.stderr
    assert "demo_round; targets: demo_float" in done.stdout
    for good, typo, where in [
        ("decimals: 1", "decimal: 1", r":5:5 stages\[0\]\.decimal: unknown field; did you mean 'decimals'"),
        ("board: nano", "bord: nano", r":8:5 targets\[0\]\.bord: unknown field; did you mean 'board'"),
        ("scale: 0.5", "scal: 0.5", r"data\.scal: unknown field"),
        ("decimals: 1", "decimals: 9", r":5:15 stages\[0\]\.decimals: must be <= 8"),
    ]:
        bad = write_recipe(tmp_path, RECIPE.format(data="data.npz").replace(good, typo), "bad.yaml")
        done = cli("validate", bad, env=environment)
        assert done.returncode == 2, (typo, done.stdout, done.stderr)
        assert re.search(where, done.stderr), (typo, done.stderr)


@pytest.mark.unit
def test_without_the_plugins_their_types_are_unknown(tmp_path):
    done = cli("validate", write_recipe(tmp_path, RECIPE.format(data="data.npz")), env=env())
    assert done.returncode == 2
    assert "unknown type 'demo_round'" in done.stderr and "unknown type 'demo_float'" in done.stderr


@pytest.mark.unit
def test_the_recipe_schema_lists_each_plugin():
    schema = json.loads(cli("schema", env=env(COMPRESSCTL_PLUGINS=PLUGINS)).stdout)
    text = json.dumps(schema)
    for name in ("demo_round", "demo_float", "demo_scaled"):
        assert f'"const": "{name}"' in text or f'"enum": ["{name}"]' in text, name
    assert "demo_round" not in cli("schema", env=env()).stdout


@pytest.mark.unit
@pytest.mark.parametrize("how", ["variable", "entry points"])
def test_recipes_parts_lists_each_plugin_beside_the_built_in_ones(tmp_path, how):
    environment = env(COMPRESSCTL_PLUGINS=PLUGINS) if how == "variable" else installed(tmp_path)
    done = cli("recipes", "--parts", "--json", env=environment)
    assert done.returncode == 0, done.stderr
    listed = {kind: {row["type"]: row for row in rows} for kind, rows in json.loads(done.stdout).items()}
    assert listed["stages"]["demo_round"]["module"] == "tests.plugins.demo.stage"
    assert listed["targets"]["demo_float"]["module"] == "tests.plugins.demo.target"
    assert "demo_scaled" in listed["data_sources"]
    assert {"prune", "cluster"} <= set(listed["stages"]) and {"cpu", "mcu"} <= set(listed["targets"])
    assert all(row["description"] for rows in listed.values() for row in rows.values())
    plain = cli("recipes", "--parts", env=env())
    assert plain.returncode == 0 and "demo_round" not in plain.stdout and "prune_channels" in plain.stdout


@pytest.mark.unit
@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("stages=tests.plugins.absent", "plugin tests.plugins.absent (COMPRESSCTL_PLUGINS) could not be imported"),
        ("stage=tests.plugins.demo.stage", "is not KIND=MODULE with KIND one of stages, targets, data_sources"),
        ("targets=tests.plugins.demo.stage", "plugin tests.plugins.demo.stage (COMPRESSCTL_PLUGINS) defines no Target"),
    ],
)
def test_a_broken_plugin_is_one_line_and_exit_2(tmp_path, variable, message):
    recipe = write_recipe(tmp_path, RECIPE.format(data="data.npz"))
    done = cli("validate", recipe, env=env(COMPRESSCTL_PLUGINS=variable))
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_plugins_are_listed_run_and_reported_with_their_own_figures(tmp_path, tiny_cnn_path):
    np.savez(tmp_path / "data.npz", **quadrant_data())
    environment = env(COMPRESSCTL_PLUGINS=PLUGINS)

    listed = cli("inspect", tiny_cnn_path, "--json", env=environment)
    assert listed.returncode == 0, listed.stderr
    info = json.loads(listed.stdout)
    assert "demo_round" in info["techniques"] and "demo_float" in info["techniques"]
    layers = {row["name"]: row for row in info["layers"]}
    assert layers["fc1"]["demo_round"] is True and layers["flatten"]["demo_round"] == "no kernel to round"

    recipe = write_recipe(tmp_path, RECIPE.format(data=tmp_path / "data.npz"))
    run = tmp_path / "run"
    done = cli("run", recipe, "--model", tiny_cnn_path, "--out", run, env=environment)
    assert done.returncode == 0, done.stderr

    report = json.loads((run / "report.json").read_text())
    assert report["data"]["format"] == "demo_scaled" and report["data"]["test_samples"] > 0
    stage = report["stages"][0]
    assert stage["type"] == "demo_round" and stage["rounded_layers"] == 3 and stage["decimals"] == 1
    assert 0 < stage["max_change"] <= 0.05 + 1e-6  # rounding to one decimal moves a weight by at most 0.05
    assert stage["columns"] == ["max_change"] and {r["layer"] for r in stage["layers"]} == {"conv", "fc1", "fc2"}
    (artifact,) = report["artifacts"]
    assert artifact["type"] == "demo_float" and artifact["conversion"] == "float32 (demo)"
    assert artifact["board"] == "nano" and artifact["file_kib"] == pytest.approx(artifact["size_bytes"] / 1024)
    assert (run / "demo_float" / "board.txt").read_text() == "nano\n"

    # Each figure reads as its class declared it, in report.md and report.html alike.
    markdown, page = (run / "report.md").read_text(), (run / "report.html").read_text()
    measured = f"3 layers rounded, largest change {stage['max_change']:.3g}, to 1 decimals"
    board = f"file {artifact['file_kib']:.1f} KiB on the demo board, board nano."
    assert f"| demo_round | {stage['seconds']:.1f} |" in markdown and measured in markdown
    assert "### demo_round: per layer" in markdown and "| layer | params | largest change |" in markdown
    fc1 = next(r for r in stage["layers"] if r["layer"] == "fc1")
    assert f"| fc1 | {fc1['params']:,} | {fc1['max_change']:.3g} |" in markdown
    assert f"**demo_float:** {board}" in markdown
    assert measured in page and "largest change" in page and board in page

    # Re-rendered with the plugins: the same bytes. Without them: every figure still there, by name.
    again = cli("report", run, "--format", "md", env=environment)
    assert again.returncode == 0 and again.stdout == markdown
    bare = cli("report", run, "--format", "md", env=env())
    assert bare.returncode == 0, bare.stderr
    assert "rounded layers 3" in bare.stdout and "board nano" in bare.stdout and measured not in bare.stdout
