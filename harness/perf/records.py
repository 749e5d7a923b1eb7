"""The performance phase's records: turns, samples, rounds and device resources (resources.jsonl); JSON in and out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import RunDirError
from harness.model import JSON

__all__ = [
    "COARSE_NS",
    "CPU",
    "EVENTS",
    "GO",
    "MARKS",
    "PEAK",
    "ROUND_SPAN",
    "STEADY",
    "STOP_REASONS",
    "BlockId",
    "BlockResources",
    "Done",
    "Grant",
    "Incarnation",
    "ResourceLine",
    "ResourceSample",
    "RoundLine",
    "RunResources",
    "Sample",
    "TurnRequest",
    "block_resources",
    "metric_keys",
    "parse_resources",
    "parse_rounds",
    "read_resources",
    "stopped",
]

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


# --- device resources (design 4, 5.3, 6): the probes' samples and perf/resources.jsonl ---


def _field(d: Mapping[str, JSON], key: str, where: str, kind: type, optional: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    # bool is an int in Python: refuse it where a number is wanted, and a number where a flag is.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RunDirError(
            f"{where}: key {key!r} is {value!r}, expected {'null or ' if optional else ''}{kind.__name__}",
            hint="the file was not written by this patchgate; rerun the validation",
        )
    return value


@dataclass(frozen=True)
class ResourceSample:
    """The device's resources at one instant; counters (cpu_ns) only mean something as differences."""

    t_ns: int  # time.time_ns() when read: comparable across the processes and containers of a run
    rss: int  # bytes of anonymous resident memory (page cache and mapped files excluded)
    cache: int | None  # page cache bytes charged to a container; None where unmeasured (a local process)
    cpu_ns: int  # CPU time used so far by its processes, exited threads included
    pids: int  # live processes

    def to_json(self) -> dict[str, JSON]:
        return {"t_ns": self.t_ns, "rss": self.rss, "cache": self.cache, "cpu_ns": self.cpu_ns, "pids": self.pids}

    @classmethod
    def from_json(cls, d: Mapping[str, JSON], where: str = "resource sample") -> ResourceSample:
        return cls(
            t_ns=_field(d, "t_ns", where, int),
            rss=_field(d, "rss", where, int),
            cache=_field(d, "cache", where, int, optional=True),
            cpu_ns=_field(d, "cpu_ns", where, int),
            pids=_field(d, "pids", where, int),
        )


@dataclass(frozen=True)
class Incarnation:
    """Who the device is right now (design 8.6): compare two with `change` to see whether it exited or restarted."""

    running: bool
    exit_code: int | None  # once exited: a process's exit status, a container's ExitCode
    signal: int | None  # the signal that ended it (a negative Popen returncode; a container's ExitCode - 128)
    oom_killed: bool  # containers only: the engine's State.OOMKilled
    restart_count: int  # containers only: restarts by the engine's restart policy
    started: str  # a container's StartedAt, or the group leader's start time in clock ticks after boot
    processes: frozenset[tuple[int, int]]  # (pid, start time in clock ticks) of its live processes
    taken: int = 0  # clock ticks after boot when read (the processes' clock); 0 where unknown
    # Those of `processes` that are forks of a living process of the same name among them: a forking server's
    # workers (dcmqrscp's child per association), which end with their association however long it lasted.
    workers: frozenset[tuple[int, int]] = frozenset()

    def to_json(self) -> dict[str, JSON]:
        return {
            "running": self.running,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "oom_killed": self.oom_killed,
            "restart_count": self.restart_count,
            "started": self.started,
            "processes": [list(p) for p in sorted(self.processes)],
            "taken": self.taken,
            "workers": [list(p) for p in sorted(self.workers)],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON], where: str = "incarnation") -> Incarnation:
        processes = _field(d, "processes", where, list)
        workers = _field(d, "workers", where, list, optional=True) or []
        for key, pairs in (("processes", processes), ("workers", workers)):
            if not all(isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) for p in pairs):
                raise RunDirError(
                    f"{where}: key {key!r} must be a list of [pid, start] integer pairs",
                    hint="the file was not written by this patchgate; rerun the validation",
                )
        return cls(
            running=_field(d, "running", where, bool),
            exit_code=_field(d, "exit_code", where, int, optional=True),
            signal=_field(d, "signal", where, int, optional=True),
            oom_killed=_field(d, "oom_killed", where, bool),
            restart_count=_field(d, "restart_count", where, int),
            started=_field(d, "started", where, str),
            processes=frozenset((p[0], p[1]) for p in processes),
            taken=_field(d, "taken", where, int),
            workers=frozenset((p[0], p[1]) for p in workers),
        )


