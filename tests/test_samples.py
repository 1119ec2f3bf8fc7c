"""The sample data in each format reads back through its data source as the arrays it came from."""

import numpy as np

from compressctl.datasets import open_source
from compressctl.datasets.specs import CsvData, ImagesData, TfrecordData
from compressctl.model import samples
from tests.conftest import REPO, quadrant_data


def test_digits_as_images_and_tfrecord_and_breast_cancer_as_csv(tmp_path):
    data = quadrant_data(n_train=12, n_test=6)
    samples.write_image_folder(data, tmp_path / "images")
    images = open_source(
        ImagesData(
            format="images",
            train=str(tmp_path / "images" / "train"),
            test=str(tmp_path / "images" / "test"),
            image_size=[8, 8],
            color_mode="grayscale",
            scale="1/255",
        )
    )
    assert (images.train_samples, images.test_samples) == (12, 6)
    x, y = next(images.test_batches())
    order = np.argsort(data["y_test"], kind="stable")
    np.testing.assert_allclose(x, data["x_test"][order], atol=0.5 / 255 + 1e-6)
    assert list(y) == list(data["y_test"][order])

    samples.write_tfrecords(data, tmp_path / "tfrecord")
    records = open_source(
        TfrecordData(
            format="tfrecord",
            train=str(tmp_path / "tfrecord" / "train*.tfrecord"),
            test=str(tmp_path / "tfrecord" / "test*.tfrecord"),
            features={"image": {"dtype": "float32", "shape": [8, 8, 1]}},
            label="label",
        )
    )
    x, y = next(records.test_batches())
    np.testing.assert_array_equal(x, data["x_test"])
    assert list(y) == list(data["y_test"])

    table = samples.breast_cancer()
    samples.write_csv(table, tmp_path / "csv")
    rows = open_source(
        CsvData(
            format="csv",
            train=str(tmp_path / "csv" / "train.csv"),
            test=str(tmp_path / "csv" / "test.csv"),
            label="diagnosis",
        )
    )
    assert rows.sample_shape == (30,) and (rows.train_samples, rows.test_samples) == (455, 114)
    x, y = next(rows.test_batches(batch_size=1000))
    np.testing.assert_allclose(x, table["x_test"], atol=1e-6)
    assert set(y) == {0, 1}


def test_example_recipes_validate():
    from compressctl import api

    for path in sorted((REPO / "examples" / "data").glob("*.yaml")):
        assert api.validate(str(path)).data is not None, path
