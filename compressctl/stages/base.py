"""What every stage shares: the context it runs in, the result it returns, and small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from compressctl.core.errors import StageError, UserError, first_line
from compressctl.core.events import Emit, Event, ignore
from compressctl.datasets import DataSource
from compressctl.litert.evaluate import TaskInfo
from compressctl.report import figures as declared_figures
from compressctl.report.figures import Figure

# Weight names that hold a layer's multiplicative parameters (what pruning and clustering act on).
KERNEL_SUFFIXES = ("kernel:0", "depthwise_kernel:0", "pointwise_kernel:0", "recurrent_kernel:0", "embeddings:0")


@dataclass
class StageContext:
    data: DataSource  # an npz (arrays in memory) or a streaming source
    task: TaskInfo
    batch_size: int = 64
    seed: int = 0
    emit: Emit = ignore
    # tf.distribute.Strategy the training stages fine-tune under (compressctl.model.distribute); None: one device.
    strategy: object | None = None
    # training.steps_per_epoch: at most this many batches per epoch; None: the whole train split.
    max_steps_per_epoch: int | None = None
    # training.run_eagerly: fine-tune without tracing the training step (faster for a few steps).
    run_eagerly: bool = False

    def __post_init__(self):
        from compressctl.datasets.npz import as_source

        self.data = as_source(self.data)  # a loaded npz Dataset (older callers) becomes the npz source

    def fit(
        self,
        model,
        epochs: int,
        learning_rate: float,
        batch_size: int | None,
        label: str,
        callbacks=(),
        distribute: bool = True,
    ):
        """Compile and fine-tune on the train split, reporting batches and epochs as events."""
        from compressctl.core.env import keras

        if distribute and self.strategy is not None:
            from compressctl.model.distribute import replicated

            # Variables must live under the strategy: train a copy built in its scope, copy the weights back.
            with replicated(self.strategy, model) as copy:
                self.fit(copy, epochs, learning_rate, batch_size, label, callbacks, distribute=False)
            return model

        k = keras()
        batch_size = batch_size or self.batch_size
        model.compile(
            optimizer=k.optimizers.Adam(learning_rate=learning_rate),
            loss=self.task.loss(),
            metrics=[self.task.keras_metric()],
            run_eagerly=self.run_eagerly,
        )
        steps = steps_per_epoch(self, batch_size)
        capped = steps < batches(self.data.train_samples, batch_size)
        progress = _ProgressCallback(k, self.emit, label, epochs, steps, self.task.metric_name)
        try:
            if self.data.in_memory:  # npz: numpy arrays, as before streaming sources existed
                model.fit(
                    self.data.x_train,
                    self.data.y_train,
                    batch_size=batch_size,
                    epochs=epochs,
                    steps_per_epoch=steps if capped else None,
                    shuffle=True,
                    verbose=0,
                    callbacks=[*callbacks, progress],
                )
            else:  # streamed: shuffled, batched and prefetched by the source, reshuffled every epoch
                stream = self.data.train_batches(batch_size, self.seed)
                if capped:  # epochs of `steps` batches from one stream, reshuffled on every pass
                    stream = stream.repeat()
                model.fit(
                    stream,
                    epochs=epochs,
                    steps_per_epoch=steps if capped else None,
                    verbose=0,
                    callbacks=[*callbacks, progress],
                )
        except Exception as exc:  # noqa: BLE001 - a training failure names the stage
            raise StageError(f"{label}: fine-tuning failed: {first_line(exc)}") from None
        finally:
            self.emit(Event("task_end", label))
        return model

    def evaluate(self, model) -> float:
        return self.data.score(lambda x: model.predict(x, batch_size=256, verbose=0), self.task)


def steps_per_epoch(ctx: StageContext, batch_size: int | None) -> int:
    """Batches per training epoch: the whole train split, or training.steps_per_epoch when that is fewer."""
    full = batches(ctx.data.train_samples, batch_size or ctx.batch_size)
    return min(full, ctx.max_steps_per_epoch) if ctx.max_steps_per_epoch else full


def batches(samples: int, batch_size: int) -> int:
    """Batches per epoch: the last, partial batch counts."""
    return -(-samples // batch_size)


def _ProgressCallback(k, emit: Emit, label: str, epochs: int, steps: int, metric: str = "accuracy"):  # noqa: N802
    def figures(logs) -> dict:
        # The compiled metric is the only log entry besides the loss; its key names it.
        name, value = next(((key, v) for key, v in logs.items() if key != "loss"), (metric, np.nan))
        return {"loss": float(logs.get("loss", np.nan)), "metric": float(value), "metric_name": name}

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
                    data=figures(logs),
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
                    data=figures(logs),
                )
            )

    callback = ProgressCallback()
    callback._epoch = 0
    return callback


class Stage:
    """A compression technique: its recipe ``Params``, where it may run, and ``apply``.

    Everything the rest of compressctl knows about a stage type lives on its class: the recipe
    validator reads ``order``/``once``/``leaves`` for the stage-order rules, ``inspect`` and ``init``
    call ``supports`` per layer, and the record and the renderers read ``figures`` and
    ``layer_figures`` (what it measures and how each reads). Adding a stage type is one module under
    ``stages/``, or a plugin module outside compressctl (``core.registry``).
    """

    type: ClassVar[str]
    Params: ClassVar[type]
    # Stages run in non-decreasing ``order``: restructuring stages (lowrank, distill,
    # prune_channels) share the lowest rank; TFMOT's wrappers stack in one order only.
    order: ClassVar[int] = 0
    # Why the stage may appear only once in a recipe (empty: it may repeat).
    once: ClassVar[str] = ""
    # Stage-order error messages: what the stage leaves in the model that a restructuring stage
    # after it would lose ("the pruned zeros"); why a lower-order TFMOT stage cannot follow it
    # ("{kind}" is that stage); and, for a restructuring stage, why it must come first.
    leaves: ClassVar[str] = ""
    blocks: ClassVar[str] = ""
    why_first: ClassVar[str] = ""
    # The overall figures this stage measures (keys of StageResult.measured): name, type, how each reads.
    figures: ClassVar[tuple[Figure, ...]] = ()
    # The per-layer figures it reports (keys of StageResult.layers rows besides ``layer`` and ``params``),
    # in the order tables show them; ``columns`` (their keys) is derived from them.
    layer_figures: ClassVar[tuple[Figure, ...]] = ()
    columns: ClassVar[tuple[str, ...]] = ()
    # Whether ``inspect`` shows a column for this stage (stages that act on whole models do not).
    per_layer: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "layer_figures" in vars(cls):
            cls.columns = tuple(f.key for f in cls.layer_figures)
        if "type" in vars(cls):  # the renderers and the record read the declaration from report.figures
            declared_figures.declare("stage", cls.type, cls.figures, cls.layer_figures)

    def __init__(self, params):
        self.params = params

    # (record branch) Files the stage reads besides its input model; the stage cache hashes them.
    def input_files(self) -> list[str]:
        return []

    # Whether the stage rebuilds the model's layers (names or widths may differ after it).
    restructures: ClassVar[bool] = False

    def check(self, model) -> list[tuple[tuple, str]]:
        """Problems with this stage's fields on ``model``, before any training: (field path, message)."""
        return []

    @classmethod
    def renamed(cls, names: list[str]) -> list[str]:
        """The layer names a model may have after this stage, given those before (for recipe checks)."""
        return names

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


