"""A Python function returning ``(train, test)`` ``tf.data.Dataset``s of ``(x, y)``.

``function: "module:function"`` names it; naming the module is consent to import it (as with
``--custom-objects``). The module is imported from the working directory or ``sys.path``. Elements
are single samples of a fixed shape; a dataset whose ``x`` and ``y`` both lead with an unknown dimension
is taken as batched and unbatched. The fingerprint hashes the module's source file, not the data it produces.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.datasets.base import SHUFFLE_BUFFER, DataSource, label_to_class
from compressctl.datasets.specs import PythonData


class PythonSource(DataSource):
    format = "python"

    def __init__(self, spec: PythonData):
        super().__init__(f"python {spec.function}")
        self.spec = spec
        module_name, function_name = spec.function.split(":")
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's module
            raise UserError(f"{spec.function}: could not import {module_name}: {type(exc).__name__}: {exc}") from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise UserError(f"{spec.function}: {module_name} has no function {function_name}")
        self.module_file = Path(module.__file__) if getattr(module, "__file__", None) else None
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"{spec.function}: raised {type(exc).__name__}: {exc}") from None
        from compressctl.core.env import tf

        tensorflow = tf()
        if not (isinstance(result, tuple) and len(result) == 2):
            raise UserError(f"{spec.function}: must return (train, test) tf.data.Datasets, got {type(result).__name__}")
        self.datasets = {}
        for split, dataset in zip(("train", "test"), result, strict=True):
            if not isinstance(dataset, tensorflow.data.Dataset):
                kind = type(dataset).__name__
                raise UserError(f"{spec.function}: the {split} split is a {kind}, not a tf.data.Dataset")
            spec_ = dataset.element_spec
            if not (isinstance(spec_, tuple) and len(spec_) == 2):
                raise UserError(f"{spec.function}: {split} elements must be (x, y) pairs, got {spec_}")
            x_shape, y_shape = spec_[0].shape, spec_[1].shape
            # Batched: both x and y lead with an unknown (batch) dimension. A single sample's label is a scalar.
            if x_shape.rank and x_shape[0] is None and y_shape.rank and y_shape[0] is None:
                dataset = dataset.unbatch()
            shape = dataset.element_spec[0].shape
            if not shape.is_fully_defined():
                raise UserError(
                    f"{spec.function}: {split} samples have no fixed shape ({shape}); give them one, e.g. with "
                    "tf.ensure_shape or tf.image.resize"
                )
            self.datasets[split] = dataset.map(
                lambda x, y: (tensorflow.cast(x, tensorflow.float32), label_to_class(y, tensorflow))
            )
        shapes = {split: tuple(d.element_spec[0].shape.as_list()) for split, d in self.datasets.items()}
        if shapes["train"] != shapes["test"]:
            raise UserError(f"{spec.function}: train samples have shape {shapes['train']}, test {shapes['test']}")
        self._shape = shapes["train"]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self._shape

    def elements(self, split: str, shuffle_seed: int | None = None):
        dataset = self.datasets[split]
        if shuffle_seed is not None:
            dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
        return dataset

    def files(self) -> list[Path]:
        return [self.module_file] if self.module_file else []

    def describe_paths(self) -> dict:
        return {"function": self.spec.function, "module_file": str(self.module_file) if self.module_file else None}
