"""Keeping TensorFlow's stderr chatter (absl, oneDNN, CUDA, XNNPACK lines) out of the user's terminal.

TensorFlow and the TFLite interpreter write to file descriptor 2 from C++, below Python. The CLI
points descriptor 2 at a log file of its own for the whole command and keeps a duplicate of the real
stderr for compressctl's own output. ``--verbose`` leaves descriptor 2 alone.

Every process gets its own log (``logs/<command>-<time>-<pid>.log`` under the cache directory),
opened for appending and never truncated, so two commands at once never mix or clobber each
other's lines; ``last.log`` is a symbolic link to the newest, replaced atomically. A run also
keeps the part of the log written while it ran as ``run.log`` in its run directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

KEEP_LOGS = 50  # older process logs are removed when a new one starts

_active: Path | None = None


def log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compressctl"


def default_log_path() -> Path:
    """The link to the newest process log."""
    return log_dir() / "last.log"


def active_log() -> Path | None:
    """The log this process's descriptor 2 writes to, or None (``--verbose``, or no log could be opened)."""
    return _active


def new_log_path(command: str = "compressctl") -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return log_dir() / "logs" / f"{command}-{stamp}-{os.getpid()}.log"


def _link_last(path: Path) -> None:
    link = default_log_path()
    tmp = link.with_name(f".last.log.{os.getpid()}")
    with contextlib.suppress(OSError):
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(path)
        os.replace(tmp, link)


def _alive(log: Path) -> bool:
    """Whether the process that owns ``log`` (its name ends in ``-<pid>.log``) is still running."""
    match = re.search(r"-\d{8}T\d{6}-(\d+)$", log.stem)
    if not match or int(match.group(1)) <= 1:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _prune(folder: Path) -> None:
    """Remove the oldest logs beyond KEEP_LOGS, never one whose process still runs."""
    with contextlib.suppress(OSError):
        logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime)
        for old in logs[:-KEEP_LOGS]:
            if not _alive(old):
                with contextlib.suppress(OSError):
                    old.unlink()


@contextlib.contextmanager
def quiet_tensorflow(log_path: Path | None = None, command: str = "compressctl"):
    """Send fd 2 to this process's own log inside the block; yield a text stream on the original stderr."""
    global _active
    log_path = log_path or new_log_path(command)
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        yield sys.stderr
        return
    _prune(log_path.parent)
    _link_last(log_path)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    original = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    previous, _active = _active, log_path
    try:
        yield original
    finally:
        _active = previous
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        with contextlib.suppress(Exception):
            original.close()


def log_offset() -> int:
    """Where the active log ends now (0 without one): a run copies its log from here."""
    if _active is None:
        return 0
    try:
        return _active.stat().st_size
    except OSError:
        return 0


def log_since(offset: int) -> str:
    """What the active log gained since ``offset`` (empty without one)."""
    if _active is None:
        return ""
    sys.stderr.flush()
    try:
        with open(_active, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
