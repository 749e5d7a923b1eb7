"""The local target backend: the device variant is a process started from the profile's `command`."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from harness.errors import TargetError
from harness.model import Endpoint
from harness.targets.base import log_tail
from harness.targets.readiness import echo_once, wait_for_echo

__all__ = ["LocalTarget"]


def _peak_rss(pid: int) -> int | None:
    """VmHWM of a running process in bytes (Linux /proc); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class LocalTarget:
    """A device (or simulator) process whose stdout and stderr go to a log file in the run directory."""

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        endpoint: Endpoint,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        calling_ae: str = "PGPROBE",
        tls_dir: str = "",  # the run's PKI, for a device that requires TLS
    ) -> None:
        self.label = label
        self.argv = tuple(argv)
        self.endpoint = endpoint
        self.log_path = log_path
        self.env = dict(env or {})
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.calling_ae = calling_ae
        self.tls_dir = tls_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.exit_code: int | None = None
        self.memory_peak: int | None = None  # bytes: the process's peak resident set (VmHWM), read as it stops

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> Endpoint:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so stop() takes its children too
            )
        except OSError as exc:
            raise TargetError(
                f"{self.label}: cannot start {self.argv[0]!r}: {exc.strerror}",
                hint="check the variant's command in the profile",
            ) from None
        probe = wait_for_echo(
            self.endpoint,
            self.calling_ae,
            self.start_timeout,
            self.alive,
            echo=lambda endpoint, ae, timeout: echo_once(endpoint, ae, timeout, self.tls_dir),
        )
        if probe.answered:
            return self.endpoint
        where = f"{self.endpoint.ae_title}@{self.endpoint.host}:{self.endpoint.port}"
        if not self.alive():
            message = f"{self.label}: exited with code {self.exit_code} before answering C-ECHO at {where}"
        else:
            message = (
                f"{self.label}: did not answer C-ECHO at {where} within {self.start_timeout:g} s "
                f"({probe.attempts} attempts, last: {probe.last_error})"
            )
        self.stop()
        raise TargetError(
            f"{message}; log: {self.log_path}",
            hint="check the command, AE title and port in the profile, and the device log",
            detail=self.log_tail(),
        )

    def alive(self) -> bool:
        if self._process is None:
            return False
        code = self._process.poll()
        if code is not None:
            self.exit_code = code
        return code is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return log_tail(self.log_path.read_text(encoding="utf-8", errors="replace"), lines)
        except OSError:
            return ""

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            self.memory_peak = _peak_rss(process.pid)
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=self.stop_timeout)
            except ProcessLookupError:
                pass
        if process is not None and self.exit_code is None:
            self.exit_code = process.poll()
        if self._log is not None:
            self._log.close()
            self._log = None
