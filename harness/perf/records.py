"""The turn channel's records: request, grant, done, a samples.jsonl line and a rounds.jsonl line; JSON in and out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "GO", "STOP_REASONS", "Done", "Grant", "RoundLine", "Sample", "TurnRequest", "stopped"]

# Why a turn is refused; a grant carries one of these (the injected decision may name its own, e.g. "decided").
STOP_REASONS = (
    "decided",  # the stopping rule decided the metric (section 5.5)
    "budget",  # the metric's share of performance.budget is spent
    "max_rounds",  # performance.max_rounds rounds done
    "ended",  # this run is ending (its desk stopped), or no run is left in the metric's rotation
    "closed",  # the conductor closed: the phase is over for every run
    "left_out",  # this run reached the phase after the barrier opened without it (barrier_timeout)
    "slot_timeout",  # this run held, or did not take, its slot for longer than slot_timeout: it left the metric
    "moved_on",  # this run asked for another metric when its slot came: it left this one
    "unknown_metric",  # the metric is not one of the phase's (the conductor's weights)
    "invalid",  # the request could not be read
    "error",  # the decision raised (the harness's fault; said in rounds.jsonl)
    "no_answer",  # the suites' end: no grant within its timeout
)
GO = "go"  # RoundLine.event of a grant to measure


def _int(d: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key!r}: an integer was expected, not {value!r}")
    return value


def _str(d: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key!r}: a string was expected, not {value!r}")
    return value


def _object(d: object, what: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ValueError(f"{what}: a JSON object was expected, not {type(d).__name__}")
    return d


@dataclass(frozen=True)
class TurnRequest:
    """suites -> harness, `turns/NNNN.request.json`: may this run measure `metric` now (its `round`-th block)?"""

    metric: str
    round: int = 0  # go grants this suites process had for the metric so far (informative: the conductor counts)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "round": self.round}

    @classmethod
    def from_json(cls, d: object) -> TurnRequest:
        d = _object(d, "turn request")
        metric = _str(d, "metric")
        if not metric:
            raise ValueError("'metric': empty")
        return cls(metric, _int(d, "round", 0))


@dataclass(frozen=True)
class Grant:
    """harness -> suites, `turns/NNNN.grant.json`: `{"go": true, "round": k, "slot": s}` or `{"stop": reason}`."""

    go: bool
    round: int = -1  # 0-based; rounds below performance.warmup_rounds are warm-up
    slot: int = -1  # 0-based position in the round's order
    stop: str = ""  # why not, when go is false

    @classmethod
    def measure(cls, round: int, slot: int) -> Grant:
        return cls(True, round, slot)

    @classmethod
    def refuse(cls, reason: str) -> Grant:
        if not reason:
            raise ValueError("a stop grant needs a reason")
        return cls(False, stop=reason)

    def to_json(self) -> dict[str, Any]:
        if self.go:
            return {"go": True, "round": self.round, "slot": self.slot}
        return {"stop": self.stop}

    @classmethod
    def from_json(cls, d: object) -> Grant:
        d = _object(d, "grant")
        if d.get("go") is True:
            return cls.measure(_int(d, "round"), _int(d, "slot"))
        if "stop" in d:
            return cls.refuse(_str(d, "stop"))
        raise ValueError('a grant holds "go": true with "round" and "slot", or "stop"')


@dataclass(frozen=True)
class Done:
    """suites -> harness, `turns/NNNN.done.json`: the granted block is over (or, `abandoned`, the request withdrawn)."""

    ops: int
    associations: int
    abandoned: bool = False  # the suites stopped waiting for a grant (no_answer): the request is void

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ops": self.ops, "associations": self.associations}
        if self.abandoned:
            out["abandoned"] = True
        return out

    @classmethod
    def from_json(cls, d: object) -> Done:
        d = _object(d, "done")
        ops, associations = _int(d, "ops"), _int(d, "associations")
        if ops < 0 or associations < 0:
            raise ValueError(f"'ops' and 'associations' cannot be negative ({ops}, {associations})")
        return cls(ops, associations, d.get("abandoned") is True)


@dataclass(frozen=True)
class Sample:
    """One `perf/samples.jsonl` line: one block's values (seconds per unit, in the order measured), section 4."""

    metric: str
    round: int
    slot: int
    values: tuple[float, ...]
    started_ns: int = 0
    ops: int = 0
    failed: int = 0
    bytes: int = 0
    images: int = 0
    associations: int = 1
    statuses: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "round": self.round,
            "slot": self.slot,
            "started_ns": self.started_ns,
            "ops": self.ops,
            "values": list(self.values),
            "bytes": self.bytes,
            "images": self.images,
            "failed": self.failed,
            "associations": self.associations,
            "statuses": dict(self.statuses),
        }

    @classmethod
    def from_json(cls, d: object) -> Sample:
        d = _object(d, "sample")
        values = d.get("values")
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise ValueError(f"'values': a list of numbers was expected, not {values!r}")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise ValueError("'values': every value must be a number (seconds)")
        statuses = d.get("statuses", {})
        if not isinstance(statuses, Mapping):
            raise ValueError(f"'statuses': an object was expected, not {statuses!r}")
        return cls(
            metric=_str(d, "metric"),
            round=_int(d, "round"),
            slot=_int(d, "slot", -1),
            values=tuple(float(v) for v in values),
            started_ns=_int(d, "started_ns", 0),
            ops=_int(d, "ops", len(values)),
            failed=_int(d, "failed", 0),
            bytes=_int(d, "bytes", 0),
            images=_int(d, "images", 0),
            associations=_int(d, "associations", 1),
            statuses={str(k): int(v) for k, v in statuses.items()},
        )


