import numpy as np

from compressctl.stages.base import kernel_arrays
from compressctl.stages.prune import Prune
from compressctl.stages.quantize import Quantize


def test_qat_wraps_layers_and_trains(tiny_cnn, stage_ctx):
    result = Quantize(Quantize.Params(type="quantize", epochs=1)).apply(tiny_cnn, stage_ctx)
    names = [type(layer).__name__ for layer in result.model.layers]
    assert "QuantizeLayer" in names
    assert names.count("QuantizeWrapperV2") >= 3
    assert result.measured["quantized_layers"] >= 3
    assert stage_ctx.evaluate(result.model) > 0.7


def test_pqat_preserves_sparsity(tiny_cnn, stage_ctx):
    pruned = Prune(Prune.Params(type="prune", target_sparsity=0.8, epochs=2, learning_rate=1e-3)).apply(
        tiny_cnn, stage_ctx
    )
    zeros_before = kernel_arrays(pruned.model.get_layer("fc1"))[0] == 0
    result = Quantize(Quantize.Params(type="quantize", epochs=1, preserve=["sparsity"])).apply(pruned.model, stage_ctx)
    assert result.measured["sparsity"] >= 0.75
    wrapper = next(layer for layer in result.model.layers if layer.name.endswith("fc1"))
    (kernel,) = kernel_arrays(wrapper)
    assert np.all(kernel[zeros_before] == 0)


def test_exclude_leaves_layers_unquantized(tiny_cnn, stage_ctx):
    result = Quantize(Quantize.Params(type="quantize", epochs=1, exclude=["fc2"])).apply(tiny_cnn, stage_ctx)
    layers = {layer.name: type(layer).__name__ for layer in result.model.layers}
    assert layers["fc2"] == "Dense"
    assert layers["quant_fc1"] == "QuantizeWrapperV2"
