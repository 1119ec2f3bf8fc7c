"""Early stopping of a search: every training epoch of a trial reported to Ray Tune, and ASHA stopping the
trials that trail the others at the same epoch.

A trial's epochs are counted over the whole recipe: epoch k of stage i is the recipe's epochs before stage
i plus k, also when an earlier stage came from the stage cache (a trial that reuses a finished prune stage
reports its first clustering epoch as the same epoch number as a trial that trained that prune stage), so
ASHA compares trials at the same point of the same recipe. The epoch's figure is the training metric Keras
reports (signed so that larger is better) or, for a metric of unknown direction, minus the loss.

A trial ASHA stops never reaches its targets: the driver records it ``stopped`` with
``stopped_at_epoch``, and its run log (the lines up to that epoch, sent with every report) is written to
its run directory on the driver's machine.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from compressctl.core import metrics
from compressctl.core.errors import UserError
from compressctl.core.events import Event, EventLog
from compressctl.search import objective as obj

PARTIAL = "partial_epoch"  # the key that marks a report sent at the end of an epoch (not the trial's result)
GOODNESS = "epoch_goodness"
_STAGE = re.compile(r"^stage (\d+)/\d+: ")


def stage_epochs(stages, space: dict | None = None) -> list[int]:
    """Each stage's training epochs (0 for a stage that does not train); a searched ``stages.N.epochs``
    counts at the top of its range."""
    counts = [int(getattr(stage, "epochs", 0) or 0) for stage in stages]
    for key, dim in (space or {}).items():
        found = re.fullmatch(r"stages\.(\d+)\.epochs", key)
        if found and int(found.group(1)) < len(counts):
            values = [v for v in dim.edge_values() if isinstance(v, int | float)]
            if values:
                counts[int(found.group(1))] = max(counts[int(found.group(1))], int(max(values)))
    return counts


def check(early, stages, space: dict, where: str) -> int:
    """The recipe's epochs in all (ASHA's horizon); raises UserError when no trial could be stopped."""
    total = sum(stage_epochs(stages, space))
    if early.grace_epochs >= total:
        raise UserError(
            f"{where} search.early_stopping.grace_epochs: {early.grace_epochs} is not below the recipe's "
            f"{total} training epoch(s) in all, so no trial could be stopped; lower it or drop early_stopping"
        )
    return total


def scheduler(early, total_epochs: int):
    """Ray Tune's ASHA over the recipe's epochs (the trial's final result, with no epoch, passes it by)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=PARTIAL,
        metric=GOODNESS,
        mode="max",
        # The horizon lies past the last epoch: ASHA stops a trial that reaches max_t, and the trial must
        # still build its targets after its last epoch.
        max_t=total_epochs + 1,
        grace_period=early.grace_epochs,
        reduction_factor=early.reduction_factor,
    )


def goodness(data: dict) -> float:
    """An epoch's figure, larger is better: the training metric by its direction, else minus the loss."""
    name, value = data.get("metric_name"), data.get("metric")
    if name and value is not None and math.isfinite(float(value)):
        try:
            return float(value) if metrics.higher_is_better(name) else -float(value)
        except (KeyError, ValueError):
            pass
    loss = data.get("loss")
    return -float(loss) if loss is not None and math.isfinite(float(loss)) else -1e9


def _shown(data: dict) -> str:
    """The epoch's training figure as the log shows it: ``accuracy 0.2889`` (or the loss)."""
    if data.get("metric_name") and data.get("metric") is not None:
        return f"training {data['metric_name']} {float(data['metric']):.4f}"
    return f"training loss {float(data.get('loss', float('nan'))):.4f}"


class EpochReporter:
    """The emit a trial's run is given: keeps its log lines and reports every epoch through ``report``."""

    def __init__(self, report: Callable[[dict], None], epochs: list[int], trial: dict, objective: str):
        self.log = EventLog(lambda event: None)
        self.report, self.trial, self.objective = report, trial, objective
        self.offsets = [sum(epochs[:i]) for i in range(len(epochs))]
        self.stage, self.started = 0, time.perf_counter()
        self.last = -1e9  # the last epoch's figure: the trial's result carries it (Tune checks every result has it)

    def __call__(self, event: Event) -> None:
        self.log(event)
        if event.kind == "step":
            found = _STAGE.match(event.message)
            if found:
                self.stage = int(found.group(1)) - 1
            return
        if event.kind != "epoch" or event.completed is None:
            return
        offset = self.offsets[self.stage] if self.stage < len(self.offsets) else 0
        epoch = offset + int(event.completed)
        self.last = goodness(event.data)
        self.report(
            {
                **self.trial,
                PARTIAL: epoch,
                GOODNESS: self.last,
                "epoch_figure": _shown(event.data),
                "seconds": round(time.perf_counter() - self.started, 3),
                "log": "\n".join(self.log.lines) + "\n",
                # What the sampler is told if ASHA stops the trial here: no artifact, scored as a failure.
                **obj.score({"status": "stopped"}, self.objective, "gzip_bytes"),
            }
        )


def stopped_trial(result: dict) -> dict:
    """search.json's entry for a trial ASHA stopped after its last report (``result``)."""
    epoch = result[PARTIAL]
    return {
        "id": result["id"],
        "params": result.get("params") or {},
        "status": "stopped",
        "error": f"stopped by early stopping (ASHA) after epoch {epoch}: "
        f"its {result.get('epoch_figure') or 'training'} trailed the other trials' at that epoch",
        "stopped_at_epoch": epoch,
        "run_dir": f"trials/{result['id']}",
        "node": result.get("node"),
        "seconds": result.get("seconds"),
        **dict.fromkeys(obj.FIGURES),
    }
