"""Channel groups and the rebuild of a thinner model (compressctl/model/channels.py)."""

import numpy as np
import pytest

from compressctl.model.channels import analyze, graph, keep_count, rebuild
from tests.conftest import (
    ARCH_EXPECTED,
    ARCH_MODELS,
    CHANNEL_MODELS,
    channel_mobilenet,
    channel_residual,
    zero_channels,
)


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
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, name="conv")(inputs)
    h = k.layers.Reshape((6, 24), name="reshape")(h)  # moves channels onto another axis
    h = k.layers.Flatten()(h)
    shared = k.layers.Dense(8, name="shared")
    h = k.layers.Add()([shared(h), shared(h)])
    model = k.Model(inputs, k.layers.Dense(2, name="out")(h))
    analysis = analyze(model)
    assert "cannot rewire" in analysis.layer_reason("conv") and "Reshape" in analysis.layer_reason("conv")
    assert "shared layer" in analysis.blocked["shared"]
    assert all(g.fixed for g in analysis.groups.values())


def test_concatenate_places_groups_side_by_side():
    from compressctl.core.env import keras

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
    from compressctl.core.env import keras, seed_everything

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
    from compressctl.core.env import keras, seed_everything

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


# ---------------------------------------------------------------------------- real-architecture constructs


@pytest.mark.parametrize("kind", sorted(ARCH_MODELS))
def test_each_construct_is_followed_or_left_whole_with_its_reason(kind):
    model = ARCH_MODELS[kind]()
    analysis = analyze(model)
    prunable_layers, whole = ARCH_EXPECTED[kind]
    assert sorted(n for g in prunable(analysis).values() for n in g.producers) == sorted(prunable_layers)
    for layer, fragment in whole.items():
        reason = analysis.layer_reason(layer)
        assert reason and fragment in reason and "\n" not in reason


@pytest.mark.parametrize("kind", sorted(ARCH_MODELS))
def test_each_construct_rebuilds_identically_keeping_every_channel(kind):
    model = ARCH_MODELS[kind]()
    analysis = analyze(model)
    thin = rebuild(model, analysis, {root: np.arange(g.channels) for root, g in prunable(analysis).items()})
    assert thin.count_params() == model.count_params()
    x = sample(model) * 4
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(ARCH_MODELS))
def test_each_construct_loses_all_zero_channels_exactly(kind):
    model = ARCH_MODELS[kind]()
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
            assert thin.get_layer(name).output_shape[-1] == len(kept) < model.get_layer(name).output_shape[-1]
    x = sample(model) * 4
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_squeeze_excite_gate_is_tied_to_the_feature_map_it_scales():
    analysis = analyze(ARCH_MODELS["squeeze_excite"]())
    groups = {tuple(g["layers"]): g for g in analysis.describe()}
    assert groups[("stem", "se1_expand")]["tied_by"] == ["se1_scale"]
    assert groups[("conv2", "se2_expand")]["tied_by"] == ["se2_scale"]
    assert analysis.reshapes == {"se2_reshape": 2}


def test_separable_convolution_reads_each_channels_copies():
    model = ARCH_MODELS["separable"]()
    analysis = analyze(model)
    conv, sep1 = analysis.producer_group["conv"], analysis.producer_group["sep1"]
    thin = rebuild(model, analysis, {conv: np.array([0, 2, 5]), sep1: np.arange(4)})
    depthwise, pointwise, bias = thin.get_layer("sep1").get_weights()
    assert depthwise.shape == (3, 3, 3, 2) and pointwise.shape == (1, 1, 6, 4) and bias.shape == (4,)
    assert thin.get_layer("sep2").get_weights()[0].shape == (3, 3, 4, 1)


def test_tf_op_layers_pass_channels_or_say_which_op_stops_them():
    from compressctl.core.env import keras, tf

    k, tensorflow = keras(), tf()
    inputs = k.Input((6, 6, 3))
    h = k.layers.Conv2D(4, 3, name="conv")(inputs)
    h = h * tensorflow.constant([1.0, 2.0, 3.0, 4.0])  # a constant per channel: left whole
    a = k.layers.Conv2D(4, 1, name="conv_b")(h)
    a = tensorflow.transpose(a, [0, 2, 1, 3])
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.Flatten()(a)))
    analysis = analyze(model)
    assert "with a constant of more than one value" in analysis.layer_reason("conv")
    assert "transpose is not an element-wise op" in analysis.layer_reason("conv_b")


