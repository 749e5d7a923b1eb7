"""The conductor: the runs of a validation measure in turns, round after round, one metric after another.

Design: docs/design/load-and-attack.md, 5.4 and 5.5. The runs are threads of one process; each run's
`Desk` hands the conductor what its suites ask (`asked`, `done`) and collects what to answer
(`collect`). The conductor is a state machine under one lock and never waits itself: every wait
(the barrier, a slot not taken or not given back) is measured with the injected clock against a
bound, so a test drives it with a fake clock and no sleeping.

- Barrier: no grant before every run asked once, ended, or `barrier_timeout` passed since the first
  request (the silent runs are left out: `left_out`).
- Rounds: for the current metric, round k's slot order is the runs in its rotation rotated by k; a run
  is granted when the slot before it is done, so one run measures at a time.
- Stop, after each complete round: the injected decision (from `warmup_rounds + min_rounds` rounds on,
  given the kept rounds' values), `max_rounds`, or the metric's share of `budget` (from `warmup_rounds +
  min_rounds` rounds on too: the budget never leaves a metric with fewer kept rounds than min_rounds).
- A run that ends, moves on to another metric, or holds its slot past `slot_timeout` leaves the
  metric's rotation; the others go on (its summary says from which round: "interleaved until round k").
- Metrics run one after another, in the order the runs ask for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.perf.records import GO, RoundLine, Sample, TurnRequest

__all__ = [
    "WEIGHTS",
    "Clock",
    "Conductor",
    "Decide",
    "MetricSummary",
    "SoloConductor",
    "never",
    "weight",
    "weights_for",
]

Clock = Callable[[], float]
# Each metric's share of performance.budget is budget x its weight / the phase's total weight (section 5.5):
# latency metrics 1, store and retrieve 2, a workflow action 3. By metric id prefix.
WEIGHTS: tuple[tuple[str, float], ...] = (
    ("association.", 1.0),
    ("echo.", 1.0),
    ("find.", 1.0),
    ("store.", 2.0),
    ("move.", 2.0),
    ("get.", 2.0),
    ("workflow.", 3.0),
)


class Decide(Protocol):
    """The stopping rule for one metric: a stop reason (e.g. "decided"), or None to go on measuring.

    `values`: run label -> round -> that run's values in that round (seconds per unit), for the kept
    rounds only (warm-up rounds left out) and complete rounds only; every run of the metric's rotation
    is a key, a run that left has its rounds up to then.
    """

    def __call__(self, metric: str, values: Mapping[str, Mapping[int, Sequence[float]]], /) -> str | None: ...


def never(metric: str, values: Mapping[str, Mapping[int, Sequence[float]]], /) -> str | None:
    """A decision that never stops early: max_rounds or the budget end the metric."""
    return None


def weight(metric: str) -> float:
    """The metric's budget weight, by its id prefix; ValueError naming it when no prefix matches."""
    for prefix, value in WEIGHTS:
        if metric.startswith(prefix):
            return value
    prefixes = ", ".join(p for p, _ in WEIGHTS)
    raise ValueError(f"performance metric {metric!r} has no budget weight (hint: metric ids start with {prefixes})")


def weights_for(metrics: Iterable[str]) -> dict[str, float]:
    """The phase's metrics (the ones the suites will ask turns for) with their weights."""
    return {metric: weight(metric) for metric in metrics}


@dataclass(frozen=True)
class MetricSummary:
    """How one metric was measured: rounds, why it stopped, which runs took part and until when."""

    metric: str
    rounds: int  # complete rounds (warm-up included)
    stopped: str  # "" while it is measured
    runs: tuple[str, ...]  # the rotation at its start
    left: Mapping[str, int] = field(default_factory=dict)  # run -> round it left at ("interleaved until round k")
    seconds: float = 0.0  # conductor-clock time from its start (first request) to its stop

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "rounds": self.rounds,
            "stopped": self.stopped,
            "runs": list(self.runs),
            "left": dict(self.left),
            "seconds": round(self.seconds, 3),
        }


