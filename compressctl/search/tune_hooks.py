"""Ray Tune callback and stopper of a running search (driver side; imports Ray).

Tune pickles its run configuration, so these hold no state of their own: they act on ACTIVE,
the one search this driver process is running, set by compressctl.search.tune_loop.
"""

from __future__ import annotations

from ray import tune

from compressctl.search.early_stop import PARTIAL

ACTIVE: dict = {}


class Recorder(tune.Callback):
    """Every finished or failed trial goes into search.json at once."""

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = dict(trial.last_result or {})
        if "id" not in result:
            self.on_trial_error(iteration, trials, trial)
            return
        if PARTIAL in result:  # its last report was an epoch's: early stopping ended it there
            ACTIVE["on_stopped"](result)
            return
        ACTIVE["on_result"](result)

    def on_trial_error(self, iteration, trials, trial, **info):
        ACTIVE["on_error"](trial)


class Interrupted(tune.Stopper):
    """Stops every trial once Ctrl-C or SIGTERM reached the driver."""

    def __call__(self, trial_id, result):
        return False

    def stop_all(self):
        return bool(ACTIVE.get("interrupted", {}).get("flag"))
