"""One child process, timed: wall seconds and peak RSS (run.py and zoo.py time the CLI with it)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed_child(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (MiB) of one child process, reaped with wait4 for its own rusage."""
    import threading

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    captured = {}
    readers = [
        threading.Thread(target=lambda name, stream: captured.__setitem__(name, stream.read()), args=(n, s))
        for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for reader in readers:
        reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    completed = subprocess.CompletedProcess(cmd, proc.returncode, captured["stdout"], captured["stderr"])
    return wall, usage.ru_maxrss / 1024, completed
