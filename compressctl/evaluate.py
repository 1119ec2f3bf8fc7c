"""The task's metric, computed the same way for the Keras model and for every TFLite artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compressctl import runtime


@dataclass(frozen=True)
class TaskInfo:
    """How to train and score a model, derived from its output layer and the recipe's task."""

    binary: bool  # a single output unit (sigmoid or logit) rather than one unit per class
    from_logits: bool  # outputs are logits, not probabilities
    metric: str = "accuracy"  # accuracy | top_k_accuracy
    top_k: int = 5

    @property
    def metric_name(self) -> str:
        return f"top_{self.top_k}_accuracy" if self.metric == "top_k_accuracy" else "accuracy"

    def loss(self):
        from compressctl.tfenv import keras

        k = keras()
        if self.binary:
            return k.losses.BinaryCrossentropy(from_logits=self.from_logits)
        return k.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def keras_metric(self):
        from compressctl.tfenv import keras

        k = keras()
        if self.binary:
            return k.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if self.from_logits else 0.5)
        return k.metrics.SparseCategoricalAccuracy(name="accuracy")

    def score(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        """The metric of raw model outputs against integer labels."""
        outputs = np.asarray(outputs, dtype=np.float32)
        labels = np.asarray(labels).reshape(-1)
        if self.binary or outputs.ndim == 1 or outputs.shape[-1] == 1:
            threshold = 0.0 if self.from_logits else 0.5
            return float(np.mean((outputs.reshape(-1) > threshold).astype(int) == labels))
        outputs = outputs.reshape(len(outputs), -1)
        if self.metric == "top_k_accuracy":
            k = min(self.top_k, outputs.shape[1])
            top = np.argsort(-outputs, axis=1)[:, :k]
            return float(np.mean(np.any(top == labels[:, None], axis=1)))
        return float(np.mean(np.argmax(outputs, axis=1) == labels))


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
