"""The resource sampler's rates and marks, its thread's ends, and the per-block resource values derived from its lines."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import RunDirError
from harness.launch.resources import ProcProbe
from harness.perf.client import Turns
from harness.perf.conductor import SoloConductor
from harness.perf.desk import Desk
from harness.perf.records import (
    COARSE_NS,
    CPU,
    GO,
    PEAK,
    ROUND_SPAN,
    STEADY,
    BlockResources,
    ResourceLine,
    ResourceSample,
    RoundLine,
    RunResources,
    block_resources,
    parse_resources,
    read_resources,
)
from harness.perf.sampler import MAX_WAIT, Sampler
from harness.rundir import RunDir

MiB = 1 << 20
WAIT = 10.0  # seconds: the bound on every wait for a thread or a child


@dataclass
class FakeClock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeProbe:
    """A scripted device below the /proc line: read n gives rss 1000 + n, cpu n ms; None after `lasts` reads."""

    source: str = "proc"
    lasts: int = 1_000_000
    reads: int = 0
    threads: list[str] = field(default_factory=list)  # the thread of each read

    def read(self) -> ResourceSample | None:
        self.reads += 1
        self.threads.append(threading.current_thread().name)
        if self.reads > self.lasts:
            return None
        return ResourceSample(t_ns=self.reads, rss=1000 + self.reads, cache=None, cpu_ns=self.reads * 1_000_000, pids=1)


def go(ticket: int, metric: str = "find.study", round: int = 0) -> RoundLine:
    return RoundLine(ticket, GO, "candidate-1", metric=metric, ticket=ticket, round=round, slot=0)


def done(ticket: int, metric: str = "find.study", round: int = 0, ops: int = 10, associations: int = 1) -> RoundLine:
    return RoundLine(100 + ticket, "done", "candidate-1", metric, ticket, round, 0, ops=ops, associations=associations)


def lines(run: RunDir) -> list[ResourceLine]:
    return [ResourceLine.from_json(d) for d in run.read_lines(run.perf_resources)]


def marks(run: RunDir) -> list[tuple[str, tuple[str, int] | None, tuple[str, int] | None]]:
    return [(line.mark, line.in_block, line.after) for line in lines(run)]


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        time.sleep(0.01)


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path)
    run.perf.mkdir()
    return run


# --- the sampler, driven by tick() with a fake clock ---


def test_idle_and_block_rates_with_grant_and_rest_marks(run: RunDir) -> None:
    clock, probe = FakeClock(100.0), FakeProbe()
    sampler = Sampler(probe, run, clock=clock, rest_delay=0.5, idle_hz=1, block_hz=4)
    block = ("find.study", 0)
    assert sampler.tick() == 1.0  # the first sample at once, the next a second later
    clock.now = 100.5
    assert sampler.tick() == 0.5
    clock.now = 101.0
    sampler.tick()
    clock.now = 101.25
    sampler.on_line(go(1))
    assert probe.reads == 2  # the desk's call only queues the line
    assert sampler.tick() == 0.25  # the grant sample at once, then block_hz
    for now in (101.5, 101.75, 102.0):
        clock.now = now
        sampler.on_line(done(7))  # an abandoned request's done (another ticket) ends nothing
        sampler.tick()
    sampler.on_line(done(1))
    assert sampler.tick() == 0.5  # the rest sample is due rest_delay after the done
    clock.now = 102.25
    assert sampler.tick() == 0.25
    clock.now = 102.5
    sampler.tick()
    clock.now = 103.0
    sampler.tick()
    assert marks(run) == [
        ("", None, None),
        ("", None, None),
        ("grant", block, None),
        ("", block, None),
        ("", block, None),
        ("", block, None),
        ("rest", None, block),
        ("", None, None),
    ]
    assert probe.reads == sampler.written == 8
    first = run.read_lines(run.perf_resources)[2]
    assert first == {
        "t_ns": 3,
        "source": "proc",
        "rss": 1003,
        "cache": None,
        "cpu_ns": 3_000_000,
        "pids": 1,
        "in_block": {"metric": "find.study", "round": 0},
        "mark": "grant",
    }


def test_a_grant_before_the_rest_is_due_takes_the_rest_first(run: RunDir) -> None:
    clock = FakeClock()
    sampler = Sampler(FakeProbe(), run, clock=clock, rest_delay=0.5, idle_hz=1, block_hz=4)
    sampler.on_line(go(1, round=0))
    sampler.tick()
    sampler.on_line(done(1, round=0))
    sampler.tick()
    clock.now += 0.125  # a solo run's next grant comes before rest_delay has passed
    sampler.on_line(go(2, round=1))
    sampler.tick()
    clock.now += 1.0
    sampler.tick()
    assert [m for m in marks(run) if m[0]] == [
        ("grant", ("find.study", 0), None),
        ("rest", None, ("find.study", 0)),
        ("grant", ("find.study", 1), None),
    ]


def test_an_engine_probe_is_read_only_at_block_boundaries(run: RunDir) -> None:
    clock, probe = FakeClock(), FakeProbe(source="engine")
    sampler = Sampler(probe, run, clock=clock, rest_delay=0.5)
    for _ in range(5):  # idle: no reads at all
        assert sampler.tick() == MAX_WAIT
        clock.now += 1.0
    sampler.on_line(go(1))
    sampler.tick()
    for _ in range(10):  # inside the block: none either
        clock.now += 0.1
        sampler.tick()
    sampler.on_line(done(1))
    assert sampler.tick() == pytest.approx(0.5)
    clock.now += 0.5
    sampler.tick()
    assert probe.reads == 2
    assert [(line.mark, line.source) for line in lines(run)] == [("grant", "engine"), ("rest", "engine")]


def test_a_real_process_that_allocates_in_a_block_rests_higher(run: RunDir) -> None:
    script = """
        import sys
        print("ready", flush=True); sys.stdin.readline()
        block = b"\\x01" * (64 << 20)  # filled: every page touched
        print("touched", flush=True); sys.stdin.readline()
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None

    def said(expected: str) -> None:
        assert child.stdout is not None
        assert select.select([child.stdout], [], [], WAIT)[0], f"the child said nothing within {WAIT} s"
        assert child.stdout.readline().strip() == expected

    try:
        said("ready")
        clock = FakeClock()
        sampler = Sampler(ProcProbe(child.pid), run, clock=clock, rest_delay=0.2)
        rounds = [go(1, round=0), done(1, round=0, associations=2), go(2, round=1), done(2, round=1, associations=3)]
        for block in (0, 1):
            sampler.on_line(rounds[2 * block])
            sampler.tick()  # the grant sample
            if block == 1:
                child.stdin.write("go\n")
                child.stdin.flush()
                said("touched")
            clock.now += 0.1
            sampler.tick()  # a 10 Hz sample inside the block
            sampler.on_line(rounds[2 * block + 1])
            sampler.tick()
            clock.now += 0.2
            sampler.tick()  # the rest sample
        first, second = block_resources(lines(run), rounds).blocks
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=WAIT)
    assert first.steady is not None and second.steady is not None and second.peak is not None
    assert second.steady - first.steady >= 48 * MiB
    assert second.peak >= first.steady + 48 * MiB
    assert (first.inside, second.inside) == (2, 2)
    assert (first.associations, second.associations) == (2, 5)
    assert first.cpu_ns is not None and second.cpu_ns is not None  # a real counter read at grant and rest


