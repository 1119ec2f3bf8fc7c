"""cluster's ``grid: int4``: shared values on each output channel's int4 grid, stored exactly in 4 bits."""

import numpy as np
import pytest

from compressctl.stages.cluster import per_channel_unique, snap_to_grid


@pytest.mark.unit
def test_snapped_weights_survive_the_quantizers_symmetric_int4_exactly():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 5, 6, 16)).astype(np.float32)
    kernel[rng.random(kernel.shape) < 0.8] = 0  # pruned zeros
    kernel[..., 3] = 0  # an all-zero channel stays so
    snapped = snap_to_grid(kernel, (-1,))
    # The LiteRT Quantizer's symmetric channelwise int4 (uniform_quantize_tensor): scale = max|w| / 7.
    bound = np.max(np.abs(snapped), axis=(0, 1, 2), keepdims=True)
    scale = np.where(bound > 0, bound / 7, 1)
    steps = np.clip(np.rint(snapped / scale), -8, 7)
    np.testing.assert_allclose(steps * scale, snapped, rtol=1e-6, atol=0)
    assert np.all(snapped[kernel == 0] == 0)
    assert per_channel_unique(snapped, (-1,)) <= 15


@pytest.mark.unit
def test_depthwise_kernels_snap_per_input_channel_and_multiplier():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 2)).astype(np.float32)
    kernel[..., 1, 0] *= 100  # one channel's scale must not flatten the others
    snapped = snap_to_grid(kernel, (2, 3))
    assert per_channel_unique(snapped, (2, 3)) <= 15
    assert np.unique(snapped[..., 0, 0]).size > 3


@pytest.mark.slow
def test_prune_cluster_on_the_int4_grid_stores_four_bits_losslessly(tmp_path, sample_models):
    from compressctl import api
    from compressctl.litert.storage import bits_per_param
    from tests.conftest import write_recipe

    recipe = write_recipe(
        tmp_path,
        f"""
model: {sample_models / "lenet5_digits"}
data: {sample_models / "digits.npz"}
training: {{steps_per_epoch: 5, batch_size: 32}}
stages:
  - {{type: prune, target_sparsity: 0.8, epochs: 2}}
  - {{type: cluster, number_of_clusters: 16, layers: {{"role:largest": 8}}, grid: int4, epochs: 1}}
targets:
  - {{type: cpu, name: int4, backend: litert-quantizer, mode: weight-only-int4}}
bench: {{runs: 10, warmup: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0, result.report["failed_targets"]
    cluster = result.report["stages"][1]
    assert cluster["unique_per_channel"] <= 16
    assert "int4 grid" in cluster["notes"][0]
    (artifact,) = result.report["artifacts"]
    storage = {e["encoding"]: e for e in artifact["storage"]}
    # Every kernel (LeNet-5's 430,500 weights) in 4 bits: half a byte each, in the file written.
    assert storage["int4"]["tensors"] == 4 and storage["int4"]["params"] == 430_500
    assert storage["int4"]["bytes"] * 2 == storage["int4"]["params"]
    assert bits_per_param(artifact["storage"]) < 4.2
    assert sum(e["bytes"] for e in artifact["storage"]) + artifact["other_bytes"] == artifact["size_bytes"]
    size = (tmp_path / "run" / "int4" / "model.tflite").stat().st_size
    assert artifact["size_bytes"] == size
    # Lossless: every tensor of the int4 artifact equals the float TFLite file it quantized.
    errors = artifact["quantization"]["layer_errors"]
    assert errors and all(row["snr_db"] >= 100 for row in errors), errors[:3]
    # The runtime claim follows the INT4 tensors: DEQUANTIZE of INT4 is TFLite 2.18, not the declared v1.
    assert artifact["runtime"]["min_tflite_version"] == "2.18.0"
    from compressctl.backends.steps import tflite_runtime_python
    from compressctl.litert import compat

    python = tflite_runtime_python()
    if python:  # the claim held to the real runtime: tflite-runtime 2.14 refuses DEQUANTIZE of INT4
        assert not compat.probe(tmp_path / "run" / "int4" / "model.tflite", python)["loads"]


def test_layers_with_fewer_values_than_clusters_are_snapped_too(tiny_cnn, stage_ctx):
    from compressctl.stages.base import kernel_arrays
    from compressctl.stages.cluster import Cluster

    fc2 = tiny_cnn.get_layer("fc2")
    kernel, bias = fc2.get_weights()
    fc2.set_weights([np.round(kernel, 1), bias])  # a handful of values: too few for 16 clusters, not on the grid
    params = Cluster.Params(type="cluster", number_of_clusters=16, grid="int4", epochs=1, learning_rate=1e-4)
    result = Cluster(params).apply(tiny_cnn, stage_ctx)
    reasons = {row["layer"]: row["reason"] for row in result.skipped_layers}
    assert "too few" in reasons["fc2"] and "snapped to the int4 grid" in reasons["fc2"]
    for name in ("conv", "fc1", "fc2"):
        (snapped,) = kernel_arrays(result.model.get_layer(name))
        np.testing.assert_allclose(snap_to_grid(snapped, (-1,)), snapped, rtol=1e-6, atol=0)  # on its grid
    assert result.measured["unique_per_channel"] <= 16
