"""Ports the harness hands out: reserved below the kernel's ephemeral range and held until released.

Guessing a free port (bind to 0, close, use later) races: the kernel hands the same port to the
next bind to 0 or to an outgoing connection, and a simulator or a client then takes the device's
port. A reserved port comes from below the ephemeral range, where the kernel never hands ports out
by itself, and is held by an OS lock on a file per port, so concurrent runs in this process or in
any other patchgate process never get the same one; a killed owner's locks vanish with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path
from typing import IO

from harness.errors import TargetError

__all__ = ["PortPool", "Reservation", "ephemeral_range", "reserve_port"]

_LOWEST = 20000  # below this live well-known services (104, 2762, 4242, 8042, 11112 ...)
_ATTEMPTS = 200


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ports it picks itself (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


class Reservation:
    """One reserved port; `release()` hands it back (the OS does too when the process ends)."""

    def __init__(self, port: int, lock: IO[str], pool: PortPool) -> None:
        self.port = port
        self._lock: IO[str] | None = lock
        self._pool = pool

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            with contextlib.suppress(OSError):
                lock.close()  # closing the file drops its flock
            self._pool.forget(self.port)


def _bindable(port: int) -> bool:
    """Nothing listens or is bound on 127.0.0.1:port, TCP or UDP."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class PortPool:
    """Reserves ports in [low, high), below the ephemeral range, coordinated through lock files in `directory`."""

    def __init__(self, directory: Path | None = None, low: int = _LOWEST, high: int | None = None) -> None:
        self.directory = directory or Path(tempfile.gettempdir()) / f"patchgate-ports-{os.getuid()}"
        self.low = low
        self.high = high if high is not None else ephemeral_range()[0]
        self._held: set[int] = set()  # flock is per open file: this process must not reserve a port twice
        self._guard = threading.Lock()

    def reserve(self) -> Reservation:
        """A port nobody holds and nothing is bound to; TargetError after a bounded number of tries."""
        if self.high - self.low < 16:
            raise TargetError(
                f"no room for reserved ports below the ephemeral range ({self.low}-{self.high})",
                hint="widen net.ipv4.ip_local_port_range's lower bound (sysctl)",
            )
        self.directory.mkdir(mode=0o700, exist_ok=True)
        for _ in range(_ATTEMPTS):
            port = random.randrange(self.low, self.high)
            with self._guard:
                if port in self._held:
                    continue
                lock = (self.directory / f"{port}.lock").open("a", encoding="utf-8")
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    lock.close()
                    continue
                if not _bindable(port):  # someone outside patchgate uses it
                    lock.close()
                    continue
                self._held.add(port)
            return Reservation(port, lock, self)
        raise TargetError(
            f"no free port found in {self.low}-{self.high} after {_ATTEMPTS} tries",
            hint="too many concurrent runs, or the range is in use by other services",
        )

    def forget(self, port: int) -> None:
        with self._guard:
            self._held.discard(port)


# One pool per process: the ports it holds are the process's, whichever run asked for them.
_POOL = PortPool()


def reserve_port() -> Reservation:
    """A reserved port from the process's pool."""
    return _POOL.reserve()
