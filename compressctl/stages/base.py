"""What every stage shares: the context it runs in, the result it returns, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from compressctl.datasets import DataSource
from compressctl.errors import StageError, UserError
from compressctl.evaluate import TaskInfo
from compressctl.events import Emit, Event, ignore

# Weight names that hold a layer's multiplicative parameters (what pruning and clustering act on).
KERNEL_SUFFIXES = ("kernel:0", "depthwise_kernel:0", "pointwise_kernel:0", "recurrent_kernel:0", "embeddings:0")


@dataclass
class StageContext:
    data: DataSource  # an npz (arrays in memory) or a streaming source
    task: TaskInfo
    batch_size: int = 64
    seed: int = 0
    emit: Emit = ignore

    def __post_init__(self):
        from compressctl.datasets.npz import as_source

        self.data = as_source(self.data)  # a loaded npz Dataset (older callers) becomes the npz source

    def fit(self, model, epochs: int, learning_rate: float, batch_size: int | None, label: str, callbacks=()):
        """Compile and fine-tune on the train split, reporting batches and epochs as events."""
        from compressctl.tfenv import keras

        k = keras()
        batch_size = batch_size or self.batch_size
        model.compile(
            optimizer=k.optimizers.Adam(learning_rate=learning_rate),
            loss=self.task.loss(),
            metrics=[self.task.keras_metric()],
        )
        steps = int(np.ceil(self.data.train_samples / batch_size))
        progress = _ProgressCallback(k, self.emit, label, epochs, steps)
        try:
            if self.data.in_memory:  # npz: numpy arrays, as before streaming sources existed
                model.fit(
                    self.data.x_train,
                    self.data.y_train,
                    batch_size=batch_size,
                    epochs=epochs,
                    shuffle=True,
                    verbose=0,
                    callbacks=[*callbacks, progress],
                )
            else:  # streamed: shuffled, batched and prefetched by the source, reshuffled every epoch
                batches = self.data.train_batches(batch_size, self.seed)
                model.fit(batches, epochs=epochs, verbose=0, callbacks=[*callbacks, progress])
        except Exception as exc:  # noqa: BLE001 - a training failure names the stage
            raise StageError(f"{label}: fine-tuning failed: {_first_line(exc)}") from None
        finally:
            self.emit(Event("task_end", label))
        return model

    def evaluate(self, model) -> float:
        return self.data.score(lambda x: model.predict(x, batch_size=256, verbose=0), self.task)


def steps_per_epoch(ctx: StageContext, batch_size: int | None) -> int:
    return int(np.ceil(ctx.data.train_samples / (batch_size or ctx.batch_size)))


def _ProgressCallback(k, emit: Emit, label: str, epochs: int, steps: int):  # noqa: N802 - a class factory
    class ProgressCallback(k.callbacks.Callback):
        def on_train_begin(self, logs=None):
            emit(Event("task_begin", label, total=epochs * steps, completed=0))

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            emit(
                Event(
                    "task_advance",
                    label,
                    total=epochs * steps,
                    completed=self._epoch * steps + batch + 1,
                    data={"loss": float(logs.get("loss", np.nan)), "metric": float(logs.get("accuracy", np.nan))},
                )
            )

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            emit(
                Event(
                    "epoch",
                    f"{label}: epoch {epoch + 1}/{epochs}",
                    total=epochs,
                    completed=epoch + 1,
                    data={"loss": float(logs.get("loss", np.nan)), "metric": float(logs.get("accuracy", np.nan))},
                )
            )

    callback = ProgressCallback()
    callback._epoch = 0
    return callback


class Stage:
    """A compression technique: its recipe ``Params``, where it may run, and ``apply``.

    Everything the rest of compressctl knows about a stage type lives on its class: the recipe
    validator reads ``order``/``once``/``leaves`` for the stage-order rules, ``inspect`` and ``init``
    call ``supports`` per layer, and the renderers read ``columns`` for the per-layer tables.
    Adding a stage type is one module under ``stages/`` plus its entry in ``stages.STAGE_TYPES``.
    """

    type: ClassVar[str]
    Params: ClassVar[type]
    # Stages run in non-decreasing ``order``: restructuring stages (lowrank, distill,
    # prune_channels) share the lowest rank; TFMOT's wrappers stack in one order only.
    order: ClassVar[int] = 0
    once: ClassVar[bool] = False  # may appear at most once in a recipe
    # What the stage leaves in the model that a later, lower-order stage would destroy
    # ("the pruned zeros"), used in stage-order error messages.
    leaves: ClassVar[str] = ""
    # How a later stage that must not follow this one is told why ("factorizing replaces the layers").
    why_first: ClassVar[str] = ""
    # Per-layer figures this stage reports (keys of StageResult.layers rows besides ``layer``).
    columns: ClassVar[tuple[str, ...]] = ()
    # Whether ``inspect`` shows a column for this stage (stages that act on whole models do not).
    per_layer: ClassVar[bool] = True

    def __init__(self, params):
        self.params = params

    @classmethod
    def supports(cls, layer) -> bool | str:
        """True when the stage can act on ``layer``, else the reason it cannot (one short phrase)."""
        return True

    def apply(self, model, ctx: StageContext) -> StageResult:  # pragma: no cover - every stage overrides it
        raise NotImplementedError


@dataclass
class StageResult:
    model: object
    measured: dict = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)
    skipped_layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def kernel_weights(layer) -> list:
    """The layer's kernel-like weights (tf.Variables), skipping biases and normalisation statistics."""
    return [w for w in layer.weights if w.name.endswith(KERNEL_SUFFIXES)]


def kernel_arrays(layer) -> list[np.ndarray]:
    return [w.numpy() for w in kernel_weights(layer)]


def require_keras(model, stage: str) -> None:
    if model is None:
        raise UserError(
            f"stage {stage} fine-tunes the model, but the model is an inference-only SavedModel "
            "(no Keras metadata): remove the training stages or give the Keras model"
        )


def clone_with(model, wrap, stage: str):
    """Clone a Sequential or functional model, passing each layer through ``wrap``.

    ``wrap`` returns the layer itself to leave it alone (weights shared, not re-initialised).
    """
    from compressctl.tfenv import keras

    k = keras()
    if not isinstance(model, k.Sequential) and not getattr(model, "_is_graph_network", False):
        raise UserError(
            f"stage {stage}: {type(model).__name__} is a subclassed model, which TFMOT cannot wrap; "
            "rebuild it as a Sequential or functional model"
        )
    try:
        return k.models.clone_model(model, clone_function=wrap)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StageError(f"stage {stage}: could not wrap the model's layers: {_first_line(exc)}") from None


def model_layers(model):
    """Top-level layers, minus the InputLayer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