MARKS = (
    "",
    "grant",
    "rest",
)  # a resources.jsonl line: periodic; a block's first, at its grant; the device at rest after one
COARSE_NS = 100_000_000  # device CPU under this per block is too coarse to judge: /proc counts 10 ms ticks (design 6)
ROUND_SPAN = 10_000  # BlockResources.key = the metric's position in the phase x ROUND_SPAN + round
STEADY, PEAK = "memory.steady", "memory.peak"  # the per-block memory metrics (design 5.3)
CPU = "cpu.per_operation"  # the device's CPU per operation, one value per round (RunResources.cpu_per_round)
BlockId = tuple[str, int]  # (metric, round): one block of one run
_T = TypeVar("_T")
_RESOURCES_HINT = (
    'a perf/resources.jsonl line is one JSON object: {"t_ns": ..., "source": "proc", "rss": ..., "cache": null, '
    '"cpu_ns": ..., "pids": 1, "in_block": {"metric": "find.study", "round": 3} or null, "mark": ""} '
    "(the run directory was edited or corrupted; rerun that variant)"
)
_ROUNDS_HINT = "the run directory was edited or corrupted; rerun that variant"


def _block_id(d: Mapping[str, JSON], key: str, where: str) -> BlockId | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RunDirError(f"{where}: key {key!r} is {value!r}, expected null or an object", hint=_RESOURCES_HINT)
    return _field(value, "metric", f"{where}: {key}", str), _field(value, "round", f"{where}: {key}", int)


def _block_json(block: BlockId | None) -> dict[str, JSON] | None:
    return None if block is None else {"metric": block[0], "round": block[1]}


@dataclass(frozen=True)
class ResourceLine:
    """One `perf/resources.jsonl` line (design 4): a sample, its probe, and where in this run's phase it was read."""

    sample: ResourceSample
    source: str  # the probe's: "proc" | "cgroup-v1" | "engine"
    in_block: BlockId | None = None  # read while this block of the run was granted (its grant sample too)
    mark: str = ""  # one of MARKS
    after: BlockId | None = None  # a "rest" line: the block it follows

    def to_json(self) -> dict[str, JSON]:
        out = {
            **self.sample.to_json(),
            "source": self.source,
            "in_block": _block_json(self.in_block),
            "mark": self.mark,
        }
        if self.after is not None:
            out["after"] = _block_json(self.after)
        return out

    @classmethod
    def from_json(cls, d: object, where: str = "resources line") -> ResourceLine:
        if not isinstance(d, Mapping):
            raise RunDirError(f"{where}: expected a JSON object, got {type(d).__name__}", hint=_RESOURCES_HINT)
        mark = _field(d, "mark", where, str, optional=True) or ""
        if mark not in MARKS:
            raise RunDirError(f"{where}: key 'mark' is {mark!r}, expected one of {MARKS}", hint=_RESOURCES_HINT)
        return cls(
            sample=ResourceSample.from_json(d, where),
            source=_field(d, "source", where, str),
            in_block=_block_id(d, "in_block", where),
            mark=mark,
            after=_block_id(d, "after", where),
        )


@dataclass(frozen=True)
class BlockResources:
    """The device's resources over one block of a run (design 5.3): one value per block for each resource metric."""

    metric: str
    round: int
    key: int  # pairing key: block (metric, round) has the same key in every run of a validation (metric_keys)
    ops: int  # operations, from the block's done line
    associations: int  # cumulative: associations of this run's blocks up to and including this one (done lines)
    steady: int | None = None  # memory.steady: rss at rest after it; None without a rest sample (the run ended)
    peak: int | None = None  # memory.peak: the largest rss read inside it, its grant sample included
    inside: int = 0  # samples read inside it: peak's evidence (1 for an engine probe, read at boundaries only)
    cpu_ns: int | None = None  # device CPU from its grant sample to its rest sample, clipped at 0; None: one missing
    reset: bool = False  # the CPU counter went backwards in between (the device restarted): cpu_ns is 0

    @property
    def cpu_per_op(self) -> float | None:
        """Seconds of device CPU per operation; None without a CPU delta or operations."""
        return self.cpu_ns / 1e9 / self.ops if self.cpu_ns is not None and self.ops > 0 else None

    @property
    def coarse(self) -> bool:
        """Too coarse to judge (design 6): under COARSE_NS of device CPU, or none measured."""
        return self.cpu_ns is None or self.cpu_ns < COARSE_NS

    def to_json(self) -> dict[str, JSON]:
        return {
            "metric": self.metric,
            "round": self.round,
            "key": self.key,
            "ops": self.ops,
            "associations": self.associations,
            "steady": self.steady,
            "peak": self.peak,
            "inside": self.inside,
            "cpu_ns": self.cpu_ns,
            "reset": self.reset,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, JSON], where: str = "block resources") -> BlockResources:
        return cls(
            metric=_field(d, "metric", where, str),
            round=_field(d, "round", where, int),
            key=_field(d, "key", where, int),
            ops=_field(d, "ops", where, int),
            associations=_field(d, "associations", where, int),
            steady=_field(d, "steady", where, int, optional=True),
            peak=_field(d, "peak", where, int, optional=True),
            inside=_field(d, "inside", where, int),
            cpu_ns=_field(d, "cpu_ns", where, int, optional=True),
            reset=_field(d, "reset", where, bool),
        )


