"""Sample models and data, built reproducibly from scikit-learn's bundled digits (no download).

``python -m compressctl.model.samples --out sample_models`` writes:
  digits.npz        x_train (1400), y_train, x_test (397), y_test; 28×28×1 float32 in [0, 1]
  lenet5_digits/    LeNet-5 (conv 20@5×5, pool, conv 50@5×5, pool, dense 500, dense 10), Keras SavedModel
  mlp_digits/       MLP 300-100-10, Keras SavedModel
  digits_images/    the same digits as 28×28 grayscale PNGs: {train,test}/<class>/<index>.png
  digits_tfrecord/  the same digits as train.tfrecord and test.tfrecord: tf.train.Examples with
                    `image` (784 floats, 28×28×1) and `label` (int64)
  breast_cancer/    scikit-learn's breast cancer set as train.csv (455 rows) and test.csv (114 rows):
                    30 standardized feature columns and a `diagnosis` label column (0/1)
  mlp_breast_cancer/  MLP 32-16-1 (sigmoid) trained on breast_cancer/train.csv, Keras SavedModel
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

TRAIN_SAMPLES = 1400
SEED = 0


def digits_28(seed: int = SEED) -> dict[str, np.ndarray]:
    """The 1,797 8×8 digits, upscaled bilinearly to 28×28×1, shuffled and split 1400 / 397."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    big = np.stack([zoom(img, 3.5, order=1) for img in images])
    big = np.clip(big, 0.0, 1.0).astype(np.float32)[..., None]
    order = np.random.default_rng(seed).permutation(len(big))
    big, labels = big[order], digits.target[order].astype(np.int64)
    return {
        "x_train": big[:TRAIN_SAMPLES],
        "y_train": labels[:TRAIN_SAMPLES],
        "x_test": big[TRAIN_SAMPLES:],
        "y_test": labels[TRAIN_SAMPLES:],
    }


