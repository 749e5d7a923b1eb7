"""How fast this machine runs Python and creates files right now: what benchmarks print beside their timings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["QUIET_MS", "STEPS", "create", "disk", "quiet_disk", "speed", "yardstick"]

STEPS = 10_000_000
# These VMs swing several-fold between hours (one such loop took 1.6 s at 16:20 UTC on 2026-12-02 and 0.29 s
# at 19:20): a CPU-bound wall time means little without the speed it was measured at.
QUIET_MS = 0.08  # ms a small file's creation takes on a quiet disk here: 0.03; 0.2-0.9 after many deletions
_PROBE_FILES, _PROBE_BYTES, _PROBE_EVERY, _QUIET_PROBES = 500, 900, 10.0, 3


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


def create(files: Iterable[tuple[Path, int]]) -> None:
    """Create each file with that many zero bytes, in a bare loop (open, write, close): what the disk charges."""
    for path, size in files:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, bytes(size))
        finally:
            os.close(fd)


def quiet_disk(folder: Path, most: float = 300.0) -> tuple[float, float, int]:
    """Wait until creating a small file under `folder` takes less than QUIET_MS in three probes in a row, 10 s
    apart, at most `most` seconds; the seconds waited, the slowest of the last (up to) three probes in ms a file,
    and how many probes that is.

    ext4 on these VMs (mounted with `discard`) creates files 3-30x slower for minutes after many were deleted
    (2026-12-03: 4.5 minutes after a benchmark removed its 40,000 files): a benchmark started then times that.
    Probe files are left in `folder`: deleting them would be what slows the disk.
    """
    started = time.monotonic()
    probes: list[float] = []
    while True:
        probe = folder / f"disk-probe-{time.monotonic_ns()}"
        probe.mkdir(parents=True)
        begun = time.perf_counter()
        create((probe / str(i), _PROBE_BYTES) for i in range(_PROBE_FILES))
        probes.append((time.perf_counter() - begun) / _PROBE_FILES * 1000)
        waited = time.monotonic() - started
        # One quick probe can be a lull: the disk swings between probes for minutes after deletions.
        last = probes[-_QUIET_PROBES:]
        if (len(last) == _QUIET_PROBES and max(last) < QUIET_MS) or waited + _PROBE_EVERY > most:
            return waited, max(last), len(last)
        time.sleep(_PROBE_EVERY)


def disk(waited: float, per_file: float, probes: int) -> str:
    """The sentence a benchmark's section gives the disk's state at its start in (quiet_disk's three numbers)."""
    quiet = "quiet" if per_file < QUIET_MS and probes == _QUIET_PROBES else "not known quiet"
    if quiet != "quiet":
        quiet += f" (< {QUIET_MS} ms, {_QUIET_PROBES} in a row)"
    return (
        f"Disk: at most {per_file:.3f} ms to create a small file in the last {probes} probe(s) of {_PROBE_FILES} at "
        "the start, "
        f"{quiet}, after waiting {waited:.0f} s "
        "(these VMs' disks are several times slower at creating files for minutes after many were deleted)."
    )
