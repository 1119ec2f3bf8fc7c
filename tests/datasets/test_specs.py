import pytest

from compressctl.core.errors import UserError
from compressctl.datasets.specs import CsvData, ImagesData, NpzData
from compressctl.recipe.schema import load_recipe


def test_a_plain_string_stays_a_path_and_a_mapping_is_chosen_by_format(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("data: d.npz\n")
    assert load_recipe(path).data == "d.npz"
    path.write_text("data: {format: npz, path: d.npz}\n")
    assert load_recipe(path).data == NpzData(path="d.npz")
    path.write_text("data: {format: csv, train: a.csv, test: b.csv, label: y}\n")
    assert isinstance(load_recipe(path).data, CsvData)
    path.write_text("data: {format: images, train: a, test: b, image_size: [28, 28], scale: 1/255}\n")
    data = load_recipe(path).data
    assert isinstance(data, ImagesData) and data.scale == pytest.approx(1 / 255) and data.color_mode == "rgb"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "data:\n  format: images\n  train: a\n  test: b\n  image_size: [8, 8]\n  colour: rgb\n",
            r"r.yaml:6:3 data.colour: unknown field.*allowed: color_mode",
        ),
        ("data: {format: parquet, train: a}\n", r"r.yaml:1:7 data: data must be an npz path or \{format"),
        ("data:\n  format: csv\n  train: a.csv\n  test: b.csv\n", r"r.yaml:2:3 data.label: required field is missing"),
        ("data: {format: python, function: 'not a function'}\n", r"data.function"),
        ("data: {format: images, train: a, test: b, image_size: [8, 8], color_mode: cmyk}\n", r"data.color_mode"),
    ],
)
def test_errors_point_at_the_line(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_recipe(path)


def test_data_flag_still_takes_an_npz_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("data: {format: csv, train: a.csv, test: b.csv, label: y}\n")
    assert load_recipe(path, flags={"data": "x.npz"}).data == "x.npz"
