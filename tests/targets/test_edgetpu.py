"""Edge TPU target: the compiler-output parser on fixtures, the predicted op mapping, and full runs.

The fixtures follow the documented edgetpu_compiler output format (sources in
fixtures/edgetpu/README.md). The compiler itself cannot be installed here, so the compiler path
is exercised with a fake ``edgetpu_compiler`` on PATH that prints a fixture and writes the files
the real one writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from compressctl import api
from compressctl.core.errors import StageError, UserError
from compressctl.targets import edgetpu
from compressctl.targets.edgetpu import (
    AFTER_FALLBACK,
    COMPILER_NOT_FOUND,
    LIMITATION,
    MAPPED,
    NOT_SUPPORTED,
    UNSUPPORTED_TYPE,
    EdgeTpuTarget,
    check_artifact,
    compile_model,
    parse_compiler_output,
    predict_mapping,
)
from tests.conftest import REPO, write_recipe
from tests.helpers.models import convert_for_edgetpu

FIXTURES = Path(__file__).parent / "fixtures" / "edgetpu"
TINY_CNN_OPS = ["QUANTIZE", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX", "QUANTIZE"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- parser --------------------------------------------------------------------------------------


def test_parse_all_mapped_compiler_16_output():
    result = parse_compiler_output(fixture("v16_all_mapped.stdout"), fixture("v16_all_mapped.log"))
    assert result["compiled"] is True
    assert result["compiler_version"] == "16.0.384591198"
    assert result["compile_ms"] == 412
    assert result["input_model"] == "classifier.tflite"
    assert result["output_model"] == "classifier_edgetpu.tflite"
    assert result["operation_log"] == "classifier_edgetpu.log"
    assert result["subgraphs"] == 1
    assert result["on_chip_memory_used"] == "96.25KiB"
    # All mapped: the compiler prints no "will run on" counts, so they come from the table.
    assert result["counts_from"] == "table"
    assert (result["ops_total"], result["ops_on_tpu"], result["ops_on_cpu"]) == (9, 9, 0)
    assert result["table_from"] == "log"
    assert [r["operator"] for r in result["table"]][:2] == ["QUANTIZE", "CONV_2D"]
    assert {r["status"] for r in result["table"]} == {MAPPED}
    assert result["errors"] == []


def test_parse_partly_mapped_output_keeps_every_row_and_status():
    result = parse_compiler_output(fixture("v16_partial.stdout"), fixture("v16_partial.log"))
    assert result["compiled"] is True
    assert result["counts_from"] == "stdout"
    assert (result["ops_total"], result["ops_on_tpu"], result["ops_on_cpu"]) == (74, 61, 13)
    table = result["table"]
    assert len(table) == 12
    assert sum(r["count"] for r in table if r["status"] == MAPPED) == 61
    assert sum(r["count"] for r in table if r["status"] != MAPPED) == 13
    assert {r["status"] for r in table} == {MAPPED, NOT_SUPPORTED, AFTER_FALLBACK, LIMITATION, UNSUPPORTED_TYPE}
    assert {"operator": "DEQUANTIZE", "count": 2, "status": UNSUPPORTED_TYPE} in table
    # The same table printed by -s: stdout alone gives the same rows.
    assert parse_compiler_output(fixture("v16_partial.stdout"), None)["table"] == table


def test_parse_output_without_s_reads_the_table_from_the_log():
    stdout = fixture("v14_no_table.stdout")
    assert parse_compiler_output(stdout, None)["table"] == []
    result = parse_compiler_output(stdout, fixture("v14_no_table.log"))
    assert result["compiler_version"] == "14.1.317412892"
    assert result["table_from"] == "log"
    assert (result["ops_on_tpu"], result["ops_on_cpu"], result["ops_total"]) == (8, 6, 14)
    assert {"operator": "RESIZE_NEAREST_NEIGHBOR", "count": 1, "status": "Operation version not supported"} in (
        result["table"]
    )
    assert sum(r["count"] for r in result["table"]) == result["ops_total"]


def test_parse_failed_compilations():
    failed = parse_compiler_output(fixture("v16_failed.stdout"), None)
    assert failed["compiled"] is False
    assert failed["compiler_version"] == "16.0.384591198"
    assert failed["errors"][0].startswith("ERROR: Attempting to use a delegate that only supports static-sized")
    assert "Compilation failed!" in failed["errors"]
    assert failed["ops_on_tpu"] is None and failed["counts_from"] is None
    internal = parse_compiler_output(fixture("v14_internal_error.stdout"), None)
    assert internal["compiled"] is False
    assert internal["errors"] == ["Internal compiler error. Aborting!"]


# --- prediction on hand-built graphs -------------------------------------------------------------


def graph(ops, tensors, inputs=(0,), outputs=None):
    """A graph as graph_from_interpreter returns it: ops as (name, inputs, outputs)."""
    rows = [
        {"index": k, "op": name, "inputs": list(ins), "outputs": list(outs)} for k, (name, ins, outs) in enumerate(ops)
    ]
    produced = {i for _, _, outs in ops for i in outs}
    full = {}
    for index, spec in tensors.items():
        dtype, shape = spec[:2]
        t = {"name": f"t{index}", "dtype": dtype, "shape": list(shape), "shape_signature": list(shape)}
        t["constant"] = index not in produced and index not in inputs
        t["zero_point"] = 0
        if len(spec) > 2:
            t["value"] = list(spec[2])
            t["all_zero"] = not any(spec[2])
        full[index] = t
    return {"ops": rows, "tensors": full, "inputs": list(inputs), "outputs": list(outputs or [ops[-1][2][0]])}


def test_ops_after_the_first_unsupported_op_run_on_the_cpu():
    g = graph(
        [
            ("QUANTIZE", [0], [1]),
            ("CONV_2D", [1, 9, 10], [2]),
            ("LEAKY_RELU", [2], [3]),
            ("CONV_2D", [3, 9, 10], [4]),
            ("SOFTMAX", [4], [5]),
        ],
        {
            0: ("uint8", (1, 4, 4, 1)),
            1: ("int8", (1, 4, 4, 1)),
            2: ("int8", (1, 4, 4, 2)),
            3: ("int8", (1, 4, 4, 2)),
            4: ("int8", (1, 1, 1, 3)),
            5: ("int8", (1, 1, 1, 3)),
            9: ("int8", (2, 1, 1, 1)),
            10: ("int32", (2,)),
        },
    )
    mapping = predict_mapping(g)
    assert [r["status"] for r in mapping["ops"]] == [MAPPED, MAPPED, NOT_SUPPORTED, AFTER_FALLBACK, AFTER_FALLBACK]
    assert mapping["first_cpu_op"]["op"] == "LEAKY_RELU" and mapping["first_cpu_op"]["index"] == 2
    assert "not in the Edge TPU's supported operations" in mapping["ops"][2]["reason"]
    assert (mapping["ops_on_tpu"], mapping["ops_on_cpu"], mapping["ops_total"]) == (2, 3, 5)
    assert mapping["table"][:2] == [
        {"operator": "QUANTIZE", "count": 1, "status": MAPPED},
        {"operator": "CONV_2D", "count": 1, "status": MAPPED},
    ]
    assert {"operator": "CONV_2D", "count": 1, "status": AFTER_FALLBACK} in mapping["table"]


@pytest.mark.parametrize(
    ("op", "tensors", "reason"),
    [
        ("SOFTMAX", {0: ("int8", (1, 20_000)), 1: ("int8", (1, 20_000))}, "at most 16000"),
        ("SOFTMAX", {0: ("int8", (1, 4, 5)), 1: ("int8", (1, 4, 5))}, "1-D input only"),
        ("MEAN", {0: ("int8", (1, 4, 4, 6)), 2: ("int32", (1,), [3]), 1: ("int8", (1, 4, 4))}, "multiple of 4"),
        ("MEAN", {0: ("int8", (1, 4, 4, 8)), 2: ("int32", (1,), [0]), 1: ("int8", (4, 4, 8))}, "batch"),
        ("PAD", {0: ("int8", (1, 4, 8)), 2: ("int32", (3, 2), [1, 0, 1, 1, 0, 0]), 1: ("int8", (2, 6, 8))}, "batch"),
        (
            "STRIDED_SLICE",
            {
                0: ("int8", (1, 8, 8)),
                2: ("int32", (3,), [0, 0, 0]),
                3: ("int32", (3,), [1, 8, 8]),
                4: ("int32", (3,), [1, 2, 1]),
                1: ("int8", (1, 4, 8)),
            },
            "strides",
        ),
        ("FULLY_CONNECTED", {0: ("int8", (1, 4, 6)), 2: ("int8", (5, 6)), 1: ("int8", (1, 4, 5))}, "one-dimensional"),
        ("ADD", {0: ("int8", (2, 4, 4, 3)), 2: ("int8", (2, 4, 4, 3)), 1: ("int8", (2, 4, 4, 3))}, "3 innermost"),
        ("ADD", {0: ("int8", (1, 5)), 2: ("int16", (1, 5)), 1: ("int8", (1, 5))}, "int16"),
        ("CONCATENATION", {0: ("int8", (1, 4)), 2: ("int8", (1, 4), [3, 0, 0, 0]), 1: ("int8", (1, 8))}, "all zeros"),
        ("SQUEEZE", {0: ("int8", (1, 5, 1, 10)), 1: ("int8", (1, 5, 10))}, "relayout"),
    ],
)
def test_documented_limits_keep_an_op_on_the_cpu(op, tensors, reason):
    inputs = [i for i in tensors if i not in (1,)]
    mapping = predict_mapping(graph([(op, inputs, [1])], tensors))
    (row,) = mapping["ops"]
    assert row["status"] in (LIMITATION, UNSUPPORTED_TYPE)
    assert reason in row["reason"]
    assert mapping["ops_on_cpu"] == 1


def test_documented_limits_let_a_conforming_op_through():
    tensors = {0: ("int8", (1, 4, 4, 8)), 2: ("int32", (2,), [1, 2]), 1: ("int8", (1, 8))}
    assert predict_mapping(graph([("MEAN", [0, 2], [1])], tensors))["ops_on_tpu"] == 1
    zero_pad = {0: ("int8", (1, 4)), 2: ("int8", (1, 4), [0, 0, 0, 0]), 1: ("int8", (1, 8))}
    assert predict_mapping(graph([("CONCATENATION", [0, 2], [1])], zero_pad))["ops_on_tpu"] == 1
    leading = {0: ("int8", (1, 1, 5, 10)), 1: ("int8", (5, 10))}
    assert predict_mapping(graph([("SQUEEZE", [0], [1])], leading))["ops_on_tpu"] == 1


def test_artifact_check_names_what_the_compiler_would_refuse():
    good = graph([("ADD", [0, 2], [1])], {0: ("uint8", (1, 5)), 2: ("int8", (1, 5)), 1: ("uint8", (1, 5))})
    checks = check_artifact(good)
    assert checks["problems"] == [] and checks["fully_integer"] and checks["batch_1"] and checks["static_shapes"]
    bad = graph([("ADD", [0, 2], [1])], {0: ("float32", (2, 5)), 2: ("int8", (2, 5)), 1: ("int8", (2, 5))})
    bad["tensors"][1]["shape_signature"] = [-1, 5]
    problems = " | ".join(check_artifact(bad)["problems"])
    assert "float tensor" in problems and "not batch 1" in problems and "dynamic size" in problems


# --- the target's parameters ----------------------------------------------------------------------


def test_recipe_accepts_the_edgetpu_target_and_refuses_unknown_fields(tmp_path):
    recipe = api.validate(str(REPO / "recipes" / "edgetpu.yaml"))
    (target,) = recipe.targets
    assert target.type == "edgetpu" and target.io_dtype == "uint8" and target.compiler == "auto"
    (conversion,) = EdgeTpuTarget(target).conversions()
    assert (conversion.mode, conversion.io_dtype, conversion.integer_only) == ("int8", "uint8", True)
    with pytest.raises(UserError, match="fallback"):
        api.validate(str(write_recipe(tmp_path, "targets:\n  - type: edgetpu\n    fallback: dynamic\n")))
    with pytest.raises(UserError, match="io_dtype"):
        api.validate(str(write_recipe(tmp_path, "targets:\n  - type: edgetpu\n    io_dtype: float32\n", "b.yaml")))


# --- the compiler, faked -------------------------------------------------------------------------


def fake_compiler(bin_dir: Path, stdout: str, log: str | None, exit_code: int = 0, sleep: float = 0,
                  write_model: bool = True) -> Path:  # fmt: skip
    """An ``edgetpu_compiler`` that records its arguments and writes what the real one writes."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "edgetpu_compiler"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, shutil, sys, time\n"
        "args = sys.argv[1:]\n"
        f"pathlib.Path({str(bin_dir / 'argv.json')!r}).write_text(json.dumps(args))\n"
        f"time.sleep({sleep})\n"
        "out = pathlib.Path(args[args.index('-o') + 1]) if '-o' in args else pathlib.Path.cwd()\n"
        "model = pathlib.Path(args[-1])\n"
        f"log = {log!r}\n"
        "if log is not None:\n"
        "    (out / (model.stem + '_edgetpu.log')).write_text(log)\n"
        f"if {write_model!r}:\n"
        "    shutil.copyfile(model, out / (model.stem + '_edgetpu.tflite'))\n"
        f"for line in {stdout!r}.splitlines():\n"
        "    if line.startswith(('Output model: ', 'Operation log: ')):\n"
        "        key, name = line.split(': ', 1)\n"
        "        line = key + ': ' + str(out / name)\n"
        "    print(line)\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return script


