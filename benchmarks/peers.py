"""What a user would otherwise write: the TFMOT guides' pipelines as plain TFMOT/TFLite code.

- pruning guide: prune_low_magnitude with PolynomialDecay 50 % → 80 % over 2 epochs, strip,
  convert with Optimize.DEFAULT.
- clustering guide: cluster_weights with 16 clusters and linear centroid initialisation, 1 epoch
  of fine-tuning at learning rate 1e-5, strip, convert with Optimize.DEFAULT.
- plain PTQ: the conversion, evaluation and timing that `recipes/cpu-int8.yaml` does, written out
  by hand (what compressctl's own overhead is compared with).
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402


def _tf():
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    # Seeded like compressctl's runs (recipe seed 0), so both sides are repeatable.
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    return tf, keras, tfmot


def _to_tflite(model, representative=None) -> bytes:
    tf, _, _ = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative is not None:
        converter.representative_dataset = representative
    return converter.convert()


def pruning_guide(model_path: str, data: dict) -> bytes:
    tf, keras, tfmot = _tf()
    model = keras.models.load_model(model_path, compile=False)
    batch_size, epochs = 128, 2
    end_step = int(np.ceil(len(data["x_train"]) / batch_size)) * epochs
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.50, final_sparsity=0.80, begin_step=0, end_step=end_step
    )
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(), ["accuracy"])
    pruned.fit(
        data["x_train"],
        data["y_train"],
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    return _to_tflite(tfmot.sparsity.keras.strip_pruning(pruned))


def clustering_guide(model_path: str, data: dict) -> bytes:
    tf, keras, tfmot = _tf()
    model = keras.models.load_model(model_path, compile=False)
    clustered = tfmot.clustering.keras.cluster_weights(
        model,
        number_of_clusters=16,
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.LINEAR,
    )
    clustered.compile(
        keras.optimizers.Adam(learning_rate=1e-5), keras.losses.SparseCategoricalCrossentropy(), ["accuracy"]
    )
    clustered.fit(data["x_train"], data["y_train"], batch_size=500, epochs=1, verbose=0)
    return _to_tflite(tfmot.clustering.keras.strip_clustering(clustered))
