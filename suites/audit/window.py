"""Which audit messages an operation caused: windows that learn how late the run's device audits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from simulators.audit.record import AuditRecord, read_records
from simulators.stall import STALL_LIMIT, stalled

__all__ = [
    "DRAIN",
    "DRAIN_LIMIT",
    "MIN_WAIT",
    "PATIENCE",
    "POLL",
    "QUIET",
    "SETTLE",
    "STALL_LIMIT",
    "Clock",
    "Collected",
    "SystemClock",
    "Window",
    "records",
    "widened",
]

T = TypeVar("T")

SETTLE = 0.2  # seconds without a new message before an operation's messages are taken as complete
MIN_WAIT = 0.3  # the shortest window after an operation, however fast the device audits
PATIENCE = 2.0  # the longest: before the device's latency is measured, and a cap on a slow device's windows
QUIET = 0.5  # a device that has sent nothing at all in this run (most likely it keeps no audit trail)
POLL = 0.02  # seconds between two reads of the repository's file (a latency is measured to this)
# Before the first case: messages of what came before (the device's start, the harness's readiness checks;
# the audit suite runs before the other suites) may still be on their way; they must not land in its first window.
DRAIN = 1.0
DRAIN_LIMIT = 6.0


class Clock(Protocol):
    """Time as a window sees it: a monotonic now, a sleep, and how long ago a file last changed."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def age(self, path: Path) -> float:
        """Seconds since `path` was last written (raises FileNotFoundError when it does not exist)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: what a device's audit stamps are compared with."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.sleep`, and the file's mtime against `time.time`."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def age(self, path: Path) -> float:
        return time.time() - path.stat().st_mtime

    def wall(self) -> float:
        return time.time()


def widened(longest: float, floor: float, margin: float) -> float:
    """A wait this run's device has shown it needs: 3 x the longest it took, plus `margin`, from `floor` to PATIENCE."""
    return min(PATIENCE, max(floor, 3 * longest + margin))


def records(path: Path) -> list[AuditRecord]:
    """Everything the repository has received so far (none before its first message)."""
    return read_records(path) if path.exists() else []


@dataclass(frozen=True)
class Collected(Generic[T]):
    """One window: what the action returned, the messages it caused, and the late ones found before it ran.

    `late` counts messages that reached the repository after the previous window had closed and
    before this action started: they belong to no case (0 for a device whose windows fit).
    """

    result: T
    received: list[AuditRecord]
    late: int
    started: float = 0.0  # when the action began, seconds since the epoch (stamps are compared with it)
    arrived: range = range(0)  # the repository's records (read_records' numbering) that arrived in the window


class Window:
    """The audit windows of one run: each waits as long as this run's device has shown it needs.

    The latency of a window that received messages is the time from the action's end to the
    last message seen. Until one is measured the wait is `PATIENCE` (a device that audits late is
    measured before it is trusted), or `QUIET` while the device has sent nothing at all; then
    `3 x the largest latency + SETTLE`, never below `MIN_WAIT` nor above `PATIENCE`. A window
    stays open while messages keep coming (`SETTLE` apart), up to `PATIENCE` after the action.
    Time the machine took from this process (polls that overslept) is added to both, up to
    `STALL_LIMIT`; a message that still came after its window closed (counted `late` in the next)
    teaches its latency, so the windows after it are wide enough for it.
    """

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.latencies: list[float] = []
        self.late = 0  # messages that arrived between two windows, over the run
        self._closed: int | None = None  # how many messages there were when the last window closed
        self._ended: float | None = None  # when the last window's action ended

    def wait(self, *latest: float) -> float:
        """How long the next window stays open after its action, at least (`latest`: the open window's latency so far)."""
        seen = [*self.latencies, *latest]
        if not seen:
            return PATIENCE if self._closed or self.count() else QUIET
        return widened(max(seen), MIN_WAIT, SETTLE)

    def drain(self, quiet: float = SETTLE, limit: float = PATIENCE) -> None:
        """Wait (at most `limit` s) until nothing has reached the repository for `quiet` s.

        Messages are sent and received asynchronously, so those of earlier work can arrive after the
        next operation started; waiting for a quiet log keeps them out of the next case's window.
        """
        deadline = self.clock.now() + limit
        while self.clock.now() < deadline:
            try:
                if self.clock.age(self.path) >= quiet:
                    return
            except FileNotFoundError:
                return
            self.clock.sleep(POLL)

    def trailing(self) -> int:
        """After the last window: how many messages come while one more window would wait (late, and learned)."""
        if self._closed is None:
            return 0
        deadline = self.clock.now() + self.wait()
        while self.clock.now() < deadline:
            self.clock.sleep(POLL)
        late = self.count() - self._closed
        if late:
            self._learn_late()
        self.late += late
        self._closed += late
        return late

    def restart(self) -> None:
        """Before measuring again: wait until nothing came for as long as a window now waits, then count afresh."""
        self.drain(quiet=self.wait(), limit=DRAIN_LIMIT)
        self._closed = None  # what came until now is late for no window of the next pass

    def during(self, action: Callable[[], T]) -> Collected[T]:
        """Run `action`, then collect the messages that arrive until its window closes."""
        self.drain()
        before = self.count()
        late = before - self._closed if self._closed is not None else 0
        self.late += late
        if late:
            self._learn_late()
        silent = self.wait()
        started = self.clock.wall()
        result = action()
        end = self._ended = self.clock.now()
        count, seen, wait, lost, latency = before, end, silent, 0.0, 0.0
        while True:
            now = self.clock.now()
            if (n := self.count()) != count:
                # This window's own latency counts at once: the first one need not wait PATIENCE. It is the
                # device's latency, not the time the machine stalled it.
                count, seen, latency = n, now, max(0.0, now - end - lost)
                wait = self.wait(latency)
            opened = now - end - lost
            if opened >= PATIENCE or (opened >= wait and now - seen >= SETTLE):
                break
            self.clock.sleep(POLL)
            # A stall took the device's audit sender too: it widens the window instead of shifting a message
            # into the next case.
            lost = min(STALL_LIMIT, lost + stalled(POLL, self.clock.now() - now))
        if count > before:
            self.latencies.append(latency)
        self._closed = count
        return Collected(result, records(self.path)[before:count], late, started, range(before, count))

    def _learn_late(self) -> None:
        """Late messages came after the last window closed: their latency (last one's arrival) widens the next."""
        if self._ended is None:
            return
        try:
            arrived = self.clock.now() - self.clock.age(self.path)
        except FileNotFoundError:
            return
        self.latencies.append(min(PATIENCE, max(0.0, arrived - self._ended)))

    def count(self) -> int:
        """How many records the repository has written (complete lines; read_records' numbering, not parsed)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        return sum(1 for line in data.split(b"\n")[:-1] if line.strip())
