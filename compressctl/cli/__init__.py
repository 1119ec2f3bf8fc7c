"""The command line: a module per command group (running, starting, artifacts, reports, search), entry, common, ui.

May import everything below it (the api first); only ``__main__`` imports it. ``main`` and ``app`` are importable here.
"""

from compressctl.cli.common import app
from compressctl.cli.entry import main
from compressctl.cli.ui import UI, in_ci, session

__all__ = ["UI", "app", "in_ci", "main", "session"]