class _Metric:
    """The current metric's rotation (mutable; only under the conductor's lock)."""

    def __init__(self, name: str, members: Sequence[str], share: float, now: float) -> None:
        self.name = name
        self.runs = tuple(members)
        self.members = list(members)  # still in the rotation
        self.share = share
        self.started = now
        self.round = 0
        self.order: list[str] = _rotate(self.members, 0)
        self.pos = 0  # the slot in `order` whose turn it is
        self.holder = 0  # ticket of the go grant awaiting its done (its run is order[pos]); 0: none yet
        self.since = now  # when the current slot began, or was granted
        self.rounds = 0  # complete rounds
        self.values: dict[str, dict[int, list[float]]] = {run: {} for run in members}
        self.left: dict[str, tuple[int, str]] = {}  # run -> (round, reason)
        self.stopped = ""
        self.ended_at = now

    def summary(self, now: float) -> MetricSummary:
        seconds = (self.ended_at if self.stopped else now) - self.started
        left = {run: at for run, (at, _) in self.left.items()}
        return MetricSummary(self.name, self.rounds, self.stopped, self.runs, left, seconds)


def _rotate(runs: Sequence[str], k: int) -> list[str]:
    """Round k's slot order: the rotation's runs rotated by k (b1 b2 c; b2 c b1; c b1 b2; ...)."""
    if not runs:
        return []
    k %= len(runs)
    return [*runs[k:], *runs[:k]]


