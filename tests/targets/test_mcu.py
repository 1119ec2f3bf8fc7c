"""Microcontroller target: budgets and helpers, then whole runs measured in the real TFLM interpreter.

The runs convert tiny models and check what the target wrote against the files themselves: the arena
against fresh TFLM interpreters (allocating at arena_bytes, failing 16 bytes below), the C array
compiled with the host C++ compiler against the .tflite's bytes, the metric against TFLM's outputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from compressctl import api
from compressctl.core.errors import EXIT_STAGE_FAILED
from compressctl.litert import tflm
from compressctl.targets.mcu import McuTarget, parse_bytes
from tests.conftest import cli, write_recipe

# --- budgets and helpers (no TensorFlow) ------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("given", "expected"),
    [(262144, 262144), ("256 KB", 262144), ("256KiB", 262144), ("2 MB", 2 * 1024**2), ("100 B", 100), ("1.5k", 1536)],
)
def test_budgets_are_bytes_or_sizes_with_a_unit(given, expected):
    assert parse_bytes(given) == expected
    params = McuTarget.Params(type="mcu", flash_budget=given, arena_budget=given)
    assert (params.flash_budget, params.arena_budget) == (expected, expected)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("256 ms", "not in a unit of bytes"),
        ("256 Kb", "in bits"),
        (-4096, "positive"),
        ("-1 KB", "positive"),
        (0, "positive"),
        ("lots", "not a size"),
        ("0.5 B", "whole number"),
    ],
)
def test_a_budget_in_another_unit_or_negative_is_refused(given, why):
    with pytest.raises(ValidationError, match=why):
        McuTarget.Params(type="mcu", arena_budget=given)


BAD_BUDGETS = {
    "flash_budget_in_milliseconds": (
        "model: m\ntargets:\n  - type: mcu\n    flash_budget: 256 ms\n",
        "{path}:4:19 targets[0].flash_budget: '256 ms' is not in a unit of bytes; give bytes (262144) or a size with "
        "a unit: B, KB/KiB, MB/MiB (256 KB; K and M count 1,024 as microcontroller datasheets do)",
    ),
    "arena_budget_in_kilobits": (
        "model: m\ntargets:\n  - type: mcu\n    arena_budget: 64 Kb\n",
        "{path}:4:19 targets[0].arena_budget: '64 Kb' is in bits (Kb); give bytes (262144) or a size with a unit: "
        "B, KB/KiB, MB/MiB (256 KB; K and M count 1,024 as microcontroller datasheets do)",
    ),
    "negative_arena_budget": (
        "model: m\ntargets:\n  - type: mcu\n    arena_budget: -4096\n",
        "{path}:4:19 targets[0].arena_budget: must be a positive size, not -4096",
    ),
    "negative_flash_gate": (
        "model: m\ntargets:\n  - type: mcu\ngates:\n  max_flash_bytes: -1\n",
        "{path}:5:20 gates.max_flash_bytes: must be >= 1",
    ),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", sorted(BAD_BUDGETS), ids=sorted(BAD_BUDGETS))
def test_a_bad_budget_is_one_line_naming_file_line_and_field(case, tmp_path):
    from compressctl.core.errors import UserError
    from compressctl.recipe.schema import load_recipe

    text, expected = BAD_BUDGETS[case]
    path = write_recipe(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_recipe(path)
    assert str(info.value).splitlines() == [expected.format(path=path)]


@pytest.mark.unit
def test_validate_exits_2_on_a_budget_in_the_wrong_unit(tmp_path):
    path = write_recipe(tmp_path, BAD_BUDGETS["flash_budget_in_milliseconds"][0])
    done = cli("validate", path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: " + BAD_BUDGETS["flash_budget_in_milliseconds"][1].format(path=path)
    ]


@pytest.mark.unit
def test_resolver_methods_and_registered_ops():
    assert tflm.resolver_method("CONV_2D") == "AddConv2D"
    assert tflm.resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert tflm.resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert tflm.resolver_method("MAX_POOL_2D") == "AddMaxPool2D"
    assert tflm.resolver_method("CUSTOM:TFLM_DECODE") == "AddDecode"  # the lookup tables' DECODE
    assert tflm.missing_ops([{"op": "CUSTOM:TFLM_DECODE", "version": 1, "layer": "fc1"}]) == []
    registered = tflm.registered_ops()
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE", "QUANTIZE"} <= registered
    assert "GELU" not in registered  # this TFLM has no GELU kernel (the failing-op run below relies on it)
    assert not any(name.startswith(("DELAY", "FRAMER")) for name in registered)  # signal ops are custom, not builtin


@pytest.mark.unit
def test_missing_ops_name_the_op_and_its_layer():
    ops = [{"op": "CONV_2D", "version": 3, "layer": "conv"}, {"op": "GELU", "version": 2, "layer": "fc1"}]
    assert tflm.missing_ops(ops) == [{"op": "GELU", "version": 2, "layer": "fc1"}]


# --- whole runs --------------------------------------------------------------------------------------


def _in_tflm(code: str) -> str:
    """Run ``code`` with the TFLM interpreter in a child process (a crash must not take pytest with it)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


