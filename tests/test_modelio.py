import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.model.loading import load_model, task_info
from tests.conftest import build_tiny_cnn


def keras():
    from compressctl.core.env import keras as k

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


def test_keras3_model_is_rebuilt_in_tf_keras_and_checked_on_data(keras3_models, tiny_data):
    from compressctl.core.env import keras

    x = np.load(tiny_data)["x_train"][:40]
    handle = load_model(keras3_models / "cnn.keras", samples=x)
    assert isinstance(handle.keras, keras().Model) and handle.trainable
    record = handle.converted_from
    assert record["format"] == "keras3" and record["keras_version"].startswith("3.")
    assert record["layers_copied"] == 5 and record["check_samples"] == 40 and record["check_inputs"] == "data samples"
    assert record["max_abs_difference"] <= 1e-5
    assert handle.notes and handle.notes[0].startswith("converted from Keras 3.")
    assert [layer.name for layer in handle.keras.layers][-3:] == ["fc1b", "add", "fc2"]
    # The weights are the trained ones: the model separates the quadrants (a fresh one would not).
    data = np.load(tiny_data)
    accuracy = np.mean(np.argmax(handle.predict(data["x_test"]), axis=1) == data["y_test"])
    assert accuracy > 0.6
    gru = load_model(keras3_models / "gru.keras")  # a recurrent cell's weights sit one group deeper
    assert gru.converted_from["check_inputs"] == "random inputs" and gru.converted_from["max_abs_difference"] <= 1e-5


def test_keras3_conversion_is_refused_when_outputs_differ(keras3_models, monkeypatch):
    from compressctl.model import keras3

    # A copy that misses the weights leaves tf_keras's fresh initialisation: the output check must catch it.
    monkeypatch.setattr(keras3, "_copy_weights", lambda model, weights, path: 0)
    with pytest.raises(UserError, match=r"gives different outputs \(max \|difference\| .* on 16 random inputs"):
        load_model(keras3_models / "gru.keras")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("custom.keras", "layer double is the custom Keras 3 layer mine>Double"),
        ("lora.keras", "layer fc \\(Dense\\) sets lora_rank=2, which tf_keras has no option for"),
    ],
)
def test_keras3_models_tf_keras_cannot_express_are_refused(keras3_models, name, message):
    with pytest.raises(UserError, match=message):
        load_model(keras3_models / name)
    with pytest.raises(UserError, match="custom Keras 3 layers are Keras 3 code"):
        load_model(keras3_models / name, custom_objects="tests.conftest:__dict__")


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
    from compressctl.core.env import tf

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
    from compressctl.model.loading import ModelHandle

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
