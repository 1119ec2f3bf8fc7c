"""Tiny seeded models and data sets, built once per session, so the suite stays fast."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Commands the tests run keep their logs in a cache of the session's own, not the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="compressctl-test-cache-")

REPO = Path(__file__).resolve().parent.parent

from benchmarks.zoo_models import quadrant_data  # noqa: E402 - the suite's and the benchmarks' one data maker


def pytest_sessionfinish(session, exitstatus):
    """The unit tier (``-m unit``) promises never to import TensorFlow: hold it to that."""
    import sys

    items = getattr(session, "items", [])
    if items and all(item.get_closest_marker("unit") for item in items) and "tensorflow" in sys.modules:
        session.exitstatus = 1
        print("\nerror: a test marked `unit` imported TensorFlow; mark it otherwise or keep TensorFlow out of it")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, **quadrant_data())
    return path


def build_tiny_cnn():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    return k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Conv2D(8, 3, activation="relu", name="conv"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(32, activation="relu", name="fc1"),
            k.layers.Dense(3, activation="softmax", name="fc2"),
        ]
    )


def train(model, data, epochs=6):
    from compressctl.core.env import keras

    k = keras()
    model.compile(k.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def tiny_cnn_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny_cnn"
    model = train(build_tiny_cnn(), quadrant_data())
    model.save(str(path), save_format="tf")
    return path


@pytest.fixture()
def tiny_cnn(tiny_cnn_path):
    """A fresh copy of the trained tiny CNN (stages mutate the layers they are given)."""
    from compressctl.core.env import keras

    return keras().models.load_model(str(tiny_cnn_path), compile=False)


@pytest.fixture()
def stage_ctx(tiny_data):
    from compressctl.datasets.arrays import load_npz
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.stages.base import StageContext

    return StageContext(data=load_npz(tiny_data), task=TaskInfo(binary=False, from_logits=False), batch_size=32)


@pytest.fixture(scope="session")
def sample_models(tmp_path_factory) -> Path:
    """The bundled samples (`make sample-models`) built afresh: a clean clone has no sample_models/."""
    out = tmp_path_factory.mktemp("samples")
    subprocess.run(
        [sys.executable, "-m", "compressctl.model.samples", "--out", str(out)], check=True, timeout=600, cwd=REPO
    )
    return out


def cli(*args, cwd=REPO, env=None, timeout=600):
    """``compressctl ARGS`` in a child process, as a user runs it: the completed process, text output."""
    command = [sys.executable, "-m", "compressctl", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def write_recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="session", autouse=True)
def written_reports_validate(tmp_path_factory):
    """After the session: every report.json a run wrote (beside its recipe.lock.yaml and manifest.json)
    validates against the published schema, docs/report.schema.json, and reads back as a RunRecord; and
    no quantization analysis failed (the pipeline records such a failure rather than losing the artifact,
    so without this check a broken analysis would pass every test that does not read it)."""
    yield
    import json

    import jsonschema

    from compressctl.report.record import RunRecord

    schema = json.loads((REPO / "docs" / "report.schema.json").read_text())
    problems = []
    for path in tmp_path_factory.getbasetemp().rglob("report.json"):
        if not all((path.parent / name).exists() for name in ("manifest.json", "recipe.lock.yaml")):
            continue  # a fixture copied or edited by a test, not a run's output
        text = path.read_text()
        try:
            jsonschema.validate(json.loads(text), schema)
            RunRecord.from_json(text, str(path))
        except (jsonschema.ValidationError, ValueError) as exc:
            problems.append(f"{path}: {str(exc).splitlines()[0]}")
        for artifact in json.loads(text).get("artifacts", []):
            error = (artifact.get("quantization") or {}).get("error")
            if error:
                problems.append(f"{path}: {artifact['target']}: the quantization analysis failed: {error}")
    assert not problems, "report.json files that do not validate, or whose analysis failed:\n" + "\n".join(problems)


# Models for structured pruning (compressctl.model.channels, stages/prune_channels.py, model/macs.py): one of
# each kind the channel analysis must follow. Untrained and seeded; BatchNormalization statistics
# are randomised so that they matter.


def channel_cnn():
    """Sequential: convolutions, pooling, Flatten → Dense (the index mapping), softmax output."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    return k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            k.layers.Conv2D(8, 3, activation="relu", name="conv2"),
            k.layers.MaxPool2D(name="pool"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(16, activation="relu", name="fc1"),
            k.layers.Dense(3, activation="softmax", name="fc2"),
        ]
    )


