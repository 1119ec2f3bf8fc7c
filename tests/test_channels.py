"""Channel groups and the rebuild of a thinner model (compressctl/channels.py)."""

import numpy as np
import pytest

from compressctl.channels import analyze, keep_count, rebuild
from tests.conftest import CHANNEL_MODELS, channel_mobilenet, channel_residual, zero_channels


def sample(model, n=6, seed=0):
    return np.random.default_rng(seed).random((n, *model.input_shape[1:])).astype(np.float32)


def prunable(analysis):
    return {root: g for root, g in analysis.groups.items() if g.fixed is None}


def test_residual_add_ties_both_convolutions_into_one_group():
    analysis = analyze(channel_residual())
    groups = {tuple(g["layers"]): g for g in analysis.describe()}
    tied = groups[("conv_a", "conv_b")]
    assert tied["prunable"] and tied["channels"] == 8 and tied["tied_by"] == ["add"]
    assert {"bn_a", "bn_b", "conv_b", "logits"} <= set(tied["followers"])
    assert groups[("logits",)]["reason"] == "sets the model's output"


def test_mobilenet_block_groups_follow_depthwise_and_the_residual_add():
    analysis = analyze(channel_mobilenet())
    groups = {tuple(g["layers"]): g for g in analysis.describe()}
    assert groups[("stem", "project")]["tied_by"] == ["add"]
    expand = groups[("expand",)]
    assert expand["prunable"] and {"expand_bn", "depthwise", "depthwise_bn", "project"} <= set(expand["followers"])
    assert analysis.group_of("depthwise") is None and "depthwise" not in analysis.blocked


@pytest.mark.parametrize("kind", sorted(CHANNEL_MODELS))
def test_keeping_every_channel_rebuilds_an_identical_model(kind):
    model = CHANNEL_MODELS[kind]()
    analysis = analyze(model)
    assert prunable(analysis), "every test model has channels to prune"
    keep = {root: np.arange(g.channels) for root, g in prunable(analysis).items()}
    thin = rebuild(model, analysis, keep)
    x = sample(model)
    np.testing.assert_array_equal(thin(x).numpy(), model(x).numpy())


