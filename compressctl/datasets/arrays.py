"""Data sets: an ``.npz`` with x_train, y_train, x_test, y_test, validated before any work starts."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from compressctl.core.errors import UserError, require_file

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    path: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _labels(y: np.ndarray, name: str, path: Path, keep_float: bool = False) -> np.ndarray:
    """Class ids as int64 of shape (n,); one-hot rows become their argmax.

    With ``keep_float``, float labels other than 0/1 stay float32: regression targets, or class ids
    that ``with_task_labels`` converts once the model says which task it is.
    """
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(len(y), -1)
    if y.shape[1] != 1:
        raise UserError(f"{path}: {name} must hold one label per sample, got shape {y.shape}")
    y = y[:, 0]
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise UserError(f"{path}: {name} must be numeric class ids, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise UserError(f"{path}: {name} holds NaN or infinite labels")
        if keep_float and not np.all(np.isin(y, (0, 1))):
            return y.astype(np.float32)
        if not np.all(y == np.round(y)):
            raise UserError(f"{path}: {name} must be integer class ids, got fractional values")
    return y.astype(np.int64)


def load_npz(path: str | Path, keep_float_labels: bool = False) -> Dataset:
    """Load and check an npz data set; every problem is a UserError naming the file and key.

    ``keep_float_labels``: float labels stay floats (see ``_labels``), for a task that may be regression.
    """
    path = Path(path)
    require_file(path, "data file", f"an .npz file with {', '.join(REQUIRED_KEYS)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in REQUIRED_KEYS if k not in npz.files]
            if missing:
                raise UserError(
                    f"{path}: missing array(s) {', '.join(missing)}; an npz data set needs "
                    f"{', '.join(REQUIRED_KEYS)} (found: {', '.join(npz.files) or 'none'})"
                )
            arrays = {k: npz[k] for k in REQUIRED_KEYS}
    except UserError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None

    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) == 0:
            raise UserError(f"{path}: x_{split} is empty")
        if len(x) != len(y):
            raise UserError(f"{path}: x_{split} has {len(x)} samples but y_{split} has {len(y)}")
        if not np.issubdtype(x.dtype, np.number):
            raise UserError(f"{path}: x_{split} must be numeric, got dtype {x.dtype}")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise UserError(f"{path}: x_{split} holds NaN or infinite values")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise UserError(
            f"{path}: x_train samples have shape {arrays['x_train'].shape[1:]} "
            f"but x_test samples have shape {arrays['x_test'].shape[1:]}"
        )
    return Dataset(
        path=path,
        x_train=arrays["x_train"].astype(np.float32),
        y_train=_labels(arrays["y_train"], "y_train", path, keep_float_labels),
        x_test=arrays["x_test"].astype(np.float32),
        y_test=_labels(arrays["y_test"], "y_test", path, keep_float_labels),
    )


def with_task_labels(data: Dataset, regression: bool) -> Dataset:
    """Labels for the task the model turned out to have: float targets for regression, else class ids."""
    if regression:
        return data
    return replace(
        data,
        y_train=_labels(data.y_train, "y_train", data.path),
        y_test=_labels(data.y_test, "y_test", data.path),
    )


def check_against_model(data: Dataset, input_shape: tuple, output_units: int, model_name: str) -> None:
    """Refuse data whose samples do not fit the model's input, or whose labels exceed its outputs."""
    expected = tuple(input_shape)
    got = data.sample_shape
    fits = len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got, strict=True))
    if not fits:
        shown = (
            "(" + ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        )
        raise UserError(f"{data.path}: samples have shape {got} but {model_name} expects input shape {shown}")
    classes = max(output_units, 2)
    for split in ("train", "test"):
        y = getattr(data, f"y_{split}")
        if np.issubdtype(y.dtype, np.floating):  # regression targets (or class ids not yet converted)
            continue
        if y.min() < 0 or y.max() >= classes:
            raise UserError(
                f"{data.path}: y_{split} holds labels in [{y.min()}, {y.max()}] but {model_name} "
                f"has {output_units} output unit(s), so labels must lie in [0, {classes - 1}]"
            )
