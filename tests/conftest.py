"""Tiny seeded models and data sets, built once per session, so the suite stays fast."""

from __future__ import annotations

import os
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
    from compressctl.tfenv import keras, seed_everything

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
