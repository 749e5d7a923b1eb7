"""The conductor takes runs through interleaved rounds; the desk and the suites' client carry turns over real files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.perf.client import Turn, Turns
from harness.perf.conductor import Conductor, SoloConductor, never, weight, weights_for
from harness.perf.desk import Desk
from harness.perf.records import GO, Done, Grant, RoundLine, Sample, TurnRequest, stopped
from harness.rundir import RunDir

RUNS = ("baseline-1", "baseline-2", "candidate-1")
Values = Mapping[str, Mapping[int, Sequence[float]]]


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _conductor(clock: FakeClock, **kw: object) -> Conductor:
    options: dict[str, object] = {
        "min_rounds": 3,
        "max_rounds": 100,
        "warmup_rounds": 1,
        "budget": 1e6,
        "weights": {"find.study": 1.0, "echo.latency": 1.0},
        "barrier_timeout": 300.0,
        "slot_timeout": 60.0,
        "clock": clock,
    }
    options.update(kw)
    decide = options.pop("decide", never)
    return Conductor(RUNS, decide, **options)  # type: ignore[arg-type]


def _value(run: str, k: int) -> float:
    return RUNS.index(run) + k / 100  # a run's values in round k, so a test can see which rounds were passed on


@dataclass
class Play:
    """Runs driven synchronously: each asks for its metrics in order, measures when granted, moves on when refused."""

    conductor: Conductor
    clock: FakeClock
    metrics: tuple[str, ...] = ("find.study",)
    block: float = 1.0  # clock seconds a block takes
    end_after: Mapping[str, int] = field(default_factory=dict)  # run -> it ends after this many go grants
    lines: dict[int, RoundLine] = field(default_factory=dict)  # by seq: the validation's record, once each
    stops: dict[str, list[str]] = field(default_factory=dict)  # run -> reason of each metric's stop

    def __post_init__(self) -> None:
        self.todo = {run: list(self.metrics) for run in RUNS}
        self.tickets = dict.fromkeys(RUNS, 0)
        self.goes = dict.fromkeys(RUNS, 0)

    def ask(self, run: str) -> None:
        if self.todo[run]:
            self.tickets[run] += 1
            self.conductor.asked(run, self.tickets[run], TurnRequest(self.todo[run][0]))

    def start(self, runs: Sequence[str] = RUNS) -> Play:
        for run in runs:
            self.ask(run)
        return self

    def run(self) -> Play:
        for _ in range(10_000):
            progressed = False
            for run in RUNS:
                for line in self.conductor.collect(run):
                    self.lines.setdefault(line.seq, line)
                    if line.run != run or not line.ticket or line.event not in (GO, "stop"):
                        continue
                    progressed = True
                    if line.event == "stop":
                        self.stops.setdefault(run, []).append(line.reason)
                        self.todo[run].pop(0)
                        self.ask(run)
                        continue
                    self.goes[run] += 1
                    self.clock.now += self.block
                    if self.goes[run] == self.end_after.get(run):
                        self.todo[run].clear()
                        self.conductor.ended(run)
                        continue
                    sample = Sample(line.metric, line.round, line.slot, (_value(run, line.round),))
                    self.conductor.done(run, line.ticket, 1, 1, [sample])
                    self.ask(run)
            if not progressed:
                return self
        raise AssertionError("the conductor did not settle")

    def events(self, event: str) -> list[RoundLine]:
        return [self.lines[seq] for seq in sorted(self.lines) if self.lines[seq].event == event]

    def orders(self, metric: str) -> dict[int, list[str]]:
        """Each round's runs in the order they were granted."""
        out: dict[int, list[str]] = {}
        for line in self.events(GO):
            if line.metric == metric:
                out.setdefault(line.round, []).append(line.run)
        return out


def _goes(lines: Sequence[RoundLine]) -> list[RoundLine]:
    return [line for line in lines if line.event == GO]


