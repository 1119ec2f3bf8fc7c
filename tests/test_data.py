import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.datasets.arrays import check_against_model, load_npz

pytestmark = pytest.mark.unit


def save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def good(n=6, shape=(4,)):
    x = np.random.default_rng(0).random((n, *shape)).astype(np.float32)
    return {"x_train": x, "y_train": np.arange(n) % 3, "x_test": x, "y_test": np.arange(n) % 3}


def test_loads_and_converts_one_hot_labels(tmp_path):
    arrays = good()
    arrays["y_train"] = np.eye(3)[arrays["y_train"]]
    data = load_npz(save(tmp_path, **arrays))
    assert data.y_train.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.x_train.dtype == np.float32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("y_test"), "missing array(s) y_test"),
        (lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0]), "x_test is empty"),
        (lambda a: a.update(y_train=a["y_train"][:2]), "x_train has 6 samples but y_train has 2"),
        (lambda a: a["x_train"].__setitem__((0, 0), np.nan), "x_train holds NaN or infinite values"),
        (lambda a: a.update(x_test=np.zeros((6, 5), np.float32)), "x_train samples have shape (4,) but x_test"),
        (lambda a: a.update(y_train=np.full(6, 0.5)), "y_train must be integer class ids"),
        (lambda a: a.update(x_train=np.array(["a"] * 6)), "x_train must be numeric"),
    ],
)
def test_bad_data_names_file_and_key(tmp_path, change, message):
    arrays = good()
    change(arrays)
    path = save(tmp_path, **arrays)
    with pytest.raises(UserError) as info:
        load_npz(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_not_an_npz(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("hello")
    with pytest.raises(UserError, match="not a readable .npz"):
        load_npz(path)


def test_labels_beyond_model_outputs(tmp_path):
    arrays = good()
    arrays["y_test"] = np.full(6, 7)
    data = load_npz(save(tmp_path, **arrays))
    with pytest.raises(UserError, match=r"y_test holds labels in \[7, 7\] but m has 3 output"):
        check_against_model(data, (4,), 3, "m")


def test_shape_mismatch_and_free_dimensions(tmp_path):
    data = load_npz(save(tmp_path, **good(shape=(5, 2))))
    check_against_model(data, (None, 2), 3, "rnn")
    with pytest.raises(UserError, match=r"expects input shape \(\?, 3\)"):
        check_against_model(data, (None, 3), 3, "rnn")


def test_float_labels_stay_floats_for_a_task_that_may_be_regression(tmp_path):
    from compressctl.datasets.arrays import with_task_labels

    arrays = good()
    arrays["y_train"] = np.linspace(25.0, 346.0, 6)
    arrays["y_test"] = np.full(6, 151.5)
    path = save(tmp_path, **arrays)
    data = load_npz(path, keep_float_labels=True)
    assert data.y_train.dtype == np.float32 and data.y_test.tolist() == [151.5] * 6
    check_against_model(data, (4,), 1, "m")  # regression targets have no class range
    assert with_task_labels(data, regression=True) is data
    with pytest.raises(UserError, match="y_train must be integer class ids, got fractional values"):
        with_task_labels(data, regression=False)  # a classifier cannot take them
    # Float class ids (0/1 or integral) still become class ids.
    arrays["y_train"] = arrays["y_test"] = (np.arange(6) % 3).astype(np.float64)
    data = with_task_labels(load_npz(save(tmp_path, **arrays), keep_float_labels=True), regression=False)
    assert data.y_train.dtype == np.int64 and data.y_train.tolist() == [0, 1, 2, 0, 1, 2]
