"""Image folders: ``train`` and ``test`` directories with one subfolder of images per class.

The test split is read by ``keras.utils.image_dataset_from_directory`` (sorted, unshuffled). The
train split uses the same index and decoding, but shuffles file names rather than decoded images,
so memory stays a few batches whatever the folder's size (Keras's own shuffle holds up to 8 × batch
decoded batches). Class ids follow the sorted folder names, which must be the same in both splits.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from compressctl.core.errors import UserError
from compressctl.datasets.base import PARALLEL_CALLS, DataSource, label_to_class
from compressctl.datasets.specs import ImagesData

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image_dataset_from_directory reads
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def _index(directory: Path, split: str) -> tuple[list[str], list[Path], list[int]]:
    """Class names, image paths and labels of one split, checked: every problem names the folder or file."""
    if not directory.exists():
        raise UserError(f"{directory}: {split} image directory not found")
    if not directory.is_dir():
        raise UserError(f"{directory}: {split} must be a directory with one subfolder of images per class")
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise UserError(f"{directory}: no class subfolders; put the images of each class in their own folder")
    paths, labels = [], []
    for label, name in enumerate(classes):
        found = []
        for root, dirs, names in os.walk(directory / name):
            dirs.sort()
            found.extend(Path(root) / f for f in sorted(names) if f.lower().endswith(EXTENSIONS))
        if not found:
            raise UserError(f"{directory / name}: empty class folder (no {', '.join(EXTENSIONS)} files)")
        for path in found:
            with open(path, "rb") as handle:
                head = handle.read(8)
            if not head.startswith(_MAGIC):
                raise UserError(f"{path}: not a decodable image (no PNG, JPEG, GIF or BMP header)")
        paths.extend(found)
        labels.extend([label] * len(found))
    return classes, paths, labels


class ImagesSource(DataSource):
    format = "images"

    def __init__(self, spec: ImagesData):
        super().__init__(f"images {spec.train}")
        self.spec = spec
        self.channels = 1 if spec.color_mode == "grayscale" else 3
        self.dirs = {"train": Path(spec.train), "test": Path(spec.test)}
        index = {split: _index(path, split) for split, path in self.dirs.items()}
        if index["train"][0] != index["test"][0]:
            raise UserError(
                f"{spec.test}: class folders {index['test'][0]} differ from {spec.train}'s {index['train'][0]}; "
                "both splits need the same class folders"
            )
        self.class_names = index["train"][0]
        self.paths = {split: entry[1] for split, entry in index.items()}
        self.label_ids = {split: np.asarray(entry[2], dtype=np.int64) for split, entry in index.items()}
        self._counts = {split: len(paths) for split, paths in self.paths.items()}
        self._label_ranges = {split: (0.0, float(len(self.class_names) - 1)) for split in self.paths}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (*self.spec.image_size, self.channels)

    def _decode(self, path, label):
        from compressctl.core.env import tf

        tensorflow = tf()
        image = tensorflow.io.decode_image(
            tensorflow.io.read_file(path), channels=self.channels, expand_animations=False
        )
        image = tensorflow.image.resize(image, self.spec.image_size, method="bilinear")
        image.set_shape(self.sample_shape)
        return image, label

    def _finish(self, image, label):
        from compressctl.core.env import tf

        tensorflow = tf()
        return tensorflow.cast(image, tensorflow.float32) * self.spec.scale, label_to_class(label, tensorflow)

    def _from_paths(self, paths: list[Path], labels: np.ndarray, shuffle_seed: int | None):
        from compressctl.core.env import tf

        tensorflow = tf()
        dataset = tensorflow.data.Dataset.from_tensor_slices(([str(p) for p in paths], labels))
        if shuffle_seed is not None:
            # File names only: a buffer of the whole split costs bytes per image, not a decoded image.
            dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
        return dataset.map(self._decode, num_parallel_calls=PARALLEL_CALLS, deterministic=True).map(self._finish)

    def elements(self, split: str, shuffle_seed: int | None = None):
        if split == "train":
            return self._from_paths(self.paths[split], self.label_ids[split], shuffle_seed)
        from compressctl.core.env import keras

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Found N files..." on stdout
            dataset = keras().utils.image_dataset_from_directory(
                str(self.dirs[split]),
                labels="inferred",
                label_mode="int",
                class_names=self.class_names,
                color_mode=self.spec.color_mode,
                batch_size=None,
                image_size=tuple(self.spec.image_size),
                shuffle=False,
            )
        return dataset.map(self._finish)

    def subset(self, split: str, indices: np.ndarray):
        chosen = [self.paths[split][i] for i in indices]
        return self._from_paths(chosen, self.label_ids[split][indices], None)

    def labels(self, split: str):
        from compressctl.core.env import tf

        return tf().data.Dataset.from_tensor_slices(self.label_ids[split])

    def files(self) -> list[Path]:
        return [*self.paths["train"], *self.paths["test"]]

    def describe_paths(self) -> dict:
        s = self.spec
        return {
            "train": s.train,
            "test": s.test,
            "image_size": list(s.image_size),
            "color_mode": s.color_mode,
            "scale": s.scale,
            "class_names": self.class_names,
        }
