"""Layer-wise quantization error: in the conversion worker (QuantizationDebugger) and in `eval --layers`."""

import json
import subprocess
import sys

import numpy as np
import pytest

from compressctl.litert.quant_debug import float_ops, format_table, weight_precision
from tests.conftest import REPO, quadrant_data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_cnn_path):
    """A run-directory layout: the float32 baseline and a full-int8 artifact with its layer errors."""
    from compressctl.backends.convert import Converter

    root = tmp_path_factory.mktemp("run")
    (root / "baseline").mkdir()
    (root / "cpu").mkdir()
    calibration = quadrant_data()["x_train"][:64]
    with Converter() as converter:
        converter.convert(tiny_cnn_path, root / "baseline" / "model_float32.tflite", "float32", root / "work")
        converter.convert(
            tiny_cnn_path, root / "cpu" / "model.tflite", "int8", root / "work",
            calibration=calibration, quantization={"layer_errors": True},
        )  # fmt: skip
        full = converter.last_answer["quantization"]["layer_errors"]
        worst = full[0]["name"]
        converter.convert(
            tiny_cnn_path, root / "cpu_float" / "model.tflite", "int8", root / "work",
            calibration=calibration, quantization={"layer_errors": True, "float_nodes": [worst]},
        ) if (root / "cpu_float").mkdir() is None else None  # fmt: skip
        kept = converter.last_answer["quantization"]["layer_errors"]
    return root, full, kept, worst


def test_worker_measures_every_quantized_op_worst_first(tiny_run):
    _, full, _, _ = tiny_run
    assert {row["op"] for row in full} >= {"CONV_2D", "FULLY_CONNECTED"}
    snrs = [row["snr_db"] for row in full]
    assert snrs == sorted(snrs)
    arithmetic = [row for row in full if row["op"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert all(0 < row["snr_db"] < 200 and row["rmse"] > 0 for row in arithmetic)  # a real, finite error


def test_a_denylisted_op_is_float_in_the_artifact_and_leaves_the_table(tiny_run):
    root, full, kept, worst = tiny_run
    assert worst not in {row["name"] for row in kept}
    assert len(kept) == len(full) - 1
    floats = float_ops(root / "cpu_float" / "model.tflite", {worst: "kept on purpose"})
    assert [row["reason"] for row in floats if row["reason"] == "kept on purpose"]
    # The plain int8 artifact computes nothing in float (QUANTIZE/DEQUANTIZE are transit only).
    assert float_ops(root / "cpu" / "model.tflite") == []
    dtypes = {w["dtype"] for w in weight_precision(root / "cpu" / "model.tflite")}
    assert "int8" in dtypes and "float32" not in dtypes


def test_eval_layers_prints_the_table_and_needs_a_baseline(tiny_run, tiny_data, tmp_path):
    root, _, _, _ = tiny_run
    cmd = [sys.executable, "-m", "compressctl", "eval", str(root / "cpu" / "model.tflite"), "--data", str(tiny_data)]
    result = subprocess.run([*cmd, "--layers", "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["layers"]
    assert info["baseline"].endswith("baseline/model_float32.tflite")
    rows = info["layer_errors"]
    assert rows and {r["op"] for r in rows} & {"CONV_2D", "FULLY_CONNECTED"}
    assert [r["snr_db"] for r in rows] == sorted(r["snr_db"] for r in rows)
    lonely = tmp_path / "model.tflite"
    lonely.write_bytes((root / "cpu" / "model.tflite").read_bytes())
    missing = subprocess.run(
        [*cmd[:4], str(lonely), "--data", str(tiny_data), "--layers"], capture_output=True, text=True, cwd=REPO
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "--baseline" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_format_table_aligns_columns():
    lines = format_table([{"name": "conv", "op": "CONV_2D", "snr_db": 31.5, "rmse": 0.0123}])
    assert lines[0].split() == ["layer", "op", "SNR", "dB", "RMSE"]
    assert lines[1].split() == ["conv", "CONV_2D", "31.50", "0.0123"]
    assert np.isfinite(31.5)


def test_a_dynamic_artifact_hardly_smaller_names_the_float_weights_and_why(tiny_cnn_path, tmp_path):
    # The tiny CNN's kernels all hold under 1,024 values: the converter's dynamic-range pass keeps them float.
    from compressctl.backends.convert import Converter
    from compressctl.litert.quant_debug import float_weight_summary, not_smaller_note

    path = tmp_path / "dynamic.tflite"
    with Converter() as converter:
        converter.convert(tiny_cnn_path, path, "dynamic", tmp_path / "work")
    share, summary = float_weight_summary(path, "dynamic")
    assert 0 < share < 1  # fc1 (9,216 values) is int8; conv and fc2 stay float
    assert "skips tensors under 1,024" in summary
    note = not_smaller_note(path, 1.02, "dynamic-range int8")
    assert note.startswith("dynamic-range int8 artifact only 1.02× smaller than float32:")
    assert "stayed float32" in note
    assert not_smaller_note(path, 1.6, "dynamic-range int8") is None
