"""StageContext.fit: every training stage fine-tunes on the task's loss."""

import pytest

from compressctl.datasets.arrays import Dataset
from compressctl.litert.evaluate import TaskInfo
from compressctl.stages.base import StageContext
from tests.conftest import diabetes_data


@pytest.mark.parametrize(
    ("metric", "loss"), [("mae", "MeanAbsoluteError"), ("mse", "MeanSquaredError"), ("rmse", "MeanSquaredError")]
)
def test_regression_tasks_fine_tune_on_their_error(diabetes_mlp_path, metric, loss):
    from compressctl.model.loading import load_model

    model = load_model(diabetes_mlp_path).keras
    events = []
    task = TaskInfo(binary=False, from_logits=False, metric=metric, regression=True)
    ctx = StageContext(data=Dataset(path=None, **diabetes_data()), task=task, batch_size=64, emit=events.append)
    ctx.fit(model, 1, 1e-4, None, "test")
    assert type(model.loss).__name__ == loss
    epoch = next(e for e in events if e.kind == "epoch")
    assert epoch.data["metric_name"] == metric and epoch.data["metric"] > 0
    assert 30 < ctx.evaluate(model) < 60 if metric == "mae" else ctx.evaluate(model) > 0


def _advances(events):
    return [e for e in events if e.kind == "task_advance"]


def test_steps_per_epoch_caps_every_epoch_of_an_in_memory_split(tiny_cnn, tiny_data):
    from compressctl.datasets.arrays import load_npz

    events = []
    task = TaskInfo(binary=False, from_logits=False)
    ctx = StageContext(data=load_npz(tiny_data), task=task, batch_size=32, emit=events.append, max_steps_per_epoch=3)
    ctx.fit(tiny_cnn, 2, 1e-4, None, "test")  # 300 samples: 10 batches per epoch uncapped
    advances = _advances(events)
    assert len(advances) == 6 and advances[-1].total == 6 and advances[-1].completed == 6
    assert [e.completed for e in events if e.kind == "epoch"] == [1, 2]
    ctx.max_steps_per_epoch = 50  # a cap above the split's batches changes nothing
    events.clear()
    ctx.fit(tiny_cnn, 1, 1e-4, None, "test")
    assert len(_advances(events)) == 10


def test_capped_pruning_schedule_counts_the_capped_steps(tiny_cnn, tiny_data):
    """The polynomial schedule ends at 70 % of the steps actually run, so the target is still reached."""
    from compressctl.datasets.arrays import load_npz
    from compressctl.stages.base import kernel_arrays
    from compressctl.stages.prune import Prune

    task = TaskInfo(binary=False, from_logits=False)
    ctx = StageContext(data=load_npz(tiny_data), task=task, batch_size=32, max_steps_per_epoch=2)
    params = Prune.Params(type="prune", target_sparsity=0.75, epochs=3, learning_rate=1e-3)
    model = Prune(params).apply(tiny_cnn, ctx).model
    for layer in model.layers:
        for kernel in kernel_arrays(layer):
            assert (kernel == 0).mean() == pytest.approx(0.75, abs=0.02), layer.name


def test_distillation_takes_at_most_the_capped_batches(tiny_cnn, tiny_data):
    from compressctl.datasets.arrays import load_npz
    from compressctl.stages.distill import Distill

    events = []
    task = TaskInfo(binary=False, from_logits=False)
    ctx = StageContext(data=load_npz(tiny_data), task=task, batch_size=32, emit=events.append, max_steps_per_epoch=2)
    Distill(Distill.Params(type="distill", epochs=3, learning_rate=1e-4)).apply(tiny_cnn, ctx)
    advances = _advances(events)
    assert len(advances) == 6 and advances[-1].total == 6


def test_run_eagerly_fine_tunes_without_tracing_the_training_step(tiny_cnn, tiny_data):
    """training.run_eagerly: Keras runs fit's steps as Python (no traced train function); the traced
    default does trace one, and both train (the weights move)."""
    import numpy as np

    from compressctl.datasets.arrays import load_npz

    task = TaskInfo(binary=False, from_logits=False)
    for eager in (True, False):
        model = tiny_cnn if eager else tiny_cnn.__class__.from_config(tiny_cnn.get_config())
        before = [w.copy() for w in model.get_weights()]
        ctx = StageContext(data=load_npz(tiny_data), task=task, batch_size=32, max_steps_per_epoch=2, run_eagerly=eager)
        ctx.fit(model, 1, 1e-3, None, "test")
        assert model.run_eagerly is eager
        traced = model.train_function is not None and hasattr(model.train_function, "get_concrete_function")
        assert traced is not eager
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_run_eagerly_distills_with_the_untraced_step(tiny_cnn, tiny_data, monkeypatch):
    from compressctl.core.env import tf
    from compressctl.datasets.arrays import load_npz
    from compressctl.stages.distill import Distill

    traced = []
    real = tf().function
    monkeypatch.setattr(tf(), "function", lambda *a, **k: traced.append(1) or real(*a, **k))
    task = TaskInfo(binary=False, from_logits=False)
    ctx = StageContext(data=load_npz(tiny_data), task=task, batch_size=32, max_steps_per_epoch=2, run_eagerly=True)
    Distill(Distill.Params(type="distill", epochs=1, learning_rate=1e-4)).apply(tiny_cnn, ctx)
    assert traced == []
    ctx.run_eagerly = False
    Distill(Distill.Params(type="distill", epochs=1, learning_rate=1e-4)).apply(tiny_cnn, ctx)
    assert traced
