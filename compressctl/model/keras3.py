"""Keras 3 ``.keras`` files, converted into tf_keras (Keras 2) models for TFMOT.

Keras 3 never enters compressctl's process (TFMOT needs Keras 2, and one process cannot hold
both). Instead:

1. the architecture is read from the file's ``config.json`` and rewritten in Keras 2's config
   format (input shapes, inbound nodes, dtype policies, nested initializer objects; options Keras 2
   lacks are dropped only when they are unset or change nothing at inference, else the file is refused);
2. tf_keras rebuilds the model from that config;
3. the weights are read from the file's ``model.weights.h5`` with h5py and copied layer by layer,
   matched by layer name, each array checked against the Keras 2 layer's shapes;
4. Keras 3 runs the original file on data samples in a child process (``keras3_worker``), and the
   conversion is accepted only when both models' outputs agree within 1e-5 (absolute, plus 1e-5 of
   the output's magnitude); otherwise it is refused with the measured difference.

Custom Keras 3 layers (a registered name outside Keras) are refused: their code is Keras 3 code.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from compressctl.core.errors import UserError

TOLERANCE = 1e-5
CHECK_SAMPLES = 64
WORKER = [sys.executable, "-m", "compressctl.model.keras3_worker"]
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])

# Keyword arguments every tf_keras layer takes through **kwargs (tf_keras Layer.__init__).
_BASE_LAYER_KWARGS = {
    "name",
    "trainable",
    "dtype",
    "dynamic",
    "input_dim",
    "input_shape",
    "batch_input_shape",
    "batch_size",
    "weights",
    "activity_regularizer",
    "autocast",
    "implementation",
}
# Keras 3 options without a tf_keras counterpart that change nothing at inference: dropped whatever their value.
_INFERENCE_NEUTRAL = {"seed", "use_cudnn"}
# Functional and Sequential models nested as layers are rebuilt from their own configs.
_MODEL_CLASSES = {"Functional", "Sequential", "Model"}


def load_keras3(path: Path, samples: np.ndarray | None = None, trust_model: bool = False):
    """(tf_keras model, what the conversion measured) for a Keras 3 ``.keras`` file; UserError when refused."""
    from compressctl.core.env import keras

    k = keras()
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        version = json.loads(z.read("metadata.json")).get("keras_version", "3")
        if "model.weights.h5" not in z.namelist():
            raise UserError(f"{path}: the Keras 3 file holds no model.weights.h5")
        weights = z.read("model.weights.h5")
    converted = _Converter(k, path).model(config)
    try:
        if config.get("class_name") == "Sequential":
            model = k.Sequential.from_config(converted["config"])
        else:
            model = k.Model.from_config(converted["config"])
    except Exception as exc:  # noqa: BLE001 - any rebuild failure is the file's problem
        raise UserError(f"{path}: could not rebuild the Keras 3 model in tf_keras: {_first_line(exc)}") from None
    copied = _copy_weights(model, weights, path)
    inputs, kind = _check_inputs(model, samples)
    expected, keras3_version = _run_keras3(path, inputs, trust_model)
    got = np.asarray(model.predict(inputs, batch_size=256, verbose=0), dtype=np.float32)
    if got.shape != expected.shape:
        raise UserError(
            f"{path}: the tf_keras rebuild outputs shape {got.shape[1:]} but Keras 3 outputs {expected.shape[1:]}"
        )
    difference = float(np.max(np.abs(got - expected))) if got.size else 0.0
    allowed = TOLERANCE + TOLERANCE * float(np.max(np.abs(expected))) if expected.size else TOLERANCE
    if not difference <= allowed:
        raise UserError(
            f"{path}: the Keras 3 model rebuilt in tf_keras gives different outputs (max |difference| "
            f"{difference:.3g} on {len(inputs)} {kind}, allowed {allowed:.3g}); refusing the conversion"
        )
    record = {
        "format": "keras3",
        "keras_version": str(version),
        "checked_with": f"keras {keras3_version}",
        "layers_copied": copied,
        "check_samples": int(len(inputs)),
        "check_inputs": kind,
        "max_abs_difference": difference,
        "tolerance": allowed,
    }
    return model, record


def note(record: dict) -> str:
    return (
        f"converted from Keras {record['keras_version']}: rebuilt in tf_keras, weights of {record['layers_copied']} "
        f"layer(s) copied; outputs match Keras 3 within {record['max_abs_difference']:.2g} "
        f"(allowed {record['tolerance']:.2g}) on {record['check_samples']} {record['check_inputs']}"
    )


# --------------------------------------------------------------------------- config


class _Converter:
    """Keras 3 config JSON → tf_keras config, refusing what tf_keras cannot express."""

    def __init__(self, k, path: Path):
        self.k, self.path = k, path

    def refuse(self, why: str) -> UserError:
        return UserError(f"{self.path}: cannot convert this Keras 3 model to tf_keras: {why}")

    def model(self, entry: dict) -> dict:
        cfg = dict(entry.get("config") or {})
        kind = entry.get("class_name")
        layers = [self.layer(e, functional=kind != "Sequential") for e in cfg.get("layers", [])]
        out = {"name": cfg.get("name"), "layers": layers}
        if kind == "Sequential":
            if cfg.get("build_input_shape") is not None:
                out["build_input_shape"] = cfg["build_input_shape"]
        else:
            out["input_layers"] = _tensor_refs(cfg.get("input_layers"))
            out["output_layers"] = _tensor_refs(cfg.get("output_layers"))
        out["trainable"] = cfg.get("trainable", True)
        return {"class_name": "Sequential" if kind == "Sequential" else "Functional", "config": out}

    def layer(self, entry: dict, functional: bool) -> dict:
        kind = entry.get("class_name")
        name = (entry.get("config") or {}).get("name", entry.get("name"))
        module = str(entry.get("module") or "")
        if kind in _MODEL_CLASSES:
            converted = self.model(entry)
        else:
            registered = entry.get("registered_name")
            if not module.startswith("keras") or (registered and registered != kind):
                raise self.refuse(
                    f"layer {name} is the custom Keras 3 layer {registered or kind} ({module or 'no module'}); only "
                    "models made of built-in layers are converted: rebuild it with tf_keras, or export a SavedModel "
                    "(model.export(dir)) for post-training targets"
                )
            if kind == "Lambda":
                raise self.refuse(f"layer {name} is a Lambda layer, whose Keras 3 code tf_keras cannot load")
            cls = getattr(self.k.layers, kind, None)
            if cls is None:
                raise self.refuse(f"layer {name} is a {kind}, which tf_keras does not have")
            cfg = dict(entry.get("config") or {})
            if kind == "InputLayer" and "batch_shape" in cfg:
                cfg["batch_input_shape"] = cfg.pop("batch_shape")
            cfg = self.options(cfg, cls, f"layer {name} ({kind})")
            converted = {"class_name": kind, "config": cfg}
        if functional:
            converted["name"] = entry.get("name", name)
            converted["inbound_nodes"] = [self.node(n, name) for n in entry.get("inbound_nodes") or []]
        return converted

    def options(self, cfg: dict, cls, where: str) -> dict:
        """Convert nested objects and drop options tf_keras lacks when they are unset; refuse the rest."""
        cfg.pop("shared_object_id", None)
        allowed = _init_options(cls)
        out = {}
        for key, value in cfg.items():
            value = self.value(value, f"{where} option {key}")
            if key in allowed:
                out[key] = value
            elif key in _INFERENCE_NEUTRAL or value in (None, False, 0, "", [], {}):
                continue
            else:
                raise self.refuse(f"{where} sets {key}={value!r}, which tf_keras has no option for")
        return out

    def value(self, value, where: str):
        if isinstance(value, list):
            return [self.value(v, where) for v in value]
        if not isinstance(value, dict) or "class_name" not in value or "config" not in value:
            return value
        kind, module = value["class_name"], str(value.get("module") or "")
        if kind in ("DTypePolicy", "FloatDTypePolicy"):
            return (value.get("config") or {}).get("name", "float32")
        namespace = {
            "keras.initializers": self.k.initializers,
            "keras.regularizers": self.k.regularizers,
            "keras.constraints": self.k.constraints,
        }.get(module)
        if module == "keras.layers" or kind in _MODEL_CLASSES:  # a wrapped layer (Bidirectional, TimeDistributed)
            return self.layer(value, functional=False)
        if namespace is None or not hasattr(namespace, kind):
            raise self.refuse(f"{where} is a {module or '?'}.{kind}, which tf_keras does not have")
        cfg = value.get("config")
        if isinstance(cfg, dict):
            cfg = self.options(dict(cfg), getattr(namespace, kind), f"{where} ({kind})")
        return {"class_name": kind, "config": cfg}

    def node(self, node, layer: str) -> list:
        """A Keras 3 call ({args, kwargs}) → a Keras 2 inbound node ([[name, node, tensor, kwargs], ...])."""
        if not isinstance(node, dict):
            raise self.refuse(f"layer {layer} has an inbound node in an unknown format")
        args = node.get("args") or []
        kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None}
        if len(args) != 1:
            raise self.refuse(f"layer {layer} is called with {len(args)} positional inputs; tf_keras takes one")
        tensors = args[0] if isinstance(args[0], list) else [args[0]]
        refs = []
        for tensor in tensors:
            history = (tensor.get("config") or {}).get("keras_history") if isinstance(tensor, dict) else None
            if not history:
                raise self.refuse(f"layer {layer} takes an input that is not a layer's output")
            refs.append([history[0], history[1], history[2], kwargs])
        return refs


def _init_options(cls) -> set[str]:
    """Keyword options a tf_keras class accepts, through **kwargs up its base classes too."""
    allowed: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        allowed |= {name for name, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD} - {"self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    # tf_keras's Layer takes these through **kwargs and checks them itself.
    return allowed | (_BASE_LAYER_KWARGS if any(k.__name__ == "Layer" for k in cls.__mro__) else set())


def _tensor_refs(refs) -> list:
    """Keras 3 writes one model input as [name, node, tensor]; Keras 2 always wants a list of them."""
    if not refs:
        return []
    return [list(refs)] if isinstance(refs[0], str) else [list(r) for r in refs]


# --------------------------------------------------------------------------- weights


def _copy_weights(model, weights_h5: bytes, path: Path) -> int:
    """Set every tf_keras layer's weights from the h5 group Keras 3 wrote for the layer of that name."""
    import h5py

    with tempfile.TemporaryDirectory(prefix="compressctl-k3-") as tmp:
        file = Path(tmp) / "model.weights.h5"
        file.write_bytes(weights_h5)
        with h5py.File(file, "r") as h5:
            groups = _groups_by_layer_name(h5)
            copied = 0
            for layer in _all_layers(model):
                if not layer.weights or _is_model(layer):
                    continue
                group = groups.get(layer.name)
                if group is None:
                    raise UserError(f"{path}: the Keras 3 weights hold nothing for layer {layer.name}")
                arrays = _arrays(group)
                shapes = [tuple(w.shape) for w in layer.weights]
                if [a.shape for a in arrays] != shapes:
                    raise UserError(
                        f"{path}: layer {layer.name}: Keras 3 stores weights of shapes "
                        f"{[a.shape for a in arrays]}, tf_keras expects {shapes}"
                    )
                layer.set_weights(arrays)
                copied += 1
    return copied