@pytest.fixture()
def model_in_folder(tmp_path):
    folder = tmp_path / "edgetpu"
    folder.mkdir()
    path = folder / "model.tflite"
    path.write_bytes(b"not really a model, the fake compiler only copies it")
    return path


def test_compile_model_reads_the_compilers_result(tmp_path, model_in_folder):
    script = fake_compiler(tmp_path / "bin", fixture("tiny_cnn.stdout"), fixture("tiny_cnn.log"))
    result = compile_model(str(script), model_in_folder, model_in_folder.parent, timeout_s=60)
    assert json.loads((tmp_path / "bin" / "argv.json").read_text()) == [
        "-s",
        "-o",
        str(model_in_folder.parent),
        "model.tflite",
    ]
    assert result["compiled"] is True and result["status"] == "compiled"
    mapping = result["mapping"]
    assert mapping["source"] == "edgetpu_compiler" and mapping["compiler_version"] == "16.0.384591198"
    assert (mapping["ops_on_tpu"], mapping["ops_on_cpu"], mapping["subgraphs"]) == (5, 2, 1)
    compiled = model_in_folder.parent / "model_edgetpu.tflite"
    assert result["compiled_artifact"] == {
        "path": "edgetpu/model_edgetpu.tflite",
        "size_bytes": compiled.stat().st_size,
        "sha256": hashlib.sha256(compiled.read_bytes()).hexdigest(),
    }
    assert result["compiler"]["log"] == "edgetpu/model_edgetpu.log"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"exit_code": 1}, "compiler failed (exit status 1: ERROR: Attempting to use a delegate"),
        ({"write_model": False, "stdout": "tiny_cnn.stdout"}, "compiler failed (it wrote no model_edgetpu.tflite"),
        ({"sleep": 5}, "compiler timed out after 1 s"),
    ],
    ids=["non-zero exit", "no output model", "timeout"],
)
def test_a_compiler_failure_is_recorded_not_raised(tmp_path, model_in_folder, kwargs, status):
    stdout = fixture(kwargs.pop("stdout", "v16_failed.stdout"))
    script = fake_compiler(tmp_path / "bin", stdout, None, **kwargs)
    result = compile_model(str(script), model_in_folder, model_in_folder.parent, timeout_s=1)
    assert result["compiled"] is False
    assert result["status"].startswith(status), result["status"]
    assert result["status"].endswith("prediction only")