def is_graph_model(model) -> bool:
    """A Sequential or functional model: one with a config that can be cloned or rebuilt."""
    from compressctl.core.env import keras
    from compressctl.core.internals import keras as keras_internals

    return isinstance(model, keras().Sequential) or keras_internals.is_graph_network(model)


def require_graph_model(model, stage: str, action: str = "rebuild") -> None:
    """Cloning and rebuilding need a Sequential or functional model (a subclassed one has no config)."""
    if not is_graph_model(model):
        raise UserError(
            f"stage {stage}: {type(model).__name__} is a subclassed model, which {stage} cannot {action}; "
            "rebuild it as a Sequential or functional model"
        )


def rebuild_from_config(model, config: dict, stage: str):
    """A new, freshly initialised model of the same kind as ``model`` from an edited config."""
    from compressctl.core.env import keras

    k = keras()
    cls = k.Sequential if isinstance(model, k.Sequential) else k.Model
    try:
        return cls.from_config(config)
    except Exception as exc:  # noqa: BLE001 - any failure means the edited architecture does not fit together
        raise StageError(f"stage {stage}: could not rebuild the model: {first_line(exc)}") from None


def clone_with(model, wrap, stage: str):
    """Clone a Sequential or functional model, passing each layer through ``wrap``.

    ``wrap`` returns the layer itself to leave it alone (weights shared, not re-initialised).
    """
    from compressctl.core.env import keras

    k = keras()
    require_graph_model(model, stage, "wrap")
    try:
        return k.models.clone_model(model, clone_function=wrap)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StageError(f"stage {stage}: could not wrap the model's layers: {first_line(exc)}") from None


def model_layers(model):
    """Top-level layers, minus the InputLayer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def measure_sparsity(model, targets: dict[str, float] | None = None) -> dict:
    """Per-layer and overall zero fraction of kernel weights, measured on the weights themselves."""
    rows, zeros, total = [], 0, 0
    for layer in model_layers(model):
        arrays = kernel_arrays(layer)
        if not arrays:
            continue
        n = sum(a.size for a in arrays)
        z = sum(int(np.count_nonzero(a == 0)) for a in arrays)
        zeros, total = zeros + z, total + n
        row = {"layer": layer.name, "params": n, "sparsity": round(z / n, 6)}
        if targets is not None:
            row["target"] = targets.get(layer.name)
        rows.append(row)
    return {"measured": {"sparsity": round(zeros / total, 6) if total else 0.0}, "layers": rows}


def measure_unique(model, counts: dict[str, int] | None = None) -> dict:
    """Distinct values per kernel, counted on the weights themselves."""
    rows, worst = [], 0
    for layer in model_layers(model):
        arrays = kernel_arrays(layer)
        if not arrays:
            continue
        unique = max(int(np.unique(a).size) for a in arrays)
        row = {"layer": layer.name, "params": sum(a.size for a in arrays), "unique_weights": unique}
        if counts is not None:
            row["clusters"] = counts.get(layer.name)
            if layer.name in counts:
                worst = max(worst, unique)
        rows.append(row)
    return {"measured": {"unique_weights": worst}, "layers": rows}


def unweighted(layer, action: str) -> str | None:
    """Why a weight technique cannot ``action`` this layer before asking TFMOT (None: it may)."""
    if nested_model(layer):
        return "nested model: compress it separately"
    if not kernel_arrays(layer):
        return f"no weights to {action}"
    return None


def nested_model(layer) -> bool:
    """A layer that is itself a model: techniques act on its inner layers only when it is compressed alone."""
    return hasattr(layer, "layers")