def test_mobilenet_v3_tf_op_nodes_trace():
    """The node entries of layers called with extra arguments (``x + 3``) once crashed the tracer."""
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(4, 3, name="conv")(inputs)
    h = k.layers.Multiply(name="hard_swish")([h, k.layers.ReLU(6.0)(h + 3.0) * (1.0 / 6.0)])
    h = k.layers.Dropout(0.2, name="drop")(h, training=False)
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.GlobalAveragePooling2D()(h)))
    entries, outputs = graph(model)
    assert outputs == ["out"]
    reads = {e["name"]: e["reads"] for e in entries}
    assert reads["hard_swish"][0] == "conv" and reads["drop"] == ["hard_swish"]
    assert {"name", "class", "config", "reads"} <= set(entries[1])
    assert analyze(model).group_of("conv").fixed is None


APPLICATIONS = {
    "MobileNetV3Small": {"alpha": 0.75},
    "EfficientNetB0": {},
    "DenseNet121": {},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications_trace_and_rebuild_thinner(name):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = getattr(k.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10, **APPLICATIONS[name])
    analysis = analyze(model)
    groups = prunable(analysis)
    assert len(groups) > 10
    drop = {root: np.arange(g.channels)[::4] for root, g in groups.items()}
    zero_channels(model, analysis, drop)
    keep = {root: np.setdiff1d(np.arange(groups[root].channels), d) for root, d in drop.items()}
    thin = rebuild(model, analysis, keep)
    assert thin.count_params() < model.count_params()
    x = sample(model, n=2) * 255
    np.testing.assert_allclose(thin(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_layers_with_per_channel_constants_or_mixing_leave_their_inputs_whole():
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((6, 6, 3))
    a = k.layers.Rescaling([1.0, 2.0, 3.0, 4.0], name="rescale")(k.layers.Conv2D(4, 1, name="a")(inputs))
    b = k.layers.Normalization(mean=0.5, variance=2.0, name="norm")(k.layers.Conv2D(4, 1, name="b")(inputs))
    c = k.layers.LayerNormalization(name="ln")(k.layers.Conv2D(4, 1, name="c")(inputs))
    d = k.layers.Softmax(name="softmax")(k.layers.Conv2D(4, 1, name="d")(inputs))
    e = k.layers.Conv2D(4, 1, name="e")(inputs)
    e = k.layers.Multiply(name="spatial_gate")([e, k.layers.Conv2D(1, 1, activation="sigmoid", name="gate")(e)])
    h = k.layers.Concatenate(name="cat")([a, b, c, d, e])
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.GlobalAveragePooling2D()(h)))
    analysis = analyze(model)
    assert "scales each channel by a constant of its config" in analysis.layer_reason("a")
    assert "its mean and variance are constants of its config" in analysis.layer_reason("b")
    assert "normalizes across the channels" in analysis.layer_reason("c")
    assert "a softmax over the channels mixes them" in analysis.layer_reason("d")
    assert analysis.layer_reason("e") is None  # a one-channel gate broadcasts over the channels it scales
    keep = {analysis.producer_group["e"]: np.array([1, 2])}
    assert rebuild(model, analysis, keep).get_layer("out").get_weights()[0].shape == (18, 2)


def test_an_unregistered_custom_layer_is_left_whole_and_the_model_still_rebuilds():
    from compressctl.core.env import keras

    k = keras()

    class Halve(k.layers.Layer):  # not registered: the rebuild passes the model's own classes
        def call(self, x):
            return 0.5 * x

    inputs = k.Input((6, 6, 3))
    h = Halve(name="halve")(k.layers.Conv2D(4, 3, name="before")(inputs))
    h = k.layers.Conv2D(6, 1, name="after")(h)
    model = k.Model(inputs, k.layers.Dense(2, name="out")(k.layers.GlobalAveragePooling2D()(h)))
    analysis = analyze(model)
    assert analysis.layer_reason("before") == (
        "read by Halve layer halve, which channel pruning cannot rewire "
        "(Halve is not a layer channel pruning can follow)"
    )
    thin = rebuild(model, analysis, {analysis.producer_group["after"]: np.array([0, 3, 5])})
    assert thin.get_layer("after").output_shape[-1] == 3 and type(thin.get_layer("halve")) is Halve
