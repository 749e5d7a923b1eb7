"""How fast this machine runs Python right now: a yardstick benchmarks print beside their timings."""

from __future__ import annotations

import time

__all__ = ["STEPS", "speed", "yardstick"]

STEPS = 10_000_000
# These VMs swing several-fold between hours (one such loop took 1.6 s at 16:20 UTC on 2026-12-02 and 0.29 s
# at 19:20): a CPU-bound wall time means little without the speed it was measured at.


def yardstick() -> float:
    """Seconds an empty 10-million-step Python loop takes (best of three, so a momentary stall does not count)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(STEPS):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def speed(before: float, after: float) -> str:
    """The sentence a benchmark's section gives its machine's speed in."""
    return (
        f"Machine speed: an empty {STEPS:,}-step Python loop took {before:.2f} s at the start and {after:.2f} s at the "
        "end (best of 3): a CPU-bound time scales with it, so compare sections by it before comparing their times."
    )
