from pathlib import Path

import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.datasets import open_source
from compressctl.datasets.specs import TfrecordData
from tests.datasets.conftest import write_tfrecord


def spec(root, **extra):
    fields = {
        "format": "tfrecord",
        "train": str(root / "train-*.tfrecord"),
        "test": str(root / "test-*.tfrecord"),
        "features": {"image": {"dtype": "float32", "shape": [8, 8, 1]}},
        "label": "label",
    }
    return TfrecordData(**{**fields, **extra})


def test_reads_every_shard_in_the_declared_shape(tfrecord_files, small_data):
    source = open_source(spec(tfrecord_files))
    assert source.sample_shape == (8, 8, 1)
    assert (source.train_samples, source.test_samples) == (24, 12)
    x, y = map(np.concatenate, zip(*source.test_batches(), strict=True))
    np.testing.assert_allclose(x, small_data["x_test"], atol=1e-6)
    assert list(y) == list(small_data["y_test"])
    calibration = source.calibration(5, seed=3)
    index = np.sort(np.random.default_rng(3).choice(24, 5, replace=False))
    np.testing.assert_allclose(calibration, small_data["x_train"][index], atol=1e-6)
    assert source.describe()["files"] == {"train": 2, "test": 1}


@pytest.mark.parametrize(
    "features, message",
    [
        ({"image": {"dtype": "float32", "shape": [8, 8, 3]}}, "feature 'image' does not match"),
        ({"image": {"dtype": "int64", "shape": [8, 8, 1]}}, "feature 'image' does not match"),
        ({"pixels": {"dtype": "float32", "shape": [64]}}, "has no feature 'pixels'"),
        ({"label": {"dtype": "int64", "shape": []}}, "lists only the label"),
    ],
)
def test_wrong_feature_spec_is_one_clear_error(tfrecord_files, features, message):
    with pytest.raises(UserError, match=message):
        open_source(spec(tfrecord_files, features=features))


def test_missing_files_and_non_tfrecord_files(tfrecord_files, tmp_path):
    with pytest.raises(UserError, match="no train TFRecord files match"):
        open_source(spec(tmp_path))
    (tmp_path / "train-0.tfrecord").write_bytes(b"this is not a tfrecord file at all" * 4)
    (tmp_path / "test-0.tfrecord").write_bytes((tfrecord_files / "test-0.tfrecord").read_bytes())
    with pytest.raises(UserError, match="not a readable TFRecord file"):
        open_source(spec(tmp_path))


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise AssertionError(field)


def test_streaming_a_set_larger_than_its_memory_budget(tmp_path):
    """64 MiB of train samples are counted, calibrated from and streamed with far less memory growth."""
    rng = np.random.default_rng(0)
    for shard in range(4):  # 4 × 4,000 samples × 1,024 float32
        write_tfrecord(tmp_path / f"train-{shard}.tfrecord", rng.random((4000, 1024), np.float32), np.zeros(4000))
    write_tfrecord(tmp_path / "test-0.tfrecord", rng.random((8, 1024), np.float32), np.zeros(8))
    source = open_source(spec(tmp_path, features={"image": {"dtype": "float32", "shape": [1024]}}))
    source.count("train")  # warm up: tf.data's own first-use allocations are not the data
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    except OSError:
        pytest.skip("cannot reset the peak RSS here")
    before = _rss_kib("VmRSS:")
    source._counts.clear()
    assert source.count("train") == 16000
    assert source.calibration(200, seed=0).shape == (200, 1024)
    seen = sum(len(x) for x, _ in source.train_batches(64, seed=0).as_numpy_iterator())
    assert seen == 16000
    growth_mib = (_rss_kib("VmHWM:") - before) / 1024
    assert growth_mib < 24, f"peak RSS grew by {growth_mib:.1f} MiB streaming a 62.5 MiB split"