# The barrier.
def test_the_barrier_holds_the_first_grant_until_all_three_ask() -> None:
    clock = FakeClock()
    conductor = _conductor(clock)
    conductor.asked("candidate-1", 1, TurnRequest("find.study"))
    conductor.asked("baseline-1", 1, TurnRequest("find.study"))
    clock.now += 299.0  # within barrier_timeout
    assert not any(_goes(conductor.collect(run)) for run in RUNS)
    conductor.asked("baseline-2", 1, TurnRequest("find.study"))
    granted = {run: _goes(conductor.collect(run)) for run in RUNS}
    # Round 0 begins with baseline-1, whichever run asked first, and only it measures.
    assert [(g.round, g.slot, g.order) for g in granted["baseline-1"]] == [(0, 0, RUNS)]
    assert granted["baseline-2"] == granted["candidate-1"] == []


def test_the_barrier_does_not_wait_for_a_run_that_ended() -> None:
    clock = FakeClock()
    conductor = _conductor(clock)
    conductor.asked("baseline-1", 1, TurnRequest("find.study"))
    conductor.asked("candidate-1", 1, TurnRequest("find.study"))
    assert not _goes(conductor.collect("baseline-1"))
    conductor.ended("baseline-2")  # e.g. its device did not start
    assert [g.order for g in _goes(conductor.collect("baseline-1"))] == [("baseline-1", "candidate-1")]


def test_barrier_timeout_leaves_a_silent_run_out() -> None:
    clock = FakeClock()
    conductor = _conductor(clock, max_rounds=2)
    play = Play(conductor, clock).start(("baseline-1", "candidate-1"))
    clock.now += 299.5  # not yet
    assert not play.run().events(GO)
    clock.now += 0.5
    play.run()
    assert conductor.left_out() == ("baseline-2",)
    assert play.orders("find.study") == {0: ["baseline-1", "candidate-1"], 1: ["candidate-1", "baseline-1"]}
    # The late run is refused at once, and says why.
    conductor.asked("baseline-2", 1, TurnRequest("find.study"))
    assert [(line.event, line.reason) for line in conductor.collect("baseline-2")][-1] == ("stop", "left_out")
    assert any(line.run == "baseline-2" and line.reason == "left_out" for line in play.events("left"))


# Rounds.
def test_the_slot_order_rotates_per_round_and_one_run_measures_at_a_time() -> None:
    clock = FakeClock()
    play = Play(_conductor(clock, max_rounds=4), clock).start().run()
    b1, b2, c = RUNS
    assert play.orders("find.study") == {0: [b1, b2, c], 1: [b2, c, b1], 2: [c, b1, b2], 3: [b1, b2, c]}
    assert [g.slot for g in play.events(GO)] == [0, 1, 2] * 4
    _assert_one_at_a_time([play.lines[s] for s in sorted(play.lines)])


def _assert_one_at_a_time(lines: Sequence[RoundLine]) -> None:
    """In seq order: a grant only when no other run holds one, and each done from the run that holds it."""
    holder: tuple[str, int] | None = None
    for line in lines:
        if line.event == GO:
            assert holder is None, f"{line.run} granted while {holder} measures"
            holder = (line.run, line.ticket)
        elif line.event == "done" and line.reason not in ("abandoned", "late"):
            assert holder == (line.run, line.ticket), f"done {line} while {holder} holds the turn"
            holder = None
        elif line.event == "left" and holder is not None and holder[0] == line.run:
            holder = None


def test_metrics_run_one_after_another_in_the_order_asked() -> None:
    clock = FakeClock()
    play = Play(_conductor(clock, max_rounds=2), clock, metrics=("echo.latency", "find.study")).start().run()
    assert [g.metric for g in play.events(GO)] == ["echo.latency"] * 6 + ["find.study"] * 6
    assert [(f.metric, f.reason, f.rounds) for f in play.events("finished")] == [
        ("echo.latency", "max_rounds", 2),
        ("find.study", "max_rounds", 2),
    ]
    assert play.stops == {run: ["max_rounds", "max_rounds"] for run in RUNS}


