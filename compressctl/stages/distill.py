"""Knowledge distillation (Hinton et al., 2015): a student learns the stage's input model's softened outputs."""

from __future__ import annotations

import copy
import re
from typing import Literal

from pydantic import Field, model_serializer, model_validator

from compressctl.core.errors import StageError, UserError
from compressctl.core.strict import StrictModel
from compressctl.model.distribute import replica_note
from compressctl.model.params import FineTune
from compressctl.stages.base import (
    Figure,
    Stage,
    StageContext,
    StageResult,
    is_graph_model,
    rebuild_from_config,
    require_graph_model,
    require_keras,
)
from compressctl.stages.distillation import teacher_batches, train_student

# Config keys that set how wide a layer is (Dense, RNN units; convolution filters).
WIDTH_KEYS = ("units", "filters")
# Distillation runs its own training loop, which does not distribute batches across replicas.
ONE_DEVICE = "distillation's training loop runs on one device"


class Student(StrictModel):
    """The model that learns: ``current`` (the stage's input model itself), ``{width: w}`` or ``{model: path}``."""

    width: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Width multiplier: the input model's architecture with every Dense/convolution/RNN layer "
        "but the output one scaled to round(width × units), trained from fresh weights.",
    )
    model: str | None = Field(
        None, min_length=1, description="A Keras model file or directory with the same input and output shapes."
    )

    @model_validator(mode="before")
    @classmethod
    def _current(cls, data):
        if data is None or data == "current":
            return {}
        if isinstance(data, str):
            raise ValueError(f"must be 'current', {{width: W}} or {{model: PATH}}, got {data!r}")
        return data

    @model_validator(mode="after")
    def _one_kind(self):
        if self.width is not None and self.model is not None:
            raise ValueError("give width or model, not both")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler):
        if self.is_current:
            return "current"
        return {key: value for key, value in handler(self).items() if value is not None}

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [{"const": "current", "type": "string"}, schema], "description": cls.__doc__}

    @property
    def is_current(self) -> bool:
        return self.width is None and self.model is None

    def describe(self) -> str:
        if self.width is not None:
            return f"width {self.width:g}"
        return self.model or "current"


class Distill(Stage):
    """Train a student on α·(hard-label loss) + (1−α)·T²·KL(teacher ‖ student) at temperature T.

    For regression the soft term is the mean squared difference to the teacher's outputs (no temperature).
    """

    type = "distill"
    order = 0
    restructures = True
    why_first = "distillation retrains the model"
    figures = (
        Figure("teacher_metric_value", "float", "teacher {pct:.2f} %"),
        Figure("student_metric_value", "float", "student {pct:.2f} %"),
        Figure("teacher_params", "int", "teacher params {value:,}"),
        Figure("student_params", "int", "student params {value:,}"),
    )
    layer_figures = (Figure("width_before", "int"), Figure("width_after", "int"), Figure("params", "int"))
    per_layer = False

    class Params(FineTune):
        type: Literal["distill"]
        student: Student = Field(
            default_factory=Student,
            description="current (the input model learns from a frozen copy of itself), {width: 0.5} (a thinner "
            "copy of the input architecture) or {model: path} (your own Keras model). The teacher is the stage's "
            "input model.",
        )
        alpha: float = Field(
            0.1,
            ge=0,
            le=1,
            description="Weight of the hard-label loss; 1 − alpha weighs the KL to the teacher (for regression, the "
            "squared error to the teacher's outputs).",
        )
        temperature: float = Field(
            4.0,
            gt=0,
            le=100,
            description="Softmax (or sigmoid) temperature of both models' logits in the KL term; the term is "
            "scaled by T² so its gradients keep their size as T changes.",
        )
        epochs: int = Field(10, ge=1, le=1000, description="Training epochs on the train split.")
        learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam learning rate.")

    def input_files(self) -> list[str]:
        """The student's model file, when the stage reads one (the stage cache hashes it)."""
        return [self.params.student.model] if self.params.student.model else []

    def apply(self, model, ctx: StageContext) -> StageResult:
        require_keras(model, "distill")
        require_graph_model(model, "distill")
        spec = self.params.student
        rows = []
        if spec.model is not None:
            student = load_student(spec.model, model, ctx)
        elif spec.width is not None:
            student, rows = width_student(model, spec.width, ctx.seed)
        else:
            student = model
        teacher_metric = ctx.evaluate(model)
        teacher_params = int(model.count_params())
        p = self.params
        batches = teacher_batches(ctx, model, p.batch_size or ctx.batch_size)
        train_student(
            student, batches, ctx, epochs=p.epochs, learning_rate=p.learning_rate, batch_size=p.batch_size,
            alpha=p.alpha, temperature=p.temperature,
        )  # fmt: skip
        return StageResult(
            model=student,
            measured={
                "teacher_metric_value": teacher_metric,
                "student_metric_value": ctx.evaluate(student),
                "teacher_params": teacher_params,
                "student_params": int(student.count_params()),
            },
            layers=[{**row, "params": int(student.get_layer(row["layer"]).count_params())} for row in rows],
            notes=[f"student: {spec.describe()}"] + ([replica_note(ctx.strategy, ONE_DEVICE)] if ctx.strategy else []),
        )