def _groups_by_layer_name(h5) -> dict:
    """Layer name → its h5 group: each layer's ``vars`` group records the layer's name."""
    found = {}

    def visit(name, obj):
        if name.endswith("vars") and "name" in obj.attrs:
            parent = obj.parent
            # A GRU's cell writes its own vars group below the layer's; the layer's own name wins.
            found.setdefault(str(obj.attrs["name"]), parent)

    h5.visititems(visit)
    return found


# Sub-objects in the order tf_keras lists their weights (a Bidirectional's forward layer comes first).
_CHILD_ORDER = ("cell", "forward_layer", "backward_layer", "layer")


def _arrays(group) -> list[np.ndarray]:
    out = []
    if "vars" in group:
        out += [np.asarray(group["vars"][k]) for k in sorted(group["vars"], key=int)]
    children = [k for k in group if k != "vars"]
    children.sort(key=lambda k: (_CHILD_ORDER.index(k) if k in _CHILD_ORDER else len(_CHILD_ORDER), k))
    for child in children:
        out += _arrays(group[child])
    return out


def _all_layers(model):
    for layer in model.layers:
        if _is_model(layer):
            yield from _all_layers(layer)
        else:
            yield layer


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


# --------------------------------------------------------------------------- output check


def _check_inputs(model, samples: np.ndarray | None) -> tuple[np.ndarray, str]:
    if samples is not None and len(samples):
        return np.asarray(samples[:CHECK_SAMPLES], dtype=np.float32), "data samples"
    # Without data (inspect, init), seeded random inputs; free dimensions take 8.
    shape = [8 if d is None else int(d) for d in model.inputs[0].shape[1:]]
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, *shape)).astype(np.float32), "random inputs"


