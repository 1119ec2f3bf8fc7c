"""The run directory's lifecycle: the output path's checks, the hidden staging folder a run is written
into, the files written there last (reports, run.log, recipe.lock.yaml) and the move into place.

A run directory appears whole or not at all: ``publish`` replaces an earlier run only once the new
one is complete, and ``terminate_as_interrupt`` lets SIGTERM remove the staging folder like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from compressctl.core.errors import UserError
from compressctl.recipe.schema import Recipe, to_yaml
from compressctl.report import render_markdown
from compressctl.report.record import RunRecord


def check_out_dir(out: Path) -> None:
    """Refuse to replace anything that is not an earlier run (or empty)."""
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: output path exists and is not a directory")
        if any(out.iterdir()) and not (out / "report.json").exists():
            raise UserError(f"{out}: output directory is not empty and holds no earlier run; choose another --out")


def publish(staging: Path, out: Path) -> None:
    """Move a complete run into place, replacing an earlier run only once the new one is whole."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def staging_dirs(out: Path) -> tuple[Path, Path]:
    """A fresh staging folder beside ``out`` (moved into place by ``publish``) and a scratch folder."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    work = Path(tempfile.mkdtemp(prefix="compressctl-work-"))
    return staging, work


@contextlib.contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C for the length of a run, so the staging directory is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_log(staging: Path, events: list[str], output: str) -> None:
    """run.log: what the run did, then what TensorFlow and the converter printed meanwhile."""
    text = "\n".join(events) + "\n"
    if output:
        text += "\n--- TensorFlow, converter and interpreter output ---\n" + output
    (staging / "run.log").write_text(text, encoding="utf-8")


def write_reports(staging: Path, recipe: Recipe, record: RunRecord) -> None:
    (staging / "report.json").write_text(record.to_json())
    (staging / "report.md").write_text(render_markdown(record))
    from compressctl.report import render_html  # matplotlib is imported only while the page is drawn

    (staging / "report.html").write_text(render_html(record), encoding="utf-8")
    packages = ", ".join(f"{k}=={v}" for k, v in record.environment.packages.items() if v)
    header = (
        "# The fully resolved recipe of this run; `compressctl run` accepts it as it is.\n"
        f"# source recipe sha256: {record.recipe.sha256 or 'n/a'}\n"
        f"# packages: {packages}\n"
    )
    (staging / "recipe.lock.yaml").write_text(header + to_yaml(recipe))