# --- real models (TensorFlow) ----------------------------------------------------------------------


def mapping_of(path: Path) -> dict:
    from compressctl.litert.interpreter import load_interpreter

    return predict_mapping(edgetpu.graph_from_interpreter(load_interpreter(path, xnnpack=False)))


def test_tiny_cnn_is_predicted_to_run_wholly_on_the_edge_tpu(tmp_path, tiny_cnn, tiny_data, monkeypatch):
    # int8 I/O here (the end-to-end run below covers uint8): no QUANTIZE ops at the edges.
    x = np.load(tiny_data)["x_train"][:20]
    path = convert_for_edgetpu(tiny_cnn, (8, 8, 1), x, tmp_path, io_dtype="int8")
    mapping = mapping_of(path)
    assert [row["op"] for row in mapping["ops"]] == [op for op in TINY_CNN_OPS if op != "QUANTIZE"]
    assert all(row["status"] == MAPPED for row in mapping["ops"]), mapping["ops"]
    assert (mapping["ops_on_tpu"], mapping["ops_on_cpu"], mapping["first_cpu_op"]) == (5, 0, None)

    # finish() with no compiler on PATH: the prediction is the result, and says so.
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    target = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu", io_dtype="int8"))
    extra = target.finish(path, path.parent, lambda event: None)
    record = extra["edgetpu"]
    assert record["compiled"] is False and record["status"] == COMPILER_NOT_FOUND
    assert record["predicted"] == mapping and record["mapping"] == mapping
    assert record["checks"]["input_dtype"] == "int8" and record["checks"]["problems"] == []
    assert json.loads((path.parent / "edgetpu_mapping.json").read_text()) == record

    # compiler: never leaves a compiler on PATH alone.
    bin_dir = tmp_path / "bin"
    fake_compiler(bin_dir, fixture("tiny_cnn.stdout"), fixture("tiny_cnn.log"))
    monkeypatch.setenv("PATH", str(bin_dir))
    never = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu", io_dtype="int8", compiler="never"))
    record = never.finish(path, path.parent, lambda event: None)["edgetpu"]
    assert record["status"] == edgetpu.COMPILER_SKIPPED and record["mapping"] == mapping
    assert not (bin_dir / "argv.json").exists()