def channel_residual():
    """Functional residual CNN with BatchNormalization, as in tests/test_models_e2e.py, with logits."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    h = k.layers.BatchNormalization(name="bn_a")(h)
    h = k.layers.ReLU(name="relu_a")(h)
    r = k.layers.Conv2D(8, 3, padding="same", name="conv_b")(h)
    r = k.layers.BatchNormalization(name="bn_b")(r)
    h = k.layers.ReLU(name="relu_b")(k.layers.Add(name="add")([h, r]))
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return _random_bn(k.Model(inputs, outputs))


def channel_mobilenet():
    """A MobileNetV2 block: expand 1×1 → depthwise → project 1×1, with a residual add to the stem."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 1))
    x = k.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = k.layers.BatchNormalization(name="stem_bn")(x)
    x = k.layers.ReLU(6.0, name="stem_relu")(x)
    h = k.layers.Conv2D(48, 1, name="expand")(x)
    h = k.layers.BatchNormalization(name="expand_bn")(h)
    h = k.layers.ReLU(6.0, name="expand_relu")(h)
    h = k.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(h)
    h = k.layers.BatchNormalization(name="depthwise_bn")(h)
    h = k.layers.ReLU(6.0, name="depthwise_relu")(h)
    h = k.layers.Conv2D(16, 1, name="project")(h)
    h = k.layers.BatchNormalization(name="project_bn")(h)
    x = k.layers.Add(name="add")([x, h])
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = k.layers.Dense(3, activation="softmax", name="head")(x)
    return _random_bn(k.Model(inputs, outputs))


def channel_mlp():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    return k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(32, activation="relu", name="fc1"),
            k.layers.Dense(16, activation="relu", name="fc2"),
            k.layers.Dense(3, activation="softmax", name="fc3"),
        ]
    )


CHANNEL_MODELS = {
    "cnn": channel_cnn,
    "residual": channel_residual,
    "mobilenet": channel_mobilenet,
    "mlp": channel_mlp,
}


# Real-architecture constructs (issue 18): each model holds one, with what channel pruning may thin
# (``prunable``: producers whose channels can go) and what it leaves whole (layer → reason fragment).


def arch_squeeze_excite():
    """Two squeeze-and-excite gates: GAP(keepdims) → Conv → Conv, and GAP → Dense → Dense → Reshape."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = k.layers.ReLU(name="stem_relu")(k.layers.BatchNormalization(name="stem_bn")(x))
    s = k.layers.GlobalAveragePooling2D(keepdims=True, name="se1_pool")(x)
    s = k.layers.Conv2D(4, 1, activation="relu", name="se1_reduce")(s)
    s = k.layers.Conv2D(8, 1, activation="sigmoid", name="se1_expand")(s)
    x = k.layers.Multiply(name="se1_scale")([x, s])
    h = k.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv2")(x)
    s = k.layers.GlobalAveragePooling2D(name="se2_pool")(h)
    s = k.layers.Dense(4, activation="relu", name="se2_reduce")(s)
    s = k.layers.Dense(12, activation="hard_sigmoid", name="se2_expand")(s)
    s = k.layers.Reshape((1, 1, 12), name="se2_reshape")(s)
    h = k.layers.Multiply(name="se2_scale")([h, s])
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return _random_bn(k.Model(inputs, outputs))


def arch_grouped():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    h = k.layers.Conv2D(8, 3, groups=2, activation="relu", name="grouped")(h)
    h = k.layers.Conv2D(6, 1, activation="relu", name="after")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return k.Model(inputs, outputs)


def arch_dense_block():
    """DenseNet style: each layer's BN → ReLU → Conv output is concatenated to everything before it."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    for i in range(3):
        h = k.layers.BatchNormalization(name=f"block{i}_bn")(x)
        h = k.layers.ReLU(name=f"block{i}_relu")(h)
        h = k.layers.Conv2D(4, 3, padding="same", name=f"block{i}_conv")(h)
        x = k.layers.Concatenate(name=f"block{i}_concat")([x, h])
    x = k.layers.ReLU(name="transition_relu")(k.layers.BatchNormalization(name="transition_bn")(x))
    x = k.layers.Conv2D(8, 1, name="transition_conv")(x)
    x = k.layers.AveragePooling2D(2, name="transition_pool")(x)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(x))
    return _random_bn(k.Model(inputs, outputs))