def test_a_run_that_ends_leaves_the_rotation_and_the_others_finish() -> None:
    clock = FakeClock()
    conductor = _conductor(clock, max_rounds=5)
    play = Play(conductor, clock, end_after={"baseline-2": 3}).start().run()
    b1, b2, c = RUNS
    # baseline-2 ends inside its third block (round 2): from there the other two take turns alone.
    assert play.orders("find.study") == {0: [b1, b2, c], 1: [b2, c, b1], 2: [c, b1, b2], 3: [c, b1], 4: [b1, c]}
    assert [(line.run, line.round, line.reason) for line in play.events("left")] == [(b2, 2, "ended")]
    assert play.stops == {b1: ["max_rounds"], c: ["max_rounds"]}
    (summary,) = conductor.summary()
    assert (summary.rounds, summary.stopped, summary.runs, dict(summary.left)) == (5, "max_rounds", RUNS, {b2: 2})
    _assert_one_at_a_time([play.lines[s] for s in sorted(play.lines)])


def test_a_run_that_holds_its_slot_too_long_leaves_the_metric() -> None:
    clock = FakeClock()
    conductor = _conductor(clock, max_rounds=2, slot_timeout=60.0)
    for run in RUNS:
        conductor.asked(run, 1, TurnRequest("find.study"))
    (go,) = _goes(conductor.collect("baseline-1"))
    clock.now += 60.0
    assert not _goes(conductor.collect("baseline-2"))  # not past the bound yet
    clock.now += 1.0
    assert [(g.run, g.slot) for g in _goes(conductor.collect("baseline-2"))] == [("baseline-2", 1)]
    conductor.done("baseline-1", go.ticket, 1, 1)  # too late: recorded, changes nothing
    lines = conductor.collect("baseline-1")
    assert [(line.event, line.run, line.reason) for line in lines if line.event != "stop"] == [
        ("left", "baseline-1", "slot_timeout"),
        ("done", "baseline-1", "late"),
    ]


def test_a_run_that_asks_for_the_next_metric_leaves_this_one() -> None:
    clock = FakeClock()
    conductor = _conductor(clock)
    for run in RUNS:
        conductor.asked(run, 1, TurnRequest("find.study"))
    for run in RUNS:  # round 0
        (go,) = _goes(conductor.collect(run))
        conductor.done(run, go.ticket, 1, 1)
    conductor.asked("baseline-2", 2, TurnRequest("echo.latency"))  # its slot opens round 1: it has moved on
    conductor.asked("candidate-1", 2, TurnRequest("find.study"))
    assert [(g.round, g.slot, g.order) for g in _goes(conductor.collect("candidate-1"))] == [
        (1, 1, ("baseline-2", "candidate-1", "baseline-1"))
    ]
    lines = [line for line in conductor.collect("baseline-2") if line.event != "done"]
    assert [(line.event, line.run, line.round, line.reason) for line in lines] == [
        ("left", "baseline-2", 1, "moved_on")
    ]
    conductor.asked("baseline-2", 3, TurnRequest("find.study"))
    assert [(line.ticket, line.reason) for line in conductor.collect("baseline-2")] == [(3, "moved_on")]


def test_a_withdrawn_request_frees_nothing_and_is_recorded() -> None:
    clock = FakeClock()
    conductor = _conductor(clock)
    conductor.asked("baseline-1", 1, TurnRequest("find.study"))
    conductor.done("baseline-1", 1, 0, 0)  # the suites gave up waiting (the barrier still holds)
    assert [(line.event, line.reason) for line in conductor.collect("baseline-1")] == [("done", "abandoned")]


# Stopping.
def test_the_decision_stops_a_metric_after_warmup_plus_min_rounds_on_kept_rounds_only() -> None:
    clock = FakeClock()
    calls: list[tuple[str, dict[str, dict[int, tuple[float, ...]]]]] = []

    def decide(metric: str, values: Values, /) -> str | None:
        calls.append((metric, {run: {k: tuple(v) for k, v in rounds.items()} for run, rounds in values.items()}))
        return "decided" if len(calls) == 2 else None

    play = Play(_conductor(clock, decide=decide, min_rounds=3, warmup_rounds=1), clock).start().run()
    # First asked after round 4 (1 warm-up + 3), then after round 5, which decides.
    assert [len(v["baseline-1"]) for _, v in calls] == [3, 4]
    metric, values = calls[1]
    assert metric == "find.study"
    assert values == {run: {k: (_value(run, k),) for k in range(1, 5)} for run in RUNS}  # round 0 left out
    assert [(f.reason, f.rounds) for f in play.events("finished")] == [("decided", 5)]
    assert play.stops == {run: ["decided"] for run in RUNS}


