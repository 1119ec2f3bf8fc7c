"""The one place TensorFlow is imported.

TFMOT works only with Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is
imported anywhere in the process. Importing through here guarantees that, and keeps TensorFlow's
start-up chatter at the C++ level as quiet as its own switches allow (the rest goes to the log that
the CLI points file descriptor 2 at).
"""

from __future__ import annotations

import contextlib
import os
import warnings

_ENV = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # oneDNN reorders float sums, which makes fine-tuning results differ run to run.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "CUDA_VISIBLE_DEVICES": "-1",
}


def configure_environment() -> None:
    """Set the variables TensorFlow reads at import time (without overriding the user's)."""
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"


def tf():
    """Return the ``tensorflow`` module, configured for Keras 2 and quiet logging."""
    configure_environment()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow

    tensorflow.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with tensorflow
        pass
    return tensorflow


def keras():
    """Return ``tf_keras`` (Keras 2), the Keras that TFMOT supports."""
    tf()
    import tf_keras

    return tf_keras


def tfmot():
    """Return ``tensorflow_model_optimization``."""
    tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow_model_optimization

    return tensorflow_model_optimization


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TensorFlow for deterministic kernels."""
    tensorflow = tf()
    keras().utils.set_random_seed(seed)
    # Older TF builds lack it; determinism is best effort there.
    with contextlib.suppress(Exception):
        tensorflow.config.experimental.enable_op_determinism()