@dataclass(frozen=True)
class RunResources:
    """One run's per-block resources, in the order its blocks were done; what compare reads for the resource metrics."""

    source: str  # the probe's ("" when the run has no resources.jsonl): the report says it next to the numbers
    blocks: tuple[BlockResources, ...] = ()

    def kept(self, warmup_rounds: int = 1) -> tuple[BlockResources, ...]:
        """The blocks of kept rounds (warm-up rounds left out, as for the samples)."""
        return tuple(b for b in self.blocks if b.round >= warmup_rounds)

    def values(self, warmup_rounds: int = 1) -> dict[str, dict[int, tuple[float, ...]]]:
        """memory.steady and memory.peak as compare takes samples: metric -> pairing key -> (bytes,)."""
        out: dict[str, dict[int, tuple[float, ...]]] = {}
        for block in self.kept(warmup_rounds):
            for metric, value in ((STEADY, block.steady), (PEAK, block.peak)):
                if value is not None:
                    out.setdefault(metric, {})[block.key] = (float(value),)
        if cpu := self.cpu_per_round(warmup_rounds):
            out[CPU] = {r: (v,) for r, v in cpu.items()}
        return out

    def cpu_per_round(self, warmup_rounds: int = 1) -> dict[int, float]:
        """cpu.per_operation: round -> the device's CPU seconds over the round's blocks / their operations.

        Per round rather than per block: one block of C-FINDs costs the device a few 10 ms ticks, a round
        of every metric's blocks enough to judge (design 6). A round is left out when any of its blocks
        has no CPU delta or saw the counter reset (a restart), or when it totals under COARSE_NS, so each
        kept round holds the same blocks in every run (a metric stops in all runs at once).
        """
        rounds: dict[int, list[BlockResources]] = {}
        for block in self.kept(warmup_rounds):
            rounds.setdefault(block.round, []).append(block)
        out: dict[int, float] = {}
        for number, blocks in rounds.items():
            if any(b.cpu_ns is None or b.reset for b in blocks):
                continue
            cpu = sum(b.cpu_ns or 0 for b in blocks)
            ops = sum(b.ops for b in blocks)
            if cpu >= COARSE_NS and ops > 0:
                out[number] = cpu / 1e9 / ops
        return out

    def growth(self, warmup_rounds: int = 1) -> dict[int, tuple[tuple[float, float], ...]]:
        """memory.growth's points: pairing key -> ((cumulative associations, rss at rest),), for a least-squares slope."""
        return {
            b.key: ((float(b.associations), float(b.steady)),) for b in self.kept(warmup_rounds) if b.steady is not None
        }

    def to_json(self) -> dict[str, JSON]:
        return {"source": self.source, "blocks": [b.to_json() for b in self.blocks]}

    @classmethod
    def from_json(cls, d: Mapping[str, JSON], where: str = "run resources") -> RunResources:
        blocks = _field(d, "blocks", where, list)
        if not all(isinstance(b, Mapping) for b in blocks):
            raise RunDirError(f"{where}: key 'blocks' must be a list of objects", hint=_ROUNDS_HINT)
        return cls(
            _field(d, "source", where, str),
            tuple(BlockResources.from_json(b, f"{where}: block {i}") for i, b in enumerate(blocks)),
        )


