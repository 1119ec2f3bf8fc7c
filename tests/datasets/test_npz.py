import numpy as np

from compressctl.datasets import open_source
from compressctl.datasets.arrays import load_npz
from compressctl.datasets.npz import NpzSource
from compressctl.litert.evaluate import TaskInfo
from compressctl.stages.base import StageContext


def test_a_plain_path_is_the_npz_source_with_todays_checks_and_draws(tiny_data):
    source = open_source(str(tiny_data))
    assert isinstance(source, NpzSource) and source.in_memory
    legacy = load_npz(tiny_data)
    np.testing.assert_array_equal(source.x_train, legacy.x_train)
    # Calibration draws what the pipeline drew before data sources existed.
    rng = np.random.default_rng(7)
    expected = legacy.x_train[np.sort(rng.choice(len(legacy.x_train), 50, replace=False))]
    np.testing.assert_array_equal(source.calibration(50, seed=7), expected)
    record = source.describe()
    assert record["format"] == "npz" and record["path"] == str(tiny_data) and len(record["sha256"]) == 64
    assert (record["train_samples"], record["test_samples"]) == (300, 90)
    x, y = map(np.concatenate, zip(*source.test_batches(batch_size=64), strict=True))
    np.testing.assert_array_equal(x, legacy.x_test)
    np.testing.assert_array_equal(y, legacy.y_test)


def test_stage_context_wraps_a_loaded_npz_dataset(tiny_data):
    ctx = StageContext(data=load_npz(tiny_data), task=TaskInfo(binary=False, from_logits=False))
    assert isinstance(ctx.data, NpzSource) and ctx.data.train_samples == 300
