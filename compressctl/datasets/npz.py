"""The ``.npz`` source: x_train, y_train, x_test, y_test arrays, checked as ``compressctl.datasets.arrays`` always has.

An npz is loaded whole by nature, so this source also keeps the arrays (``x_train`` ...) that the
numpy training path and the distillation stage index directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compressctl.datasets import arrays as npz_data
from compressctl.datasets.base import TEST_BATCH, DataSource


class NpzSource(DataSource):
    format = "npz"
    in_memory = True

    def __init__(
        self, path: str | Path | None = None, dataset: npz_data.Dataset | None = None, keep_float_labels: bool = False
    ):
        self.dataset = dataset if dataset is not None else npz_data.load_npz(path, keep_float_labels)
        super().__init__(str(self.dataset.path))
        self.path = self.dataset.path
        self.x_train, self.y_train = self.dataset.x_train, self.dataset.y_train
        self.x_test, self.y_test = self.dataset.x_test, self.dataset.y_test

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.dataset.sample_shape

    def _arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def elements(self, split: str, shuffle_seed: int | None = None):
        from compressctl.core.env import tf

        tensorflow = tf()
        x, y = self._arrays(split)
        dataset = tensorflow.data.Dataset.from_tensor_slices((x, y))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
        return dataset

    def files(self) -> list[Path]:
        return [self.path]

    def describe_paths(self) -> dict:
        return {"path": str(self.path)}

    def test_batches(self, batch_size: int = TEST_BATCH):
        for start in range(0, len(self.x_test), batch_size):
            yield self.x_test[start : start + batch_size], self.y_test[start : start + batch_size]

    def outputs_and_labels(self, predict):
        # One call over the whole split, as before streaming sources existed (Keras batches it).
        return np.asarray(predict(self.x_test), dtype=np.float32), self.y_test

    def head(self, n: int, split: str = "test") -> np.ndarray:
        return self._arrays(split)[0][:n]

    def count(self, split: str) -> int:
        return len(self._arrays(split)[0])

    def labeled_sample(self, n: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        x, y = self._arrays(split)
        pick = np.sort(np.random.default_rng(seed).choice(len(x), min(n, len(x)), replace=False))
        return x[pick], y[pick]

    def fingerprint(self) -> str:
        from compressctl.core.measure import sha256_file

        if self._fingerprint is None:
            self._fingerprint = sha256_file(self.path)
        return self._fingerprint

    def describe(self) -> dict:
        # ``path`` and ``sha256`` are the report's npz fields from before other formats existed.
        return {
            "format": self.format,
            "path": str(self.path),
            "sha256": self.fingerprint(),
            "fingerprint": self.fingerprint(),
            "sample_shape": list(self.sample_shape),
            "train_samples": int(len(self.x_train)),
            "test_samples": int(len(self.x_test)),
        }

    def check_against_model(self, input_shape: tuple, output_units: int, model_name: str) -> None:
        npz_data.check_against_model(self.dataset, input_shape, output_units, model_name)


def as_source(data) -> DataSource:
    """A data source as it is, or a loaded ``compressctl.datasets.arrays.Dataset`` wrapped as the npz source."""
    return NpzSource(dataset=data) if isinstance(data, npz_data.Dataset) else data


def for_task(source: DataSource, regression: bool) -> DataSource:
    """An npz with the labels its task needs (float targets or class ids); other sources as they are."""
    if isinstance(source, NpzSource):
        return NpzSource(dataset=npz_data.with_task_labels(source.dataset, regression))
    return source
