"""Time a loaded machine took from this process: a sleep that overslept by more than it asked was a stall."""

from __future__ import annotations

import time

__all__ = ["STALL_LIMIT", "nap", "stalled"]

# A wait for another process's doing counts the time this one ran, not time a loaded machine stalled it (and
# most likely the other process too): a stall widens the wait, by at most STALL_LIMIT s, instead of cutting it short.
STALL_LIMIT = 4.0


def stalled(asked: float, took: float) -> float:
    """Seconds a sleep of `asked` s that took `took` s lost to a stalled machine (oversleeping within `asked` is jitter)."""
    return max(0.0, took - 2 * asked)


def nap(seconds: float) -> float:
    """Sleep `seconds` on the real clock; the seconds of it a stalled machine took (see `stalled`)."""
    asleep = time.monotonic()
    time.sleep(seconds)
    return stalled(seconds, time.monotonic() - asleep)
