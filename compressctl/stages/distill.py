"""Knowledge distillation (Hinton et al., 2015): a student learns the stage's input model's softened outputs."""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
from pydantic import Field, model_serializer, model_validator

from compressctl.distribute import replica_note
from compressctl.errors import StageError, UserError
from compressctl.events import Event
from compressctl.params import FineTune, StrictModel
from compressctl.stages.base import (
    Stage,
    StageContext,
    StageResult,
    first_line,
    is_graph_model,
    rebuild_from_config,
    require_graph_model,
    require_keras,
)

# Config keys that set how wide a layer is (Dense, RNN units; convolution filters).
WIDTH_KEYS = ("units", "filters")
# Probabilities are floored before their log is taken: a softmax output that underflowed to 0 would
# otherwise give an infinite logit. A sigmoid output near 1 loses its precision in 1 − p, so the
# binary floor is float32's own.
SOFTMAX_FLOOR = 1e-20
SIGMOID_FLOOR = 1e-7
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
    columns = ("width_before", "width_after", "params")
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
        self._train(student, teacher_batches(ctx, model, self.params.batch_size or ctx.batch_size), ctx)
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

    def _train(self, student, batches, ctx: StageContext) -> None:
        """Train on ``batches(epoch, rng)``, an iterator of (inputs, labels, hard labels, teacher logits)."""
        from compressctl.tfenv import keras, tf

        tensorflow, k = tf(), keras()
        p, task = self.params, ctx.task
        samples = ctx.data.train_samples
        batch_size = p.batch_size or ctx.batch_size
        steps = int(np.ceil(samples / batch_size))
        optimizer = k.optimizers.Adam(learning_rate=p.learning_rate)
        hard_loss = task.loss()
        alpha, temperature = float(p.alpha), float(p.temperature)
        train_step = None

        def make_step(xb, labels, tb):
            signature = [
                tensorflow.TensorSpec((None, *a.shape[1:]), tensorflow.as_dtype(a.dtype)) for a in (xb, labels, tb)
            ]
            return tensorflow.function(step, input_signature=signature)

        def step(xb, yb, tb):
            with tensorflow.GradientTape() as tape:
                outputs = student(xb, training=True)
                if task.regression:
                    # A regression teacher's outputs are targets themselves: match them in squared error.
                    soft = tensorflow.reduce_mean(tensorflow.square(logits_tf(tensorflow, outputs, task) - tb))
                    loss = alpha * hard_loss(yb, outputs) + (1 - alpha) * soft
                else:
                    soft = soft_kl(tensorflow, tb, logits_tf(tensorflow, outputs, task), temperature, task.binary)
                    loss = alpha * hard_loss(yb, outputs) + (1 - alpha) * temperature**2 * soft
                if student.losses:
                    loss += tensorflow.add_n(student.losses)
            variables = student.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss, outputs

        rng = np.random.default_rng(ctx.seed)
        total = p.epochs * steps
        ctx.emit(Event("task_begin", "distill", total=total, completed=0))
        try:
            for epoch in range(p.epochs):
                losses, correct, seen = [], 0, 0
                for batch, (xb, labels, yb, tb) in enumerate(batches(epoch, rng)):
                    if train_step is None:
                        train_step = make_step(xb, labels, tb)
                    loss, outputs = train_step(xb, labels, tb)
                    losses.append(float(loss))
                    correct += task.score(outputs.numpy(), yb) * len(yb)
                    seen += len(yb)
                    ctx.emit(
                        Event(
                            "task_advance",
                            "distill",
                            total=total,
                            completed=epoch * steps + batch + 1,
                            data={"loss": losses[-1], "metric": correct / seen},
                        )
                    )
                ctx.emit(
                    Event(
                        "epoch",
                        f"distill: epoch {epoch + 1}/{p.epochs}",
                        total=p.epochs,
                        completed=epoch + 1,
                        data={"loss": float(np.mean(losses)), "metric": correct / seen},
                    )
                )
        except Exception as exc:  # noqa: BLE001 - a training failure names the stage
            raise StageError(f"distill: training failed: {first_line(exc)}") from None
        finally:
            ctx.emit(Event("task_end", "distill"))


