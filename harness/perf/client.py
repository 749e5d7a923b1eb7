"""The suites' end of the turn channel: ask the harness for a turn to measure, wait for it, say when the block is done."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.channel import CLOSED, GONE, Channel, read_answer
from harness.perf.records import Done, Grant, Sample, TurnRequest
from harness.rundir import RunDir, write_json_atomic

__all__ = ["POLL", "Turn", "Turns"]

# Seconds between looks for the grant; a waiting suites process costs one stat per look (no association is open).
POLL = 0.01


class Turn:
    """One answered request: `go` (then measure one block and call `done`), or `stop` says why not."""

    def __init__(self, turns: Turns, ticket: int, metric: str, grant: Grant) -> None:
        self._turns = turns
        self.ticket = ticket
        self.metric = metric
        self.grant = grant
        self._done = False

    @property
    def go(self) -> bool:
        return self.grant.go

    @property
    def round(self) -> int:
        return self.grant.round

    @property
    def slot(self) -> int:
        return self.grant.slot

    @property
    def stop(self) -> str:
        return self.grant.stop

    def record(self, sample: Sample | Mapping[str, Any]) -> None:
        """Append the block's `perf/samples.jsonl` line (one O_APPEND write), before `done`: the conductor reads it then.

        `sample`: a Sample, or the line as `simulators.loadgen.Block.to_json(round=, slot=, started_ns=)` gives it
        (checked here, so a malformed line fails the case that wrote it, not the comparison). A block may record
        several metrics (a retrieve gives `move.first` and `move.last`), all of this turn's round and slot.
        """
        if not isinstance(sample, Sample):
            sample = Sample.from_json(sample)
        if not self.go or self._done:
            raise ValueError(
                f"turn {self.ticket:04d} ({self.metric}): samples belong inside a granted block, before done"
            )
        if (sample.round, sample.slot) != (self.round, self.slot):
            raise ValueError(
                f"turn {self.ticket:04d} ({self.metric}): a sample of round {sample.round} slot {sample.slot} "
                f"in the block of round {self.round} slot {self.slot}"
            )
        self._turns.run.append_line(self._turns.run.perf_samples, sample.to_json())

    def done(self, ops: int, associations: int) -> None:
        """The granted block is over (its samples.jsonl line written first): the next run may measure."""
        if not self.go:
            raise ValueError(
                f"turn {self.ticket:04d} ({self.metric}) was not granted ({self.stop}): nothing to be done"
            )
        if self._done:
            raise ValueError(f"turn {self.ticket:04d} ({self.metric}) is already done")
        self._done = True
        write_json_atomic(self._turns.run.turn_done(self.ticket), Done(ops, associations).to_json(), sync=False)

    def __repr__(self) -> str:
        said = f"go round {self.round} slot {self.slot}" if self.go else f"stop {self.stop}"
        return f"Turn({self.ticket:04d}, {self.metric!r}, {said})"


class Turns:
    """`turn(metric)` -> Turn: writes `perf/turns/NNNN.request.json`, waits for `NNNN.grant.json`.

    Every wait is bounded: by `timeout` s (then the request is withdrawn and the turn says `no_answer`),
    and by the harness closing the channel (`turns/closed`: the turn says `ended`). Safe with several
    suites processes on one run directory: a ticket number is claimed by creating its request file
    exclusively (a hard link of a written temporary, so the harness never reads half a request).
    """

    def __init__(self, run: RunDir, timeout: float, *, poll: float = POLL) -> None:
        self.run = run
        self.channel = Channel(run.turns, run.turn_request, run.turns_closed, timeout, poll, what="turn")
        self._granted: Counter[str] = Counter()  # go grants per metric, sent as the request's round

    def turn(self, metric: str) -> Turn:
        if self.run.turns_closed.exists():
            return Turn(self, 0, metric, Grant.refuse("ended"))
        ticket = self.channel.send(TurnRequest(metric, self._granted[metric]).to_json())
        grant = self.channel.wait(self.run.turn_grant(ticket), _read_grant)
        if grant is None:  # withdrawn, so the harness does not hold a slot for a process that stopped listening
            write_json_atomic(self.run.turn_done(ticket), Done(0, 0, abandoned=True).to_json(), sync=False)
            grant = Grant.refuse("no_answer")
        elif grant is CLOSED or grant is GONE:
            grant = Grant.refuse("ended")
        if grant.go:
            self._granted[metric] += 1
        return Turn(self, ticket, metric, grant)


def _read_grant(path: Path) -> Grant | None:
    # a grant that does not parse is a harness bug
    return read_answer(path, Grant.from_json, lambda: Grant.refuse("invalid"))