def test_max_rounds_stops_a_metric_the_decision_does_not() -> None:
    clock = FakeClock()
    play = Play(_conductor(clock, max_rounds=7), clock).start().run()
    assert [(f.reason, f.rounds) for f in play.events("finished")] == [("max_rounds", 7)]
    assert max(play.orders("find.study")) == 6


def test_each_metric_stops_at_its_share_of_the_budget() -> None:
    clock = FakeClock()
    weights = weights_for(["find.study", "store.study"])
    assert weights == {"find.study": 1.0, "store.study": 2.0}
    # 30 s: find.study's share is 10 s, store.study's 20 s; a round of three 1 s blocks takes 3 s.
    conductor = _conductor(clock, budget=30.0, weights=weights)
    play = Play(conductor, clock, metrics=("find.study", "store.study")).start().run()
    assert [(f.metric, f.reason, f.rounds) for f in play.events("finished")] == [
        ("find.study", "budget", 4),  # 12 s >= 10 s
        ("store.study", "budget", 7),  # 21 s >= 20 s
    ]
    assert [s.seconds for s in conductor.summary()] == [12.0, 21.0]


def test_the_budget_never_leaves_a_metric_with_fewer_kept_rounds_than_min_rounds() -> None:
    clock = FakeClock()
    # A 3 s share and 3 s rounds: the budget is spent after round 1, yet 1 warm-up + 4 kept rounds are measured.
    conductor = _conductor(clock, budget=3.0, min_rounds=4, weights={"find.study": 1.0})
    play = Play(conductor, clock).start().run()
    assert [(f.reason, f.rounds) for f in play.events("finished")] == [("budget", 5)]
    # max_rounds still caps it below that
    clock = FakeClock()
    play = Play(_conductor(clock, budget=3.0, min_rounds=4, max_rounds=2), clock).start().run()
    assert [(f.reason, f.rounds) for f in play.events("finished")] == [("max_rounds", 2)]


def test_a_decision_that_raises_stops_the_metric_and_says_why() -> None:
    clock = FakeClock()

    def decide(metric: str, values: Values, /) -> str | None:
        raise ZeroDivisionError("no baseline values")

    play = Play(_conductor(clock, decide=decide), clock).start().run()
    assert play.stops == {run: ["error"] for run in RUNS}
    (error,) = play.events("error")
    assert error.reason == "the decision raised ZeroDivisionError: no baseline values"


def test_unknown_metrics_and_metrics_already_measured_are_refused_at_once() -> None:
    clock = FakeClock()
    conductor = _conductor(clock, max_rounds=1)
    Play(conductor, clock).start().run()
    conductor.asked("baseline-1", 10, TurnRequest("find.patient"))
    conductor.asked("baseline-1", 11, TurnRequest("find.study"))
    stops = [(line.ticket, line.reason) for line in conductor.collect("baseline-1") if line.event == "stop"]
    assert stops == [(10, "unknown_metric"), (11, "max_rounds")]


def test_closing_refuses_what_waits_and_what_comes() -> None:
    clock = FakeClock()
    conductor = _conductor(clock)
    conductor.asked("baseline-1", 1, TurnRequest("find.study"))
    conductor.close()
    conductor.asked("baseline-2", 1, TurnRequest("find.study"))
    assert [line.reason for line in conductor.collect("baseline-1") if line.event == "stop"] == ["closed"]
    assert [line.reason for line in conductor.collect("baseline-2") if line.event == "stop"] == ["closed"]


def test_solo_conductor_measures_one_run_without_waiting() -> None:
    clock = FakeClock()
    conductor = SoloConductor("candidate-1", weights={"echo.latency": 1.0}, max_rounds=3, clock=clock)
    assert not conductor.interleaved
    grants = []
    for ticket in range(1, 5):
        conductor.asked("candidate-1", ticket, TurnRequest("echo.latency"))
        (line,) = [line for line in conductor.collect("candidate-1") if line.ticket == ticket]
        grants.append(line.grant())
        if line.event == GO:
            conductor.done("candidate-1", ticket, 20, 1)
    assert grants == [Grant.measure(0, 0), Grant.measure(1, 0), Grant.measure(2, 0), Grant.refuse("max_rounds")]


