"""``demo_scaled``: an npz's arrays, every input multiplied by ``scale``, streamed through tf.data."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from compressctl.core.errors import UserError
from compressctl.core.strict import StrictModel
from compressctl.datasets.base import DataSource, label_to_class


class ScaledData(StrictModel):
    """An npz with x_train, y_train, x_test, y_test, inputs scaled."""

    format: Literal["demo_scaled"]
    path: str = Field(..., description="The .npz file.")
    scale: float = Field(1.0, gt=0, description="Every input value is multiplied by this.")


class ScaledSource(DataSource):
    format = "demo_scaled"
    Spec = ScaledData

    def __init__(self, spec: ScaledData):
        super().__init__(f"demo_scaled {spec.path}")
        self.path = Path(spec.path)
        if not self.path.is_file():
            raise UserError(f"{spec.path}: no such file")
        with np.load(self.path) as arrays:
            self.arrays = {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        self.scale = spec.scale

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.arrays["x_train"].shape[1:])

    def elements(self, split: str, shuffle_seed: int | None = None):
        from compressctl.core.env import tf

        tensorflow = tf()
        x = (self.arrays[f"x_{split}"] * self.scale).astype(np.float32)
        dataset = tensorflow.data.Dataset.from_tensor_slices((x, self.arrays[f"y_{split}"]))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
        return dataset.map(lambda x, y: (x, label_to_class(y, tensorflow)))

    def files(self) -> list[Path]:
        return [self.path]

    def describe_paths(self) -> dict:
        return {"train": str(self.path), "test": str(self.path)}