class Conductor:
    """Validation-wide turns for the performance phase. Thread-safe; the desks call it, it never blocks on them.

    `runs`: the labels of the validation's runs in their canonical order (baseline-1, baseline-2, candidate-1).
    `weights`: the phase's metrics with their budget weights (`weights_for`); a request for another metric
    is refused (`unknown_metric`).
    """

    def __init__(
        self,
        runs: Sequence[str],
        decide: Decide,
        *,
        min_rounds: int = 6,
        max_rounds: int = 200,
        warmup_rounds: int = 1,
        budget: float = 150.0,
        weights: Mapping[str, float],
        barrier_timeout: float = 300.0,
        slot_timeout: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not runs or len(set(runs)) != len(runs):
            raise ValueError(f"conductor: runs must be distinct labels, at least one: {list(runs)}")
        if min_rounds < 1 or max_rounds < 1 or warmup_rounds < 0:
            raise ValueError(
                f"conductor: min_rounds {min_rounds}, max_rounds {max_rounds} must be >= 1, "
                f"warmup_rounds {warmup_rounds} >= 0"
            )
        if budget <= 0 or barrier_timeout < 0 or slot_timeout <= 0:
            raise ValueError(
                f"conductor: budget {budget:g} and slot_timeout {slot_timeout:g} must be > 0, "
                f"barrier_timeout {barrier_timeout:g} >= 0"
            )
        bad = sorted(m for m, w in weights.items() if not w > 0)
        if bad:
            raise ValueError(f"conductor: weights must be > 0: {', '.join(bad)}")
        self.runs = tuple(runs)
        self.decide = decide
        self.min_rounds = min_rounds
        self.max_rounds = max_rounds
        self.warmup_rounds = warmup_rounds
        self.barrier_timeout = barrier_timeout
        self.slot_timeout = slot_timeout
        self.clock = clock
        total = sum(weights.values())
        self.shares = {metric: budget * w / total for metric, w in weights.items()}  # seconds per metric
        self._lock = threading.Lock()
        self._state = dict.fromkeys(self.runs, "expected")  # -> "in" | "ended" | "left_out"
        self._pending: dict[str, dict[int, tuple[int, TurnRequest]]] = {run: {} for run in self.runs}
        self._arrivals = 0  # orders requests across runs: the first one asked chooses the next metric
        self._first_ask: float | None = None
        self._opened = False
        self._closed = False
        self._current: _Metric | None = None
        self._finished: dict[str, _Metric] = {}
        self._mail: dict[str, list[RoundLine]] = {run: [] for run in self.runs}
        self._wake = {run: threading.Event() for run in self.runs}  # set when a run has mail: its desk looks at once
        self._seq = 0

    @property
    def interleaved(self) -> bool:
        """Whether runs take turns ("interleaved" in the manifest), or one run measures alone ("alone")."""
        return len(self.runs) > 1

    def check(self, run: str) -> None:
        """ValueError unless `run` is one of the conductor's runs (a desk is created for a known run only)."""
        if run not in self._state:
            raise ValueError(f"conductor: no run {run!r}; its runs are {', '.join(self.runs)}")

    def wakeup(self, run: str) -> threading.Event:
        """Set whenever `run` has something to collect; its desk waits on it between looks (and clears it)."""
        self.check(run)
        return self._wake[run]

    # What the desks tell it.
    def asked(self, run: str, ticket: int, request: TurnRequest) -> None:
        """Run `run`'s suites wrote request `ticket`."""
        self.check(run)
        with self._lock:
            now = self.clock()
            state = self._state[run]
            if self._closed or state in ("ended", "left_out"):
                self._refuse(run, ticket, request.metric, "closed" if self._closed else state)
                return
            if state == "expected":
                self._state[run] = "in"
                if self._first_ask is None:
                    self._first_ask = now
            self._arrivals += 1
            self._pending[run][ticket] = (self._arrivals, request)
            self._advance(now)

    def done(self, run: str, ticket: int, ops: int, associations: int, samples: Sequence[Sample] = ()) -> None:
        """Run `run`'s block of `ticket` is over; `samples`: the samples.jsonl lines its desk read since the last."""
        self.check(run)
        with self._lock:
            now = self.clock()
            self._record(run, samples)
            metric = self._current
            if ticket in self._pending[run]:  # the suites gave up waiting (abandoned): the request is void
                _, request = self._pending[run].pop(ticket)
                self._post(run, "done", metric=request.metric, ticket=ticket, reason="abandoned")
            elif metric is not None and metric.holder == ticket and metric.order[metric.pos] == run:
                self._post(
                    run,
                    "done",
                    metric=metric.name,
                    ticket=ticket,
                    round=metric.round,
                    slot=metric.pos,
                    ops=ops,
                    associations=associations,
                )
                metric.holder, metric.pos, metric.since = 0, metric.pos + 1, now
            else:  # after its run left the metric (slot_timeout): kept in the record, changes nothing
                self._post(run, "done", ticket=ticket, ops=ops, associations=associations, reason="late")
            self._advance(now)

    def ended(self, run: str) -> None:
        """Run `run` is over (its desk stopped, or it ended before its suites started): it leaves. Idempotent."""
        self.check(run)
        with self._lock:
            now = self.clock()
            if self._state[run] == "ended":
                return
            self._state[run] = "ended"
            for ticket, (_, request) in sorted(self._pending[run].items()):
                self._refuse(run, ticket, request.metric, "ended")
            self._pending[run].clear()
            if self._current is not None and run in self._current.members:
                self._leave(self._current, run, "ended", now)
            self._advance(now)

    def refuse(self, run: str, ticket: int, reason: str, detail: str = "") -> None:
        """Answer `ticket` with a stop at once (a request the desk could not read: "invalid"), `detail` in the record."""
        self.check(run)
        with self._lock:
            if detail:
                self._post(run, "error", ticket=ticket, reason=detail)
            self._refuse(run, ticket, "", reason)

    def note(self, run: str, detail: str) -> None:
        """A problem the desk met (a bad samples line), kept in the run's rounds.jsonl."""
        self.check(run)
        with self._lock:
            self._post(run, "error", reason=detail)

    def close(self) -> None:
        """The phase is over: every waiting request and every later one gets a stop ("closed")."""
        with self._lock:
            now = self.clock()
            if self._closed:
                return
            self._closed = True
            if self._current is not None:
                self._finish(self._current, "closed", now)
            for run in self.runs:
                for ticket, (_, request) in sorted(self._pending[run].items()):
                    self._refuse(run, ticket, request.metric, "closed")
                self._pending[run].clear()

    def collect(self, run: str) -> list[RoundLine]:
        """What to write for `run` now: its grants (as lines carrying them) and its rounds.jsonl lines, in order."""
        self.check(run)
        with self._lock:
            self._advance(self.clock())
            mail, self._mail[run] = self._mail[run], []
            return mail

    def summary(self) -> tuple[MetricSummary, ...]:
        """Every metric so far, in the order measured (for the manifest and the report)."""
        with self._lock:
            now = self.clock()
            metrics = [*self._finished.values(), *([self._current] if self._current else [])]
            return tuple(m.summary(now) for m in metrics)

    def left_out(self) -> tuple[str, ...]:
        """The runs the barrier left out (they reached the phase too late, or never)."""
        with self._lock:
            return tuple(run for run in self.runs if self._state[run] == "left_out")

    # The state machine (under the lock).
    def _post(self, to: str | None, event: str, **fields: Any) -> None:
        """One line into `to`'s mail, or into every run's (None): one validation-wide sequence number."""
        self._seq += 1
        about = fields.pop("run", None)
        for run in self.runs if to is None else (to,):
            self._mail[run].append(RoundLine(self._seq, event, about or run, **fields))
            self._wake[run].set()

    def _refuse(self, run: str, ticket: int, metric: str, reason: str) -> None:
        self._post(run, "stop", metric=metric, ticket=ticket, reason=reason)

    def _record(self, run: str, samples: Sequence[Sample]) -> None:
        for sample in samples:
            metric = self._finished.get(sample.metric) or self._current
            if metric is not None and metric.name == sample.metric and run in metric.values:
                metric.values[run].setdefault(sample.round, []).extend(sample.values)

    def _advance(self, now: float) -> None:
        while self._step(now):
            pass

    def _step(self, now: float) -> bool:
        """One transition; True when something changed (so the caller looks again)."""
        if self._closed:
            return False
        if not self._opened:
            return self._open_barrier(now)
        if self._answer_what_cannot_wait():
            return True
        metric = self._current
        if metric is None:
            return self._start_next(now)
        if not metric.members:
            self._finish(metric, "ended", now)
            return True
        if metric.pos >= len(metric.order):
            return self._end_round(metric, now)
        run = metric.order[metric.pos]
        if run not in metric.members:  # left during this round
            metric.pos, metric.since = metric.pos + 1, now
            return True
        if metric.holder:
            if now - metric.since > self.slot_timeout:
                self._leave(metric, run, "slot_timeout", now)
                return True
            return False
        asked = sorted(
            (arrival, ticket) for ticket, (arrival, r) in self._pending[run].items() if r.metric == metric.name
        )
        if asked:
            ticket = asked[0][1]
            del self._pending[run][ticket]
            metric.holder, metric.since = ticket, now
            self._post(
                run,
                GO,
                metric=metric.name,
                ticket=ticket,
                round=metric.round,
                slot=metric.pos,
                order=tuple(metric.order),
            )
            return True
        if self._pending[run]:  # it asks for another metric: it is done with this one
            self._leave(metric, run, "moved_on", now)
            return True
        if now - metric.since > self.slot_timeout:
            self._leave(metric, run, "slot_timeout", now)
            return True
        return False

    def _open_barrier(self, now: float) -> bool:
        if self._first_ask is None:
            return False
        silent = [run for run in self.runs if self._state[run] == "expected"]
        if silent and now - self._first_ask < self.barrier_timeout:
            return False
        for run in silent:
            self._state[run] = "left_out"
            self._post(None, "left", run=run, reason="left_out")
        self._opened = True
        return True

    def _answer_what_cannot_wait(self) -> bool:
        """Refuse requests for a finished or unknown metric, or for the current one by a run that left it."""
        answered = False
        current = self._current
        for run in self.runs:
            for ticket, (_, request) in sorted(self._pending[run].items()):
                reason = ""
                if request.metric not in self.shares:
                    reason = "unknown_metric"
                elif request.metric in self._finished:
                    reason = self._finished[request.metric].stopped
                elif current is not None and request.metric == current.name and run in current.left:
                    reason = current.left[run][1]
                if reason:
                    del self._pending[run][ticket]
                    self._refuse(run, ticket, request.metric, reason)
                    answered = True
        return answered

    def _start_next(self, now: float) -> bool:
        waiting = sorted(
            (arrival, request.metric) for run in self.runs for arrival, request in self._pending[run].values()
        )
        if not waiting:
            return False
        name = waiting[0][1]
        members = [run for run in self.runs if self._state[run] == "in"]
        self._current = _Metric(name, members, self.shares[name], now)
        return True

    def _end_round(self, metric: _Metric, now: float) -> bool:
        metric.rounds += 1
        reason = self._stop_reason(metric, now)
        if reason:
            self._finish(metric, reason, now)
        else:
            metric.round += 1
            metric.order, metric.pos, metric.since = _rotate(metric.members, metric.round), 0, now
        return True

    def _stop_reason(self, metric: _Metric, now: float) -> str:
        # Nothing but max_rounds stops a metric before it has min_rounds kept rounds (design 0: "at least
        # min_rounds"), so the budget is a target a slow device may overrun by its shortest useful evidence.
        if metric.rounds < self.warmup_rounds + self.min_rounds:
            return "max_rounds" if metric.rounds >= self.max_rounds else ""
        kept = {
            run: {k: tuple(v) for k, v in sorted(rounds.items()) if self.warmup_rounds <= k < metric.rounds}
            for run, rounds in metric.values.items()
        }
        try:
            reason = self.decide(metric.name, kept)
        except Exception as exc:  # noqa: BLE001 - the statistics' fault must not hang the runs: the metric stops
            self._post(None, "error", metric=metric.name, reason=f"the decision raised {type(exc).__name__}: {exc}")
            return "error"
        if reason:
            return str(reason)
        if metric.rounds >= self.max_rounds:
            return "max_rounds"
        if now - metric.started >= metric.share:
            return "budget"
        return ""

    def _leave(self, metric: _Metric, run: str, reason: str, now: float) -> None:
        metric.members.remove(run)
        metric.left[run] = (metric.round, reason)
        if metric.pos < len(metric.order) and metric.order[metric.pos] == run:
            metric.holder, metric.pos, metric.since = 0, metric.pos + 1, now
        self._post(None, "left", run=run, metric=metric.name, round=metric.round, reason=reason)

    def _finish(self, metric: _Metric, reason: str, now: float) -> None:
        metric.stopped, metric.ended_at = reason, now
        self._finished[metric.name] = metric
        self._current = None
        self._post(None, "finished", metric=metric.name, reason=reason, rounds=metric.rounds)
        for run in self.runs:
            for ticket, (_, request) in sorted(self._pending[run].items()):
                if request.metric == metric.name:
                    del self._pending[run][ticket]
                    self._refuse(run, ticket, metric.name, reason)


class SoloConductor(Conductor):
    """One run measuring alone (`patchgate run`, or each run of a sequential validation): no barrier, no turns.

    Without `decide`, a metric stops at `max_rounds` or its share of the budget.
    """

    def __init__(
        self,
        run: str,
        decide: Decide = never,
        *,
        min_rounds: int = 6,
        max_rounds: int = 200,
        warmup_rounds: int = 1,
        budget: float = 150.0,
        weights: Mapping[str, float],
        slot_timeout: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            (run,),
            decide,
            min_rounds=min_rounds,
            max_rounds=max_rounds,
            warmup_rounds=warmup_rounds,
            budget=budget,
            weights=weights,
            barrier_timeout=0.0,
            slot_timeout=slot_timeout,
            clock=clock,
        )