def arch_depthwise_multiplier():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    h = k.layers.ReLU(name="relu")(k.layers.BatchNormalization(name="bn")(h))
    h = k.layers.DepthwiseConv2D(3, depth_multiplier=3, padding="same", name="depthwise")(h)
    h = k.layers.ReLU(6.0, name="dw_relu")(k.layers.BatchNormalization(name="dw_bn")(h))
    h = k.layers.Conv2D(8, 1, activation="relu", name="project")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return _random_bn(k.Model(inputs, outputs))


def arch_preactivation():
    """ResNetV2 style: BatchNormalization → ReLU before each convolution, an identity and a projection shortcut."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    pre = k.layers.ReLU(name="b1_pre_relu")(k.layers.BatchNormalization(name="b1_pre_bn")(x))
    h = k.layers.Conv2D(8, 3, padding="same", name="b1_conv1")(pre)
    h = k.layers.ReLU(name="b1_relu")(k.layers.BatchNormalization(name="b1_bn")(h))
    h = k.layers.Conv2D(8, 3, padding="same", name="b1_conv2")(h)
    x = k.layers.Add(name="b1_add")([x, h])
    pre = k.layers.ReLU(name="b2_pre_relu")(k.layers.BatchNormalization(name="b2_pre_bn")(x))
    shortcut = k.layers.Conv2D(12, 1, strides=2, name="b2_shortcut")(pre)
    h = k.layers.Conv2D(12, 3, strides=2, padding="same", name="b2_conv1")(pre)
    x = k.layers.Add(name="b2_add")([shortcut, h])
    x = k.layers.ReLU(name="post_relu")(k.layers.BatchNormalization(name="post_bn")(x))
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(x))
    return _random_bn(k.Model(inputs, outputs))


def arch_separable():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inputs)
    h = k.layers.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", name="sep1")(h)
    h = k.layers.ReLU(name="sep1_relu")(k.layers.BatchNormalization(name="sep1_bn")(h))
    h = k.layers.SeparableConv2D(10, 3, activation="relu", name="sep2")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return _random_bn(k.Model(inputs, outputs))


def arch_preprocessing():
    """Rescaling and Normalization on the input (per channel) and between convolutions (a scalar, per channel)."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Rescaling([1 / 255, 1 / 127, 1 / 64], offset=[-0.5, 0.0, 0.5], name="rescale_in")(inputs)
    h = k.layers.Normalization(axis=-1, name="norm_in")(h)
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv1")(h)
    h = k.layers.Rescaling(2.0, name="rescale_mid")(h)
    h = k.layers.Normalization(axis=-1, name="norm_mid")(h)
    h = k.layers.Conv2D(6, 3, activation="relu", name="conv2")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    model = k.Model(inputs, outputs)
    rng = np.random.default_rng(2)
    for name, width in (("norm_in", 3), ("norm_mid", 8)):
        layer = model.get_layer(name)
        mean = rng.normal(0, 0.5, width).astype(np.float32)
        layer.set_weights([mean, rng.uniform(0.5, 2.0, width).astype(np.float32), np.array(100, np.int64)])
        layer.finalize_state()
    return model


def arch_activations():
    """Activation layers and TensorFlow ops on Keras tensors (TFOpLambda): hard-swish, x + 3, x * (1/6)."""
    from compressctl.core.env import keras, seed_everything, tf

    seed_everything(0)
    k, tensorflow = keras(), tf()
    inputs = k.Input((8, 8, 3))
    h = k.layers.ReLU(max_value=6.0, name="relu6")(k.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs))
    h = k.layers.Activation("swish", name="swish")(k.layers.Conv2D(8, 3, padding="same", name="conv2")(h))
    h = k.layers.LeakyReLU(0.1, name="leaky")(h)
    h = k.layers.PReLU(shared_axes=[1, 2], name="prelu")(h)
    gate = k.layers.ReLU(6.0, name="hard_sigmoid_relu")(h + 3.0) * (1.0 / 6.0)
    h = k.layers.Multiply(name="hard_swish")([h, gate])
    h = tensorflow.nn.relu(h)
    other = k.layers.Conv2D(8, 1, name="conv3")(h)
    h = tensorflow.math.maximum(h, other)  # two tensors: tied, as an Add ties them
    h = tensorflow.math.reduce_mean(h, axis=[1, 2], keepdims=True)
    h = k.layers.ELU(name="elu")(k.layers.Conv2D(6, 1, name="conv4")(h))
    outputs = k.layers.Dense(3, name="logits")(k.layers.Flatten(name="flatten")(h))
    model = k.Model(inputs, outputs)
    prelu = model.get_layer("prelu")
    prelu.set_weights(
        [np.random.default_rng(3).uniform(0, 0.5, w.shape).astype(np.float32) for w in prelu.get_weights()]
    )
    return model


