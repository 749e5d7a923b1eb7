"""A process the harness started stops by itself once the harness is gone: the run's heartbeat file goes stale.

The harness touches the file every `BEAT` seconds while a run lives (`Heartbeat`) and names it in
the environment of what it starts: the simulators, a local device, the suites, in processes or
containers (the run directory is mounted at the same path). A harness killed with SIGKILL runs no
cleanup, so without this its simulators and suites would go on, and the suites would go on
appending to the run's record, until someone swept them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BEAT", "HEARTBEAT_ENV", "LIMIT_ENV", "Heartbeat", "Lifeline", "stop_signals", "wait_until_stopped"]

HEARTBEAT_ENV = "PATCHGATE_HEARTBEAT"  # the file's path
LIMIT_ENV = "PATCHGATE_HEARTBEAT_LIMIT"  # seconds without a beat after which the harness counts as gone
BEAT = 1.0
DEFAULT_LIMIT = 30.0  # generous: a loaded machine may stall the harness for seconds, never for this long


class Lifeline:
    """A started process's view of its harness: `gone()` says why the harness counts as gone, or "".

    Judged on this process's own monotonic clock (how long the file's mtime has not moved), never by
    comparing the wall clock with the mtime: a clock step or a file server's skew must not stop a
    healthy run. A missing file counts as gone: the harness writes it before it starts anything and
    removes it only after it stopped everything, so it is missing only when the run directory went
    away under a killed harness. No heartbeat named in the environment: never gone.
    """

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.path = environ.get(HEARTBEAT_ENV, "")
        try:
            self.limit = float(environ.get(LIMIT_ENV, "") or DEFAULT_LIMIT)
        except ValueError:
            self.limit = DEFAULT_LIMIT
        self._last: int | None = None  # the mtime (ns) seen last
        self._since = time.monotonic()  # when it last moved

    def gone(self) -> str:
        if not self.path:
            return ""
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return f"the harness that started this run is gone: its heartbeat {self.path} was removed"
        except OSError:
            return ""  # unreadable for a moment (a network file system): judge at the next look
        now = time.monotonic()
        if mtime != self._last:
            self._last, self._since = mtime, now
            return ""
        if now - self._since <= self.limit:
            return ""
        return (
            f"the harness that started this run is gone: its heartbeat {self.path} has not moved "
            f"for {now - self._since:.0f} s (limit {self.limit:g} s)"
        )


class Heartbeat:
    """Touches `path` every BEAT seconds until `stop()`, which removes it; `environment()` names it to children."""

    def __init__(self, path: Path, limit: float | None = None) -> None:
        self.path = path
        self.limit = limit if limit is not None else float(os.environ.get(LIMIT_ENV, "") or DEFAULT_LIMIT)
        self._stop = threading.Event()
        self.path.touch()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{path.parent.name}", daemon=True)
        self._thread.start()

    def environment(self) -> dict[str, str]:
        return {HEARTBEAT_ENV: str(self.path), LIMIT_ENV: f"{self.limit:g}"}

    def _beat(self) -> None:
        while not self._stop.wait(BEAT):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)


def stop_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set; installed before a simulator starts, so an early stop is not lost."""
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def wait_until_stopped(stop: threading.Event, log: logging.Logger) -> None:
    """Block until `stop` is set, or until the harness that started this process is gone (said in `log`)."""
    lifeline = Lifeline()
    while not stop.wait(0.5):
        if why := lifeline.gone():
            log.warning("%s; stopping", why)
            return