# --- the thread ---


def test_the_thread_stops_when_the_device_is_gone(run: RunDir) -> None:
    probe = FakeProbe(lasts=3)
    sampler = Sampler(probe, run, idle_hz=50).start()
    wait_until(lambda: not sampler.alive, "the sampler thread ends after the probe returned None")
    assert sampler.gone and not sampler.failure
    assert probe.reads == 4  # not read again after None
    assert len(lines(run)) == sampler.written == 3


def test_stop_is_bounded_while_the_probe_is_stuck(run: RunDir) -> None:
    entered, release = threading.Event(), threading.Event()

    class Stuck(FakeProbe):
        def read(self) -> ResourceSample | None:
            entered.set()
            release.wait(WAIT)
            return super().read()

    sampler = Sampler(Stuck(), run).start()
    assert entered.wait(WAIT)
    stopper = threading.Thread(target=sampler.stop, kwargs={"timeout": 0.05})
    stopper.start()
    stopper.join(WAIT)
    try:
        assert not stopper.is_alive(), "stop() waited for the stuck read"
        assert sampler.alive  # still inside the read
    finally:
        release.set()
    wait_until(lambda: not sampler.alive, "the abandoned thread ends once the read returns")
    assert sampler.written == 0 and not run.perf_resources.exists()  # abandoned: it wrote nothing after stop


def test_stop_right_after_a_done_still_takes_the_rest_sample(run: RunDir) -> None:
    sampler = Sampler(FakeProbe(), run, rest_delay=0.05).start()
    sampler.on_line(go(1))
    wait_until(lambda: any(m[0] == "grant" for m in marks(run)), "the grant sample")
    sampler.on_line(done(1))
    sampler.stop(timeout=WAIT)
    assert not sampler.alive
    assert marks(run)[-1] == ("rest", None, ("find.study", 0))


