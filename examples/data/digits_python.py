"""A `format: python` data source: a function returning (train, test) tf.data.Datasets of (x, y).

    compressctl run examples/data/digits-python.yaml

Here the datasets stream the digits' PNG folders written by `python -m compressctl.model.samples`, decoding
each file when it is read; any tf.data pipeline works the same way (a database reader, a generator).
"""

import tensorflow as tf

ROOT = "sample_models/digits_images"


def _split(split: str) -> tf.data.Dataset:
    files = tf.data.Dataset.list_files(f"{ROOT}/{split}/*/*.png", shuffle=False)

    def load(path):
        image = tf.ensure_shape(tf.io.decode_png(tf.io.read_file(path), channels=1), [28, 28, 1])
        label = tf.strings.to_number(tf.strings.split(path, "/")[-2], tf.int64)
        return tf.cast(image, tf.float32) / 255.0, label

    return files.map(load)


def splits():
    return _split("train"), _split("test")
