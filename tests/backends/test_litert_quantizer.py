"""The LiteRT Quantizer backend on the tiny CNN: each scheme's weights, overrides, and crash isolation."""

import sys

import pytest

from compressctl import api
from compressctl.backends import litert_quantizer
from compressctl.litert.compat import read_operators
from compressctl.litert.interpreter import load_interpreter
from tests.conftest import write_recipe
from tests.helpers.remeasure import remeasure

pytestmark = pytest.mark.slow


def weight_types(path):
    """{op output name: weight tensor type}; a weight fed by DEQUANTIZE shows the type DEQUANTIZE reads."""
    ops = read_operators(path)
    dequantized = {op["outputs"][0]: op["inputs"][0]["type"] for op in ops if op["op"] == "DEQUANTIZE"}
    out = {}
    for op in ops:
        if op["op"] in litert_quantizer.WEIGHT_OPS:
            weight = op["inputs"][1]
            out[op["outputs"][0]] = dequantized.get(weight["name"], weight["type"])
    return out


def test_schemes_quantize_the_weights_they_name(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets:
  - {{type: cpu, name: int8}}
  - {{type: cpu, name: int4, backend: litert-quantizer, mode: weight-only-int4}}
  - type: cpu
    name: blocks
    backend: litert-quantizer
    mode: dynamic-int4
    litert_quantizer: {{granularity: blockwise, block_size: 32, overrides: [{{regex: '.*fc2.*', mode: float}}]}}
  - {{type: cpu, name: a16, backend: litert-quantizer, mode: int16x8, calibration_samples: 50}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0, result.report["failed_targets"]
    report = remeasure(tmp_path / "run", tiny_data)
    art = {a["target"]: a for a in report["artifacts"]}
    assert {k: art["int8"]["quantization"][k] for k in ("backend", "scheme")} == {
        "backend": "converter",
        "scheme": "int8",
    }
    assert art["int4"]["quantization"]["backend"] == "litert-quantizer"
    assert art["int4"]["quantization"]["scheme"] == "int4 weight-only"
    run = tmp_path / "run"
    assert set(weight_types(run / "int4/model.tflite").values()) == {"INT4"}
    # Half the bits of int8 weights: the int4 file is smaller than the converter's int8 one.
    assert art["int4"]["size_bytes"] < art["int8"]["size_bytes"]
    blocks = weight_types(run / "blocks/model.tflite")
    fc2 = [name for name in blocks if "fc2" in name]
    assert fc2 and all(blocks[name] == "FLOAT32" for name in fc2)
    assert any(t == "INT4" for name, t in blocks.items() if "fc1" in name)
    floats = art["blocks"]["quantization"]["float_ops"]
    assert {"op": "FULLY_CONNECTED", "reason": "override: float"}.items() <= floats[-1].items() or any(
        f["reason"] == "override: float" and "fc2" in f["name"] for f in floats
    )
    # Static int16 activations: the quantizer makes the model's input int16 too (evaluation quantizes it).
    a16 = load_interpreter(run / "a16/model.tflite")
    assert a16.get_input_details()[0]["dtype"].__name__ == "int16"
    assert art["a16"]["input_dtype"] == "int16"
    for a in report["artifacts"]:
        assert a["metric_delta"] > -0.2, a["target"]
        assert a["runtime"]["ops"] and a["runtime"]["checked"][0]["loads"] is True
        # Layer-wise error for every quantized artifact, whichever backend wrote it (worst first).
        errors = a["quantization"]["layer_errors"]
        assert errors and [e["snr_db"] for e in errors] == sorted(e["snr_db"] for e in errors), a["target"]
    assert any(e["op"] == "FULLY_CONNECTED" and e["snr_db"] < 200 for e in art["int4"]["quantization"]["layer_errors"])
    assert art["a16"]["quantization"]["layer_errors_method"].startswith("the float32 TFLite it quantized")


def test_a_crashing_quantizer_fails_its_target_only(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    # A quantizer worker that kills itself with SIGSEGV on every request, as a native crash would.
    crash = tmp_path / "crash_worker.py"
    crash.write_text(
        "import os, signal, sys\n"
        "from compressctl.backends import litert_quantizer_worker as w\n"
        "def handle(spec):\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "sys.exit(w.serve(handle, lambda: None))\n"
    )
    monkeypatch.setattr(litert_quantizer, "WORKER", [sys.executable, str(crash)])
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
targets:
  - {{type: cpu, name: q4, backend: litert-quantizer, mode: weight-only-int4}}
  - {{type: cpu, mode: dynamic}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 3
    (failure,) = result.report["failed_targets"]
    assert failure["target"] == "q4"
    assert "the LiteRT Quantizer crashed (SIGSEGV)" in failure["error"]
    assert [a["target"] for a in result.report["artifacts"]] == ["cpu"]
    assert not (tmp_path / "run" / "q4").exists()


def test_after_stages_the_quantizer_starts_from_the_compressed_model(tmp_path, tiny_cnn_path, tiny_data):
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data: {tiny_data}
stages:
  - {{type: prune, target_sparsity: 0.6, epochs: 1}}
targets:
  - {{type: cpu, name: w8, backend: litert-quantizer, mode: weight-only-int8}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0, result.report["failed_targets"]
    # fc1's int8 weights carry the pruning: the baseline's float file has no such zeros.
    buffer = (tmp_path / "run" / "w8" / "model.tflite").read_bytes()
    model = schema.Model.GetRootAsModel(buffer, 0)
    graph = model.Subgraphs(0)
    int8 = [
        graph.Tensors(i)
        for i in range(graph.TensorsLength())
        if graph.Tensors(i).Type() == schema.TensorType.INT8 and b"fc1" in graph.Tensors(i).Name()
    ]
    (weights,) = [t for t in int8 if model.Buffers(t.Buffer()).DataLength() > 1000]
    values = model.Buffers(weights.Buffer()).DataAsNumpy().view(np.int8)
    assert np.mean(values == 0) > 0.5