def teacher_batches(ctx: StageContext, teacher, batch_size: int):
    """``batches(epoch, rng)`` of (inputs, labels, hard labels, teacher logits) for ``Distill._train``."""
    if ctx.data.in_memory:
        # The teacher is frozen and runs in inference mode, so its outputs on the train split are fixed:
        # computing them once is the same as computing them every batch, at a fraction of the cost.
        teacher_logits = to_logits(teacher.predict(ctx.data.x_train, batch_size=256, verbose=0), ctx.task)
        return _memory_batches(ctx, teacher_logits, batch_size)
    return _stream_batches(ctx, teacher, batch_size)  # a streaming source: teacher logits batch by batch


def _memory_batches(ctx: StageContext, teacher_logits: np.ndarray, batch_size: int):
    """Batches of an npz's arrays in a fresh permutation each epoch, with precomputed teacher logits."""
    x, y = ctx.data.x_train, ctx.data.y_train
    labels = y.astype(np.float32).reshape(-1, 1) if ctx.task.binary or ctx.task.regression else y

    def batches(epoch, rng):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            yield x[index], labels[index], y[index], teacher_logits[index]

    return batches


def _stream_batches(ctx: StageContext, teacher, batch_size: int):
    """Batches streamed from the source (reshuffled every epoch), teacher logits computed per batch."""

    def batches(epoch, rng):
        # A fresh dataset per epoch, so its seed moves with the epoch (else every epoch had one order).
        for xb, yb in ctx.data.guard(ctx.data.train_batches(batch_size, ctx.seed + epoch).as_numpy_iterator()):
            tb = to_logits(teacher(xb, training=False).numpy(), ctx.task)
            labels = yb.astype(np.float32).reshape(-1, 1) if ctx.task.binary or ctx.task.regression else yb
            yield xb, labels, yb, tb

    return batches


def to_logits(outputs: np.ndarray, task) -> np.ndarray:
    """The model's outputs as logits (log-probabilities for softmax, log-odds for sigmoid)."""
    outputs = np.asarray(outputs, dtype=np.float32).reshape(len(outputs), -1)
    if task.from_logits or getattr(task, "regression", False):  # regression outputs are used as they are
        return outputs
    if task.binary:
        p = np.clip(outputs, SIGMOID_FLOOR, 1 - SIGMOID_FLOOR)
        return (np.log(p) - np.log1p(-p)).astype(np.float32)
    return np.log(np.maximum(outputs, SOFTMAX_FLOOR)).astype(np.float32)


def logits_tf(tensorflow, outputs, task):
    """``to_logits`` in TensorFlow, differentiable, for the student's outputs."""
    outputs = tensorflow.reshape(tensorflow.cast(outputs, tensorflow.float32), (tensorflow.shape(outputs)[0], -1))
    if task.from_logits or getattr(task, "regression", False):
        return outputs
    if task.binary:
        p = tensorflow.clip_by_value(outputs, SIGMOID_FLOOR, 1 - SIGMOID_FLOOR)
        return tensorflow.math.log(p) - tensorflow.math.log1p(-p)
    return tensorflow.math.log(tensorflow.maximum(outputs, SOFTMAX_FLOOR))


def soft_kl(tensorflow, teacher_logits, student_logits, temperature: float, binary: bool):
    """Mean KL(teacher ‖ student) of the temperature-softened distributions.

    One sigmoid output is a two-class distribution (p, 1 − p); log σ(z) and log σ(−z) give both
    log-probabilities without cancellation.
    """
    t, s = teacher_logits / temperature, student_logits / temperature
    if binary:
        log_t = tensorflow.concat([tensorflow.math.log_sigmoid(t), tensorflow.math.log_sigmoid(-t)], axis=-1)
        log_s = tensorflow.concat([tensorflow.math.log_sigmoid(s), tensorflow.math.log_sigmoid(-s)], axis=-1)
    else:
        log_t, log_s = tensorflow.nn.log_softmax(t, axis=-1), tensorflow.nn.log_softmax(s, axis=-1)
    return tensorflow.reduce_mean(tensorflow.reduce_sum(tensorflow.exp(log_t) * (log_t - log_s), axis=-1))


def width_student(model, width: float, seed: int):
    """The model's architecture with hidden layers ``width`` times as wide, freshly initialised."""
    from compressctl.tfenv import keras

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
    keras().utils.set_random_seed(seed)
    try:
        student = rebuild_from_config(model, config, "distill")
    except StageError as exc:
        raise StageError(
            f"{exc} (a width-{width:g} student must fit together: layers whose sizes are tied to another "
            "layer's, such as a Reshape after a Dense or a residual Add with the input, do not scale)"
        ) from None
    return student, rows


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
    from compressctl.modelio import load_model, task_info

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
