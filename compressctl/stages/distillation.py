"""Distillation's training loop and losses, shared by the stages that distil (``distill``, ``prune_channels``).

Not a stage itself: stage modules import this module, never each other.
"""

from __future__ import annotations

import numpy as np

from compressctl.core.errors import StageError, first_line
from compressctl.core.events import Event
from compressctl.stages.base import StageContext, steps_per_epoch

# Probabilities are floored before their log is taken: a softmax output that underflowed to 0 would
# otherwise give an infinite logit. A sigmoid output near 1 loses its precision in 1 − p, so the
# binary floor is float32's own.
SOFTMAX_FLOOR = 1e-20
SIGMOID_FLOOR = 1e-7


def train_student(
    student,
    batches,
    ctx: StageContext,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int | None,
    alpha: float,
    temperature: float,
    label: str = "distill",
) -> None:
    """Train ``student`` on α·hard loss + (1−α)·T²·KL(teacher ‖ student), from ``batches(epoch, rng)``.

    ``batches`` yields (inputs, labels, hard labels, teacher logits); ``teacher_batches`` makes it.
    For regression the soft term is the squared difference to the teacher's outputs (no temperature).
    """
    from compressctl.core.env import keras, tf

    tensorflow, k = tf(), keras()
    task = ctx.task
    batch_size = batch_size or ctx.batch_size
    steps = steps_per_epoch(ctx, batch_size)
    optimizer = k.optimizers.Adam(learning_rate=learning_rate)
    hard_loss = task.loss()
    alpha, temperature = float(alpha), float(temperature)
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
    total = epochs * steps
    ctx.emit(Event("task_begin", label, total=total, completed=0))
    try:
        for epoch in range(epochs):
            losses, correct, seen = [], 0, 0
            for batch, (xb, labels, yb, tb) in enumerate(batches(epoch, rng)):
                if batch == steps:  # training.steps_per_epoch reached
                    break
                if train_step is None:  # training.run_eagerly: the plain Python step, untraced
                    train_step = step if ctx.run_eagerly else make_step(xb, labels, tb)
                loss, outputs = train_step(xb, labels, tb)
                losses.append(float(loss))
                correct += task.score(outputs.numpy(), yb) * len(yb)
                seen += len(yb)
                ctx.emit(
                    Event(
                        "task_advance",
                        label,
                        total=total,
                        completed=epoch * steps + batch + 1,
                        data={"loss": losses[-1], "metric": correct / seen},
                    )
                )
            ctx.emit(
                Event(
                    "epoch",
                    f"{label}: epoch {epoch + 1}/{epochs}",
                    total=epochs,
                    completed=epoch + 1,
                    data={"loss": float(np.mean(losses)), "metric": correct / seen, "metric_name": task.metric_name},
                )
            )
    except Exception as exc:  # noqa: BLE001 - a training failure names the stage
        raise StageError(f"{label}: training failed: {first_line(exc)}") from None
    finally:
        ctx.emit(Event("task_end", label))


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
