"""A machine-wide lock around latency timing, so concurrent search trials are timed one at a time.

``compressctl search`` sets COMPRESSCTL_TIMING_LOCK to a lock file path in each trial's
environment; the pipeline takes the lock (``fcntl.flock``) while it times, so two trials on one
machine never time against each other. Unset (a plain ``compressctl run``), it does nothing.
Trials on different machines time on different CPUs anyway; each report says where it timed.
"""

from __future__ import annotations

import contextlib
import os

ENV = "COMPRESSCTL_TIMING_LOCK"


@contextlib.contextmanager
def timing_lock():
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
