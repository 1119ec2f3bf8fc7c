"""Whole runs fed from an image folder and from CSV files; the reported metrics are re-measured here."""

import json

import numpy as np
import pytest

from compressctl import api
from compressctl.core.errors import UserError
from compressctl.litert.evaluate import TaskInfo, evaluate_tflite
from tests.conftest import quadrant_data, write_recipe
from tests.datasets.conftest import write_csv, write_images

pytestmark = pytest.mark.slow


def decoded_test_split(root):
    """The test images decoded here with numpy-side code, in class-folder order, scaled like the recipe."""
    from compressctl.core.env import tf

    xs, ys = [], []
    for label, folder in enumerate(sorted(p for p in (root / "test").iterdir() if p.is_dir())):
        for path in sorted(folder.iterdir()):
            xs.append(tf().io.decode_png(path.read_bytes(), channels=1).numpy().astype(np.float32) / 255)
            ys.append(label)
    return np.stack(xs), np.asarray(ys)


def test_prune_and_int8_from_an_image_folder(tmp_path, tiny_cnn_path):
    root = write_images(tmp_path / "images", quadrant_data())
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tiny_cnn_path}
data:
  format: images
  train: {root / "train"}
  test: {root / "test"}
  image_size: [8, 8]
  color_mode: grayscale
  scale: 1/255
training: {{batch_size: 32}}
stages:
  - {{type: prune, target_sparsity: 0.5, epochs: 1}}
targets:
  - {{type: cpu, mode: int8, calibration_samples: 50}}
bench: {{runs: 10, warmup: 2, rounds: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    data = report["data"]
    assert data["format"] == "images" and data["train_samples"] == 300 and data["test_samples"] == 90
    assert data["class_names"] == ["class_0", "class_1", "class_2"] and len(data["sha256"]) == 64
    assert report["stages"][0]["sparsity"] == pytest.approx(0.5, abs=0.02)
    x, y = decoded_test_split(root)
    task = TaskInfo(binary=False, from_logits=False)
    artifact = report["artifacts"][0]
    measured = evaluate_tflite(tmp_path / "run" / artifact["path"], x, y, task)
    assert artifact["metric_value"] == pytest.approx(measured, abs=1e-9)
    assert measured > 0.8
    baseline = evaluate_tflite(tmp_path / "run" / report["baseline"]["artifact"], x, y, task)
    assert report["baseline"]["tflite_metric_value"] == pytest.approx(baseline, abs=1e-9)


def test_distill_and_int8_from_csv(tmp_path):
    from compressctl.core.env import keras, seed_everything

    data = quadrant_data()
    for split in ("train", "test"):
        write_csv(tmp_path / f"{split}.csv", data[f"x_{split}"], data[f"y_{split}"], label="quadrant")
    seed_everything(0)
    k = keras()
    model = k.Sequential(
        [k.layers.Input((64,)), k.layers.Dense(32, activation="relu"), k.layers.Dense(3, activation="softmax")]
    )
    model.compile(k.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(data["x_train"].reshape(300, -1), data["y_train"], epochs=8, batch_size=32, verbose=0)
    model.save(str(tmp_path / "mlp"), save_format="tf")
    recipe = write_recipe(
        tmp_path,
        f"""
model: {tmp_path / "mlp"}
data: {{format: csv, train: {tmp_path / "train.csv"}, test: {tmp_path / "test.csv"}, label: quadrant}}
stages:
  - {{type: distill, student: {{width: 0.5}}, epochs: 2}}
targets:
  - {{type: cpu, mode: int8, calibration_samples: 50}}
bench: {{runs: 10, warmup: 2, rounds: 1}}
""",
    )
    result = api.run(str(recipe), out=str(tmp_path / "run"))
    assert result.exit_code == 0
    report = result.report
    assert report["data"]["format"] == "csv" and report["data"]["features"][:2] == ["f0", "f1"]
    stage = report["stages"][0]
    assert stage["student_params"] < stage["teacher_params"]
    measured = evaluate_tflite(
        tmp_path / "run" / report["artifacts"][0]["path"],
        data["x_test"].reshape(90, -1),
        data["y_test"],
        TaskInfo(binary=False, from_logits=False),
    )
    assert report["artifacts"][0]["metric_value"] == pytest.approx(measured, abs=1e-9)
    assert measured > 0.8


def test_a_missing_image_folder_is_one_error_and_nothing_is_written(tmp_path, tiny_cnn_path):
    recipe = write_recipe(
        tmp_path,
        f"model: {tiny_cnn_path}\ndata: {{format: images, train: {tmp_path}/none, test: {tmp_path}/none, "
        "image_size: [8, 8]}\n",
    )
    with pytest.raises(UserError, match="train image directory not found"):
        api.run(str(recipe), out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]
