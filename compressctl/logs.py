"""Keeping TensorFlow's stderr chatter (absl, oneDNN, CUDA, XNNPACK lines) out of the user's terminal.

TensorFlow and the TFLite interpreter write to file descriptor 2 from C++, below Python. The CLI
points descriptor 2 at a log file for the whole command and keeps a duplicate of the real stderr
for compressctl's own output. ``--verbose`` leaves descriptor 2 alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "compressctl"


def default_log_path() -> Path:
    return log_dir() / "last.log"


@contextlib.contextmanager
def quiet_tensorflow(log_path: Path | None = None):
    """Send fd 2 to ``log_path`` inside the block; yield a text stream on the original stderr."""
    log_path = log_path or default_log_path()
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    original = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield original
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        with contextlib.suppress(Exception):
            original.close()
