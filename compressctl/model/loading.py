"""Loading models of every supported format, and exporting them for the converter.

Formats: Keras 2 SavedModel directories (with Keras metadata), inference-only SavedModels
(signatures, no Keras metadata: post-training targets only), ``.h5`` and Keras 2 ``.keras``
files, and Keras 3 ``.keras`` files rebuilt in tf_keras (compressctl.model.keras3). Models whose
loading would run Python code stored in the file (``Lambda`` layers) are refused unless the user
trusts the file.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compressctl.core import metrics
from compressctl.core.errors import StageError, UserError
from compressctl.core.internals import keras as keras_internals
from compressctl.litert.evaluate import TaskInfo

TRAINABLE_FORMATS = ("savedmodel", "h5", "keras")


@dataclass
class ModelHandle:
    """A loaded model: a Keras model when there is one, else an inference-only signature."""

    path: Path
    format: str  # savedmodel | h5 | keras | savedmodel-inference
    keras: object | None = None
    signature: object | None = None
    input_name: str | None = None
    output_name: str | None = None
    input_shape: tuple = ()  # per sample, without batch; None for free dimensions
    input_dtype: str = "float32"
    output_shape: tuple = ()
    notes: list[str] = field(default_factory=list)
    converted_from: dict | None = None  # a Keras 3 file rebuilt in tf_keras: what the conversion measured
    _loaded: object | None = None  # keeps an inference-only SavedModel's resources alive

    @property
    def trainable(self) -> bool:
        return self.keras is not None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def output_units(self) -> int:
        return int(self.output_shape[-1]) if self.output_shape and self.output_shape[-1] else 1

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        if self.keras is not None:
            return np.asarray(self.keras.predict(x, batch_size=batch_size, verbose=0))
        from compressctl.core.env import tf

        tensorflow = tf()
        fixed = self.signature.structured_input_signature[1][self.input_name].shape[0]
        step = fixed or batch_size
        outputs = []
        for start in range(0, len(x), step):
            chunk = tensorflow.constant(x[start : start + step])
            outputs.append(self.signature(**{self.input_name: chunk})[self.output_name].numpy())
        return np.concatenate(outputs)


def _lambda_in_config(text: str) -> bool:
    return '"class_name": "Lambda"' in text or '"class_name":"Lambda"' in text


def _scan_for_code(path: Path, fmt: str) -> str | None:
    """Return a description of code stored in the model file, or None."""
    try:
        if fmt == "h5":
            import h5py

            with h5py.File(path, "r") as f:
                config = f.attrs.get("model_config")
            if config is not None:
                text = config.decode() if isinstance(config, bytes) else str(config)
                if _lambda_in_config(text):
                    return "a Lambda layer (its Python code is stored in the file)"
        elif fmt == "savedmodel":
            meta = path / "keras_metadata.pb"
            if meta.exists() and b'"class_name": "Lambda"' in meta.read_bytes():
                return "a Lambda layer (its Python code is stored in the file)"
        elif fmt == "keras":
            with zipfile.ZipFile(path) as z:
                if _lambda_in_config(z.read("config.json").decode()):
                    return "a Lambda layer (its Python code is stored in the file)"
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return None


def detect_format(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: model not found")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise UserError(f"{path}: a directory without saved_model.pb is not a SavedModel")
        return "savedmodel" if (path / "keras_metadata.pb").exists() else "savedmodel-inference"
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "h5"
    if suffix == ".keras":
        return "keras"
    raise UserError(
        f"{path}: unsupported model format {suffix or '(no extension)'}; "
        "give a SavedModel directory, an .h5 file or a .keras file"
    )


def _keras_version_of(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("metadata.json")).get("keras_version", "")
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable .keras file ({exc})") from None


def load_custom_objects(spec: str | None) -> dict:
    """Import ``module:attribute`` (a dict of name → class or function) for custom layers.

    This runs the user's own module: naming it is the user's consent to run that code.
    """
    if not spec:
        return {}
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UserError(f"--custom-objects {spec}: expected module:dict, e.g. my_layers:CUSTOM_OBJECTS")
    import importlib
    import sys

    sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure importing user code is reported as bad input
        raise UserError(f"--custom-objects {spec}: cannot import {module_name}: {exc}") from None
    finally:
        sys.path.pop(0)
    objects = getattr(module, attribute, None)
    if not isinstance(objects, dict):
        raise UserError(f"--custom-objects {spec}: {module_name}.{attribute} is not a dict of name → class")
    return objects


def load_model(
    path: str | Path, trust_model: bool = False, custom_objects: str | None = None, samples: np.ndarray | None = None
) -> ModelHandle:
    """Load a model; every failure is a UserError that names the file and the reason.

    ``samples``: inputs on which a Keras 3 file's conversion to tf_keras is checked (random ones without).
    """
    path = Path(path)
    objects = load_custom_objects(custom_objects)
    fmt = detect_format(path)
    keras3 = fmt == "keras" and _keras_version_of(path).startswith("3")
    if keras3 and objects:
        raise UserError(
            f"{path}: a Keras 3 .keras file with --custom-objects; custom Keras 3 layers are Keras 3 code, which "
            "tf_keras cannot run. Rebuild the model with tf_keras, or export a SavedModel for post-training targets"
        )
    if not trust_model:
        code = _scan_for_code(path, fmt)
        if code:
            raise UserError(
                f"{path}: the model holds {code}; loading it would run that code. "
                "Pass --trust-model if you trust this file"
            )
    from compressctl.core.env import keras, tf

    if fmt == "savedmodel-inference":
        return _load_inference_only(path, tf())
    k = keras()
    if keras3:  # rebuilt in tf_keras and checked against Keras 3 in a child process (compressctl.model.keras3)
        from compressctl.model.keras3 import load_keras3, note

        model, record = load_keras3(path, samples, trust_model)
        return _handle(path, fmt, model, notes=[note(record)], converted_from=record)
    try:
        kwargs = {"compile": False, "custom_objects": objects or None}
        if fmt == "keras":
            kwargs["safe_mode"] = not trust_model
        model = k.models.load_model(str(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any load failure is the file's problem
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Unknown layer" in message or "custom" in message.lower():
            message += " (a custom layer: pass --custom-objects module:dict naming the code that defines it)"
        raise UserError(f"{path}: could not load the model: {message}") from None
    if not isinstance(model, k.Model):
        raise UserError(f"{path}: loaded a {type(model).__name__}, not a Keras model")
    return _handle(path, fmt, model)


def _handle(path: Path, fmt: str, model, **extra) -> ModelHandle:
    if len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        raise UserError(
            f"{path}: compressctl handles models with one input and one output; this one has "
            f"{len(model.inputs or [])} input(s) and {len(model.outputs or [])} output(s)"
        )
    return ModelHandle(
        path=path,
        format=fmt,
        keras=model,
        input_shape=tuple(model.inputs[0].shape[1:]),
        input_dtype=model.inputs[0].dtype.name,
        output_shape=tuple(model.outputs[0].shape[1:]),
        **extra,
    )


def _load_inference_only(path: Path, tensorflow) -> ModelHandle:
    try:
        loaded = tensorflow.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: could not load the SavedModel: {str(exc).splitlines()[0]}") from None
    signature = getattr(loaded, "signatures", {}).get("serving_default")
    if signature is None:
        raise UserError(f"{path}: the SavedModel has no serving_default signature")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(
            f"{path}: compressctl handles models with one input and one output; the serving signature "
            f"has {len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    (input_name, spec), (output_name, out_spec) = next(iter(inputs.items())), next(iter(outputs.items()))
    return ModelHandle(
        path=path,
        format="savedmodel-inference",
        signature=signature,
        input_name=input_name,
        output_name=output_name,
        input_shape=tuple(spec.shape[1:]),
        input_dtype=spec.dtype.name,
        output_shape=tuple(out_spec.shape[1:]),
        notes=["inference-only SavedModel (no Keras metadata): post-training targets only"],
        _loaded=loaded,
    )


def output_layer_activation(model) -> str | None:
    """Name of the activation that produces the model's output, when it can be read off."""
    layer = keras_internals.history_layer(model.outputs[0])
    while layer is not None:
        name = type(layer).__name__
        if name == "Softmax":
            return "softmax"
        activation = getattr(layer, "activation", None)
        if activation is not None:
            act = getattr(activation, "__name__", str(activation))
            if act != "linear":
                return act
            return "linear"
        # Pass-through layers (Reshape, Flatten, Dropout...) do not change what the values are.
        inbound = keras_internals.inbound_nodes(layer)
        parents = inbound[0].inbound_layers if inbound else None
        if isinstance(parents, list):
            parents = parents[0] if len(parents) == 1 else None
        layer = parents if parents is not None and parents is not layer else None
    return None


