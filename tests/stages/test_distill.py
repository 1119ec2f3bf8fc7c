import numpy as np
import pytest
from pydantic import ValidationError

from compressctl.core.errors import StageError, UserError
from compressctl.datasets.arrays import Dataset
from compressctl.litert.evaluate import TaskInfo
from compressctl.stages.base import StageContext
from compressctl.stages.distill import Distill, Student, width_student
from compressctl.stages.distillation import soft_kl, to_logits
from tests.conftest import arch_squeeze_excite, quadrant_data
from tests.helpers.models import residual_model


def params(**kw):
    kw.setdefault("epochs", 6)
    kw.setdefault("learning_rate", 3e-3)
    return Distill.Params(type="distill", **kw)


def test_student_forms():
    assert Distill.Params(type="distill").student.is_current
    assert Distill.Params(type="distill", student="current").student.is_current
    assert Distill.Params(type="distill", student={"width": 0.5}).student.width == 0.5
    assert Distill.Params(type="distill", student={"model": "m/"}).student.model == "m/"
    assert Student.model_validate("current").model_dump() == "current"
    assert Student(width=0.25).model_dump() == {"width": 0.25}
    with pytest.raises(ValidationError, match="not both"):
        Student(width=0.5, model="m/")
    with pytest.raises(ValidationError, match="must be 'current'"):
        Distill.Params(type="distill", student="small")


def test_soft_targets_and_kl():
    from compressctl.core.env import tf

    tensorflow = tf()
    probabilities = np.array([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]], np.float32)
    logits = to_logits(probabilities, TaskInfo(binary=False, from_logits=False))
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, probabilities, atol=1e-6)
    assert np.all(np.isfinite(logits))
    same = soft_kl(tensorflow, logits, logits, 4.0, binary=False)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    # One sigmoid unit is the two-class softmax of logits (z, 0).
    t, s = np.array([[2.0], [-1.0]], np.float32), np.array([[0.5], [1.5]], np.float32)
    binary = soft_kl(tensorflow, t, s, 2.0, binary=True)
    two_class = soft_kl(tensorflow, np.hstack([t, 0 * t]), np.hstack([s, 0 * s]), 2.0, binary=False)
    assert float(binary) == pytest.approx(float(two_class), rel=1e-5)
    assert float(binary) > 0
    sigmoid = to_logits(np.array([[0.5], [0.9]], np.float32), TaskInfo(binary=True, from_logits=False))
    np.testing.assert_allclose(sigmoid[:, 0], [0.0, np.log(9.0)], rtol=1e-5, atol=1e-6)


def test_width_student_has_fewer_params_and_learns(tiny_cnn, stage_ctx):
    fresh, _ = width_student(tiny_cnn, 0.5, seed=0)
    untrained = stage_ctx.evaluate(fresh)
    # alpha 0: no hard labels, so whatever the student learns it learns from the teacher.
    result = Distill(params(student={"width": 0.5}, epochs=10, alpha=0.0)).apply(tiny_cnn, stage_ctx)
    student = result.model
    assert student is not tiny_cnn
    assert [layer.name for layer in student.layers] == [layer.name for layer in tiny_cnn.layers]
    widths = {row["layer"]: (row["width_before"], row["width_after"]) for row in result.layers}
    assert widths == {"conv": (8, 4), "fc1": (32, 16)}  # fc2, the output layer, keeps its 3 classes
    assert student.output_shape == tiny_cnn.output_shape
    m = result.measured
    assert m["student_params"] == student.count_params() < m["teacher_params"] == tiny_cnn.count_params()
    assert m["student_params"] < 0.6 * m["teacher_params"]
    assert m["teacher_metric_value"] == pytest.approx(stage_ctx.evaluate(tiny_cnn))
    assert m["student_metric_value"] == pytest.approx(stage_ctx.evaluate(student))
    assert m["student_metric_value"] >= 0.9 > untrained + 0.2
    # A plain Keras model: no custom classes for later stages or the converter to trip on.
    assert type(student).__module__.startswith("tf_keras")
    assert all(type(layer).__module__.startswith("tf_keras") for layer in student.layers)


