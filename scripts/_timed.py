"""One timed process for the benchmarks: wall time, CPU of its tree, peak RSS and exit code, from `os.wait4`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TIMED_OUT", "Timed", "timed"]

TIMED_OUT = -1  # the exit code a run killed at its timeout is given
_POLL = 0.005  # s between two looks for its exit: what the wall time can be late by


@dataclass(frozen=True)
class Timed:
    """What one process took: wall seconds from start to exit, CPU seconds (user + system) of it and every
    process it waited for, the largest peak RSS among them in MiB, and its exit code (TIMED_OUT if killed)."""

    seconds: float
    cpu: float
    peak_mib: float
    exit_code: int


def timed(argv: Sequence[str], cwd: Path, timeout: float) -> Timed:
    """Run `argv` (output discarded) and reap it with `os.wait4`, whose usage is the process's own and its
    waited-for children's: RUSAGE_CHILDREN deltas would mix in whatever else this process reaped meanwhile."""
    start = time.monotonic()
    process = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout:
            process.kill()
            killed = True
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(_POLL)
    seconds = time.monotonic() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    code = TIMED_OUT if killed else process.returncode
    return Timed(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)  # ru_maxrss: KiB on Linux