def task_info(
    handle: ModelHandle, sample: np.ndarray, metric: str | None = "accuracy", top_k: int = 5, labels=None
) -> TaskInfo:
    """Work out from the model whether it emits probabilities or logits, and binary or multi-class.

    ``metric`` None picks the default: ``mse`` (regression) when the model has one output unit with
    a linear (or unknown) activation and ``labels`` are floats other than 0/1, else ``accuracy``.
    """
    binary = handle.output_units == 1
    activation = output_layer_activation(handle.keras) if handle.keras is not None else None
    if metric is None:
        metric = "mse" if looks_like_regression(handle.output_units, activation, labels) else "accuracy"
    if metrics.is_regression(metric):
        if handle.output_units != 1:
            raise UserError(
                f"{handle.path}: task.metric {metric} scores one regression output, but the model has "
                f"{handle.output_units} output units; use accuracy, top_k_accuracy or auc"
            )
        return TaskInfo(binary=False, from_logits=False, metric=metric, top_k=top_k, regression=True)
    if activation in ("softmax", "sigmoid") or activation is not None and activation not in ("linear",):
        from_logits = False
    else:
        outputs = handle.predict(sample[:64])
        in_unit = bool(np.all(outputs >= 0) and np.all(outputs <= 1))
        sums_to_one = binary or bool(np.allclose(outputs.reshape(len(outputs), -1).sum(axis=1), 1, atol=1e-3))
        from_logits = not (in_unit and sums_to_one)
    return TaskInfo(binary=binary, from_logits=from_logits, metric=metric, top_k=top_k)