def width_student(model, width: float, seed: int):
    """The model's architecture with hidden layers ``width`` times as wide, freshly initialised."""
    from compressctl.core.env import keras

    config = copy.deepcopy(model.get_config())
    keep = _output_layers(config)
    rows = []
    for entry in config["layers"]:
        # Input sizes recorded for building no longer hold once widths change; calls rebuild them.
        entry.pop("build_config", None)
        name = entry["config"].get("name")
        if name in keep:
            continue
        scaled = _scale(entry, width)
        if scaled is not None:
            rows.append({"layer": name, "width_before": scaled[0], "width_after": scaled[1]})
    channels = _follow_reshapes(model, config, {row["layer"]: row["width_after"] for row in rows})
    keras().utils.set_random_seed(seed)
    try:
        student = rebuild_from_config(model, config, "distill")
    except StageError as exc:
        named = _misfit(config, channels) or re.search(r'layer "([^"]+)"', str(exc))  # Keras's name for it
        where = f" at layer {(named if isinstance(named, str) else named.group(1))!r}" if named else ""
        raise StageError(
            f"stage distill: a width-{width:g} student of this model does not fit together{where}: a layer's size is "
            "tied to another's in a way the stage cannot follow (a residual Add with the model's input, a "
            "Reshape to a shape the thinner tensor cannot take); give a student model file instead "
            "(student: {model: PATH})"
        ) from None
    return student, rows


def _follow_reshapes(model, config: dict, scaled: dict[str, int]) -> dict[str, int | None]:
    """Give each Reshape the thinner tensor's shape: squeeze-excite's (1, 1, C), a Dense's (7, 7, C).

    Channel counts (the last axis) are followed through the graph in the config's order: a width-bearing
    layer has its scaled count, a Concatenate the sum of its inputs', and any other layer whose last
    axis equals its first input's passes that input's count on.
    """
    old = {layer.name: _last_axis(layer) for layer in model.layers}
    new: dict[str, int | None] = {}
    previous = None
    for entry in config["layers"]:
        cfg = entry["config"]
        name = cfg.get("name")
        inputs = _inbound(entry) if "inbound_nodes" in entry else ([previous] if previous else [])
        inputs = [i for i in inputs if i in new]
        first = inputs[0] if inputs else None
        if name in scaled:
            new[name] = scaled[name]
        elif entry.get("class_name") == "Concatenate" and cfg.get("axis", -1) == -1 and inputs:
            counts = [new[i] for i in inputs]
            new[name] = sum(counts) if None not in counts else old.get(name)
        elif first is not None and old.get(name) == old.get(first):
            new[name] = new[first]
        else:
            new[name] = old.get(name)
        if entry.get("class_name") == "Reshape" and first is not None:
            target = _retarget(list(cfg["target_shape"]), model.get_layer(first), old[first], new[first])
            if target is not None:
                cfg["target_shape"] = target
                new[name] = target[-1] if target[-1] != -1 else new[name]
        previous = name
    return new


MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