def test_current_student_trains_the_input_model(tiny_cnn, stage_ctx):
    teacher_metric = stage_ctx.evaluate(tiny_cnn)
    before = tiny_cnn.get_layer("fc1").get_weights()[0].copy()
    result = Distill(params(epochs=2, learning_rate=1e-4)).apply(tiny_cnn, stage_ctx)
    assert result.model is tiny_cnn
    assert result.measured["teacher_params"] == result.measured["student_params"]
    assert result.measured["teacher_metric_value"] == pytest.approx(teacher_metric)
    assert not np.allclose(tiny_cnn.get_layer("fc1").get_weights()[0], before)
    assert result.measured["student_metric_value"] >= teacher_metric - 0.05
    assert result.notes == ["student: current"]


def test_width_student_of_a_residual_batchnorm_model(stage_ctx):
    model = residual_model()
    student, rows = width_student(model, 0.5, seed=0)
    assert {row["layer"]: row["width_after"] for row in rows} == {"conv_a": 8, "proj": 8, "fc": 16}
    assert student.get_layer("bn_b").get_weights()[0].shape == (8,)
    outputs = student.predict(stage_ctx.data.x_test[:4], verbose=0)
    assert outputs.shape == (4, 3) and np.allclose(outputs.sum(1), 1, atol=1e-5)


def test_width_student_follows_squeeze_excite_reshapes():
    # se2: GAP → Dense → Dense → Reshape((1, 1, C)): the Reshape's C follows the thinner gate.
    model = arch_squeeze_excite()
    student, rows = width_student(model, 0.5, seed=0)
    widths = {row["layer"]: row["width_after"] for row in rows}
    assert student.get_layer("se2_reshape").get_config()["target_shape"] == (1, 1, widths["se2_expand"])
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    assert student(x).shape == model(x).shape
    assert student.count_params() < model.count_params() / 2


def test_width_student_follows_a_reshape_of_a_dense_output():
    from compressctl.core.env import keras

    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((16,)),
            k.layers.Dense(4 * 4 * 8, activation="relu", name="project"),
            k.layers.Reshape((4, 4, 8), name="unflatten"),
            k.layers.Conv2D(6, 3, name="conv"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    student, rows = width_student(model, 0.5, seed=0)
    assert {row["layer"]: row["width_after"] for row in rows} == {"project": 64, "conv": 3}
    assert tuple(student.get_layer("unflatten").get_config()["target_shape"]) == (4, 4, 4)
    assert student(np.zeros((1, 16), np.float32)).shape == (1, 3)


def test_width_student_that_cannot_fit_names_the_layer_and_the_remedy():
    from compressctl.core.env import keras

    k = keras()
    inputs = k.Input((6,))
    h = k.layers.Dense(6, name="hidden")(inputs)
    x = k.layers.Add(name="skip")([inputs, h])  # tied to the model's input width: cannot scale
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax", name="out")(x))
    with pytest.raises(StageError) as info:
        width_student(model, 0.5, seed=0)
    message = str(info.value)
    assert "'skip'" in message and "student: {model: PATH}" in message
    assert "Exception encountered" not in message and "Traceback" not in message


def binary_setup():
    """Blob in the top-left (0) or top-right (1) quadrant, and a trained sigmoid model for it."""
    from compressctl.core.env import keras, seed_everything

    data = quadrant_data(classes=2, seed=3)
    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(24, activation="relu", name="hidden"),
            k.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.compile(k.optimizers.Adam(3e-3), "binary_crossentropy", ["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=6, batch_size=32, verbose=0)
    ctx = StageContext(data=Dataset(path=None, **data), task=TaskInfo(binary=True, from_logits=False), batch_size=32)
    return model, ctx


def test_width_student_with_a_binary_sigmoid_output():
    model, ctx = binary_setup()
    assert ctx.evaluate(model) >= 0.9
    result = Distill(params(student={"width": 0.5}, epochs=8, alpha=0.0)).apply(model, ctx)
    student = result.model
    assert student.get_layer("hidden").units == 12
    assert student.get_layer("out").units == 1
    assert student.get_layer("out").get_config()["activation"] == "sigmoid"
    assert result.measured["student_params"] < result.measured["teacher_params"]
    assert result.measured["student_metric_value"] >= 0.9


def test_student_from_a_file(tiny_cnn, stage_ctx, tmp_path):
    student, _ = width_student(tiny_cnn, 0.25, seed=1)
    path = tmp_path / "student.keras"
    student.save(str(path))
    result = Distill(params(student={"model": str(path)}, epochs=8)).apply(tiny_cnn, stage_ctx)
    assert result.measured["student_params"] == student.count_params()
    assert result.measured["student_metric_value"] >= 0.8
    assert result.notes == [f"student: {path}"]


def test_student_file_with_other_output_shape_is_refused(tiny_cnn, stage_ctx, tmp_path):
    from compressctl.core.env import keras

    k = keras()
    other = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(5, activation="softmax")])
    path = tmp_path / "five.keras"
    other.save(str(path))
    with pytest.raises(UserError, match=r"five\.keras: the student maps \(8, 8, 1\) → \(5\), the model .* → \(3\)"):
        Distill(params(student={"model": str(path)})).apply(tiny_cnn, stage_ctx)


def test_student_file_emitting_logits_for_a_probability_teacher_is_refused(tiny_cnn, stage_ctx, tmp_path):
    from compressctl.core.env import keras

    k = keras()
    other = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(3)])
    path = tmp_path / "logits.keras"
    other.save(str(path))
    with pytest.raises(UserError, match="outputs logits but the model outputs probabilities"):
        Distill(params(student={"model": str(path)})).apply(tiny_cnn, stage_ctx)