def looks_like_regression(output_units: int, activation: str | None, labels) -> bool:
    """One linear output unit trained on float labels other than 0/1 is a regression model."""
    if output_units != 1 or activation not in (None, "linear") or labels is None:
        return False
    labels = np.asarray(labels)
    return bool(np.issubdtype(labels.dtype, np.floating) and not np.all(np.isin(labels, (0, 1))))


def export_saved_model(handle: ModelHandle, directory: str | Path, sample_shape: tuple, model=None) -> Path:
    """Write a SavedModel whose serving signature takes one sample (batch 1, static shape).

    A fixed batch-1 signature is what the Edge TPU requires, what deployment runs, and what lets
    the converter handle recurrent layers whose dynamic-batch conversion fails.
    """
    from compressctl.core.env import tf

    tensorflow = tf()
    directory = Path(directory)
    shape = [1] + [s if s is not None else d for s, d in zip(handle.input_shape, sample_shape, strict=True)]
    spec = tensorflow.TensorSpec(shape, tensorflow.as_dtype(handle.input_dtype), name="input")
    module = tensorflow.Module()
    keras_model = model if model is not None else handle.keras
    if keras_model is not None:
        # Only the variables are tracked, not the Keras model: tracking the model has Keras trace
        # and save every layer's call functions (to reload it as Keras), which the converter never
        # reads. For a QAT-annotated MobileNetV3Small that cut the export from 46 to 8 s and its
        # int8 conversion from 73 to 21 s, with a byte-identical .tflite.
        module.model_variables = list(keras_model.variables)
        function = tensorflow.function(lambda x: {"output": keras_model(x, training=False)})
    else:
        module.loaded = handle._loaded
        signature, in_name, out_name = handle.signature, handle.input_name, handle.output_name
        function = tensorflow.function(lambda x: {"output": signature(**{in_name: x})[out_name]})
    try:
        concrete = function.get_concrete_function(spec)
        try:
            tensorflow.saved_model.save(module, str(directory), signatures={"serving_default": concrete})
        except Exception:  # noqa: BLE001 - resources other than variables (lookup tables): track the model
            if keras_model is None:
                raise
            shutil.rmtree(directory, ignore_errors=True)
            module.model = keras_model
            tensorflow.saved_model.save(module, str(directory), signatures={"serving_default": concrete})
    except Exception as exc:  # noqa: BLE001
        raise StageError(f"could not trace the model with a batch-1 input {shape}: {exc}") from None
    return directory