RECIPE = """
name: tiny-mcu
model: {model}
data: {data}
targets:
  - type: mcu
    calibration_samples: 64
{extra}
bench: {{runs: 5, warmup: 1, rounds: 1, threads: 1}}
"""


@pytest.mark.slow
def test_mcu_run_is_measured_in_tflm_and_ships_an_array_that_compiles(tmp_path, tiny_cnn_path, tiny_data):
    gates = "gates:\n  max_flash_bytes: 1000000\n  max_arena_bytes: 8"
    recipe = write_recipe(tmp_path, RECIPE.format(model=tiny_cnn_path, data=tiny_data, extra=gates))
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    report = json.loads((out / "report.json").read_text())
    (artifact,) = report["artifacts"]
    mcu, tflite = artifact["mcu"], out / "mcu" / "model.tflite"
    assert artifact["input_dtype"] == artifact["output_dtype"] == "int8"
    assert mcu["runtime"] == tflm.version() and "tflite-micro" in mcu["metric_runtime"]
    assert mcu["host_latency_ms"] > 0  # timed in TFLM on this host, labelled as such
    assert mcu["flash_bytes"] == tflite.stat().st_size == artifact["size_bytes"]
    assert [op["op"] for op in mcu["ops"]] == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]

    # The arena: the smallest multiple of 16 that allocates, checked on fresh interpreters.
    arena = mcu["arena_bytes"]
    assert arena % 16 == 0 and 0 < arena < 64 * 1024
    assert _allocates(tflite, arena, arena - 16) == [True, False]

    # The metric is TFLM's on the test split: recomputed from TFLM's own outputs here.
    data = np.load(tiny_data)
    np.save(tmp_path / "x.npy", data["x_test"])
    outputs = _tflm_outputs(tflite, tmp_path / "x.npy", arena, tmp_path / "y.npy")
    accuracy = float(np.mean(np.argmax(outputs, axis=1) == data["y_test"]))
    assert artifact["metric_value"] == pytest.approx(accuracy, abs=1e-9)
    assert accuracy > 0.8

    # The gates read the measured figures: flash passes, an 8-byte arena cannot.
    gates = {g["name"]: g for g in report["gates"]}
    assert gates["max_flash_bytes"]["value"] == mcu["flash_bytes"] and gates["max_flash_bytes"]["passed"]
    assert gates["max_arena_bytes"]["value"] == arena and not gates["max_arena_bytes"]["passed"]
    assert result.exit_code == 1
    markdown = (out / "report.md").read_text()
    assert f"{mcu['flash_bytes']:,} bytes of flash" in markdown and f"{arena:,}-byte tensor arena" in markdown
    assert f"{arena:,}-byte tensor arena" in (out / "report.html").read_text()
    assert "ms per inference in TFLM on this host (not a device figure)" in markdown

    # compare shows the two figures beside the others.
    compared = cli("compare", out)
    assert compared.returncode == 0, compared.stderr
    header = next(line for line in compared.stdout.splitlines() if line.split()[:2] == ["run", "target"])
    assert header.split()[-3:] == ["flash", "arena", "Pareto"]
    row = next(line for line in compared.stdout.splitlines() if " mcu " in f" {line} ")
    assert f"{mcu['flash_bytes']:,}" in row.split() and f"{arena:,}" in row.split()

    # The files to ship: the array compiled with the host compiler holds exactly the .tflite's bytes.
    assert mcu["files"] == ["mcu/model_data.cc", "mcu/model_data.h", "mcu/op_resolver.h"]
    header = (out / "mcu" / "model_data.h").read_text()
    assert "extern const unsigned char g_tiny_mcu_model_data[];" in header
    resolver = (out / "mcu" / "op_resolver.h").read_text()
    assert "tflite::MicroMutableOpResolver<4>" in resolver
    assert sorted(line.split(".")[1].split("(")[0] for line in resolver.splitlines() if "resolver.Add" in line) == [
        "AddConv2D",
        "AddFullyConnected",
        "AddReshape",
        "AddSoftmax",
    ]
    dumped, offset = _compiled_array(out / "mcu", tmp_path, "tiny_mcu")
    assert dumped == tflite.read_bytes()
    assert offset == 0  # the array sits on a 16-byte boundary


