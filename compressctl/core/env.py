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


THREAD_VARIABLES = {"intra_op": "TF_NUM_INTRAOP_THREADS", "inter_op": "TF_NUM_INTEROP_THREADS"}


def pin_thread_environment(intra_op: int, inter_op: int) -> dict[str, str | None]:
    """Set the variables TensorFlow sizes its pools from (read by child processes too); returns the old values."""
    values = {"TF_NUM_INTRAOP_THREADS": intra_op, "TF_NUM_INTEROP_THREADS": inter_op, "OMP_NUM_THREADS": intra_op}
    previous = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        os.environ[name] = str(value)
    return previous


def restore_environment(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def apply_threads(intra_op: int, inter_op: int) -> None:
    """Set TensorFlow's thread counts in this process; a TensorFlow already started with others keeps them."""
    threading = tf().config.threading
    with contextlib.suppress(RuntimeError):  # already initialised: threads_in_use reports what it runs with
        threading.set_intra_op_parallelism_threads(intra_op)
    with contextlib.suppress(RuntimeError):
        threading.set_inter_op_parallelism_threads(inter_op)


def threads_in_use() -> dict[str, int]:
    """The thread counts TensorFlow runs with here: its setting, else the environment's, else the CPUs it may use."""
    threading = tf().config.threading
    set_now = {
        "intra_op": threading.get_intra_op_parallelism_threads(),
        "inter_op": threading.get_inter_op_parallelism_threads(),
    }
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    used = {}
    for key, value in set_now.items():
        env = os.environ.get(THREAD_VARIABLES[key], "")
        used[key] = int(value) if value and value > 0 else (int(env) if env.isdigit() and int(env) > 0 else cpus)
    return used
