"""TFRecord files of ``tf.train.Example`` records: ``train`` and ``test`` globs, ``features`` and ``label``.

The input is the one feature listed besides the label, shaped as its spec says, or several such
features flattened and concatenated in the order given. The first record of each split is parsed
before any work, so a wrong name, dtype or shape is one error naming the file and feature.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.datasets.base import PARALLEL_CALLS, SHUFFLE_BUFFER, DataSource, label_to_class
from compressctl.datasets.specs import FeatureSpec, TfrecordData


class TfrecordSource(DataSource):
    format = "tfrecord"

    def __init__(self, spec: TfrecordData):
        super().__init__(f"tfrecord {spec.train}")
        self.spec = spec
        self.inputs = {name: f for name, f in spec.features.items() if name != spec.label}
        if not self.inputs:
            raise UserError(f"{spec.train}: features lists only the label {spec.label!r}; name the input feature(s)")
        self.label_spec = spec.features.get(spec.label, FeatureSpec(dtype="int64", shape=[]))
        self.patterns = {"train": spec.train, "test": spec.test}
        self.paths = {}
        for split, pattern in self.patterns.items():
            matched = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
            if not matched:
                raise UserError(f"{pattern}: no {split} TFRecord files match this pattern")
            self.paths[split] = matched
        for split in self.paths:
            self._check_first(split)

    def _feature_map(self, names):
        from compressctl.core.env import tf

        tensorflow = tf()
        specs = {**self.inputs, self.spec.label: self.label_spec}
        return {
            name: tensorflow.io.FixedLenFeature(specs[name].shape, tensorflow.as_dtype(specs[name].dtype))
            for name in names
        }

    def _records(self, split: str, paths=None):
        from compressctl.core.env import tf

        files = [str(p) for p in (paths or self.paths[split])]
        return tf().data.TFRecordDataset(files, compression_type=self.spec.compression or None)

    def _check_first(self, split: str) -> None:
        from compressctl.core.env import tf

        tensorflow = tf()
        path = self.paths[split][0]
        try:
            for record in self._records(split, [path]).take(1):
                example = tensorflow.train.Example.FromString(record.numpy())
                present = example.features.feature
                for name in (*self.inputs, self.spec.label):
                    if name not in present:
                        raise UserError(
                            f"{path}: the first record has no feature {name!r} (it has: {', '.join(sorted(present))})"
                        )
                for name in (*self.inputs, self.spec.label):
                    try:
                        tensorflow.io.parse_single_example(record, self._feature_map([name]))
                    except tensorflow.errors.InvalidArgumentError as exc:
                        want = {**self.inputs, self.spec.label: self.label_spec}[name]
                        kind = present[name].WhichOneof("kind")
                        raise UserError(
                            f"{path}: feature {name!r} does not match {{dtype: {want.dtype}, shape: {want.shape}}} "
                            f"(the record holds a {kind} of {len(getattr(present[name], kind).value)} value(s)): "
                            f"{exc.message.splitlines()[0]}"
                        ) from None
                return
        except (tensorflow.errors.DataLossError, tensorflow.errors.InvalidArgumentError) as exc:
            raise UserError(f"{path}: not a readable TFRecord file ({exc.message.splitlines()[0]})") from None
        except Exception as exc:  # noqa: BLE001 - a record that is not a tf.train.Example
            if isinstance(exc, UserError):
                raise
            raise UserError(f"{path}: the first record is not a tf.train.Example ({exc})") from None
        raise UserError(f"{path}: holds no records")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if len(self.inputs) == 1:
            return tuple(next(iter(self.inputs.values())).shape)
        return (sum(math.prod(f.shape) for f in self.inputs.values()),)

    def _parse(self, record):
        from compressctl.core.env import tf

        tensorflow = tf()
        parsed = tensorflow.io.parse_single_example(record, self._feature_map([*self.inputs, self.spec.label]))
        if len(self.inputs) == 1:
            x = parsed[next(iter(self.inputs))]
        else:
            x = tensorflow.concat([tensorflow.reshape(parsed[n], [-1]) for n in self.inputs], axis=0)
        return tensorflow.cast(x, tensorflow.float32), label_to_class(parsed[self.spec.label], tensorflow)

    def elements(self, split: str, shuffle_seed: int | None = None):
        records = self._records(split)
        if shuffle_seed is not None:
            records = records.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
        return records.map(self._parse, num_parallel_calls=PARALLEL_CALLS, deterministic=True)

    def labels(self, split: str):
        from compressctl.core.env import tf

        tensorflow = tf()
        label, features = self.spec.label, self._feature_map([self.spec.label])
        return self._records(split).map(
            lambda r: label_to_class(tensorflow.io.parse_single_example(r, features)[label], tensorflow)
        )

    def files(self) -> list[Path]:
        return [*self.paths["train"], *self.paths["test"]]

    def describe_paths(self) -> dict:
        return {
            "train": self.spec.train,
            "test": self.spec.test,
            "files": {split: len(paths) for split, paths in self.paths.items()},
            "features": {n: f.model_dump() for n, f in self.spec.features.items()},
            "label": self.spec.label,
        }
