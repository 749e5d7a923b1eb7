"""Waiting for a device's asynchronous effects at the simulators: read a journal until a condition holds or a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from simulators.stall import STALL_LIMIT, nap

__all__ = ["POLL", "quiet", "wait_for"]

T = TypeVar("T")
POLL = 0.05  # seconds between two reads of a journal


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """`read()` until `done(value)` or `timeout` s have passed; the last value read (read once even at 0 s).

    The wait is bounded by the action's `settle`: a device slower than its profile says shows as a
    difference (or as noise between the baseline replicas), never as a hang.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
        value = read()
    return value


def quiet(read: Callable[[], int], settle: float, timeout: float) -> int:
    """Wait until `read()` (a count: journal lines) is non-zero and unchanged for `settle` s, at most `timeout` s.

    For effects whose number is not known in advance (the images a device makes): a device that
    sends synchronously is done at once; one that sends in the background gets up to `timeout`.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    count, since = read(), time.monotonic()
    lost = lost_since = 0.0  # time stalled in all (bounded), and since the count last changed
    while time.monotonic() < deadline + lost:
        if count and time.monotonic() - since >= settle + lost_since:
            break
        stall = nap(POLL)
        lost, lost_since = min(STALL_LIMIT, lost + stall), lost_since + stall
        now = read()
        if now != count:
            count, since, lost_since = now, time.monotonic(), 0.0
    return count
