import sys

import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.datasets import open_source
from compressctl.datasets.specs import PythonData

MODULE = """
import numpy as np
import tensorflow as tf

def samples():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    y = np.arange(10) % 2
    return tf.data.Dataset.from_tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices((x[:4], y[:4]))

def batched():
    train, test = samples()
    return train.batch(3), test.batch(3)

def not_datasets():
    return [1, 2], [3]

def unshaped():
    ds = tf.data.Dataset.range(4).map(lambda i: (tf.zeros([i + 1]), i))
    return ds, ds

def broken():
    raise RuntimeError("no data today")
"""


@pytest.fixture()
def module(tmp_path, monkeypatch):
    (tmp_path / "my_data_e1.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    yield "my_data_e1"
    sys.modules.pop("my_data_e1", None)


@pytest.mark.parametrize("function", ["samples", "batched"])
def test_single_samples_or_batches(module, function):
    source = open_source(PythonData(format="python", function=f"{module}:{function}"))
    assert source.sample_shape == (4,)
    assert (source.train_samples, source.test_samples) == (10, 4)
    x, y = next(source.test_batches())
    np.testing.assert_array_equal(x, np.arange(16, dtype=np.float32).reshape(4, 4))
    assert list(y) == [0, 1, 0, 1]
    assert source.calibration(3, seed=0).shape == (3, 4)
    assert source.describe()["module_file"].endswith("my_data_e1.py")


@pytest.mark.parametrize(
    "function, message",
    [
        ("no_such_module_e1:f", "could not import no_such_module_e1"),
        ("my_data_e1:missing", "has no function missing"),
        ("my_data_e1:not_datasets", "is a list, not a tf.data.Dataset"),
        ("my_data_e1:broken", "raised RuntimeError: no data today"),
        ("my_data_e1:unshaped", "samples have no fixed shape"),
    ],
)
def test_errors(module, function, message):
    with pytest.raises(UserError, match=message):
        open_source(PythonData(format="python", function=function))