@pytest.mark.parametrize("kind", sorted(CHANNEL_MODELS))
def test_removing_all_zero_channels_keeps_the_outputs(kind):
    model = CHANNEL_MODELS[kind]()
    analysis = analyze(model)
    rng = np.random.default_rng(0)
    drop = {
        root: np.sort(rng.choice(g.channels, g.channels // 2, replace=False)) for root, g in prunable(analysis).items()
    }
    zero_channels(model, analysis, drop)
    keep = {root: np.setdiff1d(np.arange(analysis.groups[root].channels), d) for root, d in drop.items()}
    thin = rebuild(model, analysis, keep)
    assert thin.count_params() < model.count_params()
    for root, kept in keep.items():
        for name in analysis.groups[root].producers:
            assert thin.get_layer(name).output_shape[-1] == len(kept)
    x = sample(model)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_removing_channels_that_carry_signal_changes_the_outputs():
    """The exactness above is not vacuous: dropping live channels moves the outputs."""
    model = CHANNEL_MODELS["cnn"]()
    analysis = analyze(model)
    keep = {root: np.arange(g.channels // 2) for root, g in prunable(analysis).items()}
    x = sample(model)
    assert not np.allclose(rebuild(model, analysis, keep)(x).numpy(), model(x).numpy(), atol=1e-5)


def test_flatten_maps_each_channel_to_its_positions():
    model = CHANNEL_MODELS["cnn"]()
    analysis = analyze(model)
    layout = analysis.inputs["fc1"]
    assert layout.spatial == 4 and layout.channels == 8  # 2×2 positions × 8 channels of conv2
    root = analysis.producer_group["conv2"]
    index = analysis.indices(layout, {root: np.array([1, 5])})
    np.testing.assert_array_equal(index, [1, 5, 9, 13, 17, 21, 25, 29])


def test_layers_the_analysis_cannot_follow_keep_their_channels_with_a_reason():
    from compressctl.tfenv import keras

    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, name="conv")(inputs)
    h = k.layers.Reshape((36, 4), name="reshape")(h)
    h = k.layers.Flatten()(h)
    shared = k.layers.Dense(8, name="shared")
    h = k.layers.Add()([shared(h), shared(h)])
    model = k.Model(inputs, k.layers.Dense(2, name="out")(h))
    analysis = analyze(model)
    assert "cannot rewire" in analysis.layer_reason("conv") and "Reshape" in analysis.layer_reason("conv")
    assert "shared layer" in analysis.blocked["shared"]
    assert all(g.fixed for g in analysis.groups.values())


def test_concatenate_places_groups_side_by_side():
    from compressctl.tfenv import keras

    k = keras()
    inputs = k.Input((6, 6, 1))
    a = k.layers.Conv2D(4, 1, name="a")(inputs)
    b = k.layers.Conv2D(6, 1, name="b")(inputs)
    h = k.layers.Concatenate(name="cat")([a, b])
    h = k.layers.Conv2D(5, 1, name="c")(h)
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.Flatten()(h)))
    analysis = analyze(model)
    ra, rb = analysis.producer_group["a"], analysis.producer_group["b"]
    assert ra != rb
    np.testing.assert_array_equal(analysis.indices(analysis.inputs["c"], {ra: [0, 3], rb: [5]}), [0, 3, 9])
    thin = rebuild(model, analysis, {ra: np.array([0, 3]), rb: np.array([5])})
    assert thin.get_layer("c").get_weights()[0].shape == (1, 1, 3, 5)


@pytest.mark.parametrize(
    ("channels", "ratio", "multiple_of", "kept"),
    [(20, 0.5, 1, 10), (20, 0.6, 8, 8), (50, 0.5, 8, 24), (8, 0.5, 8, 8), (8, 0.99, 1, 0), (10, 0.0, 1, 10)],
)
def test_keep_count(channels, ratio, multiple_of, kept):
    assert keep_count(channels, ratio, multiple_of) == kept


def test_depthwise_multiplier_follows_each_channel_with_its_copies():
    from compressctl.tfenv import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((6, 6, 1))
    h = k.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = k.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(h)
    outputs = k.layers.Dense(2, name="out")(k.layers.Flatten(name="flat")(h))
    model = k.Model(inputs, outputs)
    analysis = analyze(model)
    root = analysis.producer_group["conv"]
    np.testing.assert_array_equal(analysis.indices(analysis.outputs["dw"], {root: [1, 3]}), [2, 3, 6, 7])
    # Channels 0 and 2 carry exact zeros (kernel, bias and their depthwise copies' bias): removing them is exact.
    conv, dw = model.get_layer("conv"), model.get_layer("dw")
    kernel, bias = conv.get_weights()
    kernel[..., [0, 2]], bias[[0, 2]] = 0, 0
    conv.set_weights([kernel, bias])
    dw_kernel, dw_bias = dw.get_weights()
    dw_bias[[0, 1, 4, 5]] = 0
    dw.set_weights([dw_kernel, dw_bias])
    thin = rebuild(model, analysis, {root: np.array([1, 3])})
    assert thin.get_layer("dw").output_shape[-1] == 4 and thin.get_layer("out").get_weights()[0].shape == (16, 2)
    x = sample(model)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_conv1d_sequence_model_loses_zero_channels_exactly():
    from compressctl.tfenv import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((12, 3)),
            k.layers.Conv1D(6, 3, activation="relu", name="conv"),
            k.layers.Dense(5, activation="relu", name="per_step"),  # a Dense on every time step
            k.layers.GlobalAveragePooling1D(name="gap"),
            k.layers.Dense(2, name="out"),
        ]
    )
    analysis = analyze(model)
    conv, step = analysis.producer_group["conv"], analysis.producer_group["per_step"]
    zero_channels(model, analysis, {conv: np.array([0, 4]), step: np.array([2])})
    thin = rebuild(model, analysis, {conv: np.array([1, 2, 3, 5]), step: np.array([0, 1, 3, 4])})
    assert thin.get_layer("per_step").get_weights()[0].shape == (4, 4)
    x = sample(model)
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
