import shutil

import numpy as np
import pytest

from compressctl.core.errors import UserError
from compressctl.datasets import open_source
from compressctl.datasets.specs import ImagesData


def spec(root, **extra):
    fields = {"format": "images", "train": str(root / "train"), "test": str(root / "test"), "image_size": [8, 8]}
    return ImagesData(**{"color_mode": "grayscale", "scale": "1/255", **fields, **extra})


def test_streams_the_folders_as_scaled_samples_with_sorted_class_ids(image_dirs, small_data):
    source = open_source(spec(image_dirs))
    assert source.sample_shape == (8, 8, 1)
    assert (source.train_samples, source.test_samples) == (24, 12)
    assert source.class_names == ["class_0", "class_1", "class_2"]
    xs, ys = zip(*source.test_batches(batch_size=5), strict=True)
    assert [len(x) for x in xs] == [5, 5, 2]
    x, y = np.concatenate(xs), np.concatenate(ys)
    # The test split comes back class by class; each image is the PNG of the array it was written from.
    order = np.lexsort((np.arange(12), small_data["y_test"]))
    assert list(y) == sorted(small_data["y_test"])
    np.testing.assert_allclose(x, np.round(np.clip(small_data["x_test"][order], 0, 1) * 255) / 255, atol=1e-6)


def test_train_batches_are_reshuffled_each_epoch_and_cover_the_split(image_dirs):
    source = open_source(spec(image_dirs))
    dataset = source.train_batches(batch_size=8, seed=0)
    first = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
    second = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
    assert sorted(first) == sorted(second) == sorted(source.label_ids["train"])
    assert list(first) != list(second)


def test_calibration_draws_n_seeded_samples_from_the_train_split(image_dirs):
    source = open_source(spec(image_dirs))
    a, b, c = source.calibration(10, seed=1), source.calibration(10, seed=1), source.calibration(10, seed=2)
    assert a.shape == (10, 8, 8, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert source.calibration(1000, seed=0).shape[0] == 24  # at most the whole split


def test_rgb_and_resize(image_dirs):
    source = open_source(spec(image_dirs, color_mode="rgb", image_size=[4, 6]))
    assert source.sample_shape == (4, 6, 3)
    assert source.head(2).shape == (2, 4, 6, 3)
    assert source.calibration(3, seed=0).shape == (3, 4, 6, 3)


def test_fingerprint_follows_the_bytes(image_dirs, tmp_path):
    copy = shutil.copytree(image_dirs, tmp_path / "copy")
    before = open_source(spec(copy)).fingerprint()
    assert open_source(spec(copy)).fingerprint() == before
    victim = sorted((copy / "train" / "class_0").iterdir())[0]
    victim.write_bytes(sorted((copy / "train" / "class_1").iterdir())[0].read_bytes())
    assert open_source(spec(copy)).fingerprint() != before
    record = open_source(spec(copy)).describe()
    assert record["format"] == "images" and record["sha256"] == record["fingerprint"]
    assert record["class_names"] == ["class_0", "class_1", "class_2"]


@pytest.mark.parametrize(
    "breaks, message",
    [
        (lambda root: shutil.rmtree(root / "test"), "test image directory not found"),
        (lambda root: [p.unlink() for p in (root / "train" / "class_1").iterdir()], "empty class folder"),
        (lambda root: (root / "train" / "class_0" / "bad.png").write_bytes(b"not an image"), "not a decodable image"),
        (lambda root: shutil.rmtree(root / "test" / "class_2"), "differ from"),
        (lambda root: [shutil.rmtree(p) for p in (root / "train").iterdir()], "no class subfolders"),
    ],
)
def test_bad_folders_are_one_clear_error(image_dirs, tmp_path, breaks, message):
    root = shutil.copytree(image_dirs, tmp_path / "copy")
    breaks(root)
    with pytest.raises(UserError, match=message):
        open_source(spec(root))


def test_truncated_image_is_a_user_error_when_read(image_dirs, tmp_path):
    root = shutil.copytree(image_dirs, tmp_path / "copy")
    victim = sorted((root / "test" / "class_0").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:20])  # a PNG header, then nothing
    source = open_source(spec(root))
    with pytest.raises(UserError, match="could not read the data"):
        list(source.test_batches())


def test_scale_accepts_a_fraction_and_refuses_nonsense():
    from pydantic import ValidationError

    assert ImagesData(format="images", train="a", test="b", image_size=[2, 2], scale="1/255").scale == 1 / 255
    with pytest.raises(ValidationError):
        ImagesData(format="images", train="a", test="b", image_size=[2, 2], scale="1/0")


def test_capped_epochs_take_the_next_batches_of_one_reshuffled_stream(image_dirs, tiny_cnn):
    """training.steps_per_epoch on a streamed split: each epoch takes `cap` batches, the stream repeats."""
    from compressctl.litert.evaluate import TaskInfo
    from compressctl.stages.base import StageContext

    events = []
    source = open_source(spec(image_dirs))  # 24 train images: 3 batches of 8
    task = TaskInfo(binary=False, from_logits=False)
    ctx = StageContext(data=source, task=task, batch_size=8, emit=events.append, max_steps_per_epoch=2)
    ctx.fit(tiny_cnn, 4, 1e-3, None, "test")  # 8 batches: more than two passes over the split
    advances = [e for e in events if e.kind == "task_advance"]
    assert len(advances) == 8 and advances[-1].total == 8
    assert [e.completed for e in events if e.kind == "epoch"] == [1, 2, 3, 4]