def arch_padding_reshape():
    """ZeroPadding2D, Cropping2D, a Reshape that flattens, and a Reshape around a Dense (units → 1×1×units)."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(6, 3, activation="relu", name="conv1")(inputs)
    h = k.layers.ZeroPadding2D(1, name="pad")(h)
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv2")(h)
    h = k.layers.Cropping2D(1, name="crop")(h)
    h = k.layers.MaxPooling2D(name="pool")(h)
    h = k.layers.Reshape((2 * 2 * 8,), name="flat")(h)
    h = k.layers.Dense(16, activation="relu", name="fc")(h)
    h = k.layers.Reshape((1, 1, 16), name="to_map")(h)
    h = k.layers.Conv2D(8, 1, activation="relu", name="conv3")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.Flatten(name="flatten")(h))
    return k.Model(inputs, outputs)


_CUSTOM = {}


def custom_double_layer():
    """A user-registered layer (tests.Double: 2x), registered once per process."""
    from compressctl.core.env import keras

    if "Double" not in _CUSTOM:
        k = keras()

        @k.utils.register_keras_serializable(package="tests")
        class Double(k.layers.Layer):
            def call(self, x):
                return 2.0 * x

        _CUSTOM["Double"] = Double
    return _CUSTOM["Double"]


def arch_custom():
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    inputs = k.Input((8, 8, 3))
    h = k.layers.Conv2D(6, 3, activation="relu", name="before")(inputs)
    h = custom_double_layer()(name="double")(h)
    h = k.layers.Conv2D(8, 3, activation="relu", name="after")(h)
    outputs = k.layers.Dense(3, name="logits")(k.layers.GlobalAveragePooling2D(name="gap")(h))
    return k.Model(inputs, outputs)


ARCH_MODELS = {
    "squeeze_excite": arch_squeeze_excite,
    "grouped": arch_grouped,
    "dense_block": arch_dense_block,
    "depthwise_multiplier": arch_depthwise_multiplier,
    "preactivation": arch_preactivation,
    "separable": arch_separable,
    "preprocessing": arch_preprocessing,
    "activations": arch_activations,
    "padding_reshape": arch_padding_reshape,
    "custom": arch_custom,
}
# Per model: the producers whose channels can be removed, and the layers left whole with (part of) the reason.
ARCH_EXPECTED = {
    "squeeze_excite": (["stem", "se1_expand", "se1_reduce", "conv2", "se2_expand", "se2_reduce"], {}),
    "grouped": (["after"], {"conv1": "grouped convolution (groups=2)", "grouped": "grouped convolution"}),
    "dense_block": (["stem", "block0_conv", "block1_conv", "block2_conv", "transition_conv"], {}),
    "depthwise_multiplier": (["conv", "project"], {}),
    "preactivation": (["stem", "b1_conv1", "b1_conv2", "b2_shortcut", "b2_conv1"], {}),
    "separable": (["conv", "sep1", "sep2"], {}),
    "preprocessing": (["conv1", "conv2"], {}),
    "activations": (["conv1", "conv2", "conv3", "conv4"], {}),
    "padding_reshape": (["conv1", "conv2", "fc", "conv3"], {}),
    "custom": (["after"], {"before": "read by Double layer double"}),
}


def _random_bn(model):
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, var.shape).astype(np.float32),
                ]
            )
    return model


def zero_channels(model, analysis, drop: dict[int, np.ndarray]) -> None:
    """Make channels ``drop`` (group → indices) of ``model`` exactly zero wherever they are computed.

    Producers get zero kernel columns and bias (a separable convolution: its pointwise columns); every
    per-channel follower (BatchNormalization's gamma and beta, a depthwise bias, a Normalization's
    mean) gets zeros there too, so the channels carry 0.0 downstream.
    """
    for root, channels in drop.items():
        group = analysis.groups[root]
        for name in group.producers:
            layer = model.get_layer(name)
            weights = layer.get_weights()
            first = 1 if analysis.kinds[name].startswith("Separable") else 0  # not the depthwise kernel
            for w in weights[first:]:
                w[..., channels] = 0
            layer.set_weights(weights)
        for name in group.followers:
            kind = analysis.kinds[name]
            if kind not in ("BatchNormalization", "DepthwiseConv2D", "Normalization"):
                continue
            layer = model.get_layer(name)
            weights = layer.get_weights()
            layout = analysis.outputs[name] if kind == "DepthwiseConv2D" else analysis.inputs[name]
            index = analysis.indices(layout, {root: np.setdiff1d(np.arange(group.channels), channels)})
            removed = np.setdiff1d(np.arange(layout.width), index)
            if kind == "BatchNormalization":
                weights[0][removed] = 0  # gamma
                weights[1][removed] = 0  # beta
            elif kind == "Normalization":
                weights[0][removed] = 0  # mean
            elif len(weights) > 1:
                weights[1][removed] = 0  # depthwise bias (one per output channel)
            layer.set_weights(weights)
            if kind == "Normalization":
                layer.finalize_state()


def breast_cancer_split(seed=0, n_train=420):
    """scikit-learn's bundled breast-cancer set (no download), RAW features: scales from 0.001 to 4,000."""
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer()
    order = np.random.default_rng(seed).permutation(len(bc.target))
    x, y = bc.data[order].astype(np.float32), bc.target[order]
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


