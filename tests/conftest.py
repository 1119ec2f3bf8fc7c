"""Tiny seeded models and data sets, built once per session, so the suite stays fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, **quadrant_data())
    return path


def build_tiny_cnn():
    from compressctl.tfenv import keras, seed_everything

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
    from compressctl.tfenv import keras

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
    from compressctl.tfenv import keras

    return keras().models.load_model(str(tiny_cnn_path), compile=False)


@pytest.fixture()
def stage_ctx(tiny_data):
    from compressctl.data import load_npz
    from compressctl.evaluate import TaskInfo
    from compressctl.stages.base import StageContext

    return StageContext(data=load_npz(tiny_data), task=TaskInfo(binary=False, from_logits=False), batch_size=32)


def write_recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


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
    from compressctl.tfenv import keras, seed_everything

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