def _run_keras3(path: Path, inputs: np.ndarray, trust_model: bool) -> tuple[np.ndarray, str]:
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)  # the child must import Keras 3
    env["KERAS_BACKEND"] = "tensorflow"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    # The same numerics switches as this process, so both sides run the same kernels.
    for key, value in (("TF_CPP_MIN_LOG_LEVEL", "3"), ("TF_ENABLE_ONEDNN_OPTS", "0"), ("CUDA_VISIBLE_DEVICES", "-1")):
        env.setdefault(key, value)
    with tempfile.TemporaryDirectory(prefix="compressctl-k3-") as tmp:
        x, y = Path(tmp) / "inputs.npy", Path(tmp) / "outputs.npy"
        np.save(x, inputs)
        command = [*WORKER, str(path), str(x), str(y)] + (["--unsafe"] if trust_model else [])
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise UserError(f"{path}: Keras 3 did not finish running the model within 600 s") from None
        if done.returncode != 0 or not y.exists():
            lines = [line for line in done.stderr.splitlines() if line.startswith("Keras 3 could not")]
            why = lines[-1] if lines else f"the Keras 3 process exited with status {done.returncode}"
            raise UserError(f"{path}: {why}")
        printed = done.stdout.strip().splitlines()
        return np.load(y), printed[-1] if printed else "3"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