def test_the_desk_tells_the_sampler_and_only_the_sampler_reads(run: RunDir) -> None:
    probe = FakeProbe(source="engine")
    conductor = SoloConductor("candidate-1", weights={"echo.latency": 1.0}, max_rounds=2, warmup_rounds=0)
    sampler = Sampler(probe, run, rest_delay=0.0).start()
    desk = Desk(run, "candidate-1", conductor, on_line=sampler.on_line).start()
    try:
        turns = Turns(run, timeout=WAIT)
        while (turn := turns.turn("echo.latency")).go:
            turn.done(20, 1)
        assert turn.stop == "max_rounds"
    finally:
        desk.stop()
        sampler.stop(timeout=WAIT)
    assert not sampler.alive and not sampler.failure
    assert set(probe.threads) == {f"perf-sampler-{run.path.name}"}  # never in the desk's thread
    found = read_resources(run.perf_resources, run.perf_rounds)
    assert found.source == "engine"
    assert [(b.metric, b.round, b.ops, b.associations, b.inside) for b in found.blocks] == [
        ("echo.latency", 0, 20, 1, 1),
        ("echo.latency", 1, 20, 2, 1),
    ]
    assert all(b.steady is not None and b.cpu_ns is not None for b in found.blocks)


def test_bad_rates_are_refused(run: RunDir) -> None:
    with pytest.raises(ValueError, match="block_hz 0 "):
        Sampler(FakeProbe(), run, block_hz=0)


# --- the derivation, on hand-written lines ---


def rline(t: int, rss: int, cpu_ms: int, block: tuple[str, int] | None = None, mark: str = "") -> ResourceLine:
    sample = ResourceSample(t_ns=t, rss=rss, cache=None, cpu_ns=cpu_ms * 1_000_000, pids=1)
    if mark == "rest":
        return ResourceLine(sample, "proc", mark=mark, after=block)
    return ResourceLine(sample, "proc", in_block=block, mark=mark)


A0, A1, E0 = ("find.study", 0), ("find.study", 1), ("echo.latency", 0)
ROUNDS = [
    go(1, *A0),
    done(1, *A0, ops=10, associations=1),
    go(2, *A1),
    done(2, *A1, ops=4, associations=2),
    RoundLine(50, "finished", "candidate-1", "find.study", reason="max_rounds", rounds=2),
    go(3, *E0),
    done(3, *E0, ops=20, associations=1),
    go(4, "echo.latency", 1),  # the run ended inside it: no done, no block
]
RESOURCES = [
    rline(1, 100, 0),
    rline(2, 110, 10, A0, "grant"),
    rline(3, 190, 150, A0),
    rline(4, 150, 200, A0),
    rline(5, 120, 250, A0, "rest"),
    rline(6, 125, 260, A1, "grant"),
    rline(7, 300, 300, A1),
    rline(8, 140, 310, A1, "rest"),
    rline(9, 140, 5000, E0, "grant"),
    rline(10, 900, 20, E0, "rest"),  # the counter went back: the device restarted in between
]


def test_steady_peak_cpu_and_associations_per_block() -> None:
    found = block_resources(RESOURCES, ROUNDS)
    assert found.source == "proc"
    a0, a1, e0 = found.blocks
    assert (a0.metric, a0.round, a0.ops, a0.associations) == ("find.study", 0, 10, 1)
    assert (a0.steady, a0.peak, a0.inside) == (120, 190, 3)
    assert a0.cpu_ns == 240_000_000 and not a0.coarse and not a0.reset
    assert a0.cpu_per_op == pytest.approx(0.024)
    assert (a1.steady, a1.peak, a1.associations) == (140, 300, 3)
    assert a1.cpu_ns == 50_000_000 < COARSE_NS and a1.coarse  # too coarse (design 6)
    assert (e0.steady, e0.peak, e0.associations) == (900, 140, 4)
    assert e0.cpu_ns == 0 and e0.reset and e0.coarse  # clipped at 0 across the restart


def test_pairing_keys_follow_the_phase_order_and_skip_nothing() -> None:
    a0, a1, e0 = block_resources(RESOURCES, ROUNDS).blocks
    assert (a0.key, a1.key, e0.key) == (0, 1, ROUND_SPAN)
    # Another run that left find.study before its first grant: echo.latency keeps its position.
    other = [RoundLine(1, "left", "baseline-1", "find.study", round=0, reason="slot_timeout"), *ROUNDS[4:7]]
    (only,) = block_resources([], other).blocks
    assert only.key == ROUND_SPAN and only.steady is None and only.peak is None and only.cpu_ns is None


def test_values_and_growth_points_leave_warm_up_out() -> None:
    found = block_resources(RESOURCES, ROUNDS)
    assert found.values(warmup_rounds=1) == {STEADY: {1: (140.0,)}, PEAK: {1: (300.0,)}}
    assert found.growth(warmup_rounds=0) == {0: ((1.0, 120.0),), 1: ((3.0, 140.0),), ROUND_SPAN: ((4.0, 900.0),)}


