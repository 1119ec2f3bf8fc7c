"""The task's metric, computed the same way for the Keras model and for every TFLite artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compressctl.core import metrics
from compressctl.litert import interpreter as runtime


@dataclass(frozen=True)
class TaskInfo:
    """How to train and score a model, derived from its output layer and the recipe's task."""

    binary: bool  # a single output unit (sigmoid or logit) rather than one unit per class
    from_logits: bool  # outputs are logits, not probabilities
    metric: str = "accuracy"  # one of compressctl.core.metrics.NAMES
    top_k: int = 5
    regression: bool = False  # one linear output scored against float labels (mae, mse, rmse)

    @property
    def metric_name(self) -> str:
        return f"top_{self.top_k}_accuracy" if self.metric == "top_k_accuracy" else self.metric

    @property
    def higher_is_better(self) -> bool:
        return metrics.higher_is_better(self.metric)

    def loss(self):
        from compressctl.core.env import keras

        k = keras()
        if self.regression:
            # Train on what is scored: absolute error for mae, squared error for mse and rmse.
            return k.losses.MeanAbsoluteError() if self.metric == "mae" else k.losses.MeanSquaredError()
        if self.binary:
            return k.losses.BinaryCrossentropy(from_logits=self.from_logits)
        return k.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def keras_metric(self):
        """The metric Keras reports while fine-tuning (named like the task's metric), for progress only."""
        from compressctl.core.env import keras

        k = keras()
        name = self.metric_name
        if self.regression:
            kinds = {"mae": k.metrics.MeanAbsoluteError, "mse": k.metrics.MeanSquaredError}
            return kinds.get(self.metric, k.metrics.RootMeanSquaredError)(name=name)
        if self.metric == "auc" and self.binary:
            return k.metrics.AUC(name=name, from_logits=self.from_logits)
        if self.binary:
            return k.metrics.BinaryAccuracy(name=name, threshold=0.0 if self.from_logits else 0.5)
        if self.metric == "top_k_accuracy":
            return k.metrics.SparseTopKCategoricalAccuracy(k=self.top_k, name=name)
        # Multi-class AUC is scored exactly on the test split after each stage; training shows accuracy.
        return k.metrics.SparseCategoricalAccuracy(name="accuracy" if self.metric == "auc" else name)

    def score(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        """The metric of raw model outputs against labels (class ids, or floats for regression)."""
        return metrics.score(self.metric, outputs, labels, from_logits=self.from_logits, top_k=self.top_k)


def evaluate_tflite(
    path: str | Path, x: np.ndarray, y: np.ndarray, task: TaskInfo, threads: int = 1, xnnpack: bool = True
) -> float:
    """The metric of a .tflite artifact on (x, y) through the LiteRT interpreter."""
    interpreter = runtime.load_interpreter(path, threads=threads, xnnpack=xnnpack)
    return task.score(runtime.predict(interpreter, x), y)


def evaluate_tflite_source(path: str | Path, source, task: TaskInfo, threads: int = 1, xnnpack: bool = True) -> float:
    """The metric of a .tflite artifact on a data source's test split, streamed batch by batch."""
    interpreter = runtime.load_interpreter(path, threads=threads, xnnpack=xnnpack)
    return source.score(lambda x: runtime.predict(interpreter, x), task)