def test_missing_student_file_names_it(tiny_cnn, stage_ctx, tmp_path):
    with pytest.raises(UserError, match="nope.h5: model not found"):
        Distill(params(student={"model": str(tmp_path / "nope.h5")})).apply(tiny_cnn, stage_ctx)


def test_logit_teacher_and_student(stage_ctx):
    from compressctl.core.env import keras, seed_everything

    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [
            k.layers.Input((8, 8, 1)),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(32, activation="relu", name="hidden"),
            k.layers.Dense(3, name="logits"),
        ]
    )
    model.compile(k.optimizers.Adam(3e-3), k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(stage_ctx.data.x_train, stage_ctx.data.y_train, epochs=6, batch_size=32, verbose=0)
    ctx = StageContext(data=stage_ctx.data, task=TaskInfo(binary=False, from_logits=True), batch_size=32)
    result = Distill(params(student={"width": 0.5}, epochs=8)).apply(model, ctx)
    assert result.model.get_layer("logits").get_config()["activation"] == "linear"
    assert result.measured["teacher_metric_value"] >= 0.9
    assert result.measured["student_metric_value"] >= 0.9


def regression_ctx(metric="mae"):
    from tests.conftest import diabetes_data

    data = diabetes_data()
    task = TaskInfo(binary=False, from_logits=False, metric=metric, regression=True)
    return StageContext(data=Dataset(path=None, **data), task=task, batch_size=32)


def test_width_student_of_a_regression_model_learns_the_teachers_outputs(diabetes_mlp_path):
    from compressctl.model.loading import load_model

    teacher = load_model(diabetes_mlp_path).keras
    ctx = regression_ctx()
    teacher_mae = ctx.evaluate(teacher)
    assert 30 < teacher_mae < 60
    # alpha 0: the student learns from the teacher's outputs alone (squared error, no temperature).
    result = Distill(params(student={"width": 0.5}, epochs=30, alpha=0.0, learning_rate=0.02)).apply(teacher, ctx)
    assert result.model.get_layer("fc1").units == 16
    assert result.measured["teacher_metric_value"] == pytest.approx(teacher_mae)
    # A fresh student predicts ~0 for targets around 150 (mae > 100); learning the teacher brings it close.
    assert result.measured["student_metric_value"] < teacher_mae + 10