def _misfit(config: dict, channels: dict[str, int | None]) -> str | None:
    """The first element-wise merge whose inputs' channel counts no longer agree (1 broadcasts)."""
    for entry in config["layers"]:
        if entry.get("class_name") in MERGES and "inbound_nodes" in entry:
            counts = {channels.get(name) for name in _inbound(entry)} - {None, 1}
            if len(counts) > 1:
                return entry["config"].get("name")
    return None


def _retarget(target: list, producer, old_last: int | None, new_last: int | None) -> list | None:
    """``target`` rewritten for an input whose last axis went from ``old_last`` to ``new_last``."""
    if old_last is None or new_last is None or old_last == new_last:
        return None
    try:
        shape = [int(d) for d in producer.output.shape[1:]]
    except (AttributeError, TypeError, ValueError):
        return None
    if -1 in target:
        return target[:-1] + [new_last] if target[-1] == old_last else None
    total = 1
    for d in shape:
        total *= d
    head = 1
    for d in target[:-1]:
        head *= d
    new_total = total // old_last * new_last
    if head * target[-1] != total or new_total % head:
        return None
    return target[:-1] + [new_total // head]


def _last_axis(layer) -> int | None:
    try:
        last = layer.output.shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError, RuntimeError):
        return None  # a layer called more than once, or one without a single output
    return int(last) if last is not None else None


def _inbound(entry: dict) -> list[str]:
    names = []
    for node in entry.get("inbound_nodes") or []:
        if isinstance(node, list):
            names.extend(ref[0] for ref in node if isinstance(ref, list) and ref and isinstance(ref[0], str))
    return names


def _width_of(entry: dict) -> dict | None:
    """The config dict holding the layer's width key (a wrapper's inner layer for Bidirectional etc.)."""
    cfg = entry.get("config", {})
    if any(key in cfg for key in WIDTH_KEYS):
        return cfg
    inner = cfg.get("layer")
    return _width_of(inner) if isinstance(inner, dict) else None


def _scale(entry: dict, width: float) -> tuple[int, int] | None:
    cfg = _width_of(entry)
    if cfg is None:
        return None
    key = next(key for key in WIDTH_KEYS if key in cfg)
    before = int(cfg[key])
    cfg[key] = max(1, int(round(before * width)))
    return before, cfg[key]


def _output_layers(config: dict) -> set[str]:
    """Names of the width-bearing layers that set the model's output size, which must not change."""
    layers = config["layers"]
    if "output_layers" not in config:  # Sequential: the last layer with a width
        last = next((e["config"]["name"] for e in reversed(layers) if _width_of(e) is not None), None)
        return {last} if last else set()
    by_name = {e["name"]: e for e in layers}
    keep, seen = set(), set()
    todo = [ref[0] for ref in config["output_layers"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        entry = by_name[name]
        if _width_of(entry) is not None:
            keep.add(name)
            continue
        # A pass-through layer (Softmax, Reshape, Add...) takes its size from its inputs.
        for node in entry.get("inbound_nodes") or []:
            todo.extend(ref[0] for ref in node)
    return keep


def load_student(path: str, teacher, ctx: StageContext):
    """A student model from a file: trainable Keras, same input and output shapes and output kind."""
    from compressctl.model.loading import load_model, task_info

    handle = load_model(path)
    if not handle.trainable:
        raise UserError(f"{path}: an inference-only SavedModel cannot be trained as a distillation student")
    student = handle.keras
    if not is_graph_model(student):
        raise UserError(f"{path}: the student is a subclassed model; give a Sequential or functional model")
    want_in, want_out = tuple(teacher.inputs[0].shape[1:]), tuple(teacher.outputs[0].shape[1:])
    if handle.input_shape != want_in or handle.output_shape != want_out:
        raise UserError(
            f"{path}: the student maps {_shape(handle.input_shape)} → {_shape(handle.output_shape)}, "
            f"the model {_shape(want_in)} → {_shape(want_out)}; they must match"
        )
    from_logits = task_info(handle, ctx.data.head(64, "train")).from_logits
    if not ctx.task.regression and from_logits != ctx.task.from_logits:
        said = ("logits", "probabilities")
        raise UserError(
            f"{path}: the student outputs {said[not from_logits]} but the model outputs "
            f"{said[not ctx.task.from_logits]}; give the student the same output activation"
        )
    return student


def _shape(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
