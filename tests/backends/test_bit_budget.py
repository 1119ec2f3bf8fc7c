"""The LiteRT Quantizer's int4 within a metric budget: the ops whose int4 weights err most go to 8 bits."""

import numpy as np
import pytest

from compressctl import api
from compressctl.litert.compat import read_operators
from compressctl.litert.weight_error import weight_errors
from tests.conftest import write_recipe

pytestmark = pytest.mark.slow


def weight_types(path):
    ops = read_operators(path)
    dequantized = {op["outputs"][0]: op["inputs"][0]["type"] for op in ops if op["op"] == "DEQUANTIZE"}
    return {
        op["outputs"][0]: dequantized.get(op["inputs"][1]["name"], op["inputs"][1]["type"])
        for op in ops
        if op["op"] in ("FULLY_CONNECTED", "CONV_2D")
    }


@pytest.fixture
def outlier_cnn(tmp_path, tiny_cnn):
    """The tiny CNN with conv channel 0 dead (ReLU of -1) and 30× outliers in fc1 at every input that dead
    channel feeds (one in 8, so in every block of 32 too): the float model ignores them, int4 (7 levels a
    side) rounds every other fc1 weight to zero, 8 bits (127 levels) keep them."""
    conv, fc1 = tiny_cnn.get_layer("conv"), tiny_cnn.get_layer("fc1")
    kernel, bias = conv.get_weights()
    kernel[..., 0], bias[0] = 0, -1
    conv.set_weights([kernel, bias])
    weights, fc_bias = fc1.get_weights()
    weights[0::8, :] = 30 * np.abs(weights).max(axis=0)  # flatten order (row, column, channel): channel 0
    fc1.set_weights([weights, fc_bias])
    path = tmp_path / "outlier_cnn"
    tiny_cnn.save(str(path), save_format="tf")
    return path


@pytest.mark.parametrize(
    ("mode", "options", "scheme", "eight"),
    [
        ("weight-only-int4", "{}", "int4 weight-only", "weight-only-int8"),
        # Blocks are the quantizer's for dynamic int4 only: the ops kept at 8 bits get channelwise int8.
        ("dynamic-int4", "{granularity: blockwise, block_size: 32}", "dynamic int4", "dynamic"),
    ],
    ids=["channelwise", "blockwise"],
)
def test_int4_over_budget_keeps_its_worst_ops_at_8_bits(tmp_path, outlier_cnn, tiny_data, mode, options, scheme, eight):
    recipe = write_recipe(
        tmp_path,
        f"""
model: {outlier_cnn}
data: {tiny_data}
targets:
  - type: cpu
    name: int4
    backend: litert-quantizer
    mode: {mode}
    litert_quantizer: {options}
    max_metric_drop: 0.02
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0, result.report["failed_targets"]
    (artifact,) = result.report["artifacts"]
    chosen = artifact["quantization"]["selective"]
    assert chosen["scheme"] == scheme and chosen["kept_as"] == f"8 bits ({eight})"
    assert "it quantized" in chosen["checked_on"]
    assert chosen["full_int8"]["metric_drop"] > 0.02  # the full int4 file was over budget
    assert chosen["within_budget"] and chosen["steps"][-1]["metric_drop"] <= 0.02
    kept = [op["name"] for op in chosen["kept_in_float"]]
    assert kept and "fc1" in kept[0]  # ranked first by its weights' int4 error
    types = weight_types(tmp_path / "run" / "int4" / "model.tflite")
    assert {name: t for name, t in types.items() if name in kept} == dict.fromkeys(kept, "INT8")
    assert "INT4" in {t for name, t in types.items() if name not in kept}
    assert any("8 bits" in note for note in artifact["notes"])
    storage = {e["encoding"] for e in artifact["storage"]}
    assert {"int4", "int8"} <= storage
    assert chosen["size_cost_bytes"] > 0
    assert chosen["steps"][-1]["size_bytes"] == (tmp_path / "run" / "int4" / "model.tflite").stat().st_size


def test_weight_errors_read_int4_weights_back(tmp_path, tiny_cnn_path, tiny_data):
    """The int4 weights read back from the file match the float ones to within half a step of their grid."""
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets:
  - {{type: cpu, name: int4, backend: litert-quantizer, mode: dynamic-int4}}
  - {{type: cpu, name: int8, backend: litert-quantizer, mode: weight-only-int8}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0, result.report["failed_targets"]
    run = tmp_path / "run"
    four = weight_errors(run / "baseline/model_float32.tflite", run / "int4/model.tflite")
    eight = weight_errors(run / "baseline/model_float32.tflite", run / "int8/model.tflite")
    assert {r["op"] for r in four} == {"CONV_2D", "FULLY_CONNECTED"} and len(four) == 3
    # A uniform grid's error: about 6 dB per bit, so int8 beats int4 by some 20 dB on every op.
    by_name = {r["name"]: r["snr_db"] for r in eight}
    for row in four:
        assert 8 < row["snr_db"] < 40
        assert by_name[row["name"]] > row["snr_db"] + 15