def test_an_op_the_edge_tpu_lacks_sends_it_and_what_follows_to_the_cpu(tmp_path):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Conv2D(4, 3, name="conv1"),
            k.layers.LeakyReLU(0.1, name="leaky"),
            k.layers.Conv2D(4, 3, activation="relu", name="conv2"),
            k.layers.Flatten(),
            k.layers.Dense(3, activation="softmax"),
        ]
    )
    assert "LEAKY_RELU" in edgetpu.keras_layer_support(model.get_layer("leaky"))
    assert edgetpu.keras_layer_support(model.get_layer("conv2")) is True
    calibration = np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32)
    mapping = mapping_of(convert_for_edgetpu(model, (8, 8, 1), calibration, tmp_path))
    ops = [row["op"] for row in mapping["ops"]]
    cut = ops.index("LEAKY_RELU")
    assert ops[:cut] == ["QUANTIZE", "CONV_2D"]
    assert [row["status"] for row in mapping["ops"][:cut]] == [MAPPED, MAPPED]
    assert mapping["ops"][cut]["status"] == NOT_SUPPORTED
    assert {row["status"] for row in mapping["ops"][cut + 1 :]} == {AFTER_FALLBACK}
    assert mapping["first_cpu_op"]["op"] == "LEAKY_RELU"
    assert (mapping["ops_on_tpu"], mapping["ops_on_cpu"]) == (2, len(ops) - 2)


