"""The command line: the commands (``commands``, ``search``), shared options (``common``), the terminal (``ui``).

May import everything below it (the api first); only ``__main__`` imports it. ``main`` and ``app`` are importable here.
"""

from compressctl.cli.commands import app, main
from compressctl.cli.ui import UI, in_ci, session

__all__ = ["UI", "app", "in_ci", "main", "session"]
