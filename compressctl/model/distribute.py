"""Fine-tuning on several devices: the recipe's ``training.strategy`` as a ``tf.distribute`` strategy.

- ``none``: one device (the default device TensorFlow picks).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (or, where a test or a
  user has split the CPU into logical devices, over those); each batch is split across replicas
  and the gradients are summed, so the global batch size and the number of steps stay as on one device.
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``
  (one process per worker, each with its own ``task``).
- ``auto``: ``mirrored`` when more than one GPU is visible, else ``none``.

TFMOT supports pruning and clustering under a strategy. Its quantization-aware training does not,
so the quantize stage (and distill, which runs its own training loop) fine-tune on one device and say so.
"""

from __future__ import annotations

import contextlib
import json
import os

from compressctl.core.errors import UserError

STRATEGIES = ("auto", "none", "mirrored", "multi_worker")


def check_tf_config(environ=os.environ) -> dict:
    """The parsed ``TF_CONFIG`` that multi_worker needs; a UserError when it is missing or malformed."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise UserError(
            "training.strategy multi_worker: TF_CONFIG is not set; set it on each worker to "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": I}}'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"training.strategy multi_worker: TF_CONFIG is not JSON ({exc})") from None
    workers = (config.get("cluster") or {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(workers, list) or not workers:
        raise UserError("training.strategy multi_worker: TF_CONFIG has no cluster.worker list of host:port")
    if not isinstance(task, dict) or task.get("type") not in ("worker", "chief"):
        raise UserError('training.strategy multi_worker: TF_CONFIG needs task {"type": "worker", "index": I}')
    index = task.get("index")
    if task.get("type") == "worker" and (not isinstance(index, int) or not 0 <= index < len(workers)):
        raise UserError(
            f"training.strategy multi_worker: TF_CONFIG task.index {index!r} is not in [0, {len(workers) - 1}]"
        )
    return config


def make_strategy(name: str):
    """(strategy or None, a description for the report) for the recipe's ``training.strategy``."""
    from compressctl.core.env import tf

    tensorflow = tf()
    if name == "none":
        return None, "one device"
    if name == "multi_worker":
        config = check_tf_config()
        strategy = tensorflow.distribute.MultiWorkerMirroredStrategy()
        task = config["task"]
        return strategy, (
            f"MultiWorkerMirroredStrategy: {len(config['cluster']['worker'])} worker(s), this one "
            f"{task['type']} {task.get('index', 0)}, {strategy.num_replicas_in_sync} replica(s) in sync"
        )
    gpus = tensorflow.config.list_logical_devices("GPU")
    if name == "auto" and len(gpus) < 2:
        return None, f"one device (auto: {len(gpus)} GPU(s) visible)"
    devices = [d.name for d in gpus] or [d.name for d in tensorflow.config.list_logical_devices("CPU")]
    strategy = tensorflow.distribute.MirroredStrategy(devices=devices)
    return strategy, f"MirroredStrategy over {len(devices)} device(s): {', '.join(devices)}"


@contextlib.contextmanager
def replicated(strategy, model):
    """A copy of ``model`` whose variables live under ``strategy``; its weights go back to ``model`` after.

    Stages build their TFMOT-wrapped models outside any strategy (they wrap the layers they were
    given), and Keras can only train variables created in the strategy's scope. Copying through
    ``get_weights``/``set_weights`` carries every weight, including pruning masks and steps and
    cluster centroids and indices, since the copy has the very same structure.
    """
    from compressctl.core.env import keras, tfmot

    k, mot = keras(), tfmot()
    with strategy.scope():
        with mot.sparsity.keras.prune_scope(), mot.clustering.keras.cluster_scope():
            copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        yield copy
    model.set_weights(copy.get_weights())


def replica_note(strategy, why: str) -> str:
    """What a stage that cannot train under a strategy says in its notes."""
    return f"fine-tuned on one device, not {strategy.num_replicas_in_sync} replicas: {why}"
