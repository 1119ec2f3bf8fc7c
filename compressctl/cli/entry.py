"""The commands in the order ``compressctl --help`` lists them, and ``main``, the ``compressctl`` entry point.

Nothing the CLI imports at start imports TensorFlow or matplotlib: ``--help``, ``validate`` and ``schema``
answer at once, and the commands that need either import it through the API when they run. How output
looks (JSON, plain or rich, quiet) is decided in compressctl.cli.ui.
"""

from __future__ import annotations

import os
import sys

from compressctl.cli import artifacts, batch, reports, running, search, starting
from compressctl.cli.common import app
from compressctl.core.registry import PluginError

COMMANDS = (
    ("run", running.run),
    ("validate", running.validate),
    ("schema", running.schema),
    ("inspect", starting.inspect),
    ("eval", artifacts.eval_),
    ("bench", artifacts.bench_),
    ("report", reports.report),
    ("compare", reports.compare),
    ("recipes", starting.recipes),
    ("init", starting.init),
    ("verify", reports.verify),
    ("search", search.search),
    ("sensitivity", search.sensitivity),
    ("batch", batch.batch),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def main() -> None:
    try:
        app(prog_name="compressctl")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except PluginError as exc:  # raised as a command first imports the registries, before its session
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    if "tensorflow" in sys.modules:
        # Every file is written and closed by now; TensorFlow's interpreter teardown would add most
        # of a second to each command, so leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
