import numpy as np

from compressctl.stages.base import kernel_arrays
from compressctl.stages.cluster import Cluster
from compressctl.stages.prune import Prune


def params(**kw):
    return Cluster.Params(type="cluster", epochs=1, learning_rate=1e-4, **kw)


def test_cluster_limits_unique_weights_per_layer(tiny_cnn, stage_ctx):
    result = Cluster(params(number_of_clusters=8, layers={"fc1": 4})).apply(tiny_cnn, stage_ctx)
    unique = {row["layer"]: row["unique_weights"] for row in result.layers}
    assert unique["fc1"] <= 4
    assert unique["conv"] <= 8
    assert unique["fc2"] <= 8
    assert result.measured["unique_weights"] <= 8
    assert stage_ctx.evaluate(result.model) > 0.7


def test_preserve_sparsity_keeps_pruned_zeros(tiny_cnn, stage_ctx):
    pruned = Prune(Prune.Params(type="prune", target_sparsity=0.7, epochs=2, learning_rate=1e-3)).apply(
        tiny_cnn, stage_ctx
    )
    before = kernel_arrays(pruned.model.get_layer("fc1"))[0] == 0
    result = Cluster(params(number_of_clusters=8, preserve_sparsity=True)).apply(pruned.model, stage_ctx)
    after = kernel_arrays(result.model.get_layer("fc1"))[0] == 0
    assert np.all(after[before])


def test_layers_with_too_few_weights_are_skipped_with_a_reason(tiny_cnn, stage_ctx):
    result = Cluster(params(number_of_clusters=200)).apply(tiny_cnn, stage_ctx)
    reasons = {row["layer"]: row["reason"] for row in result.skipped_layers}
    assert "conv" in reasons and "too few" in reasons["conv"]