def _compiled_array(folder: Path, tmp_path: Path, name: str) -> tuple[bytes, int]:
    """``folder``'s model_data.cc compiled with the host C++ compiler: the array's bytes and its address % 16."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no host C++ compiler")
    array = f"g_{name}_model_data"
    source = tmp_path / f"dump_{folder.name}.cc"
    source.write_text(
        '#include <cstdio>\n#include <cstdint>\n#include "model_data.h"\n'
        "int main() {\n"
        f'  std::fprintf(stderr, "%u\\n", (unsigned)(reinterpret_cast<std::uintptr_t>({array}) % 16));\n'
        f"  std::fwrite({array}, 1, {array}_len, stdout);\n"
        "  return 0;\n}\n"
    )
    binary = tmp_path / f"dump_{folder.name}"
    subprocess.run(
        [compiler, "-std=c++17", "-Wall", "-Werror", "-I", str(folder), str(source), str(folder / "model_data.cc"),
         "-o", str(binary)],
        check=True, timeout=300,
    )  # fmt: skip
    dumped = subprocess.run([str(binary)], capture_output=True, check=True, timeout=60)
    return dumped.stdout, int(dumped.stderr.strip())


def _allocates(tflite: Path, *arenas: int) -> list[bool]:
    """Whether a fresh TFLM interpreter allocates ``tflite`` in each arena (in a child process)."""
    probe = (
        "from tflite_micro.python.tflite_micro import runtime\n"
        f"model = open({str(tflite)!r}, 'rb').read()\n"
        "def ok(n):\n"
        "    try:\n        runtime.Interpreter.from_bytes(model, arena_size=n)\n"
        "    except RuntimeError:\n        return False\n"
        "    return True\n"
        f"print(*[ok(n) for n in {list(arenas)}])\n"
    )
    return [word == "True" for word in _in_tflm(probe).split()[-len(arenas) :]]


def _tflm_outputs(tflite: Path, x_path: Path, arena: int, out: Path) -> np.ndarray:
    _in_tflm(
        "import numpy as np\nfrom compressctl.litert import tflm\n"
        f"y = tflm.predict(open({str(tflite)!r}, 'rb').read(), np.load({str(x_path)!r}), {arena})\n"
        f"np.save({str(out)!r}, y)\n"
    )
    return np.load(out)


@pytest.mark.slow
def test_clustered_weights_are_stored_as_lookup_tables_with_identical_outputs(tmp_path, tiny_cnn_path, tiny_data):
    text = RECIPE.format(model=tiny_cnn_path, data=tiny_data, extra="").replace(
        "targets:", "stages:\n  - type: cluster\n    number_of_clusters: 8\n    epochs: 1\ntargets:"
    )
    recipe = write_recipe(tmp_path, text)
    out = tmp_path / "run"
    api.run(str(recipe), out=str(out))
    (artifact,) = json.loads((out / "report.json").read_text())["artifacts"]
    mcu = artifact["mcu"]
    dense, lut = out / "mcu" / "model.tflite", out / "mcu" / "lut" / "model.tflite"
    assert mcu["lut"], "the clustered kernels fit in 3 bits"
    assert all(1 <= row["bits"] <= 3 and row["bytes_after"] < row["bytes_before"] for row in mcu["lut"])
    assert any(row["granularity"].startswith("per-channel") for row in mcu["lut"])  # the conv kernel's
    model = mcu["lut_model"]
    assert model["path"] == "mcu/lut/model.tflite" and model["flash_bytes"] == lut.stat().st_size
    # Its storage, read from the file: the encoded tensors under lut<bits>, adding up to its flash.
    by_encoding = {e["encoding"]: e for e in model["storage"]}
    assert sum(e["bytes"] for e in model["storage"]) + model["other_bytes"] == model["flash_bytes"]
    assert {f"lut{row['bits']}" for row in mcu["lut"]} == {e for e in by_encoding if e.startswith("lut")}
    assert sum(by_encoding[f"lut{b}"]["tensors"] for b in {r["bits"] for r in mcu["lut"]}) == len(mcu["lut"])
    assert all(e["bytes"] < e["params"] for k, e in by_encoding.items() if k.startswith("lut"))  # < 1 byte each
    assert lut.stat().st_size < mcu["flash_bytes"] == dense.stat().st_size
    assert mcu["decode_arena_bytes"] == model["arena_bytes"] - mcu["arena_bytes"] > 0  # DECODE's output
    assert _allocates(lut, model["arena_bytes"], model["arena_bytes"] - 16) == [True, False]
    # Lossless: TFLM gives the same outputs on the whole test split with or without the tables.
    data = np.load(tiny_data)
    np.save(tmp_path / "x.npy", data["x_test"])
    with_tables = _tflm_outputs(lut, tmp_path / "x.npy", model["arena_bytes"], tmp_path / "lut.npy")
    without = _tflm_outputs(dense, tmp_path / "x.npy", mcu["arena_bytes"], tmp_path / "dense.npy")
    assert np.array_equal(with_tables, without)
    assert "AddDecode()" in (out / "mcu" / "lut" / "op_resolver.h").read_text()
    # A table of the other granularity runs without error and decodes wrong values: it is refused.
    flipped = _in_tflm(
        "import json, math\nimport numpy as np\nfrom compressctl.litert import tflm\n"
        f"model = open({str(dense)!r}, 'rb').read()\n"
        "row = next(r for r in tflm.lut_candidates(model) if r['axis'] is not None)\n"
        "row = {**row, 'axis': None, 'granularity': 'per-tensor', 'bits': 7}\n"
        f"print(json.dumps(tflm.lut_one(model, row, {mcu['arena_bytes']}, np.load({str(tmp_path / 'x.npy')!r}))))\n"
    )
    assert json.loads(flipped.splitlines()[-1]) == {"kept": False, "why": "the outputs change"}
    assert model["files"] == ["mcu/lut/model_data.cc", "mcu/lut/model_data.h", "mcu/lut/op_resolver.h"]
    dumped, offset = _compiled_array(out / "mcu" / "lut", tmp_path, "tiny_mcu")
    assert dumped == lut.read_bytes() and offset == 0
    assert "with lookup tables" in (out / "report.md").read_text()

    # lut: off writes the int8 model only.
    off = tmp_path / "off"
    api.run(str(recipe), ["targets.0.lut=off"], out=str(off))
    (artifact,) = json.loads((off / "report.json").read_text())["artifacts"]
    assert "lut" not in artifact["mcu"] and not (off / "mcu" / "lut").exists()


@pytest.mark.slow
def test_a_budget_the_model_cannot_fit_fails_the_target_with_one_line(tmp_path, tiny_cnn_path, tiny_data):
    extra = "    flash_budget: 1 KB"
    recipe = write_recipe(tmp_path, RECIPE.format(model=tiny_cnn_path, data=tiny_data, extra=extra))
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == EXIT_STAGE_FAILED
    (failed,) = result.record.failed_targets
    assert "flash_bytes" in failed.error and "over flash_budget 1,024 bytes" in failed.error
    assert "\n" not in failed.error
    assert not (out / "mcu").exists()  # nothing half-written


def _gelu_model(path: Path) -> Path:
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(16, name="fc1"),
            k.layers.Activation("gelu", name="gelu_act"),
            k.layers.Dense(3, activation="softmax", name="fc2"),
        ]
    )
    model.save(str(path), save_format="tf")
    return path


@pytest.mark.slow
def test_an_op_tflm_lacks_fails_the_target_naming_the_op_and_its_layer(tmp_path, tiny_data):
    model = _gelu_model(tmp_path / "gelu")
    recipe = write_recipe(tmp_path, RECIPE.format(model=model, data=tiny_data, extra=""))
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out))
    assert result.exit_code == EXIT_STAGE_FAILED
    (failed,) = result.record.failed_targets
    assert "does not register GELU" in failed.error and "gelu_act" in failed.error, failed.error
    assert "\n" not in failed.error
    assert not (out / "mcu").exists()


@pytest.mark.slow
def test_a_float_only_layer_fails_the_target_with_one_line(tmp_path, tiny_data):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()

    def sine(x):
        import tensorflow as tf

        return tf.math.sin(x)  # TFLite's SIN has float kernels only

    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(16, name="fc1"),
            k.layers.Lambda(sine, name="sine"),
            k.layers.Dense(3, activation="softmax", name="fc2"),
        ]
    )
    model.save(str(tmp_path / "sine.h5"))
    recipe = write_recipe(tmp_path, RECIPE.format(model=tmp_path / "sine.h5", data=tiny_data, extra=""))
    out = tmp_path / "run"
    result = api.run(str(recipe), out=str(out), trust_model=True)
    assert result.exit_code == EXIT_STAGE_FAILED
    (failed,) = result.record.failed_targets
    assert "float-only layers" in failed.error and "SIN (layer 'sine')" in failed.error, failed.error
    assert "\n" not in failed.error
    assert not (out / "mcu").exists()