def _block(metric: str, round: int, ops: int, cpu_ms: int | None, *, reset: bool = False) -> BlockResources:
    cpu = None if cpu_ms is None else cpu_ms * 1_000_000
    return BlockResources(metric, round, key=round, ops=ops, associations=1, cpu_ns=cpu, reset=reset)


def test_cpu_per_operation_is_per_round_and_leaves_out_rounds_it_cannot_judge() -> None:
    found = RunResources(
        "proc",
        (
            _block("find.study", 0, 10, 500),  # warm-up round: left out
            _block("find.study", 1, 10, 60),  # each block under COARSE_NS, the round over it: 120 ms / 30 ops
            _block("echo.latency", 1, 20, 60),
            _block("find.study", 2, 10, 300),
            _block("echo.latency", 2, 20, None),  # a CPU delta missing: the round would hold other blocks
            _block("find.study", 3, 10, 300, reset=True),  # the device restarted inside it
            _block("find.study", 4, 10, 40),  # the whole round too coarse
            _block("find.study", 5, 10, 200),
        ),
    )
    assert found.cpu_per_round(warmup_rounds=1) == {1: pytest.approx(0.004), 5: pytest.approx(0.02)}
    assert {k: v[0] for k, v in found.values(warmup_rounds=1)[CPU].items()} == {
        1: pytest.approx(0.004),
        5: pytest.approx(0.02),
    }
    assert 0 in found.cpu_per_round(warmup_rounds=0)
    assert CPU not in RunResources("proc", (_block("find.study", 1, 10, 40),)).values()


def test_a_late_done_ends_its_block_and_an_abandoned_one_is_none() -> None:
    rounds = [
        RoundLine(1, "done", "candidate-1", "find.study", ticket=9, reason="abandoned"),
        go(1),
        RoundLine(2, "left", "candidate-1", "find.study", round=0, reason="slot_timeout"),
        RoundLine(3, "done", "candidate-1", ticket=1, ops=10, associations=1, reason="late"),
    ]
    (block,) = block_resources(RESOURCES[:5], rounds).blocks
    assert (block.metric, block.round, block.ops, block.steady) == ("find.study", 0, 10, 120)


def test_records_round_trip_through_json() -> None:
    found = block_resources(RESOURCES, ROUNDS)
    assert RunResources.from_json(json.loads(json.dumps(found.to_json()))) == found
    for line in RESOURCES:
        assert ResourceLine.from_json(json.loads(json.dumps(line.to_json()))) == line
    assert BlockResources("m", 0, 0, 0, 0).cpu_per_op is None


def test_a_bad_line_names_its_file_line_and_key(tmp_path: Path) -> None:
    good = json.dumps(RESOURCES[0].to_json())
    bad = json.dumps({**RESOURCES[1].to_json(), "in_block": {"metric": "find.study", "round": "0"}})
    with pytest.raises(RunDirError, match=r"perf/resources.jsonl:2: in_block: key 'round' is '0'"):
        parse_resources(f"{good}\n{bad}\n".encode(), "perf/resources.jsonl")
    with pytest.raises(RunDirError, match=r"r.jsonl:1: key 'mark' is 'peak'"):
        parse_resources(json.dumps({**RESOURCES[0].to_json(), "mark": "peak"}).encode() + b"\n", "r.jsonl")
    assert parse_resources(f"{good}\n{good[:20]}".encode(), "r.jsonl") == [RESOURCES[0]]  # a torn last line
    (tmp_path / "rounds.jsonl").write_text('{"seq": 1, "event": "went"}\n', encoding="utf-8")
    with pytest.raises(RunDirError, match=r"rounds.jsonl:1: 'event': 'went'"):
        read_resources(tmp_path / "resources.jsonl", tmp_path / "rounds.jsonl")
    assert read_resources(tmp_path / "none.jsonl", tmp_path / "nothing.jsonl") == RunResources("", ())


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # A sampler thread a test started must be gone by its end (the stuck one is released and waited for).

    def left() -> list[str]:
        return [t.name for t in threading.enumerate() if t not in before and t.name.startswith("perf-")]

    wait_until(lambda: not left(), "the test's desk and sampler threads end")


def test_a_file_that_cannot_be_written_ends_the_thread_with_its_reason(run: RunDir) -> None:
    run.perf_resources.mkdir()  # a folder where the file goes: every append fails
    sampler = Sampler(FakeProbe(), run).start()
    wait_until(lambda: not sampler.alive, "the sampler thread ends after a failed write")
    assert str(run.perf) in sampler.failure and sampler.written == 0 and not sampler.gone
