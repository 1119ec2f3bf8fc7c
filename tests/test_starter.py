"""compressctl init: the starter recipe follows from what inspect found, and always validates."""

import json

import numpy as np
import pytest
import yaml

from compressctl.core.errors import UserError
from compressctl.recipe.starter import (
    check_starter,
    label_facts,
    label_facts_file,
    metric_gate,
    plan,
    size_gate,
    starter_recipe,
    stored_sizes,
)
from tests.conftest import REPO, cli


def layer(name, cls, params, prune=True, cluster=True, quantize=True, weights=None):
    row = {"name": name, "class": cls, "params": params, "prune": prune, "cluster": cluster, "quantize": quantize}
    if weights is not None:
        row["weights"] = weights
    return row


def dense(name, n_in, n_out, **kw):
    return layer(name, "Dense", n_in * n_out + n_out, weights={"kernel": [n_in, n_out], "bias": [n_out]}, **kw)


def conv(name, k, c_in, c_out, cls="Conv2D"):
    weights = {"kernel": [k, k, c_in, c_out], "bias": [c_out]}
    return layer(name, cls, k * k * c_in * c_out + c_out, weights=weights)


def no_weights(name, cls):
    return layer(name, cls, 0, "no weights to prune", "no weights to cluster", weights={})


LENET = {
    "model": "lenet",
    "format": "savedmodel",
    "trainable": True,
    "params": 431_080,
    "output_units": 10,
    "output_activation": "softmax",
    "layers": [
        conv("conv1", 5, 1, 20),
        no_weights("pool", "MaxPooling2D"),
        conv("conv2", 5, 20, 50),
        no_weights("flatten", "Flatten"),
        dense("fc1", 800, 500),
        dense("fc2", 500, 10),
    ],
}

# sample_models/mlp_breast_cancer: 30 → 32 → 16 → 1 (sigmoid), 1,537 parameters.
TABULAR = {
    "trainable": True,
    "params": 1_537,
    "output_units": 1,
    "output_activation": "sigmoid",
    "layers": [dense("fc1", 30, 32), dense("fc2", 32, 16), dense("out", 16, 1)],
}

# tests/conftest.py's diabetes MLP: 10 → 32 → 1, linear output.
DIABETES = {
    "trainable": True,
    "params": 385,
    "output_units": 1,
    "output_activation": "linear",
    "layers": [dense("fc1", 10, 32), dense("out", 32, 1)],
}


def parsed(text: str) -> dict:
    return yaml.safe_load(text)


def test_big_dense_layers_are_pruned_harder_then_cluster_then_pcqat():
    recipe = parsed(starter_recipe(LENET, "models/lenet", "data/digits.npz", "recipe.yaml"))
    prune, cluster, quantize = recipe["stages"]
    assert prune["type"] == "prune" and prune["target_sparsity"] == 0.5
    # fc1: 93 % of the parameters; fc2 holds 1 %: the default; conv1's 520 weights: a small layer
    assert prune["layers"] == {"conv1": 0.3, "fc1": 0.9}
    assert cluster == {"type": "cluster", "number_of_clusters": 16, "preserve_sparsity": True, "epochs": 3}
    assert quantize["preserve"] == ["sparsity", "clusters"]
    assert recipe["targets"] == [{"type": "cpu", "mode": "int8", "calibration_samples": 200}]
    assert recipe["gates"] == {"max_metric_drop": 0.01, "min_compression_ratio": 3.4}
    assert recipe["model"] == "models/lenet" and recipe["data"] == "data/digits.npz"


def test_a_big_output_layer_is_pruned_less_and_names_are_regex_escaped():
    info = {
        "trainable": True,
        "params": 10_000,
        "layers": [layer("in.proj", "Dense", 5_000), layer("head", "Dense", 5_000)],
    }
    recipe = parsed(starter_recipe(info, "m.h5"))
    assert recipe["stages"][0]["layers"] == {r"in\.proj": 0.9, "head": 0.8}
    # No weight shapes in this inspection: no size gate to derive; the metric gate stays.
    assert recipe["gates"] == {"max_metric_drop": 0.01}
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


