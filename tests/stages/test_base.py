"""StageContext.fit: every training stage fine-tunes on the task's loss."""

import pytest

from compressctl.data import Dataset
from compressctl.evaluate import TaskInfo
from compressctl.stages.base import StageContext
from tests.conftest import diabetes_data


@pytest.mark.parametrize(
    ("metric", "loss"), [("mae", "MeanAbsoluteError"), ("mse", "MeanSquaredError"), ("rmse", "MeanSquaredError")]
)
def test_regression_tasks_fine_tune_on_their_error(diabetes_mlp_path, metric, loss):
    from compressctl.modelio import load_model

    model = load_model(diabetes_mlp_path).keras
    events = []
    task = TaskInfo(binary=False, from_logits=False, metric=metric, regression=True)
    ctx = StageContext(data=Dataset(path=None, **diabetes_data()), task=task, batch_size=64, emit=events.append)
    ctx.fit(model, 1, 1e-4, None, "test")
    assert type(model.loss).__name__ == loss
    epoch = next(e for e in events if e.kind == "epoch")
    assert epoch.data["metric_name"] == metric and epoch.data["metric"] > 0
    assert 30 < ctx.evaluate(model) < 60 if metric == "mae" else ctx.evaluate(model) > 0
