"""The launcher protocol: start a thing (process or container), wait until it is ready, keep its log, stop it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from harness.errors import TargetError

if TYPE_CHECKING:
    from harness.launch.resources import ResourceProbe

__all__ = [
    "LaunchSpec",
    "Launched",
    "Launcher",
    "Readiness",
    "log_tail",
    "read_log",
    "ready_or_why",
    "start_failure",
    "wait_ready",
]


class Readiness(Protocol):
    """How to tell that a started thing is ready (C-ECHO, TCP, HTTP, a log line, or at once)."""

    def probe(self, started: Launched) -> str:
        """One check: "" when ready, else why not yet."""

    def describe(self) -> str:
        """What is waited for, for error messages ("C-ECHO at AE@host:port")."""


@dataclass(frozen=True)
class LaunchSpec:
    """What to start: the same spec runs as a process or a container, whichever the launcher makes."""

    role: str  # device, pacs, arr, suites: names the container and the log
    label: str  # for messages: "PACS simulator", "device 'orthanc' variant 'candidate'"
    argv: tuple[str, ...]  # a container's command (empty: the image's own CMD)
    log: Path
    ready: Readiness
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # working directory (a container's too)
    image: str = ""  # containers only; "" = the simulators image
    # Host paths a container sees at the same path ("ro" or "rw"); a process sees them anyway.
    shared: Mapping[str, str] = field(default_factory=dict)
    # Host path -> path inside (read-only): a device's configuration files and its view of the PKI.
    mounts: Mapping[str, str] = field(default_factory=dict)
    storage: Path | None = None  # read-write at the same path: a device's storage, handed to a non-root image
    start_timeout: float = 20.0
    stop_timeout: float = 5.0
    user: str | None = None  # containers: "uid:gid"; None: the image's own user
    restart: str = "no"  # containers: the engine's restart policy ("no", "on-failure", "always")
    memory_limit: str = ""  # containers: the engine's memory limit ("512m", "2g"); "": none
    hint: str = "see its log in the run directory"
    # True once the run is cancelled (SIGTERM): the wait stops it and raises KeyboardInterrupt at once.
    cancelled: Callable[[], bool] = field(default=lambda: False, compare=False, repr=False)


class Launched(Protocol):
    """One started thing."""

    spec: LaunchSpec
    noun: str  # "container " or "": how messages name what exited
    exit_code: int | None  # set once it exited
    memory_peak: int | None  # bytes, read as it stops; None where unmeasured

    def alive(self) -> bool:
        """Whether it still runs (False once it exited or was stopped)."""

    def log_text(self) -> str:
        """Its whole log so far ("" when there is none yet)."""

    def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less once it exited where that is seen without asking (a local process's end
        wakes the wait); `alive()` says which."""

    def kill(self) -> None:
        """Stop it at once (SIGKILL); `stop()` still cleans up."""

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after the stop timeout), keep its log; safe to call twice."""

    def resources(self) -> ResourceProbe | None:
        """The probe of its memory, CPU and identity (harness.launch.resources): the same one at each call.

        None once there is nothing left to read (a container stopped and removed).
        """


class Launcher(Protocol):
    """Starts specs the one way a run's backend does (processes, or containers in the run's network)."""

    python: str  # the interpreter that runs `-m simulators...` where the launcher starts things

    def start(self, spec: LaunchSpec) -> Launched:
        """Start `spec` without waiting for it: `wait_ready` it before use (so several can come up at once)."""

    def launch(self, spec: LaunchSpec) -> Launched:
        """Start `spec` and wait until ready; TargetError (with the log tail) when it never gets there."""


def read_log(path: Path) -> str:
    """A log file's text as far as it was written; "" when there is none (yet)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def log_tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def start_failure(message: str, tail: str, hint: str) -> TargetError:
    """A start that failed, with the last log lines in the message (one line) and the tail as detail."""
    last = " | ".join(tail.splitlines()[-3:])
    return TargetError(f"{message}; log tail: {last}", hint=hint, detail=tail)


_Started = TypeVar("_Started", bound="Launched")
_FIRST_POLL = 0.02  # s before the second readiness check; each later pause is 1.5x the last, up to the interval


def wait_ready(started: _Started, interval: float = 0.1) -> _Started:
    """Poll `spec.ready` until it passes, the thing exits, or the start timeout passes (never unbounded)."""
    why = ready_or_why(started, interval)
    if why == "":
        return started
    if why is None:
        started.stop()
        raise KeyboardInterrupt
    tail = log_tail(started.log_text())
    started.stop()
    raise start_failure(why, tail, started.spec.hint)


def ready_or_why(started: Launched, interval: float = 0.1) -> str | None:
    """Poll `spec.ready` until it passes (""), the thing exits or the start timeout passes (why, one line);
    None when the run was cancelled. Stops nothing: a device the engine restarted is waited for this way too."""
    spec = started.spec
    start = time.monotonic()
    attempts, last = 0, "not tried"
    pause = min(interval, _FIRST_POLL)  # most things are up within a few polls: the first come sooner
    while True:
        if spec.cancelled():
            return None
        attempts += 1
        last = spec.ready.probe(started)
        if not last:
            return ""
        elapsed = time.monotonic() - start
        if not started.alive():
            return f"{spec.label}: {started.noun}exited with code {started.exit_code} before answering {spec.ready.describe()}"
        if elapsed >= spec.start_timeout:
            return (
                f"{spec.label}: {started.noun}did not answer {spec.ready.describe()} within {spec.start_timeout:g} s "
                f"({attempts} attempts, last: {last})"
            )
        time.sleep(pause)
        pause = min(interval, pause * 1.5)
