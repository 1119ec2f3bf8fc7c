import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.stages.base import kernel_arrays
from compressctl.stages.prune import Prune


def params(**kw):
    return Prune.Params(type="prune", epochs=2, learning_rate=1e-3, **kw)


def sparsity_of(model, name):
    (kernel,) = kernel_arrays(model.get_layer(name))
    return float(np.mean(kernel == 0))


def test_prune_reaches_target_sparsity_and_keeps_accuracy(tiny_cnn, stage_ctx):
    result = Prune(params(target_sparsity=0.75)).apply(tiny_cnn, stage_ctx)
    for name in ("conv", "fc1", "fc2"):
        assert sparsity_of(result.model, name) == pytest.approx(0.75, abs=0.02)
    assert result.measured["sparsity"] == pytest.approx(0.75, abs=0.02)
    assert {row["layer"] for row in result.layers} == {"conv", "fc1", "fc2"}
    assert stage_ctx.evaluate(result.model) > 0.8
    # The stripped model carries no pruning wrappers.
    assert not any("prune" in type(layer).__name__.lower() for layer in result.model.layers)


def test_per_layer_targets_first_match_wins(tiny_cnn, stage_ctx):
    stage = Prune(params(target_sparsity=0.5, layers={"fc1": 0.9, "fc.*": 0.2}))
    assert stage.target_for("fc1") == 0.9
    assert stage.target_for("fc2") == 0.2
    assert stage.target_for("conv") == 0.5
    result = stage.apply(tiny_cnn, stage_ctx)
    assert sparsity_of(result.model, "fc1") == pytest.approx(0.9, abs=0.02)
    assert sparsity_of(result.model, "fc2") == pytest.approx(0.2, abs=0.05)
    assert sparsity_of(result.model, "conv") == pytest.approx(0.5, abs=0.03)


def test_exclude_wins_over_include(tiny_cnn, stage_ctx):
    stage = Prune(params(target_sparsity=0.6, include=["fc.*", "conv"], exclude=["fc2"]))
    assert stage.target_for("fc2") is None
    result = stage.apply(tiny_cnn, stage_ctx)
    assert sparsity_of(result.model, "fc2") < 0.05
    assert sparsity_of(result.model, "fc1") == pytest.approx(0.6, abs=0.02)


def test_two_four_pattern_keeps_two_of_every_four(tiny_cnn, stage_ctx):
    result = Prune(params(pattern="2:4", include=["fc1"])).apply(tiny_cnn, stage_ctx)
    (kernel,) = kernel_arrays(result.model.get_layer("fc1"))
    # TFMOT groups m-by-n blocks along the input dimension of each output unit.
    blocks = (kernel.T.reshape(kernel.shape[1], -1, 4) != 0).sum(axis=-1)
    assert blocks.max() <= 2
    assert sparsity_of(result.model, "fc1") == pytest.approx(0.5, abs=0.01)


def test_constant_schedule(tiny_cnn, stage_ctx):
    result = Prune(params(target_sparsity=0.5, schedule="constant")).apply(tiny_cnn, stage_ctx)
    assert result.measured["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_nothing_selected_returns_model_unchanged(tiny_cnn, stage_ctx):
    result = Prune(params(include=["nomatch"])).apply(tiny_cnn, stage_ctx)
    assert result.model is tiny_cnn
    assert result.notes == ["no layer was selected for pruning"]


def test_inference_only_model_is_refused(stage_ctx):
    with pytest.raises(UserError, match="inference-only"):
        Prune(params()).apply(None, stage_ctx)
