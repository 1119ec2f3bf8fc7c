import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.datasets import open_source
from compressctl.datasets.specs import CsvData
from tests.datasets.conftest import write_csv


def spec(root, **extra):
    return CsvData(format="csv", train=str(root / "train.csv"), test=str(root / "test.csv"), label="label", **extra)


def test_features_default_to_every_other_column(csv_files, small_data):
    source = open_source(spec(csv_files))
    assert source.sample_shape == (64,)
    assert (source.train_samples, source.test_samples) == (24, 12)
    x, y = map(np.concatenate, zip(*source.test_batches(batch_size=5), strict=True))
    np.testing.assert_allclose(x, small_data["x_test"].reshape(12, -1), atol=1e-5)
    assert y.dtype == np.int64 and list(y) == list(small_data["y_test"])


def test_named_features_come_in_the_recipes_order(csv_files, small_data):
    source = open_source(spec(csv_files, features=["f5", "f0"]))
    assert source.sample_shape == (2,)
    np.testing.assert_allclose(source.head(3), small_data["x_test"].reshape(12, -1)[:3][:, [5, 0]], atol=1e-5)
    assert source.calibration(4, seed=0).shape == (4, 2)


def test_fractional_labels_stay_numbers_for_regression(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    for split in ("train", "test"):
        write_csv(tmp_path / f"{split}.csv", x, [0.5, 1.25, 2, 3, 4, 5])
    _, y = next(open_source(spec(tmp_path)).test_batches())
    assert y.dtype == np.float32 and list(y[:2]) == [0.5, 1.25]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"label": "target"}, r"train.csv:1: no label column 'target'"),
        ({"features": ["f0", "nope"]}, r"train.csv:1: no feature column\(s\) 'nope'"),
        ({"features": ["f0", "label"]}, "also listed as a feature"),
    ],
)
def test_wrong_columns_name_the_file_and_line(csv_files, change, message):
    fields = {"format": "csv", "train": str(csv_files / "train.csv"), "test": str(csv_files / "test.csv")}
    with pytest.raises(UserError, match=message):
        open_source(CsvData(**{**fields, "label": "label", **change}))


def test_bad_rows_name_the_file_line_and_column(csv_files, tmp_path):
    lines = (csv_files / "train.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "abc", 1)
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.csv").write_text((csv_files / "test.csv").read_text())
    with pytest.raises(UserError, match=r"train.csv:4: column 'f2': 'abc' is not a number"):
        open_source(spec(tmp_path))
    (tmp_path / "train.csv").write_text(lines[0] + "\n1,2\n")
    with pytest.raises(UserError, match=r"train.csv:2: 2 fields, the header has 65"):
        open_source(spec(tmp_path))
    (tmp_path / "train.csv").write_text(lines[0] + "\n")
    with pytest.raises(UserError, match="no data rows"):
        open_source(spec(tmp_path))


def test_undecodable_file(csv_files, tmp_path):
    (tmp_path / "train.csv").write_bytes((csv_files / "train.csv").read_bytes() + b"\xff\xfe\x00garbage\n")
    (tmp_path / "test.csv").write_text((csv_files / "test.csv").read_text())
    with pytest.raises(UserError, match="train.csv: not a UTF-8 text file"):
        open_source(spec(tmp_path))


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="train CSV file not found"):
        open_source(spec(tmp_path))
