"""Where a .tflite file's bytes go, read from the flatbuffer: entries by encoding plus the rest add up."""

from __future__ import annotations

import numpy as np
import pytest

from compressctl.litert.storage import bits_per_param, breakdown, weights_by_output


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_cnn_path, tiny_data):
    """The tiny CNN as float32, calibrated int8 and, with 80 % of fc1's weights zeroed, int8 with sparsity."""
    from compressctl.backends.convert import Converter
    from compressctl.core.env import keras

    root = tmp_path_factory.mktemp("storage")
    calibration = np.load(tiny_data)["x_train"][:32]
    model = keras().models.load_model(str(tiny_cnn_path), compile=False)
    kernel, bias = model.get_layer("fc1").get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0
    model.get_layer("fc1").set_weights([kernel, bias])
    model.save(str(root / "sparse_model"), save_format="tf")
    shared = keras().models.load_model(str(tiny_cnn_path), compile=False)  # fc1 with 8 distinct weights
    kernel, bias = shared.get_layer("fc1").get_weights()
    centres = np.quantile(kernel, np.linspace(0.05, 0.95, 8))
    kernel = centres[np.abs(kernel[..., None] - centres).argmin(axis=-1)].astype(np.float32)
    shared.get_layer("fc1").set_weights([kernel, bias])
    shared.save(str(root / "shared_model"), save_format="tf")
    out = {}
    with Converter() as converter:
        out["float32"] = converter.convert(tiny_cnn_path, root / "f32.tflite", "float32", root)
        out["int8"] = converter.convert(tiny_cnn_path, root / "int8.tflite", "int8", root, calibration=calibration)
        out["sparse"] = converter.convert(
            root / "sparse_model", root / "sparse.tflite", "int8", root, calibration=calibration, sparsity=True
        )
        out["shared"] = converter.convert(
            root / "shared_model", root / "shared.tflite", "int8", root, calibration=calibration
        )
    return out, model


def test_entries_and_other_bytes_add_up_to_the_file(converted):
    files, _ = converted
    for path in files.values():
        info = breakdown(path)
        assert sum(e["bytes"] for e in info["storage"]) + info["other_bytes"] == path.stat().st_size
        assert info["other_bytes"] > 0 and all(e["bytes"] > 0 and e["tensors"] > 0 for e in info["storage"])


def test_float32_holds_every_parameter_at_four_bytes(converted, tiny_cnn):
    files, _ = converted
    (entry,) = [e for e in breakdown(files["float32"])["storage"] if e["encoding"] == "float32"]
    assert entry["params"] == tiny_cnn.count_params()
    assert entry["bytes"] == 4 * entry["params"]
    assert bits_per_param(breakdown(files["float32"])["storage"]) == pytest.approx(32, abs=0.1)


def test_int8_kernels_take_one_byte_and_biases_stay_int32(converted, tiny_cnn):
    files, _ = converted
    by = {e["encoding"]: e for e in breakdown(files["int8"])["storage"]}
    kernels = sum(int(np.prod(w.shape)) for layer in tiny_cnn.layers for w in layer.weights if "kernel" in w.name)
    biases = sum(int(np.prod(w.shape)) for layer in tiny_cnn.layers for w in layer.weights if "bias" in w.name)
    assert by["int8"]["params"] == kernels and by["int8"]["bytes"] == kernels
    # int32: the biases, and the shape constants of the Reshape/Flatten ops
    assert biases <= by["int32"]["params"] <= biases + 8 and by["int32"]["bytes"] == 4 * by["int32"]["params"]
    assert "float32" not in by


def test_each_op_is_charged_the_constant_bytes_it_reads(converted, tiny_cnn):
    files, _ = converted
    weights = weights_by_output(files["float32"])
    # In float32 every parameter is read by exactly one op, at four bytes (plus a reshape's shape constant).
    assert 0 <= sum(weights.values()) - 4 * tiny_cnn.count_params() <= 16
    fc1 = tiny_cnn.get_layer("fc1")
    charged = [size for name, size in weights.items() if "fc1" in name]
    assert 4 * fc1.count_params() in charged, weights
    # Weight-free ops (the activations, the reshape) are charged nothing but their shape constants.
    assert min(weights.values()) <= 8


def test_a_sparse_encoding_is_its_own_entry_and_smaller_than_dense(converted):
    files, _ = converted
    by = {e["encoding"]: e for e in breakdown(files["sparse"])["storage"]}
    assert "int8-sparse" in by, by  # fc1, 80 % zeros
    sparse = by["int8-sparse"]
    assert sparse["bytes"] < sparse["params"]  # fewer stored bytes than values: the zeros are not stored


def test_lookup_tables_count_as_lut_entries_of_their_decoded_size(converted, tmp_path):
    """TFLM's lookup-table encoding (DECODE): each encoded tensor is one lut<bits> entry, its packed indices
    plus its value tables; the tensors left alone keep their int8 entry; everything still adds up."""
    from compressctl.litert import tflm

    files, _ = converted
    dense = files["shared"].read_bytes()
    rows = [row for row in tflm.lut_candidates(dense) if row["bits"] <= 3]
    assert rows, "fc1 holds 8 distinct weights per channel at most: 3 bits"
    encoded = tmp_path / "lut.tflite"
    encoded.write_bytes(tflm.lut_encode(dense, rows))
    before, after = breakdown(files["shared"]), breakdown(encoded)
    assert sum(e["bytes"] for e in after["storage"]) + after["other_bytes"] == encoded.stat().st_size
    by = {e["encoding"]: e for e in after["storage"]}
    luts = [e for name, e in by.items() if name.startswith("lut")]
    assert {e["encoding"] for e in luts} == {f"lut{row['bits']}" for row in rows}
    assert sum(e["tensors"] for e in luts) == len(rows)
    assert sum(e["params"] for e in luts) == sum(row["bytes_before"] for row in rows)  # int8: a byte each
    assert all(e["bytes"] < e["params"] for e in luts)
    int8_before = {e["encoding"]: e for e in before["storage"]}["int8"]
    assert by["int8"]["params"] == int8_before["params"] - sum(row["bytes_before"] for row in rows)


def test_every_artifact_of_a_run_records_where_its_bytes_go(tmp_path, tiny_cnn_path, tiny_data):
    """report.json's storage and other_bytes add up to size_bytes; report.md and report.html show them."""
    from compressctl import api
    from tests.conftest import REPO

    out = tmp_path / "run"
    result = api.run(
        str(REPO / "recipes" / "cpu-int8.yaml"),
        ["bench.runs=5", "bench.warmup=1"],
        model=str(tiny_cnn_path),
        data=str(tiny_data),
        out=str(out),
    )
    (artifact,) = result.report["artifacts"]
    assert sum(e["bytes"] for e in artifact["storage"]) + artifact["other_bytes"] == artifact["size_bytes"]
    assert artifact["storage"] == breakdown(out / artifact["path"])["storage"]
    assert {e["encoding"] for e in artifact["storage"]} == {"int8", "int32"}
    assert "## Stored bytes" in (out / "report.md").read_text()
    assert 'id="plot-storage"' in (out / "report.html").read_text()
