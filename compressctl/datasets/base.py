"""What every data source provides, and the streaming machinery they share.

A source yields single samples ``(x, y)`` per split as a ``tf.data.Dataset``; from that the base
class builds everything the pipeline needs without holding a split in memory: shuffled, batched,
prefetched train batches for fine-tuning, test batches streamed through a model or interpreter,
``calibration(n, seed)`` (n samples drawn by index, one pass), the sample shape, and a fingerprint
of the source's files for the stage cache and the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from compressctl.core.errors import UserError

# Samples held for shuffling by sources that cannot shuffle cheaply (file names): a fixed number,
# so memory does not grow with the data set.
SHUFFLE_BUFFER = 1024
TEST_BATCH = 256
# Fixed, not AUTOTUNE: the autotuner may enlarge buffers as a run goes on (within a share of the machine's
# RAM), so a longer run could hold more batches; fixed sizes keep the data's memory a constant.
PREFETCH_BATCHES = 2
PARALLEL_CALLS = 2


class DataSource:
    """One data set: train and test splits of ``(x, y)`` samples, streamed."""

    format: ClassVar[str]
    in_memory: ClassVar[bool] = False  # True only for npz: arrays the numpy training path can index
    # A plugin's source (core.registry, kind ``data_sources``) names its recipe model here: a StrictModel
    # with ``format: Literal["<its format>"]``; ``open_source`` builds the source from it, ``Cls(spec)``.
    Spec: ClassVar[type]

    def __init__(self, label: str):
        self.label = label  # how errors name the source, e.g. "images data/train"
        self._counts: dict[str, int] = {}
        self._label_ranges: dict[str, tuple[float, float]] = {}
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ what a format implements
    def elements(self, split: str, shuffle_seed: int | None = None):
        """The split as an unbatched ``tf.data.Dataset`` of ``(x float32, y)``; shuffled when a seed is given."""
        raise NotImplementedError

    def files(self) -> list[Path]:
        """The files whose bytes define the data (hashed into the fingerprint)."""
        raise NotImplementedError

    def describe_paths(self) -> dict:
        """Where the data comes from, for the report (``train``, ``test``, ...)."""
        raise NotImplementedError

    @property
    def sample_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def labels(self, split: str):
        """The split's labels alone, as a dataset of scalars; formats override it when cheaper than decoding x."""
        return self.elements(split).map(lambda x, y: y)

    def subset(self, split: str, indices: np.ndarray):
        """Samples at sorted ``indices`` of the split, in order (one pass; formats override when they can seek)."""
        from compressctl.core.env import tf

        tensorflow = tf()
        wanted = tensorflow.constant(np.asarray(indices, dtype=np.int64))
        return (
            self.elements(split)
            .enumerate()
            .filter(lambda i, e: tensorflow.reduce_any(tensorflow.equal(wanted, i)))
            .map(lambda i, e: e)
        )

    # ------------------------------------------------------------------ shared, streaming
    def train_batches(self, batch_size: int, seed: int):
        """Shuffled (reshuffled every epoch), batched and prefetched train samples for ``model.fit``."""
        return self.elements("train", shuffle_seed=seed).batch(batch_size).prefetch(PREFETCH_BATCHES)

    def test_batches(self, batch_size: int = TEST_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The test split in order, as numpy batches, one batch in memory at a time."""
        dataset = self.elements("test").batch(batch_size).prefetch(PREFETCH_BATCHES)
        yield from self.guard(dataset.as_numpy_iterator())

    def outputs_and_labels(self, predict: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` over the streamed test split: the outputs (samples × outputs) and the labels."""
        outputs, labels = [], []
        for x, y in self.test_batches():
            outputs.append(np.asarray(predict(x), dtype=np.float32))
            labels.append(np.asarray(y))
        return np.concatenate(outputs), np.concatenate(labels)

    def score(self, predict: Callable[[np.ndarray], np.ndarray], task) -> float:
        """The task's metric of ``predict`` on the test split, streamed."""
        outputs, labels = self.outputs_and_labels(predict)
        return task.score(outputs, labels)

    def head(self, n: int, split: str = "test") -> np.ndarray:
        """The first ``n`` inputs of a split (for smoke tests, timing and output inspection)."""
        batches = self.guard(self.elements(split).take(n).batch(n).as_numpy_iterator())
        for x, _ in batches:
            return np.asarray(x, dtype=np.float32)
        raise UserError(f"{self.label}: the {split} split is empty")

    def count(self, split: str) -> int:
        if split not in self._counts:
            self._scan_labels(split)
        return self._counts[split]

    @property
    def train_samples(self) -> int:
        return self.count("train")

    @property
    def test_samples(self) -> int:
        return self.count("test")

    def calibration(self, n: int, seed: int) -> np.ndarray:
        """``min(n, train samples)`` train inputs drawn without replacement from the seed, in split order."""
        return self.labeled_sample(n, seed)[0]

    def labeled_sample(self, n: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """``min(n, samples)`` (inputs, labels) of a split drawn without replacement from the seed, in split order."""
        total = self.count(split)
        n = min(n, total)
        indices = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
        batches = self.guard(self.subset(split, indices).batch(max(n, 1)).as_numpy_iterator())
        for x, y in batches:
            return np.asarray(x, dtype=np.float32), np.asarray(y)
        raise UserError(f"{self.label}: the {split} split is empty")

    def fingerprint(self) -> str:
        """sha256 over the source's settings and the bytes of its files (computed once)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(repr(sorted(self.describe_paths().items())).encode())
            for path in self.files():
                digest.update(str(path).encode() + b"\0")
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def describe(self) -> dict:
        """The report's ``data`` record: format, where, fingerprint and sample counts."""
        paths = self.describe_paths()
        return {
            "format": self.format,
            # ``path`` and ``sha256`` are what readers of npz reports (renderers, compare) look for:
            # here the train split's location and the fingerprint.
            "path": str(paths.get("train") or paths.get("function")),
            "sha256": self.fingerprint(),
            **paths,
            "fingerprint": self.fingerprint(),
            "sample_shape": list(self.sample_shape),
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
        }

    def check_against_model(self, input_shape: tuple, output_units: int, model_name: str) -> None:
        """Refuse samples that do not fit the model's input, or class labels beyond its outputs (one pass each)."""
        expected = tuple(input_shape)
        got = self.sample_shape
        fits = len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got, strict=True))
        if not fits:
            dims = ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "")
            raise UserError(f"{self.label}: samples have shape {got} but {model_name} expects input shape ({dims})")
        classes = max(output_units, 2)
        for split in ("train", "test"):
            if split not in self._label_ranges:
                self._scan_labels(split)
            low, high = self._label_ranges[split]
            integral = float(low).is_integer() and float(high).is_integer()
            if integral and (low < 0 or high >= classes):
                raise UserError(
                    f"{self.label}: {split} labels lie in [{low:g}, {high:g}] but {model_name} has {output_units} "
                    f"output unit(s), so labels must lie in [0, {classes - 1}]"
                )

    def _scan_labels(self, split: str) -> None:
        """Count a split and find its label range, streaming its labels once."""
        count, low, high = 0, np.inf, -np.inf
        for y in self.guard(self.labels(split).batch(4096).as_numpy_iterator()):
            y = np.asarray(y)
            if y.size:
                count += len(y)
                if not np.all(np.isfinite(y.astype(np.float64))):
                    raise UserError(f"{self.label}: the {split} split holds NaN or infinite labels")
                low, high = min(low, float(y.min())), max(high, float(y.max()))
        if count == 0:
            raise UserError(f"{self.label}: the {split} split is empty")
        self._counts[split] = count
        self._label_ranges[split] = (low, high)

    def guard(self, iterator):
        """Iterate, turning a decoding failure inside tf.data into one error line naming the source."""
        from compressctl.core.env import tf

        errors = tf().errors
        try:
            yield from iterator
        except (errors.InvalidArgumentError, errors.DataLossError, errors.NotFoundError, errors.UnknownError) as exc:
            message = (exc.message or type(exc).__name__).strip().splitlines()[0]
            raise UserError(f"{self.label}: could not read the data: {message}") from None


def label_to_class(y, tensorflow):
    """A label tensor as one scalar: one-hot rows become their argmax; integers int64, other numbers float32."""
    if y.shape.rank and y.shape[-1] is not None and y.shape[-1] > 1:
        return tensorflow.argmax(y, axis=-1, output_type=tensorflow.int64)
    y = tensorflow.reshape(y, [])
    if y.dtype.is_integer or y.dtype == tensorflow.bool:
        return tensorflow.cast(y, tensorflow.int64)
    return tensorflow.cast(y, tensorflow.float32)