def metric_keys(rounds: Iterable[RoundLine]) -> dict[str, int]:
    """Each metric's position in the phase, from a run's rounds.jsonl.

    Every run's file holds the validation-wide "finished" and "left" lines besides its own grants, so a metric
    gets the same position in every run, also in one that skipped it or ended inside it.
    """
    order: dict[str, int] = {}
    for line in rounds:
        if line.metric and line.event in (GO, "finished", "left"):
            order.setdefault(line.metric, len(order))
    return order


def block_resources(resources: Iterable[ResourceLine], rounds: Iterable[RoundLine]) -> RunResources:
    """Per-block resource values of one run from its resources.jsonl and rounds.jsonl lines (design 5.3). Pure.

    A block is a "go" line of the run and the "done" line with its ticket (a "late" done too: the device did the
    work); one granted and never done (the run ended inside it) has no operations and is left out. Its rest sample
    is the "rest" line naming it (`after`); its inside samples are the lines naming it in `in_block`.
    """
    rounds = list(rounds)
    keys = metric_keys(rounds)
    granted: dict[int, BlockId] = {}  # ticket -> block
    done: list[tuple[BlockId, int, int]] = []  # (block, ops, cumulative associations), in done order
    total = 0
    for line in rounds:
        if line.event == GO:
            granted[line.ticket] = (line.metric, line.round)
        elif line.event == "done" and line.ticket in granted:
            total += line.associations
            done.append((granted.pop(line.ticket), line.ops, total))
    grant: dict[BlockId, ResourceSample] = {}
    rest: dict[BlockId, ResourceSample] = {}
    inside: dict[BlockId, list[int]] = {}
    source = ""
    for rline in resources:
        source = source or rline.source
        if rline.in_block is not None:
            inside.setdefault(rline.in_block, []).append(rline.sample.rss)
            if rline.mark == "grant":
                grant.setdefault(rline.in_block, rline.sample)
        if rline.mark == "rest" and rline.after is not None:
            rest.setdefault(rline.after, rline.sample)
    blocks = []
    for block, ops, associations in done:
        metric, round_ = block
        if round_ >= ROUND_SPAN:
            raise RunDirError(f"rounds.jsonl: {metric} round {round_} is beyond {ROUND_SPAN - 1}", hint=_ROUNDS_HINT)
        before, after, rss = grant.get(block), rest.get(block), inside.get(block, [])
        cpu = None if before is None or after is None else after.cpu_ns - before.cpu_ns
        blocks.append(
            BlockResources(
                metric=metric,
                round=round_,
                key=keys[metric] * ROUND_SPAN + round_,
                ops=ops,
                associations=associations,
                steady=after.rss if after is not None else None,
                peak=max(rss) if rss else None,
                inside=len(rss),
                cpu_ns=None if cpu is None else max(cpu, 0),
                reset=cpu is not None and cpu < 0,
            )
        )
    return RunResources(source, tuple(blocks))


def _jsonl(data: bytes, source: str, parse: Callable[[object, str], _T], hint: str) -> list[_T]:
    """A .jsonl file's lines parsed; a last line without its newline is a write cut short and left out."""
    out = []
    whole = data.rpartition(b"\n")[0]
    for number, raw in enumerate(whole.split(b"\n") if whole else (), start=1):
        if not raw.strip():
            continue
        where = f"{source}:{number}"
        try:
            out.append(parse(json.loads(raw.decode("utf-8")), where))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a RoundLine's own checks
            raise RunDirError(f"{where}: {exc}", hint=hint) from None
    return out


def parse_resources(data: bytes, source: str) -> list[ResourceLine]:
    """resources.jsonl's lines; a bad one is a RunDirError naming `source`:LINE and the key."""
    return _jsonl(data, source, ResourceLine.from_json, _RESOURCES_HINT)


def parse_rounds(data: bytes, source: str) -> list[RoundLine]:
    """rounds.jsonl's lines; a bad one is a RunDirError naming `source`:LINE and the key."""
    return _jsonl(data, source, lambda d, where: RoundLine.from_json(d), _ROUNDS_HINT)


def read_resources(resources: Path, rounds: Path) -> RunResources:
    """block_resources of a run directory's perf/resources.jsonl and perf/rounds.jsonl (a missing file: no lines)."""

    def read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise RunDirError(f"{path}: cannot read: {exc.strerror or exc}", hint="rerun that variant") from None

    return block_resources(parse_resources(read(resources), str(resources)), parse_rounds(read(rounds), str(rounds)))
