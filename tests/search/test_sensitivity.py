"""Layer sensitivity: every layer of every model family in the suite gets a row, figures measured."""

import json

import numpy as np
import pytest

from compressctl import api
from compressctl.search.sensitivity import cluster_array, layer_bound, prune_array


def test_prune_and_cluster_arrays():
    w = np.arange(1, 101, dtype=np.float32).reshape(10, 10) * np.where(np.arange(100) % 2, 1, -1).reshape(10, 10)
    pruned = prune_array(w, 0.9)
    assert np.count_nonzero(pruned) == 10 and set(np.abs(pruned[pruned != 0])) == set(range(91, 101))
    shared = cluster_array(w, 4)
    assert len(np.unique(shared)) <= 4 and shared.shape == w.shape


def test_layer_bound_is_the_first_level_past_the_allowed_drop():
    row = {"prune": {"0.5": {"drop": 0.0}, "0.9": {"drop": 0.01}, "0.98": {"drop": 0.2}}}
    assert layer_bound(row, 0.02) == 0.98
    assert layer_bound(row, 0.3) == 0.98
    assert layer_bound(row, 0.005) == 0.9
    assert layer_bound({"note": "no kernel"}, 0.02) is None


def _keras():
    from compressctl.core.env import keras

    return keras()


def _cnn(k):
    from tests.conftest import build_tiny_cnn

    return build_tiny_cnn(), (8, 8, 1), 3


def _residual_bn(k):
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    h = k.layers.BatchNormalization(name="bn_a")(h)
    h = k.layers.ReLU(name="relu_a")(h)
    r = k.layers.Conv2D(4, 3, padding="same", name="conv_b")(h)
    h = k.layers.Add(name="add")([h, r])
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return k.Model(inputs, outputs), (8, 8, 1), 3


def _gru(k):
    model = k.Sequential([k.Input((10, 4)), k.layers.GRU(4, name="gru"), k.layers.Dense(2, activation="softmax")])
    return model, (10, 4), 2


def _tabular(k):
    model = k.Sequential([k.Input((6,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(1, activation="sigmoid")])
    return model, (6,), 1


def _lenet5(k):
    from compressctl.model.samples import lenet5

    return lenet5(width=0.2), (28, 28, 1), 10


@pytest.mark.parametrize("build", [_cnn, _residual_bn, _gru, _tabular, _lenet5], ids=lambda f: f.__name__[1:])
def test_every_layer_gets_a_row(build, tmp_path):
    k = _keras()
    model, shape, classes = build(k)
    rng = np.random.default_rng(0)
    x = rng.random((120, *shape), dtype=np.float32)
    y = rng.integers(0, max(classes, 2), 120)
    np.savez(tmp_path / "d.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:])
    model.save(str(tmp_path / "m"), save_format="tf")
    result = api.sensitivity(str(tmp_path / "m"), str(tmp_path / "d.npz"), str(tmp_path / "out"), [0.5, 0.99], [4])
    expected = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [row["name"] for row in result["layers"]] == expected
    for row in result["layers"]:
        if "note" in row:
            continue
        assert set(row["prune"]) == {"0.5", "0.99"} and set(row["cluster"]) == {"4"}
        for cell in (*row["prune"].values(), *row["cluster"].values()):
            assert 0 <= cell["metric_value"] <= 1
            assert cell["drop"] == pytest.approx(result["baseline_metric"] - cell["metric_value"], abs=1e-6)
    assert any("prune" in row for row in result["layers"])
    # Channel pruning, one layer at a time, wherever the prune_channels stage can touch the layer.
    for row in result["layers"]:
        for cell in (row.get("prune_channels") or {}).values():
            assert "error" in cell or cell["drop"] == pytest.approx(result["baseline_metric"] - cell["metric_value"])
    written = json.loads((tmp_path / "out" / "sensitivity.json").read_text())
    assert written["layers"] == result["layers"]
    assert (tmp_path / "out" / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert "| layer |" in (tmp_path / "out" / "sensitivity.md").read_text()


def test_pruning_a_trained_layer_hard_costs_accuracy(tiny_cnn_path, tiny_data, tmp_path):
    result = api.sensitivity(str(tiny_cnn_path), str(tiny_data), str(tmp_path / "out"), [0.3, 0.999], [2])
    fc1 = next(r for r in result["layers"] if r["name"] == "fc1")
    assert fc1["prune"]["0.3"]["drop"] < fc1["prune"]["0.999"]["drop"]
    # Channel pruning: 30 % of fc1's units is measured; 99.9 % would remove every unit and is refused.
    channels = fc1["prune_channels"]
    assert 0 <= channels["0.3"]["metric_value"] <= 1
    assert "every" in channels["0.999"]["error"] or channels["0.3"]["drop"] <= channels["0.999"]["drop"]
    assert result["baseline_metric"] > 0.9


@pytest.mark.unit
def test_table_shows_drops_in_points_for_the_cli_and_the_markdown_alike():
    from compressctl.search.sensitivity import render_markdown, table

    cell = lambda drop: {"metric_value": 0.9 - drop, "drop": drop}  # noqa: E731
    result = {
        "model": "m", "metric": "accuracy", "baseline_metric": 0.9, "method": "one-shot", "levels": [0.5, 0.9],
        "clusters": [4],
        "layers": [
            {"name": "conv", "class": "Conv2D", "params": 80, "prune": {"0.5": cell(0.0), "0.9": cell(0.031)},
             "cluster": {"4": cell(-0.002)}, "prune_channels": {"0.5": cell(0.01), "0.9": {"error": "too few"}}},
            {"name": "flat", "class": "Flatten", "params": 0, "note": "no kernel to prune or cluster"},
        ],
    }  # fmt: skip
    head, rows = table(result)
    assert head == ["layer", "class", "params", "prune 0.5", "prune 0.9", "cluster 4", "channels 0.5", "channels 0.9"]
    assert rows[0] == ["conv", "Conv2D", "80", "+0.00", "+3.10", "-0.20", "+1.00", "refused"]
    assert rows[1][3] == "no kernel to prune or cluster" and len(rows[1]) == len(head)
    text = render_markdown(result)
    assert "| conv | Conv2D | 80 | +0.00 | +3.10 | -0.20 | +1.00 | refused |" in text
