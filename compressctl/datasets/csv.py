"""CSV files: ``train`` and ``test`` with a header row, a ``label`` column and numeric feature columns.

Samples are vectors of the ``features`` columns (default: every column but the label) streamed by
``tf.data.experimental.CsvDataset``. Both files are checked row by row first, without keeping them,
so a missing column or a value that is not a number is one error naming the file, line and column.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.datasets.base import SHUFFLE_BUFFER, DataSource
from compressctl.datasets.specs import CsvData


def _header(path: Path, split: str) -> list[str]:
    if not path.exists():
        raise UserError(f"{path}: {split} CSV file not found")
    if not path.is_file():
        raise UserError(f"{path}: {split} must be a CSV file")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}:1: not a UTF-8 text file ({exc.reason})") from None
    if not header:
        raise UserError(f"{path}:1: no header row; the first line must name the columns")
    return [name.strip() for name in header]


class CsvSource(DataSource):
    format = "csv"

    def __init__(self, spec: CsvData):
        super().__init__(f"csv {spec.train}")
        self.spec = spec
        self.files_by_split = {"train": Path(spec.train), "test": Path(spec.test)}
        headers = {split: _header(path, split) for split, path in self.files_by_split.items()}
        columns = headers["train"]
        for split, path in self.files_by_split.items():
            header = headers[split]
            if spec.label not in header:
                raise UserError(f"{path}:1: no label column {spec.label!r} (columns: {', '.join(header)})")
            wanted = spec.features or [c for c in columns if c != spec.label]
            missing = [c for c in wanted if c not in header]
            if missing:
                raise UserError(
                    f"{path}:1: no feature column(s) {', '.join(map(repr, missing))} (columns: {', '.join(header)})"
                )
        self.features = list(spec.features or [c for c in columns if c != spec.label])
        if not self.features:
            raise UserError(f"{spec.train}:1: no feature columns besides the label {spec.label!r}")
        if spec.label in self.features:
            raise UserError(f"{spec.train}:1: the label column {spec.label!r} is also listed as a feature")
        self.headers = headers
        for split, path in self.files_by_split.items():
            try:
                self._check_rows(split)
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
            except csv.Error as exc:
                raise UserError(f"{path}: not a readable CSV file ({exc})") from None

    def _check_rows(self, split: str) -> None:
        """Every row has a number in each used column; counts rows and the label range on the way."""
        path, header = self.files_by_split[split], self.headers[split]
        used = [(name, header.index(name)) for name in (*self.features, self.spec.label)]
        count, low, high = 0, math.inf, -math.inf
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                if len(row) != len(header):
                    raise UserError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
                for name, column in used:
                    try:
                        value = float(row[column])
                    except ValueError:
                        raise UserError(f"{path}:{line}: column {name!r}: {row[column]!r} is not a number") from None
                    if not math.isfinite(value):
                        raise UserError(f"{path}:{line}: column {name!r}: {row[column]!r} is not finite")
                label = float(row[used[-1][1]])
                low, high = min(low, label), max(high, label)
                count += 1
        if count == 0:
            raise UserError(f"{path}: no data rows after the header")
        self._counts[split] = count
        self._label_ranges[split] = (low, high)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (len(self.features),)

    def elements(self, split: str, shuffle_seed: int | None = None):
        from compressctl.core.env import tf

        tensorflow = tf()
        header = self.headers[split]
        # Columns come back in file order; ``order`` puts the features in the recipe's order.
        names = sorted((*self.features, self.spec.label), key=header.index)
        label_at = names.index(self.spec.label)
        order = [names.index(f) for f in self.features]
        integral = self._label_ranges["train"][0].is_integer() and self._label_ranges["train"][1].is_integer()
        # Labels are read as numbers ("3" or "3.0") and become int64 class ids when every one is whole.
        defaults = [tensorflow.float64 if name == self.spec.label else tensorflow.float32 for name in names]
        select = [header.index(name) for name in names]
        dataset = tensorflow.data.experimental.CsvDataset(
            str(self.files_by_split[split]), defaults, header=True, select_cols=select
        )

        def sample(*fields):
            x = tensorflow.stack([fields[i] for i in order])
            label = fields[label_at]
            return x, tensorflow.cast(label, tensorflow.int64 if integral else tensorflow.float32)

        dataset = dataset.map(sample)
        if shuffle_seed is not None:
            dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
        return dataset

    def files(self) -> list[Path]:
        return list(self.files_by_split.values())

    def describe_paths(self) -> dict:
        return {"train": self.spec.train, "test": self.spec.test, "label": self.spec.label, "features": self.features}
