"""The resource sampler: a thread reading the device's probe into perf/resources.jsonl, faster inside this run's blocks.

Design: docs/design/load-and-attack.md, 4, 5.3 and 6. The desk tells it each rounds.jsonl line it writes
(`Desk(..., on_line=sampler.on_line)`): a "go" starts a block of this run (one sample at once, marked
"grant", then `block_hz`), its "done" ends it (one sample `rest_delay` later, marked "rest": the device at
rest), and between blocks it reads at `idle_hz`. `on_line` only queues the line: every read is in the
sampler's own thread, so a slow probe (the engine's stats API, about 1 s a read, read at the boundaries
only) never holds up the desk. It stops when the probe says the device is gone, or at `stop()` (bounded).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from harness.errors import HarnessError
from harness.perf.records import GO, BlockId, ResourceLine, ResourceSample, RoundLine
from harness.rundir import RunDir, storage_error

__all__ = ["MAX_WAIT", "Probe", "Sampler"]

MAX_WAIT = 1.0  # seconds: the longest the thread sleeps between looks, so stop() is seen however slow the rates


class Probe(Protocol):
    """What the sampler reads (harness.launch.resources.ResourceProbe has it; not imported: launch is below perf)."""

    source: str

    def read(self) -> ResourceSample | None: ...


class Sampler:
    """Reads `probe` into `run`'s perf/resources.jsonl in a thread: `idle_hz`, `block_hz` inside this run's blocks.

    Thread-safe `on_line`; `tick()` is one step of the thread's loop (a test drives it with a fake clock and
    no thread). `gone` is set when the probe returned None (the device exited), `failure` when reading or
    writing failed (a full disk): either ends the thread. Use as a context manager, or `start()` / `stop()`.
    """

    def __init__(
        self,
        probe: Probe,
        run: RunDir,
        *,
        clock: Callable[[], float] = time.monotonic,
        rest_delay: float = 0.2,
        idle_hz: float = 1.0,
        block_hz: float = 10.0,
    ) -> None:
        if rest_delay < 0 or idle_hz <= 0 or block_hz <= 0:
            raise ValueError(
                f"sampler: rest_delay {rest_delay:g} must be >= 0, idle_hz {idle_hz:g} and block_hz {block_hz:g} > 0"
            )
        self.probe = probe
        self.run = run
        self.clock = clock
        self.rest_delay = rest_delay
        self.idle_period, self.block_period = 1.0 / idle_hz, 1.0 / block_hz
        # An engine probe costs an API round trip (about 1 s): read it only at grants and rests (design 6).
        self.boundaries_only = probe.source == "engine"
        self.gone = False  # the probe said the device is gone
        self.failure = ""  # why it stopped early otherwise: the runner says it
        self.written = 0  # lines written
        self._lines: deque[RoundLine] = deque()  # from the desk's thread; deque append/popleft are atomic
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._block: tuple[int, BlockId] | None = None  # (ticket, block) granted and not done
        self._rests: list[tuple[float, BlockId]] = []  # (due, block): rest samples to take
        self._next = clock()  # the next periodic sample (the first at once)

    # The desk's side.
    def on_line(self, line: RoundLine) -> None:
        """Told each rounds.jsonl line the desk writes (in the desk's thread): queued, never read inline."""
        if line.event in (GO, "done"):  # a run's file has only its own go and done lines (the conductor's mail)
            self._lines.append(line)
            self._wake.set()

    # The thread.
    def start(self) -> Sampler:
        try:
            self.run.perf.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.run.perf) from None
        self._thread = threading.Thread(target=self._loop, name=f"perf-sampler-{self.run.path.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread within `timeout` s, after the rest sample of a block just done (a stuck probe is left)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            # A probe stuck in a read: the daemon thread is abandoned and writes nothing more.
            self._abandoned = self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        try:
            while not self.gone:
                self._wake.clear()  # before the tick: a line queued during it wakes the wait below at once
                delay = self.tick()
                if self._stopping.is_set() and not self._rests and not self._lines:
                    return
                self._wake.wait(min(delay, MAX_WAIT))
        except (HarnessError, OSError) as exc:  # a probe that cannot be read, no space for a line
            self.failure = exc.one_line() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"

    def tick(self) -> float:
        """One step: the desk's lines, then the samples due; seconds until the next is due."""
        stopping = self._stopping.is_set()
        while self._lines and not self.gone:
            line = self._lines.popleft()
            if line.event == GO and not stopping:
                self._rest_now()  # the next block starts before its predecessor's rest was due: at rest now or never
                self._block = (line.ticket, (line.metric, line.round))
                self._take("grant", in_block=self._block[1])
                self._next = self.clock() + self.block_period
            elif line.event == "done" and self._block is not None and line.ticket == self._block[0]:
                # An abandoned request's done has another ticket; a "late" done (slot_timeout) ends the block.
                now = self.clock()
                self._rests.append((now + self.rest_delay, self._block[1]))
                self._block = None
                self._next = now + self.idle_period
        now = self.clock()
        while self._rests and self._rests[0][0] <= now and not self.gone:
            self._take("rest", after=self._rests.pop(0)[1])
        if not self.boundaries_only and not stopping and now >= self._next and not self.gone:
            self._take("", in_block=self._block[1] if self._block else None)
            self._next = now + (self.block_period if self._block else self.idle_period)
        due = [self._rests[0][0]] if self._rests else []
        if not self.boundaries_only and not stopping:
            due.append(self._next)
        return max(0.0, min(due) - self.clock()) if due else MAX_WAIT

    def _rest_now(self) -> None:
        while self._rests and not self.gone:
            self._take("rest", after=self._rests.pop(0)[1])

    def _take(self, mark: str, *, in_block: BlockId | None = None, after: BlockId | None = None) -> None:
        sample = self.probe.read()
        if sample is None:
            self.gone = True
            return
        if self._abandoned:  # stop() gave up waiting for this read: the run has moved on
            return
        line = ResourceLine(sample, self.probe.source, in_block=in_block, mark=mark, after=after)
        self.run.append_line(self.run.perf_resources, line.to_json())
        self.written += 1