def test_weights_are_by_metric_prefix_and_an_unknown_one_is_named() -> None:
    assert [weight(m) for m in ("association.setup", "echo.latency", "find.image")] == [1.0, 1.0, 1.0]
    assert [weight(m) for m in ("store.study.parallel", "move.first", "get.last")] == [2.0, 2.0, 2.0]
    assert weight("workflow.acquire") == 3.0
    with pytest.raises(ValueError, match=r"'memory\.peak' has no budget weight"):
        weight("memory.peak")


def test_conductor_refuses_bad_settings_and_unknown_runs() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Conductor(("a", "a"), never, weights={})
    with pytest.raises(ValueError, match=r"weights must be > 0: find\.study"):
        Conductor(("a",), never, weights={"find.study": 0.0})
    with pytest.raises(ValueError, match="no run 'x'"):
        Conductor(("a",), never, weights={}).asked("x", 1, TurnRequest("find.study"))


# Records.
def test_records_round_trip_and_bad_ones_name_the_key() -> None:
    for grant in (Grant.measure(3, 2), Grant.refuse("budget")):
        assert Grant.from_json(grant.to_json()) == grant
    assert Grant.measure(3, 2).to_json() == {"go": True, "round": 3, "slot": 2}
    assert Grant.refuse("decided").to_json() == {"stop": "decided"}
    line = RoundLine(7, GO, "baseline-2", "find.study", ticket=4, round=0, slot=0, order=RUNS, t_ns=5)
    assert RoundLine.from_json(line.to_json()) == line
    assert Done.from_json(Done(10, 1).to_json()) == Done(10, 1)
    sample = Sample("find.study", 3, 2, (0.00531, 0.00548), started_ns=1, ops=2, statuses={"0x0000": 2})
    assert Sample.from_json(sample.to_json()) == sample
    with pytest.raises(ValueError, match="'metric'"):
        TurnRequest.from_json({"round": 1})
    with pytest.raises(ValueError, match="'round': an integer"):
        Grant.from_json({"go": True, "round": "3", "slot": 0})
    with pytest.raises(ValueError, match="'values'"):
        Sample.from_json({"metric": "find.study", "round": 0, "values": [0.1, "x"]})


