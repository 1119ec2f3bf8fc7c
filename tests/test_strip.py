"""Stripping a .tflite file's debug strings: smaller, no names, and exactly the same model.

Checked on files the converter wrote (float32 and calibrated int8 of the tiny CNN): the outputs are
bit-identical under XNNPACK and the reference kernels, in TensorFlow Lite Micro too, the signature runner
still works, every constant buffer starts on a 16-byte boundary, and the storage
breakdown loses only ``other_bytes``. Then a whole run with ``strip_strings: true`` on one of two
otherwise equal targets.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from compressctl import api
from compressctl.litert.storage import breakdown
from compressctl.litert.strip import strip_file, stripped
from tests.conftest import write_recipe


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_cnn_path, tiny_data):
    from compressctl.backends.convert import Converter

    root = tmp_path_factory.mktemp("strip")
    calibration = np.load(tiny_data)["x_train"][:32]
    with Converter() as converter:
        return {
            "float32": converter.convert(tiny_cnn_path, root / "f32.tflite", "float32", root),
            "int8": converter.convert(
                tiny_cnn_path, root / "int8.tflite", "int8", root, calibration=calibration, io_dtype="int8"
            ),
        }


def _outputs(blob: bytes, x: np.ndarray, xnnpack: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=blob, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for k in range(len(x)):
        scale, zero = inp["quantization"]
        sample = x[k : k + 1] if not scale else np.round(x[k : k + 1] / scale + zero).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], sample)
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(results)


def _names(blob: bytes) -> list[bytes]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(blob, 0)
    subgraph = model.Subgraphs(0)
    return [subgraph.Tensors(t).Name() for t in range(subgraph.TensorsLength())]


def _misaligned(blob: bytes) -> list[int]:
    """Buffers whose data does not start on a 16-byte boundary of the file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(blob, 0)
    found = []
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if buffer.DataLength() and buffer.Data(0) is not None:
            start = buffer._tab.Vector(buffer._tab.Offset(4))  # the data vector's position in the file
            if start % 16:
                found.append(index)
    return found


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_stripped_file_is_smaller_nameless_and_computes_the_same(converted, tiny_data, kind):
    blob = converted[kind].read_bytes()
    assert any(_names(blob))  # the converter names its tensors after the Keras ops
    smaller = stripped(blob)
    assert len(smaller) < len(blob) - sum(len(n or b"") for n in _names(blob)) // 2
    assert not any(_names(smaller))
    x = np.load(tiny_data)["x_test"][:40]
    for xnnpack in (True, False):
        assert np.array_equal(_outputs(blob, x, xnnpack), _outputs(smaller, x, xnnpack))
    assert _misaligned(smaller) == []  # the converter's own file aligns some buffers to 4 bytes only


def test_signatures_and_constants_stay_only_other_bytes_shrink(converted, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    path = tmp_path / "model.tflite"
    path.write_bytes(converted["int8"].read_bytes())
    before = breakdown(path)
    saved = strip_file(path)
    after = breakdown(path)
    assert saved == before["size_bytes"] - after["size_bytes"] > 0
    assert after["storage"] == before["storage"]
    assert after["other_bytes"] == before["other_bytes"] - saved
    original = Interpreter(model_path=str(converted["int8"])).get_signature_list()
    assert Interpreter(model_path=str(path)).get_signature_list() == original != {}
    assert strip_file(path) == 0  # nothing left to strip: the file is left as it is
    assert path.stat().st_size == after["size_bytes"]


def test_tflm_runs_the_stripped_int8_file_with_the_same_outputs_and_arena(converted, tiny_data, tmp_path):
    stripped_path = tmp_path / "stripped.tflite"
    stripped_path.write_bytes(stripped(converted["int8"].read_bytes()))
    np.save(tmp_path / "x.npy", np.load(tiny_data)["x_test"][:40])
    code = (
        "import json, sys, numpy as np\nfrom compressctl.litert import tflm\n"
        "x = np.load(sys.argv[1]); out = {}\n"
        "for p in sys.argv[2:]:\n"
        "    blob = open(p, 'rb').read(); arena = tflm.smallest_arena(blob)\n"
        "    out[p] = [arena, tflm.predict(blob, x, arena).tolist()]\n"
        "print(json.dumps(out))\n"
    )
    paths = [str(converted["int8"]), str(stripped_path)]
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.npy"), *paths], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (original_arena, original), (arena, outputs) = json.loads(done.stdout.splitlines()[-1]).values()
    assert outputs == original and arena == original_arena > 0


RECIPE = """
name: strip
model: {model}
data: {data}
targets:
  - type: cpu
    name: named
    mode: int8
  - type: cpu
    name: stripped
    mode: int8
    strip_strings: true
bench: {{runs: 5, warmup: 1, rounds: 1, threads: 1}}
"""


@pytest.mark.slow
def test_a_run_strips_only_the_target_that_asks(tmp_path, tiny_cnn_path, tiny_data):
    recipe = write_recipe(tmp_path, RECIPE.format(model=tiny_cnn_path, data=tiny_data))
    out = tmp_path / "run"
    assert api.run(str(recipe), out=str(out)).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    named, plain = (next(a for a in report["artifacts"] if a["target"] == n) for n in ("named", "stripped"))
    assert plain["size_bytes"] == (out / "stripped" / "model.tflite").stat().st_size < named["size_bytes"]
    assert plain["storage"] == named["storage"] and plain["other_bytes"] < named["other_bytes"]
    assert plain["metric_value"] == named["metric_value"]
    saved = named["size_bytes"] - plain["size_bytes"]
    assert any(f"{saved:,} bytes" in note and note.startswith("strip_strings") for note in plain["notes"])
    assert not any(f"{saved:,} bytes" in note for note in named["notes"])
    assert not any(_names((out / "stripped" / "model.tflite").read_bytes()))
    assert any(_names((out / "named" / "model.tflite").read_bytes()))
