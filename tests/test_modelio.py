import os
import subprocess
import sys

import numpy as np
import pytest

from compressctl.errors import UserError
from compressctl.modelio import load_model, task_info
from tests.conftest import build_tiny_cnn


def keras():
    from compressctl.tfenv import keras as k

    return k()


def test_savedmodel_and_h5_load_alike(tiny_cnn_path, tmp_path):
    saved = load_model(tiny_cnn_path)
    assert saved.format == "savedmodel" and saved.trainable
    h5 = tmp_path / "m.h5"
    saved.keras.save(str(h5))
    loaded = load_model(h5)
    assert loaded.format == "h5"
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x), saved.predict(x), rtol=1e-6)
    assert loaded.input_shape == (8, 8, 1) and loaded.output_units == 3


def lambda_model():
    k = keras()
    return k.Sequential([k.Input((4,)), k.layers.Lambda(lambda z: z * 2), k.layers.Dense(1, activation="sigmoid")])


@pytest.mark.parametrize("suffix", [".h5", "", ".keras"])
def test_lambda_layers_need_trust(tmp_path, suffix):
    path = tmp_path / f"lam{suffix}"
    lambda_model().save(str(path))
    with pytest.raises(UserError, match="Lambda layer .* Pass --trust-model"):
        load_model(path)
    assert load_model(path, trust_model=True).trainable


def test_keras3_file_is_explained(tmp_path):
    path = tmp_path / "k3.keras"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = (
        "import keras; m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]); "
        f"m.save({str(path)!r}); print(keras.__version__)"
    )
    made = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    assert made.stdout.strip().startswith("3.")
    with pytest.raises(UserError, match="a Keras 3 .keras file; TFMOT needs Keras 2"):
        load_model(path)


def test_custom_layers_need_custom_objects(tmp_path, monkeypatch):
    module = tmp_path / "my_layers.py"
    module.write_text(
        "import tf_keras as k\n"
        "class Double(k.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return 2 * x\n"
        "CUSTOM_OBJECTS = {'Double': Double}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_layers

    k = keras()
    model = k.Sequential([k.Input((4,)), my_layers.Double(), k.layers.Dense(2, activation="softmax")])
    path = tmp_path / "custom.h5"
    model.save(str(path))
    with pytest.raises(UserError, match="pass --custom-objects module:dict"):
        load_model(path)
    assert load_model(path, custom_objects="my_layers:CUSTOM_OBJECTS").trainable
    with pytest.raises(UserError, match="expected module:dict"):
        load_model(path, custom_objects="my_layers")
    with pytest.raises(UserError, match="cannot import no_such_module"):
        load_model(path, custom_objects="no_such_module:X")


def test_inference_only_savedmodel(tmp_path):
    from compressctl.tfenv import tf

    tensorflow = tf()
    module = tensorflow.Module()
    module.w = tensorflow.Variable(np.ones((4, 1), np.float32))
    module.f = tensorflow.function(
        lambda x: {"prob": tensorflow.sigmoid(tensorflow.matmul(x, module.w))},
        input_signature=[tensorflow.TensorSpec([None, 4], tensorflow.float32)],
    )
    tensorflow.saved_model.save(module, str(tmp_path / "inf"), signatures=module.f)
    handle = load_model(tmp_path / "inf")
    assert handle.format == "savedmodel-inference" and not handle.trainable
    x = np.ones((5, 4), np.float32)
    np.testing.assert_allclose(handle.predict(x)[:, 0], 1 / (1 + np.exp(-4)), rtol=1e-5)
    info = task_info(handle, x)
    assert info.binary and not info.from_logits


def test_logits_are_detected():
    k = keras()
    logits = k.Sequential([k.Input((4,)), k.layers.Dense(3)])
    from compressctl.modelio import ModelHandle

    handle = ModelHandle(path=None, format="h5", keras=logits, input_shape=(4,), output_shape=(3,))
    assert task_info(handle, np.zeros((2, 4), np.float32)).from_logits
    softmax = build_tiny_cnn()
    handle = ModelHandle(path=None, format="h5", keras=softmax, input_shape=(8, 8, 1), output_shape=(3,))
    assert not task_info(handle, np.zeros((2, 8, 8, 1), np.float32)).from_logits


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing", "model not found"), ("plain_dir", "without saved_model.pb"), ("m.onnx", "unsupported model format")],
)
def test_unloadable_paths(tmp_path, name, message):
    (tmp_path / "plain_dir").mkdir()
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(UserError, match=message):
        load_model(tmp_path / name)


def test_corrupt_h5(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(UserError, match="broken.h5: could not load the model"):
        load_model(path)


def test_task_defaults_to_regression_for_one_linear_output_and_float_labels(diabetes_mlp_path, tiny_cnn_path):
    from tests.conftest import diabetes_data

    data = diabetes_data()
    handle = load_model(diabetes_mlp_path)
    task = task_info(handle, data["x_train"], None, labels=data["y_train"])
    assert task.regression and task.metric == "mse" and task.higher_is_better is False
    task = task_info(handle, data["x_train"], "mae", labels=data["y_train"])
    assert task.regression and task.metric == "mae"
    # The same output with 0/1 (or integer) labels is a logit classifier, as before.
    binary = task_info(handle, data["x_train"], None, labels=(data["y_train"] > 150).astype(np.float32))
    assert not binary.regression and binary.metric == "accuracy" and binary.binary
    # A softmax model is never a regression model by default, and refuses a regression metric.
    cnn = load_model(tiny_cnn_path)
    sample = np.zeros((4, 8, 8, 1), np.float32)
    assert task_info(cnn, sample, None, labels=np.array([0.0, 1.5, 2.0])).metric == "accuracy"
    with pytest.raises(UserError, match="task.metric mae scores one regression output, but the model has 3"):
        task_info(cnn, sample, "mae")
