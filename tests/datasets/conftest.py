"""Tiny data sets written in each format, from the session's quadrant images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import quadrant_data


def write_images(root: Path, data: dict, rgb: bool = False) -> Path:
    """``root/{train,test}/<class>/<i>.png`` from the arrays (8-bit)."""
    from compressctl.core.env import tf

    for split in ("train", "test"):
        for i, (x, y) in enumerate(zip(data[f"x_{split}"], data[f"y_{split}"], strict=True)):
            folder = root / split / f"class_{int(y)}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
            if rgb:
                pixels = np.repeat(pixels, 3, axis=-1)
            (folder / f"{i:04d}.png").write_bytes(tf().io.encode_png(pixels).numpy())
    return root


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, label: str = "label") -> Path:
    x = x.reshape(len(x), -1)
    header = [f"f{j}" for j in range(x.shape[1])]
    lines = [",".join([*header, label])]
    lines += [",".join(f"{v:.5f}" for v in row) + f",{target}" for row, target in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tfrecord(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    from compressctl.core.env import tf

    tensorflow = tf()
    with tensorflow.io.TFRecordWriter(str(path)) as writer:
        for sample, label in zip(x, y, strict=True):
            features = {
                "image": tensorflow.train.Feature(float_list=tensorflow.train.FloatList(value=sample.reshape(-1))),
                "label": tensorflow.train.Feature(int64_list=tensorflow.train.Int64List(value=[int(label)])),
            }
            example = tensorflow.train.Example(features=tensorflow.train.Features(feature=features))
            writer.write(example.SerializeToString())
    return path


@pytest.fixture(scope="session")
def small_data() -> dict:
    return quadrant_data(n_train=24, n_test=12)


@pytest.fixture(scope="session")
def image_dirs(tmp_path_factory, small_data) -> Path:
    return write_images(tmp_path_factory.mktemp("images"), small_data)


@pytest.fixture(scope="session")
def csv_files(tmp_path_factory, small_data) -> Path:
    root = tmp_path_factory.mktemp("csv")
    write_csv(root / "train.csv", small_data["x_train"], small_data["y_train"])
    write_csv(root / "test.csv", small_data["x_test"], small_data["y_test"])
    return root


@pytest.fixture(scope="session")
def tfrecord_files(tmp_path_factory, small_data) -> Path:
    root = tmp_path_factory.mktemp("tfrecord")
    half = len(small_data["x_train"]) // 2
    write_tfrecord(root / "train-0.tfrecord", small_data["x_train"][:half], small_data["y_train"][:half])
    write_tfrecord(root / "train-1.tfrecord", small_data["x_train"][half:], small_data["y_train"][half:])
    write_tfrecord(root / "test-0.tfrecord", small_data["x_test"], small_data["y_test"])
    return root