# RoundLine.event values: a grant to measure, a refusal, a block done, a run leaving a metric's rotation,
# a metric finished (with its reason and rounds), and a problem the desk met (a bad file).
EVENTS = (GO, "stop", "done", "left", "finished", "error")


@dataclass(frozen=True)
class RoundLine:
    """One `perf/rounds.jsonl` line: the interleaving as it happened, in the conductor's validation-wide `seq` order."""

    seq: int  # one counter for every run of the validation: merging the runs' files by seq replays the phase
    event: str  # one of EVENTS
    run: str  # the run the event is about (for "left": the run that left)
    metric: str = ""
    ticket: int = 0  # NNNN of the turn files, 0 when none
    round: int = -1
    slot: int = -1
    order: tuple[str, ...] = ()  # "go": the round's slot order (runs in rotation)
    ops: int = 0
    associations: int = 0
    reason: str = ""  # "stop", "left", "finished": why; "error": what
    rounds: int = 0  # "finished": complete rounds
    t_ns: int = 0  # time.time_ns() when the desk wrote it

    def grant(self) -> Grant | None:
        """The grant this line answers its ticket with, if it is one."""
        if self.event == GO:
            return Grant.measure(self.round, self.slot)
        if self.event == "stop" and self.ticket:
            return Grant.refuse(self.reason)
        return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "event": self.event, "run": self.run}
        if self.round >= 0:  # round and slot 0 are real; -1 means none
            out["round"] = self.round
        if self.slot >= 0:
            out["slot"] = self.slot
        optional = {
            "metric": self.metric,
            "ticket": self.ticket,
            "order": list(self.order),
            "ops": self.ops,
            "associations": self.associations,
            "reason": self.reason,
            "rounds": self.rounds,
            "t_ns": self.t_ns,
        }
        out.update((key, value) for key, value in optional.items() if value)  # a short line: empty fields left out
        return out

    @classmethod
    def from_json(cls, d: object) -> RoundLine:
        d = _object(d, "rounds line")
        event = _str(d, "event")
        if event not in EVENTS:
            raise ValueError(f"'event': {event!r} is not one of {', '.join(EVENTS)}")
        order = d.get("order", [])
        if not isinstance(order, list) or not all(isinstance(r, str) for r in order):
            raise ValueError(f"'order': a list of run labels was expected, not {order!r}")
        return cls(
            seq=_int(d, "seq"),
            event=event,
            run=_str(d, "run"),
            metric=_str(d, "metric", ""),
            ticket=_int(d, "ticket", 0),
            round=_int(d, "round", -1),
            slot=_int(d, "slot", -1),
            order=tuple(order),
            ops=_int(d, "ops", 0),
            associations=_int(d, "associations", 0),
            reason=_str(d, "reason", ""),
            rounds=_int(d, "rounds", 0),
            t_ns=_int(d, "t_ns", 0),
        )


def stopped(lines: Iterable[RoundLine]) -> dict[str, str]:
    """Metric -> why its sampling stopped, from a run's rounds.jsonl (every run's file has every "finished" line).

    What `MetricComparison.stopped` reports; a metric cut by the run's end has no "finished" line in its file.
    """
    return {line.metric: line.reason for line in lines if line.event == "finished"}
