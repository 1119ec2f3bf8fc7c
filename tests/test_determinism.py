"""The same recipe on the same model and data gives byte-identical artifacts."""

import json

import pytest

from compressctl import api
from tests.conftest import write_recipe

pytestmark = pytest.mark.slow


def test_same_recipe_twice_gives_identical_artifacts(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
seed: 7
stages:
  - type: prune
    target_sparsity: 0.5
    epochs: 1
  - type: cluster
    number_of_clusters: 8
    epochs: 1
  - type: quantize
    preserve: [sparsity, clusters]
    epochs: 1
targets:
  - type: cpu
    calibration_samples: 40
bench: {{runs: 5, warmup: 1}}
""",
    )
    hashes = []
    for name in ("a", "b"):
        api.run(str(recipe), out=str(tmp_path / name))
        report = json.loads((tmp_path / name / "report.json").read_text())
        hashes.append({a["target"]: a["sha256"] for a in report["artifacts"]} | {"base": report["baseline"]["sha256"]})
        assert report["recipe"]["sha256"]
    assert hashes[0] == hashes[1]
    assert api.verify(str(tmp_path / "a"))["ok"] is True
