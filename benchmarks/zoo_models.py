"""A zoo of keras.applications families, built small (32×32 inputs, narrow widths, few blocks).

Used by tests/test_zoo.py and benchmarks/zoo.py.

Each builder keeps what makes its family hard for a compression tool — squeeze-and-excite gates,
hard-swish, swish, Rescaling/Normalization preprocessing, pre-activation residuals, dense
Concatenate blocks, depthwise convolutions — while staying small enough for the test suite.
``weights=None`` everywhere: nothing downloads.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

SHAPE = (32, 32, 3)
CLASSES = 3


def quadrant_data(n_train=300, n_test=90, seed=0, shape=(8, 8, 1), classes=3):
    """Images whose class is the quadrant holding a bright blob: learnable in a few epochs."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, classes, n)
        x = rng.normal(0.1, 0.05, (n, *shape)).astype(np.float32)
        h, w = shape[0] // 2, shape[1] // 2
        for i, label in enumerate(y):
            r, c = divmod(int(label), 2)
            x[i, r * h : (r + 1) * h, c * w : (c + 1) * w] += 0.8
        return np.clip(x, 0, 1), y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _apps():
    from compressctl.core.env import keras

    return keras().applications


def mobilenet_v2():
    return _apps().MobileNetV2(input_shape=SHAPE, alpha=0.35, weights=None, classes=CLASSES)


def mobilenet_v3_small():
    return _apps().MobileNetV3Small(input_shape=SHAPE, alpha=0.75, weights=None, classes=CLASSES, dropout_rate=0.0)


def efficientnet():
    from tf_keras.src.applications import efficientnet as eff

    return eff.EfficientNet(
        0.25, 0.25, 32, model_name="efficientnet_small", weights=None, input_shape=SHAPE, classes=CLASSES
    )


def densenet():
    from tf_keras.src.applications import densenet as dense

    return dense.DenseNet([1, 2, 2, 1], weights=None, input_shape=SHAPE, classes=CLASSES)


def resnet_v2():
    from tf_keras.src.applications import resnet as res

    def stacks(x):
        x = res.stack2(x, 8, 2, name="conv2")
        x = res.stack2(x, 16, 2, name="conv3")
        return res.stack2(x, 32, 2, stride1=1, name="conv4")

    return res.ResNet(
        stacks, True, True, model_name="resnet_v2_small", weights=None, input_shape=SHAPE, classes=CLASSES
    )


def resnet():
    from tf_keras.src.applications import resnet as res

    def stacks(x):
        x = res.stack1(x, 8, 2, stride1=1, name="conv2")
        return res.stack1(x, 16, 2, name="conv3")

    return res.ResNet(stacks, False, True, model_name="resnet_small", weights=None, input_shape=SHAPE, classes=CLASSES)


FAMILIES = {
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet": efficientnet,
    "densenet": densenet,
    "resnet_v2": resnet_v2,
    "resnet": resnet,
}


def build_and_train(family: str, data: dict, path, epochs: int = 2):
    """Build the family's model, train it briefly on ``data`` and save it as a SavedModel at ``path``."""
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = FAMILIES[family]()
    model.compile(k.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=32, verbose=0)
    model.save(str(path))
    return path