def test_an_int8_lstm_keeps_int16_state_and_falls_back(tmp_path):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [k.layers.Input((6, 4)), k.layers.LSTM(5, name="lstm"), k.layers.Dense(3, activation="softmax")]
    )
    assert isinstance(edgetpu.keras_layer_support(model.get_layer("lstm")), str)
    calibration = np.random.default_rng(0).random((10, 6, 4), dtype=np.float32)
    path = convert_for_edgetpu(model, (6, 4), calibration, tmp_path)
    from compressctl.litert.interpreter import load_interpreter

    g = edgetpu.graph_from_interpreter(load_interpreter(path, xnnpack=False))
    checks = check_artifact(g)
    assert checks["problems"] == [] and "int16" in checks["warnings"][0]
    mapping = predict_mapping(g)
    assert mapping["first_cpu_op"]["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert mapping["first_cpu_op"]["status"] == UNSUPPORTED_TYPE
    assert mapping["ops_on_tpu"] == 1  # the input QUANTIZE only


def test_keras_layer_rules(tiny_cnn):
    from compressctl.core.env import keras

    k = keras()
    assert [edgetpu.keras_layer_support(layer) for layer in tiny_cnn.layers] == [True, True, True, True]
    assert "GRU" in edgetpu.keras_layer_support(k.layers.GRU(4))
    assert edgetpu.keras_layer_support(k.layers.Lambda(lambda t: t)).startswith("unknown")
    assert "gelu" in edgetpu.keras_layer_support(k.layers.Dense(4, activation="gelu"))
    assert "dilation" in edgetpu.keras_layer_support(k.layers.Conv2D(4, 3, dilation_rate=(1, 2)))
    shared = k.Sequential([k.layers.Input((4, 4, 3)), k.layers.PReLU(shared_axes=[1, 2])])
    assert edgetpu.keras_layer_support(shared.layers[0]) is True
    per_pixel = k.Sequential([k.layers.Input((4, 4, 3)), k.layers.PReLU()])
    assert "shared_axes" in edgetpu.keras_layer_support(per_pixel.layers[0])


# --- full runs -------------------------------------------------------------------------------------


def fully_integer_batch_1(path: Path) -> None:
    from compressctl.litert.interpreter import load_interpreter

    interpreter = load_interpreter(path, xnnpack=False)
    g = edgetpu.graph_from_interpreter(interpreter)
    for index, t in g["tensors"].items():
        assert t["dtype"] in ("int8", "uint8") or (t["dtype"] == "int32" and t["constant"]), (index, t)
        assert -1 not in t["shape_signature"]
    for detail in interpreter.get_input_details() + interpreter.get_output_details():
        assert detail["dtype"] == np.uint8 and detail["shape"][0] == 1


@pytest.mark.slow
def test_bundled_edgetpu_recipe_without_a_compiler(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    out = tmp_path / "run"
    result = api.run(
        str(REPO / "recipes" / "edgetpu.yaml"),
        ["bench.runs=10", "bench.warmup=2", "bench.rounds=2", "targets.0.calibration_samples=50",
         "gates.min_compression_ratio=1.5", "gates.max_metric_drop=0.2"],
        model=str(tiny_cnn_path), data=str(tiny_data), out=str(out),
    )  # fmt: skip
    assert result.exit_code == 0, (result.report["failed_targets"], result.report["gates"])
    (artifact,) = result.report["artifacts"]
    assert artifact["type"] == "edgetpu" and artifact["conversion"] == "full int8 (Edge TPU)"
    assert artifact["fallback"] is None
    assert (artifact["input_dtype"], artifact["output_dtype"]) == ("uint8", "uint8")
    fully_integer_batch_1(out / artifact["path"])
    record = artifact["edgetpu"]
    assert record["compiled"] is False and record["status"] == COMPILER_NOT_FOUND
    assert record["mapping"]["source"] == "prediction"
    assert record["predicted"]["ops_total"] == record["predicted"]["ops_on_tpu"] + record["predicted"]["ops_on_cpu"]
    assert set(artifact["ops"]) == {row["op"] for row in record["predicted"]["ops"]}
    assert json.loads((out / record["mapping_file"]).read_text()) == record
    assert not (out / "edgetpu" / "model_edgetpu.tflite").exists()
    assert math.isfinite(artifact["metric_value"])


@pytest.mark.slow
def test_a_compiler_on_path_replaces_the_prediction(tmp_path, tiny_cnn_path, tiny_data, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_compiler(bin_dir, fixture("tiny_cnn.stdout"), fixture("tiny_cnn.log"))
    monkeypatch.setenv("PATH", str(bin_dir))
    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {tiny_data}\n"
        "targets:\n  - type: edgetpu\n    calibration_samples: 50\n"
        "bench: {runs: 10, warmup: 2, rounds: 2}\n",
    )
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == 0, result.report["failed_targets"]
    (artifact,) = result.report["artifacts"]
    record = artifact["edgetpu"]
    args = json.loads((bin_dir / "argv.json").read_text())
    assert args[0] == "-s" and args[1] == "-o" and args[-1] == "model.tflite"
    assert record["compiled"] is True and record["status"] == "compiled"
    # The compiler's (fixture) figures, not the prediction's, are the mapping now.
    assert record["mapping"]["source"] == "edgetpu_compiler"
    assert (record["mapping"]["ops_on_tpu"], record["mapping"]["ops_on_cpu"]) == (5, 2)
    assert (record["predicted"]["ops_on_tpu"], record["predicted"]["ops_on_cpu"]) == (7, 0)
    assert {"operator": "SOFTMAX", "count": 1, "status": LIMITATION} in record["mapping"]["table"]
    compiled = out / record["compiled_artifact"]["path"]
    assert record["compiled_artifact"]["path"] == "edgetpu/model_edgetpu.tflite"
    assert record["compiled_artifact"]["sha256"] == hashlib.sha256(compiled.read_bytes()).hexdigest()
    assert record["compiled_artifact"]["size_bytes"] == compiled.stat().st_size
    assert (out / record["compiler"]["log"]).read_text() == fixture("tiny_cnn.log")
    assert json.loads((out / "edgetpu" / "edgetpu_mapping.json").read_text()) == record


def test_finish_refuses_an_artifact_that_is_not_fully_integer(tmp_path, monkeypatch):
    # A float graph as the interpreter would show it: the target must not call it an Edge TPU model.
    float_graph = graph(
        [("ADD", [0, 2], [1])], {0: ("float32", (1, 5)), 2: ("float32", (1, 5)), 1: ("float32", (1, 5))}
    )
    monkeypatch.setattr(edgetpu, "graph_from_interpreter", lambda interpreter: float_graph)
    monkeypatch.setattr("compressctl.litert.interpreter.load_interpreter", lambda path, xnnpack=True: None)
    target = EdgeTpuTarget(EdgeTpuTarget.Params(type="edgetpu"))
    with pytest.raises(StageError, match="not fully integer"):
        target.finish(tmp_path / "model.tflite", tmp_path, lambda event: None)
    assert not (tmp_path / "edgetpu_mapping.json").exists()


def test_an_op_version_newer_than_the_compilers_tflite_stays_on_the_cpu():
    tensors = {0: ("int8", (1, 16)), 2: ("int8", (4, 16)), 1: ("int8", (1, 4))}
    old = graph([("FULLY_CONNECTED", [0, 2], [1])], tensors)
    edgetpu.add_op_versions(old, [{"op": "FULLY_CONNECTED", "version": 4, "outputs": [], "inputs": []}])
    assert old["ops"][0]["version"] == 4 and predict_mapping(old)["ops_on_tpu"] == 1
    new = graph([("FULLY_CONNECTED", [0, 2], [1])], tensors)
    edgetpu.add_op_versions(new, [{"op": "FULLY_CONNECTED", "version": 10, "outputs": [], "inputs": []}])
    (row,) = predict_mapping(new)["ops"]
    assert row["status"] == NOT_SUPPORTED
    assert row["reason"] == (
        "FULLY_CONNECTED version 10 needs TFLite 2.11.0; edgetpu_compiler 16 reads op versions up to TFLite 2.5.0"
    )