def lenet5(width: float = 1.0):
    """LeNet-5 as in Caffe and Deep Compression (431k parameters at width 1)."""
    from compressctl.core.env import keras

    k = keras()
    return k.Sequential(
        [
            k.layers.Input((28, 28, 1), name="image"),
            k.layers.Conv2D(int(20 * width), 5, activation="relu", name="conv1"),
            k.layers.MaxPool2D(name="pool1"),
            k.layers.Conv2D(int(50 * width), 5, activation="relu", name="conv2"),
            k.layers.MaxPool2D(name="pool2"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(int(500 * width), activation="relu", name="fc1"),
            k.layers.Dense(10, activation="softmax", name="fc2"),
        ],
        name="lenet5",
    )


def mlp():
    """LeNet-300-100."""
    from compressctl.core.env import keras

    k = keras()
    return k.Sequential(
        [
            k.layers.Input((28, 28, 1), name="image"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(300, activation="relu", name="fc1"),
            k.layers.Dense(100, activation="relu", name="fc2"),
            k.layers.Dense(10, activation="softmax", name="fc3"),
        ],
        name="mlp_300_100",
    )


def train(model, data: dict, epochs: int, seed: int = SEED):
    from compressctl.core.env import keras, seed_everything

    seed_everything(seed)
    k = keras()
    model.compile(k.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data["x_train"], data["y_train"], batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def write_image_folder(data: dict[str, np.ndarray], out: Path) -> int:
    """Each split as ``out/<split>/<class>/<index>.png`` (8-bit grayscale); returns the number of files."""
    from compressctl.core.env import tf

    tensorflow = tf()
    written = 0
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        for label in np.unique(y):
            (out / split / str(int(label))).mkdir(parents=True, exist_ok=True)
        for index, (image, label) in enumerate(zip(x, y, strict=True)):
            pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
            png = tensorflow.io.encode_png(pixels).numpy()
            (out / split / str(int(label)) / f"{index:04d}.png").write_bytes(png)
            written += 1
    return written


def write_tfrecords(data: dict[str, np.ndarray], out: Path) -> None:
    """Each split as ``out/<split>.tfrecord`` of tf.train.Examples: ``image`` (float list) and ``label`` (int64)."""
    from compressctl.core.env import tf

    tensorflow = tf()
    train = tensorflow.train
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with tensorflow.io.TFRecordWriter(str(out / f"{split}.tfrecord")) as writer:
            for image, label in zip(data[f"x_{split}"], data[f"y_{split}"], strict=True):
                feature = {
                    "image": train.Feature(float_list=train.FloatList(value=image.reshape(-1))),
                    "label": train.Feature(int64_list=train.Int64List(value=[int(label)])),
                }
                writer.write(train.Example(features=train.Features(feature=feature)).SerializeToString())


def breast_cancer(seed: int = SEED) -> dict:
    """The 569 breast cancer samples, shuffled, split 455 / 114, standardized with the train split's statistics."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    order = np.random.default_rng(seed).permutation(len(bunch.data))
    x, y = bunch.data[order].astype(np.float64), bunch.target[order].astype(np.int64)
    cut = int(round(0.8 * len(x)))
    mean, std = x[:cut].mean(axis=0), x[:cut].std(axis=0)
    x = ((x - mean) / std).astype(np.float32)
    columns = [name.replace(" ", "_") for name in bunch.feature_names]
    return {"columns": columns, "x_train": x[:cut], "y_train": y[:cut], "x_test": x[cut:], "y_test": y[cut:]}


def write_csv(data: dict, out: Path, label: str = "diagnosis") -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        lines = [",".join([*data["columns"], label])]
        for row, target in zip(data[f"x_{split}"], data[f"y_{split}"], strict=True):
            lines.append(",".join(f"{v:.6f}" for v in row) + f",{int(target)}")
        (out / f"{split}.csv").write_text("\n".join(lines) + "\n")


def tabular_mlp(features: int):
    from compressctl.core.env import keras

    k = keras()
    return k.Sequential(
        [
            k.layers.Input((features,), name="features"),
            k.layers.Dense(32, activation="relu", name="fc1"),
            k.layers.Dense(16, activation="relu", name="fc2"),
            k.layers.Dense(1, activation="sigmoid", name="out"),
        ],
        name="mlp_breast_cancer",
    )


def build(out: Path, log=print) -> None:
    from compressctl.core.env import seed_everything

    out.mkdir(parents=True, exist_ok=True)
    data = digits_28()
    np.savez_compressed(out / "digits.npz", **data)
    log(f"wrote {out / 'digits.npz'}: {len(data['x_train'])} train, {len(data['x_test'])} test samples")
    for name, factory, epochs in (("lenet5_digits", lenet5, 12), ("mlp_digits", mlp, 20)):
        seed_everything(SEED)
        model = train(factory(), data, epochs)
        _, accuracy = model.evaluate(data["x_test"], data["y_test"], verbose=0)
        model.save(str(out / name), save_format="tf")
        log(f"wrote {out / name}: {model.count_params():,} parameters, test accuracy {accuracy:.4f}")
    count = write_image_folder(data, out / "digits_images")
    log(f"wrote {out / 'digits_images'}: {count} PNG files, one folder per class")
    write_tfrecords(data, out / "digits_tfrecord")
    log(f"wrote {out / 'digits_tfrecord'}: train.tfrecord, test.tfrecord")
    table = breast_cancer()
    write_csv(table, out / "breast_cancer")
    rows = f"train.csv ({len(table['x_train'])} rows), test.csv ({len(table['x_test'])} rows)"
    log(f"wrote {out / 'breast_cancer'}: {rows}")
    from compressctl.core.env import keras

    seed_everything(SEED)
    model = tabular_mlp(len(table["columns"]))
    model.compile(keras().optimizers.Adam(1e-3), "binary_crossentropy", ["accuracy"])
    model.fit(table["x_train"], table["y_train"], batch_size=32, epochs=30, verbose=0, shuffle=True)
    _, accuracy = model.evaluate(table["x_test"], table["y_test"], verbose=0)
    model.save(str(out / "mlp_breast_cancer"), save_format="tf")
    log(f"wrote {out / 'mlp_breast_cancer'}: {model.count_params():,} parameters, test accuracy {accuracy:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sample_models", type=Path)
    args = parser.parse_args(argv)
    from compressctl.core.logs import quiet_tensorflow

    with quiet_tensorflow():
        build(args.out, log=lambda line: print(line, file=sys.stdout, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
