"""compressctl init: the starter recipe follows from what inspect found, and always validates."""

import json
import subprocess
import sys

import pytest
import yaml

from compressctl.errors import UserError
from compressctl.starter import check_starter, plan, starter_recipe
from tests.conftest import REPO


def layer(name, cls, params, prune=True, cluster=True, quantize=True):
    return {"name": name, "class": cls, "params": params, "prune": prune, "cluster": cluster, "quantize": quantize}


LENET = {
    "model": "lenet",
    "format": "savedmodel",
    "trainable": True,
    "params": 431_080,
    "layers": [
        layer("conv1", "Conv2D", 520),
        layer("pool", "MaxPooling2D", 0, "no weights to prune", "no weights to cluster"),
        layer("conv2", "Conv2D", 25_050),
        layer("flatten", "Flatten", 0, "no weights to prune", "no weights to cluster"),
        layer("fc1", "Dense", 400_500),
        layer("fc2", "Dense", 5_010),
    ],
}


def parsed(text: str) -> dict:
    return yaml.safe_load(text)


def test_big_dense_layers_are_pruned_harder_then_cluster_then_pcqat():
    recipe = parsed(starter_recipe(LENET, "models/lenet", "data/digits.npz", "recipe.yaml"))
    prune, cluster, quantize = recipe["stages"]
    assert prune["type"] == "prune" and prune["target_sparsity"] == 0.5
    assert prune["layers"] == {"fc1": 0.9}  # 93 % of the parameters; fc2 holds 1 %: the default
    assert cluster == {"type": "cluster", "number_of_clusters": 16, "preserve_sparsity": True, "epochs": 3}
    assert quantize["preserve"] == ["sparsity", "clusters"]
    assert recipe["targets"] == [{"type": "cpu", "mode": "int8", "calibration_samples": 200}]
    assert recipe["gates"] == {"max_metric_drop": 0.01, "min_compression_ratio": 3.5}
    assert recipe["model"] == "models/lenet" and recipe["data"] == "data/digits.npz"


def test_a_big_output_layer_is_pruned_less_and_names_are_regex_escaped():
    info = {
        "trainable": True,
        "params": 2_000,
        "layers": [layer("in.proj", "Dense", 1_000), layer("head", "Dense", 1_000)],
    }
    recipe = parsed(starter_recipe(info, "m.h5"))
    assert recipe["stages"][0]["layers"] == {r"in\.proj": 0.9, "head": 0.8}
    assert recipe["gates"]["min_compression_ratio"] == 2.0  # a small model: the file is not mostly weights
    assert "data" not in recipe and recipe["name"] == "m-compressed"


def test_no_qat_support_means_no_quantize_stage():
    info = {"trainable": True, "params": 100, "layers": [layer("fc", "Dense", 100, quantize="no QAT support")]}
    chosen = plan(info)
    assert [s["type"] for s in chosen["stages"]] == ["prune", "cluster"]
    assert any("post-training int8 only" in n for n in chosen["notes"])


def test_an_inference_only_model_gets_post_training_int8_only():
    info = {"trainable": False, "layers": [], "notes": []}
    text = starter_recipe(info, "saved/")
    recipe = parsed(text)
    assert "stages" not in recipe
    assert recipe["targets"][0]["mode"] == "int8"
    assert "# note: the model cannot be fine-tuned here" in text


def test_the_schema_comment_points_at_the_bundled_schema(tmp_path):
    text = starter_recipe(LENET, "m", recipe_path=tmp_path / "sub" / "r.yaml")
    first = text.splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    target = (tmp_path / "sub" / first.split("=", 1)[1]).resolve()
    assert target == (REPO / "recipes" / "recipe.schema.json").resolve()


def test_check_starter_refuses_an_invalid_recipe():
    with pytest.raises(UserError, match="target_sparsity: must be < 1"):
        check_starter("stages:\n  - type: prune\n    target_sparsity: 1.5\n", "r.yaml")


def cli(*args, cwd=REPO):
    cmd = [sys.executable, "-m", "compressctl", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


def test_init_on_a_real_model_writes_a_recipe_that_validates(tmp_path, tiny_cnn_path, tiny_data):
    out = tmp_path / "recipe.yaml"
    result = cli("init", tiny_cnn_path, "--out", out, "--data", tiny_data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (prune → cluster → quantize; target cpu int8)")
    recipe = parsed(out.read_text())
    assert recipe["stages"][0]["layers"] == {"fc1": 0.9}  # fc1 holds 98 % of the tiny CNN's weights
    assert recipe["model"] == str(tiny_cnn_path) and recipe["data"] == str(tiny_data)
    check = cli("validate", out, "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["valid"] is True
    again = cli("init", tiny_cnn_path, "--out", out)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    to_stdout = cli("init", tiny_cnn_path, "--out", "-", "--json")
    assert to_stdout.returncode == 0, to_stdout.stderr
    payload = json.loads(to_stdout.stdout)
    assert payload["stages"] == ["prune", "cluster", "quantize"]
    assert parsed(payload["recipe"])["stages"][0]["type"] == "prune"