def test_init_on_a_real_model_writes_a_recipe_that_validates(tmp_path, tiny_cnn_path, tiny_data):
    out = tmp_path / "recipe.yaml"
    result = cli("init", tiny_cnn_path, "--out", out, "--data", tiny_data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (prune → cluster → quantize; target cpu int8)")
    recipe = parsed(out.read_text())
    # fc1 holds 98 % of the tiny CNN's weights; conv (80) and fc2 (99) are small layers: the default
    assert recipe["stages"][0]["target_sparsity"] == 0.3 and recipe["stages"][0]["layers"] == {"fc1": 0.9}
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


# issue 18: gates `init` can meet, each derived in a comment of the recipe.

# Float32 and full-int8 TFLite sizes of these models as converted (TF 2.x, post-training int8): the
# estimate must not exceed the real ratio (a gate derived from it would then be missed).
MEASURED = {"lenet": (1_727_656, 450_928), "tabular": (8_296, 5_672), "diabetes": (2_664, 2_512)}


def gate_block(text: str) -> str:
    return text.split("\ngates:\n", 1)[1]


def test_the_size_gate_is_the_stored_size_ratio_full_int8_implies_less_a_margin():
    sizes = stored_sizes(LENET)
    assert sizes["kernel"] == 430_500 and sizes["channels"] == 580 and sizes["other"] == 0
    float32, int8 = MEASURED["lenet"]
    assert 0.97 * float32 / int8 <= sizes["ratio"] <= float32 / int8
    gate = size_gate(LENET)
    assert gate["value"] == 3.4  # 0.9 × 3.83, rounded down to 0.05: not 3.5, not 4
    text = "\n".join(gate["comments"])
    assert "430,500 kernel weights in 1 byte instead of 4" in text and "580 biases in 4 (int32)" in text
    assert f"{sizes['float32']:,} → {sizes['int8']:,} bytes, 3.83×" in text
    assert "Gate: 0.9 × the estimate" in text


def test_a_small_model_gets_a_small_size_gate_because_of_the_file_structure():
    sizes = stored_sizes(TABULAR)
    float32, int8 = MEASURED["tabular"]
    assert sizes["ratio"] <= float32 / int8 < 1.6  # far from 4×: most of the file is structure
    assert size_gate(TABULAR)["value"] == 1.25
    recipe = parsed(starter_recipe(TABULAR, "bc"))
    assert recipe["gates"] == {"max_metric_drop": 0.01, "min_compression_ratio": 1.25}


def test_no_size_gate_where_int8_cannot_reliably_shrink_the_file_and_the_recipe_says_why():
    float32, int8 = MEASURED["diabetes"]
    assert stored_sizes(DIABETES)["ratio"] <= float32 / int8  # 1.06× measured
    text = starter_recipe(DIABETES, "d.keras", "d.npz", labels={"float": True, "std": 77.0, "min": 25, "max": 346})
    assert "min_compression_ratio" not in parsed(text)["gates"]
    assert "# min_compression_ratio: not set, 0.9 × 0.91× is under 1×" in gate_block(text)


def test_batch_norm_folds_depthwise_kernels_count_their_channels_other_weights_stay_float():
    info = {
        "layers": [
            layer("stem", "Conv2D", 432, weights={"kernel": [3, 3, 3, 16]}),
            layer("bn", "BatchNormalization", 64, weights={k: [16] for k in ("gamma", "beta", "moving_mean", "x")}),
            layer("relu", "ReLU", 0, weights={}),
            layer("dw", "DepthwiseConv2D", 144, weights={"depthwise_kernel": [3, 3, 16, 1]}),
            layer("gru", "GRU", 1_000, weights={"kernel": [16, 24], "recurrent_kernel": [8, 24], "bias": [2, 24]}),
            dense("head", 8, 3),
        ]
    }
    sizes = stored_sizes(info)
    assert sizes["kernel"] == 432 + 144 + 24
    assert sizes["channels"] == 16 + 16 + 3  # a bias per output channel, BatchNormalization's folded in
    assert sizes["other"] == 16 * 24 + 8 * 24 + 2 * 24  # the GRU: counted float in both files
    assert sizes["ops"] == 4  # BatchNormalization and ReLU fold into the convolution


def test_the_metric_gate_of_a_classifier_is_one_point():
    for info in (LENET, TABULAR):
        gate = metric_gate(info, {"float": False, "std": 0.5, "min": 0, "max": 1})
        assert gate == {"task": None, "value": 0.01, "comments": ["at most one point of accuracy lost"]}
    # A binary classifier on logits: one linear output, but the labels are 0/1.
    assert metric_gate(DIABETES, label_facts(np.array([0, 1, 1, 0])))["value"] == 0.01


def test_the_metric_gate_of_a_regression_model_is_in_the_labels_unit_from_their_spread():
    labels = label_facts(np.array([25.0, 100.0, 200.0, 346.0], dtype=np.float32))
    assert labels["float"] and labels["max"] == 346.0
    text = starter_recipe(DIABETES, "d.keras", "d.npz", labels=labels)
    recipe = parsed(text)
    assert recipe["task"] == {"metric": "mae"}  # a budget in the labels' unit: mae, not mse
    budget = 0.05 * labels["std"]
    assert recipe["gates"]["max_metric_drop"] == pytest.approx(budget, rel=0.02)
    assert recipe["gates"]["max_metric_drop"] <= budget  # rounded down, never up
    assert f"mae may rise by 0.05 × the train labels' standard deviation ({labels['std']:.4g})" in text
    # Labels far beyond TFMOT's starting ±6: QAT starts from the measured ranges, so it stays.
    assert [s["type"] for s in recipe["stages"]] == ["prune", "cluster", "quantize"]
    assert "no quantization-aware training" not in text


def test_without_labels_a_linear_output_gets_no_metric_gate_and_a_comment():
    text = starter_recipe(DIABETES, "d.keras")
    assert "max_metric_drop" not in parsed(text)["gates"]
    assert "# max_metric_drop: not set. One linear output" in text and "pass --data" in text


def test_an_inference_only_model_gets_no_size_gate_and_no_gate_is_silent():
    text = starter_recipe({"trainable": False, "layers": [], "notes": [], "output_units": 3}, "saved/")
    assert parsed(text)["gates"] == {"max_metric_drop": 0.01}
    block = gate_block(text)
    assert "# min_compression_ratio: not set, inspect shows no weights" in block
    assert "# min_speedup: not set" in block
    # One output unit and no --data: no gate can be derived at all, and the recipe still validates.
    text = starter_recipe({"trainable": False, "layers": [], "notes": [], "output_units": 1}, "saved/")
    assert parsed(text)["gates"] == {} and "pass --data so that init tells them apart" in text


def test_small_layers_are_pruned_less_and_one_level_is_the_default():
    tabular = plan(TABULAR)["stages"][0]
    assert tabular["target_sparsity"] == 0.3 and "layers" not in tabular  # every layer under 1,024 weights
    # Mostly small layers (a MobileNet): their level is the default, the others are listed.
    mobile = {
        "trainable": True,
        "params": 9_000,
        "layers": [conv("a", 3, 3, 8), conv("b", 1, 8, 16), dense("c", 60, 120)],
    }
    prune = plan(mobile)["stages"][0]
    assert prune["target_sparsity"] == 0.3 and prune["layers"] == {"c": 0.8}  # big Dense, the output layer
    mid = {"trainable": True, "params": 6_000, "layers": [dense("a", 50, 40), dense("b", 40, 50), dense("c", 50, 30)]}
    assert plan(mid)["stages"][0]["target_sparsity"] == 0.5 and plan(mid)["big_dense"] == []  # under 4,096 each


def test_label_facts_file_reads_y_train(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((3, 2)), y_train=np.array([1.0, 2.0, 4.0]))
    facts = label_facts_file(tmp_path / "d.npz")
    assert facts["float"] and facts["min"] == 1.0 and facts["std"] == pytest.approx(np.std([1.0, 2.0, 4.0]))
    assert label_facts_file(None) is None and label_facts_file(tmp_path / "missing.npz") is None
    np.savez(tmp_path / "x.npz", x_train=np.zeros(2))
    assert label_facts_file(tmp_path / "x.npz") is None
