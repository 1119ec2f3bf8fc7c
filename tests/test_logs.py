"""Per-process logs: concurrent commands never share, truncate or mix a log file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compressctl.core import logs

pytestmark = pytest.mark.unit

WRITER = """
import os, sys, time
from compressctl.core.logs import quiet_tensorflow, active_log
with quiet_tensorflow(command=sys.argv[1]) as err:
    for i in range(200):
        os.write(2, f"{sys.argv[1]} line {i}\\n".encode())  # as C++ code writes: straight to fd 2
        time.sleep(0.001)
    err.write(str(active_log()) + "\\n")
"""


def test_two_commands_at_once_each_keep_a_whole_log_of_their_own(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, name], env=env, stderr=subprocess.PIPE, text=True)
        for name in ("alpha", "beta")
    ]
    paths = {}
    for name, proc in zip(("alpha", "beta"), procs, strict=True):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        paths[name] = err.strip().splitlines()[-1]
    assert paths["alpha"] != paths["beta"]
    for name, path in paths.items():
        lines = Path(path).read_text().splitlines()
        assert lines == [f"{name} line {i}" for i in range(200)], name
    last = tmp_path / "compressctl" / "last.log"
    assert last.is_symlink() and str(last.resolve()) in {os.path.realpath(p) for p in paths.values()}


def test_a_log_is_appended_never_truncated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = logs.new_log_path("t")
    path.parent.mkdir(parents=True)
    path.write_text("earlier\n")
    with logs.quiet_tensorflow(path):
        start = logs.log_offset()
        os.write(2, b"during\n")
        assert logs.log_since(start) == "during\n"
    assert path.read_text() == "earlier\nduring\n"
    assert logs.active_log() is None


def test_old_logs_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "compressctl" / "logs"
    folder.mkdir(parents=True)
    for i in range(logs.KEEP_LOGS + 5):
        old = folder / f"old-{i}.log"
        old.write_text("x")
        os.utime(old, (1000 + i, 1000 + i))
    with logs.quiet_tensorflow(command="new"):
        pass
    remaining = sorted(p.name for p in folder.glob("*.log"))
    assert len(remaining) == logs.KEEP_LOGS
    assert "old-0.log" not in remaining and any(name.startswith("new-") for name in remaining)


def test_the_log_of_a_running_process_is_never_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "compressctl" / "logs"
    folder.mkdir(parents=True)
    running = folder / f"run-20260101T000000-{os.getpid()}.log"  # this process: alive
    running.write_text("x")
    os.utime(running, (1, 1))  # the oldest of all
    for i in range(logs.KEEP_LOGS + 2):
        (folder / f"old-{i}-999999999.log").write_text("x")
    with logs.quiet_tensorflow(command="new"):
        pass
    assert running.exists()