@pytest.fixture(scope="session")
def tabular_norm(tmp_path_factory) -> tuple[Path, Path]:
    """A tabular classifier with a Normalization layer adapted and fed raw features, one sigmoid output:
    full int8 quantizes its float input per tensor, and every small-scale feature becomes zero."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    data = breast_cancer_split()
    root = tmp_path_factory.mktemp("tabular")
    np.savez(root / "bc.npz", **data)
    norm = k.layers.Normalization(name="norm")
    norm.adapt(data["x_train"])
    model = k.Sequential(
        [k.Input((30,)), norm, k.layers.Dense(16, activation="relu", name="fc1"),
         k.layers.Dense(1, activation="sigmoid", name="out")]
    )  # fmt: skip
    model.compile(k.optimizers.Adam(1e-2), "binary_crossentropy", ["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=20, batch_size=32, verbose=0)
    model.save(str(root / "model"), save_format="tf")
    return root / "model", root / "bc.npz"


def diabetes_data(seed=0):
    """scikit-learn's bundled diabetes set (no download): 10 standardised features, a float target in [25, 346]."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:342], order[342:]
    y = y.astype(np.float32)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


@pytest.fixture(scope="session")
def diabetes_npz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "diabetes.npz"
    np.savez(path, **diabetes_data())
    return path


@pytest.fixture(scope="session")
def diabetes_mlp_path(tmp_path_factory) -> Path:
    """A small MLP with one linear output, trained on squared error (test MAE about 44)."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    data = diabetes_data()
    model = k.Sequential(
        [k.layers.Input((10,)), k.layers.Dense(32, activation="relu", name="fc1"), k.layers.Dense(1, name="out")]
    )
    model.compile(k.optimizers.Adam(0.05), "mse")
    model.fit(data["x_train"], data["y_train"], epochs=60, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "diabetes_mlp.keras"
    model.save(str(path))
    return path


KERAS3_MODELS = """
import sys
import keras
import numpy as np

out = sys.argv[1]
keras.utils.set_random_seed(0)
data = np.load(sys.argv[2])
x, y = data["x_train"], data["y_train"]
inp = keras.Input((8, 8, 1))
h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
h = keras.layers.BatchNormalization(name="bn")(h)
h = keras.layers.Flatten(name="flatten")(h)
a = keras.layers.Dense(16, activation="relu", name="fc1")(h)
b = keras.layers.Dense(16, activation="relu", name="fc1b")(h)
h = keras.layers.Add(name="add")([a, b])
model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="fc2")(h))
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
model.fit(x, y, epochs=3, batch_size=32, verbose=0)
model.save(f"{out}/cnn.keras")
gru = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, name="gru"), keras.layers.Dense(2, name="out")])
gru.save(f"{out}/gru.keras")
lora = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc", lora_rank=2)])
lora.save(f"{out}/lora.keras")


@keras.saving.register_keras_serializable(package="mine")
class Double(keras.layers.Layer):
    def call(self, x):
        return 2 * x


keras.Sequential([keras.Input((4,)), Double(name="double"), keras.layers.Dense(2)]).save(f"{out}/custom.keras")
print(keras.__version__)
"""


@pytest.fixture(scope="session")
def keras3_models(tmp_path_factory, tiny_data):
    """Keras 3 files made by Keras 3 itself, in a child process (this one must keep Keras 2)."""
    out = tmp_path_factory.mktemp("keras3")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    made = subprocess.run(
        [sys.executable, "-c", KERAS3_MODELS, str(out), str(tiny_data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.strip().splitlines()[-1].startswith("3.")
    return out
