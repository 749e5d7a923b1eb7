"""The harness's end of one run's turn channel: a thread that carries `perf/turns/` to the conductor and back."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.perf.conductor import Conductor
from harness.perf.records import Done, RoundLine, Sample, TurnRequest
from harness.rundir import RunDir, storage_error, write_json_atomic

__all__ = ["POLL", "Desk"]

# Seconds between looks at perf/turns/: a turn hand-over costs about two of these (this desk sees the done,
# the next run's desk writes its grant). Each look is one stat per open ticket plus one for the next request.
POLL = 0.01


class _Tail:
    """The whole lines a .jsonl file gained since the last read (a line still being written waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.number = 0  # lines read so far, for messages naming file:line

    def read(self) -> list[tuple[int, bytes]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        lines = []
        for raw in whole.splitlines():
            self.number += 1
            if raw.strip():
                lines.append((self.number, raw))
        return lines


class Desk:
    """Polls one run's `perf/turns/` every `poll` s in a thread: requests and dones to the conductor, its grants back.

    Writes `NNNN.grant.json` (atomically) and `perf/rounds.jsonl` lines. `stop()` (bounded) tells the
    conductor the run ended, so its waiting requests get a stop grant, and marks the channel closed, so
    a request written later gets a stop from the suites' own end at once: a suites process is never
    left waiting. Use as a context manager, or `start()` / `stop()`.
    """

    def __init__(
        self,
        run: RunDir,
        label: str,
        conductor: Conductor,
        *,
        poll: float = POLL,
        on_line: Callable[[RoundLine], None] | None = None,
    ) -> None:
        conductor.check(label)
        self.run = run
        self.label = label
        self.conductor = conductor
        self.poll = poll
        # Told every line once written (e.g. the resource sampler: a "go" of this run starts a block, its "done" ends it).
        self.on_line = on_line
        self.failure = ""  # why the desk stopped early (a full disk): the runner says it; the conductor was told
        self._next = 1  # the next request ticket (the suites claim them in order: 0001, 0002, ...)
        self._open: set[int] = set()  # tickets asked and not answered, or granted and not done
        self._samples = _Tail(run.perf_samples)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = False

    def start(self) -> Desk:
        try:
            self.run.turns.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.run.perf) from None
        self._thread = threading.Thread(target=self._serve, name=f"perf-desk-{self.label}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the desk (within `timeout` s): the run has ended, or its suites have."""
        self._stopping.set()
        self.conductor.wakeup(self.label).set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._finish()  # idempotent
        else:  # stuck (a hung filesystem): abandoned, it is a daemon; the other runs must not wait for this one
            self.conductor.ended(self.label)

    def __enter__(self) -> Desk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        wake = self.conductor.wakeup(self.label)
        try:
            while not self._stopping.is_set():
                wake.clear()
                self.serve_once()
                wake.wait(self.poll)  # at once when the conductor has mail for this run (the previous slot is done)
        except (HarnessError, OSError) as exc:  # e.g. no space for a grant: the run cannot go on measuring
            self.failure = exc.one_line() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        finally:
            self._finish()

    def serve_once(self) -> None:
        """One look: new requests, dones, then what the conductor has for this run."""
        self._read_requests()
        self._read_dones()
        self._write(self.conductor.collect(self.label))

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        with contextlib.suppress(HarnessError, OSError):
            self._read_requests()  # asked meanwhile: refused below with the rest
        self.conductor.ended(self.label)
        with contextlib.suppress(HarnessError, OSError):
            self._write(self.conductor.collect(self.label))
            self.run.turns_closed.touch()

    def _read_requests(self) -> None:
        while True:
            path = self.run.turn_request(self._next)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return
            ticket, self._next = self._next, self._next + 1
            self._open.add(ticket)
            try:
                request = TurnRequest.from_json(json.loads(text))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                self.conductor.refuse(self.label, ticket, "invalid", f"{path}: {exc}")
                continue
            self.conductor.asked(self.label, ticket, request)

    def _read_dones(self) -> None:
        for ticket in sorted(self._open):
            path = self.run.turn_done(ticket)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            self._open.discard(ticket)
            try:
                done = Done.from_json(json.loads(text))
            except ValueError as exc:  # still a done: the slot goes on, the record says what was wrong
                self.conductor.note(self.label, f"{path}: {exc}")
                done = Done(0, 0)
            if done.abandoned:
                self.conductor.done(self.label, ticket, 0, 0)
            else:
                self.conductor.done(self.label, ticket, done.ops, done.associations, self._read_samples())

    def _read_samples(self) -> Sequence[Sample]:
        """The samples.jsonl lines written since the last done (the suites write a block's line before its done)."""
        samples = []
        for number, raw in self._samples.read():
            try:
                samples.append(Sample.from_json(json.loads(raw)))
            except ValueError as exc:
                self.conductor.note(self.label, f"{self.run.perf_samples}:{number}: {exc}")
        return samples

    def _write(self, lines: Sequence[RoundLine]) -> None:
        for line in lines:
            stamped = replace(line, t_ns=time.time_ns())
            grant = line.grant() if line.run == self.label else None
            if grant is not None:
                write_json_atomic(self.run.turn_grant(line.ticket), grant.to_json(), sync=False)
                if not grant.go:
                    self._open.discard(line.ticket)
            self.run.append_line(self.run.perf_rounds, stamped.to_json())
            if self.on_line is not None:
                self.on_line(stamped)
