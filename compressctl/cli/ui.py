"""compressctl's own output: results on stdout, progress and messages on (the real) stderr.

With ``--json`` stdout carries one JSON document and nothing else (anything else that would land
there goes to stderr or the log). Rich tables and progress bars appear only on a terminal; piped,
or with ``CI`` set, output is plain lines without colour codes. ``NO_COLOR`` is honoured,
``--quiet`` keeps only errors, warnings and the result. TensorFlow's own chatter goes to a log.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback

import typer

from compressctl.core.errors import EXIT_STAGE_FAILED, CompressctlError


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab, most others); CI=0 or CI=false count as unset."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class UI:
    """compressctl's own output: results on stdout, progress and messages on (the real) stderr."""

    def __init__(self, err_stream, out_stream=None, json_mode: bool = False, quiet: bool = False):
        from rich.console import Console

        out_stream = out_stream or sys.stdout
        ci = in_ci()
        self.plain_err = ci or not _isatty(err_stream)
        self.plain_out = ci or not _isatty(out_stream)
        # force_terminal=False: no escape codes of any kind, whatever the environment claims.
        self.err = Console(
            file=err_stream, highlight=False, soft_wrap=True, force_terminal=False if self.plain_err else None
        )
        self.out = Console(
            file=out_stream, highlight=False, soft_wrap=True, force_terminal=False if self.plain_out else None
        )
        self.out_stream = out_stream
        self.json_mode = json_mode
        self.quiet = quiet
        self.live = not self.plain_err and not quiet
        self._progress = None
        self._task = None

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, markup=False)

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", style="yellow", markup=False)

    def error(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self.err.print(f"error: {line}", style="bold red", markup=False)

    def emit(self, event) -> None:
        kind = event.kind
        if kind == "step":
            self._stop_progress()
            self.info(f"• {event.message}")
        elif kind == "warn":
            self._stop_progress()
            self.warn(event.message)
        elif kind == "epoch":
            loss, metric = event.data.get("loss"), event.data.get("metric")
            self.info(f"  {event.message}: loss {loss:.4f}, {event.data.get('metric_name', 'accuracy')} {metric:.4f}")
        elif kind == "task_begin" and self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._stop_progress()
            self._progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.err,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(event.message, total=event.total)
        elif kind == "task_advance" and self._progress is not None:
            description = event.message
            if "loss" in event.data:
                description += f" loss {event.data['loss']:.4f}"
            self._progress.update(self._task, completed=event.completed, description=description)
        elif kind == "task_end":
            self._stop_progress()

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print_json(self, payload) -> None:
        self.out_stream.write(json.dumps(payload, indent=2, default=str) + "\n")
        self.out_stream.flush()

    def line(self, text: str) -> None:
        """One plain line of the result on stdout."""
        self.out_stream.write(text + "\n")
        self.out_stream.flush()

    def table(self, title: str | None, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
        """A rich table on a terminal; aligned plain columns (no box drawing, no colour) otherwise."""
        if not self.plain_out:
            from rich.table import Table

            table = Table(title=title)
            for heading, justify in columns:
                table.add_column(heading, justify=justify)
            for row in rows:
                table.add_row(*row)
            self.out.print(table)
            return
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(columns)]

        def fmt(cells):
            parts = [
                c.rjust(w) if justify == "right" else c.ljust(w)
                for c, w, (_, justify) in zip(cells, widths, columns, strict=True)
            ]
            return "  ".join(parts).rstrip()

        if title:
            self.line(title)
        self.line(fmt([h for h, _ in columns]))
        for row in rows:
            self.line(fmt(row))


@contextlib.contextmanager
def _reserved_stdout():
    """Keep descriptor 1 for the JSON document: anything else written there goes where descriptor 2 goes.

    Yields the stream the JSON is to be written to. A library's print() or a C++ log line on
    stdout would otherwise break ``compressctl ... --json | jq``.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (pytest's capture, CliRunner)
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    os.dup2(2, fd)
    stream = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8")
    try:
        yield stream
    finally:
        with contextlib.suppress(Exception):
            stream.flush()
            sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)
        with contextlib.suppress(Exception):
            stream.close()


@contextlib.contextmanager
def session(json_mode: bool = False, quiet: bool = False, verbose: bool = False, heavy: bool = True):
    """Run one command: TensorFlow's chatter to the log, errors to one line and an exit code."""
    from compressctl.core.logs import new_log_path, quiet_tensorflow

    command = next((a for a in sys.argv[1:2] if a.isidentifier()), "compressctl")
    log_path = new_log_path(command)
    redirect = quiet_tensorflow(log_path) if heavy and not verbose else contextlib.nullcontext(sys.stderr)
    reserve = _reserved_stdout() if json_mode else contextlib.nullcontext(None)
    with redirect as err_stream, reserve as out_stream:
        ui = UI(err_stream, out_stream, json_mode=json_mode, quiet=quiet)
        try:
            yield ui
        except CompressctlError as exc:
            _fail(ui, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(ui, "interrupted; nothing was written", 130)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback to the log
            ui._stop_progress()
            with contextlib.suppress(OSError), open(log_path, "a") as log:
                traceback.print_exc(file=log)
            text = str(exc).splitlines()[0] if str(exc) else ""
            _fail(ui, f"internal error: {type(exc).__name__}: {text} (traceback in {log_path})", EXIT_STAGE_FAILED)


def _fail(ui: UI, message: str, code: int):
    ui._stop_progress()
    ui.error(message)
    if ui.json_mode:
        ui.print_json({"exit_code": code, "errors": message.splitlines()})
    raise typer.Exit(code) from None