# End to end: real threads, real files.
@dataclass
class FakeRun:
    """A run's suites: a thread taking turns through the files, one block per grant, as suites/performance will."""

    run: RunDir
    metrics: tuple[str, ...]
    crash_in: int = 0  # its suites die inside this block (1-based), its turn never given back; 0: never
    stops: list[str] = field(default_factory=list)
    failure: list[BaseException] = field(default_factory=list)

    def __call__(self) -> None:
        try:
            turns, blocks = Turns(self.run, timeout=30.0), 0
            for metric in self.metrics:
                while (turn := turns.turn(metric)).go:
                    blocks += 1
                    if blocks == self.crash_in:
                        return
                    values = (0.005 + turn.round / 1000,) * 10
                    if turn.round % 2:  # as loadgen.Block.to_json writes it, or as a record
                        turn.record({"metric": metric, "round": turn.round, "slot": turn.slot, "values": list(values)})
                    else:
                        turn.record(Sample(metric, turn.round, turn.slot, values))
                    turn.done(10, 1)
                self.stops.append(turn.stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.failure.append(exc)


def _validation(
    tmp_path: Path, conductor: Conductor, fakes: Mapping[str, FakeRun], told: list[RoundLine] | None = None
) -> list[RoundLine]:
    """Desks and fake runs for every run; each run's desk stops when its suites end, as the runner will do.

    `told`: what candidate-1's desk tells its listener (`on_line`).
    """
    desks = {
        label: Desk(fake.run, label, conductor, on_line=told.append if told is not None and label == RUNS[2] else None)
        for label, fake in fakes.items()
    }
    for desk in desks.values():
        desk.start()
    threads = {label: threading.Thread(target=fake, name=label) for label, fake in fakes.items()}
    for thread in threads.values():
        thread.start()
    until = time.monotonic() + 60.0
    try:
        while any(thread.is_alive() for thread in threads.values()):
            assert time.monotonic() < until, (
                f"still waiting for a turn: {[t.name for t in threads.values() if t.is_alive()]}"
            )
            for label, thread in threads.items():
                if not thread.is_alive():
                    desks[label].stop()  # as the runner does when a run's suites end
            time.sleep(0.01)
    finally:
        for desk in desks.values():
            desk.stop()
    for label, fake in fakes.items():
        assert not fake.failure, f"{label}: {fake.failure[0]!r}"
        assert not desks[label].failure
    merged: dict[int, RoundLine] = {}
    for fake in fakes.values():
        for d in fake.run.read_lines(fake.run.perf_rounds):
            line = RoundLine.from_json(d)
            merged.setdefault(line.seq, line)
    return [merged[seq] for seq in sorted(merged)]


def _runs(tmp_path: Path, metrics: tuple[str, ...], crash_in: Mapping[str, int] | None = None) -> dict[str, FakeRun]:
    return {label: FakeRun(RunDir(tmp_path / label), metrics, (crash_in or {}).get(label, 0)) for label in RUNS}


def test_three_runs_take_turns_through_the_files(tmp_path: Path) -> None:
    seen: list[Values] = []

    def decide(metric: str, values: Values, /) -> str | None:
        seen.append(values)
        return "decided" if metric == "find.study" else None

    conductor = Conductor(
        RUNS, decide, min_rounds=2, max_rounds=4, warmup_rounds=1, weights=weights_for(["echo.latency", "find.study"])
    )
    fakes = _runs(tmp_path, ("echo.latency", "find.study"))
    told: list[RoundLine] = []
    lines = _validation(tmp_path, conductor, fakes, told)
    _assert_one_at_a_time(lines)
    # The listener (the resource sampler, later) is told each of its run's lines, as written.
    assert told == [RoundLine.from_json(d) for d in fakes[RUNS[2]].run.read_lines(fakes[RUNS[2]].run.perf_rounds)]
    assert [line.event for line in told if line.run == RUNS[2]].count(GO) == 7
    goes = [line for line in lines if line.event == GO]
    b1, b2, c = RUNS
    assert [g.run for g in goes if g.metric == "echo.latency"] == [b1, b2, c, b2, c, b1, c, b1, b2, b1, b2, c]
    assert [g.run for g in goes if g.metric == "find.study"] == [b1, b2, c, b2, c, b1, c, b1, b2]
    assert {label: fake.stops for label, fake in fakes.items()} == {run: ["max_rounds", "decided"] for run in RUNS}
    for fake in fakes.values():  # what compare will read back, from any run's file
        lines_of_run = [RoundLine.from_json(d) for d in fake.run.read_lines(fake.run.perf_rounds)]
        assert stopped(lines_of_run) == {"echo.latency": "max_rounds", "find.study": "decided"}
    # The decision saw what the suites wrote to samples.jsonl, the warm-up round left out.
    assert seen[-1] == {run: {k: (0.005 + k / 1000,) * 10 for k in (1, 2)} for run in RUNS}
    # Every grant file says what rounds.jsonl says, and every go was given back.
    for g in goes:
        run = fakes[g.run].run
        assert Grant.from_json(_json(run.turn_grant(g.ticket))) == Grant.measure(g.round, g.slot)
        assert Done.from_json(_json(run.turn_done(g.ticket))) == Done(10, 1)


def _json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_run_whose_suites_end_leaves_and_the_others_finish(tmp_path: Path) -> None:
    conductor = Conductor(RUNS, never, min_rounds=2, max_rounds=5, warmup_rounds=1, weights={"find.study": 1.0})
    fakes = _runs(tmp_path, ("find.study",), crash_in={"baseline-2": 2})  # dies measuring, in round 1
    lines = _validation(tmp_path, conductor, fakes)
    _assert_one_at_a_time(lines)
    left = [(line.run, line.round, line.reason) for line in lines if line.event == "left"]
    assert left == [("baseline-2", 1, "ended")]
    goes = [line for line in lines if line.event == GO]
    assert sum(g.run == "baseline-2" for g in goes) == 2
    assert [sum(g.run == run for g in goes) for run in ("baseline-1", "candidate-1")] == [5, 5]
    assert fakes["baseline-1"].stops == fakes["candidate-1"].stops == ["max_rounds"]
    (summary,) = conductor.summary()
    assert dict(summary.left) == {"baseline-2": 1}  # interleaved until round 1


def test_a_waiting_turn_ends_when_the_desk_stops_and_never_hangs(tmp_path: Path) -> None:
    # baseline-2 never asks: baseline-1's first turn waits at the barrier, until its desk stops.
    conductor = Conductor(("baseline-1", "baseline-2"), never, weights={"find.study": 1.0})
    run = RunDir(tmp_path / "baseline-1")
    desk = Desk(run, "baseline-1", conductor).start()
    answers: list[str] = []
    waiter = threading.Thread(target=lambda: answers.append(Turns(run, timeout=60.0).turn("find.study").stop))
    waiter.start()
    try:
        _wait_for(lambda: run.turn_request(1).exists())
        assert answers == []  # still waiting
    finally:
        desk.stop()
    waiter.join(30.0)
    assert not waiter.is_alive()
    assert answers == ["ended"]
    # Asked after the desk stopped: refused at once from the closed channel.
    assert Turns(run, timeout=60.0).turn("find.study").stop == "ended"


def test_a_turn_nobody_answers_gives_up_and_withdraws_its_request(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    turn = Turns(run, timeout=0.2).turn("find.study")
    assert (turn.go, turn.stop) == (False, "no_answer")
    assert Done.from_json(_json(run.turn_done(turn.ticket))) == Done(0, 0, abandoned=True)
    with pytest.raises(ValueError, match="was not granted"):
        turn.done(1, 1)
    with pytest.raises(ValueError, match="inside a granted block"):
        turn.record(Sample("find.study", 0, 0, (0.1,)))
    with pytest.raises(ValueError, match="'values'"):
        turn.record({"metric": "find.study", "round": 0, "slot": 0, "values": "fast"})
    assert not run.perf_samples.exists()


def test_a_granted_turn_records_its_own_round_only_and_is_done_once(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.turns.mkdir(parents=True)
    turn = Turn(Turns(run, timeout=1.0), 5, "move.first", Grant.measure(2, 1))
    with pytest.raises(ValueError, match="a sample of round 3 slot 1 in the block of round 2 slot 1"):
        turn.record(Sample("move.first", 3, 1, (0.1,)))
    turn.record(Sample("move.first", 2, 1, (0.1,)))
    turn.record(Sample("move.last", 2, 1, (0.3,)))  # a retrieve block gives both
    turn.done(1, 1)
    with pytest.raises(ValueError, match="already done"):
        turn.done(1, 1)
    assert [Sample.from_json(d).metric for d in run.read_lines(run.perf_samples)] == ["move.first", "move.last"]
    assert Done.from_json(_json(run.turn_done(5))) == Done(1, 1)


def test_tickets_are_claimed_past_those_already_there(tmp_path: Path) -> None:
    # A second Turns (another case, another suites process) never overwrites a request already written.
    run = RunDir(tmp_path)
    run.turns.mkdir(parents=True)
    run.turn_request(1).write_text('{"metric": "find.study", "round": 0}\n', encoding="utf-8")
    turn = Turns(run, timeout=0.05).turn("echo.latency")
    assert turn.ticket == 2
    assert TurnRequest.from_json(_json(run.turn_request(2))) == TurnRequest("echo.latency", 0)
    assert TurnRequest.from_json(_json(run.turn_request(1))) == TurnRequest("find.study", 0)


def test_an_unreadable_request_is_refused_and_recorded(tmp_path: Path) -> None:
    conductor = SoloConductor("candidate-1", weights={"find.study": 1.0})
    run = RunDir(tmp_path)
    run.turns.mkdir(parents=True)
    run.turn_request(1).write_text("{not json", encoding="utf-8")
    desk = Desk(run, "candidate-1", conductor)
    desk.serve_once()  # one look, in this thread
    assert Grant.from_json(_json(run.turn_grant(1))) == Grant.refuse("invalid")
    lines = [RoundLine.from_json(d) for d in run.read_lines(run.perf_rounds)]
    assert [line.event for line in lines] == ["error", "stop"]
    assert str(run.turn_request(1)) in lines[0].reason
    desk.stop()
    assert run.turns_closed.exists()


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < until, "condition not met in time"
        time.sleep(0.01)
