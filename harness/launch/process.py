"""The process launcher: a spec started as a local process in its own process group, its output in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from harness.errors import TargetError
from harness.launch.base import LaunchSpec, read_log, wait_ready
from harness.launch.forkserver import Forked, forkable, server
from harness.launch.resources import ProcProbe

__all__ = ["Process", "ProcessLauncher", "peak_rss", "stop_group"]


def peak_rss(pid: int) -> int | None:
    """VmHWM of a running process in bytes (Linux /proc); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Process:
    """One started process; stdout and stderr go to the spec's log."""

    noun = ""

    def __init__(self, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        self.spec = spec
        self.exit_code: int | None = None
        self.memory_peak: int | None = None  # the process's peak resident set (VmHWM), read as it stops
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, **env, **spec.env}
        module = forkable(spec.argv, spec.role)
        forks = server() if module else None
        # A forked child opens its log itself; a plain one writes to the handle given to it here.
        self._log: IO[bytes] | None = None if forks is not None else spec.log.open("ab")
        try:
            self._process: subprocess.Popen[bytes] | Forked = (
                forks.spawn(module, spec.argv, environ, spec.cwd or Path.cwd(), spec.log)
                if forks is not None and module is not None
                else subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    env=environ,
                    cwd=spec.cwd,
                    start_new_session=True,  # its own process group, so stop() takes its children too
                )
            )
        except OSError as exc:
            self._close_log()
            raise TargetError(
                f"{spec.label}: cannot start {spec.argv[0]!r}: {exc.strerror}",
                hint="check the variant's command in the profile",
            ) from None
        # Made at once, while the leader surely runs: it keeps the leader's start time, the device's identity.
        self._probe = ProcProbe(self._process.pid, poll=self._process.poll)

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        code = self._process.poll()
        if code is not None:
            self.exit_code = code
        return code is None

    def log_text(self) -> str:
        return read_log(self.spec.log)

    def pause(self, seconds: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=seconds)

    def kill(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.killpg(self._process.pid, signal.SIGKILL)

    def stop(self) -> None:
        process = self._process
        if process.poll() is None:
            self.memory_peak = peak_rss(process.pid)
            stop_group(process, self.spec.stop_timeout)
        if self.exit_code is None:
            self.exit_code = process.poll()
        self._close_log()

    def resources(self) -> ProcProbe:
        """Its process group (start_new_session above), read from /proc."""
        return self._probe

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            log.close()


def stop_group(process: subprocess.Popen[bytes] | Forked, grace: float) -> None:
    """SIGTERM to the process group `process` leads, SIGKILL after `grace` s; each wait bounded by `grace`."""
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


class ProcessLauncher:
    """Starts every spec as a local process; `env` (the run's lifeline) is added to each one's environment."""

    python = sys.executable

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})

    def start(self, spec: LaunchSpec) -> Process:
        return Process(spec, self.env)

    def launch(self, spec: LaunchSpec) -> Process:
        return wait_ready(self.start(spec))
