"""Progress events: the core reports what it is doing; the CLI decides how to show it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Event:
    """One thing worth telling the user.

    kinds: ``step`` (a line of progress), ``warn``, ``task_begin`` / ``task_advance`` /
    ``task_end`` (a countable job such as fine-tuning batches or timed invocations) and
    ``epoch`` (a fine-tuning epoch ended; ``data`` holds loss and metric).
    """

    kind: str
    message: str = ""
    total: int | None = None
    completed: int | None = None
    data: dict = field(default_factory=dict)


Emit = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An Emit that drops everything (the API's default)."""


class EventLog:
    """Keeps the lines worth a log (steps, warnings, epochs) while passing every event on."""

    KINDS = ("step", "warn", "epoch")

    def __init__(self, emit: Emit):
        import time

        self._emit, self._clock, self.lines = emit, time.strftime, []

    def __call__(self, event: Event) -> None:
        if event.kind in self.KINDS:
            self.lines.append(f"{self._clock('%H:%M:%S')} {event.kind}: {event.message}")
        self._emit(event)
