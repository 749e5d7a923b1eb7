"""suites.audit.window: windows that learn the device's audit latency, on a fake clock and a fake repository file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.audit.record import AuditRecord
from suites.audit import window
from suites.audit.placing import MIN_GAP, Measuring, attribute, begin, measure
from suites.audit.window import MIN_WAIT, PATIENCE, POLL, QUIET, SETTLE, STALL_LIMIT, Window

EPOCH = 1_796_169_000.0  # the fake clock's time 0 on the wall: 2026-12-01


def _iso(seconds: float, digits: int = 3) -> str:
    """An xs:dateTime of the fake clock's `seconds`, in UTC, with `digits` of a second (as the ARR and devices)."""
    text = datetime.fromtimestamp(EPOCH + seconds, UTC).isoformat(timespec="microseconds")
    whole, _, fraction = text[: -len("+00:00")].partition(".")
    return whole + ("." + fraction[:digits] if digits else "") + "Z"


class Repository:
    """A fake audit repository on a fake clock: messages are written to a real file when their time comes.

    `sleep` advances the time and writes what is due, as the repository process would have meanwhile;
    `age` is the time since the last write, as the file's mtime tells the real clock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.time = 1000.0
        self.written = -1e9
        self.due: list[tuple[float, str, str]] = []  # (arrival, event code, the device's stamp)
        self.stalls: list[float] = []  # extra seconds the next sleeps take: the machine stalled this process
        self.stamp: Callable[[float], str] | None = None  # how the device stamps its events; None: it does not

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds + (self.stalls.pop(0) if self.stalls else 0.0)
        self._write_due()

    def age(self, path: Path) -> float:
        if not path.exists():
            raise FileNotFoundError(path)
        return self.time - self.written

    def wall(self) -> float:
        return EPOCH + self.time

    def send(self, code: str, after: float = 0.0, made: float = 0.0, stamp: str | None = None) -> None:
        """The device makes message `code` `made` s from now (its stamp, or `stamp`), received `after` s from now."""
        if stamp is None:
            stamp = self.stamp(self.time + made) if self.stamp else ""
        self.due.append((self.time + after, code, stamp))
        self._write_due()

    def _write_due(self) -> None:
        for when, code, stamp in sorted(d for d in self.due if d[0] <= self.time):
            self.due.remove((when, code, stamp))
            record = AuditRecord(_iso(when), "udp", "127.0.0.1:1", True, "", event_code=code, event_time=stamp)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record.to_json()) + "\n")
            self.written = when


def _action(repo: Repository, *messages: tuple[str, float], takes: float = 0.05) -> str:
    """An operation that takes `takes` s and makes the device send each (code, delay after the operation's end)."""
    repo.sleep(takes)
    for code, after in messages:
        repo.send(code, after)
    return "done"


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "audit.jsonl")


def _window(repo: Repository, started: bool = True) -> Window:
    if started:
        repo.send("110100")  # Application Activity: the device audits, its latency not yet known
        repo.sleep(10)
    return Window(repo.path, repo)


def _open_for(repo: Repository, win: Window, *messages: tuple[str, float]) -> tuple[float, list[str], int]:
    """How long the window stayed open after its action, the events it collected, and the late count."""
    ended: list[float] = []

    def action() -> str:
        result = _action(repo, *messages)
        ended.append(repo.now())
        return result

    got = win.during(action)
    assert got.result == "done"
    return repo.now() - ended[0], [r.event_code for r in got.received], got.late


def test_before_any_latency_is_measured_a_window_waits_patience(repo: Repository) -> None:
    win = _window(repo)
    assert win.wait() == PATIENCE
    opened, events, _ = _open_for(repo, win)
    assert events == [] and opened == pytest.approx(PATIENCE, abs=POLL)
    assert win.latencies == []  # silence teaches nothing


def test_a_device_that_sent_nothing_yet_gets_quiet_not_patience(repo: Repository) -> None:
    win = _window(repo, started=False)
    assert win.wait() == QUIET
    opened, events, _ = _open_for(repo, win)
    assert events == [] and opened == pytest.approx(QUIET, abs=POLL)


def test_after_a_fast_device_s_first_messages_silence_costs_min_wait(repo: Repository) -> None:
    win = _window(repo)
    _, events, _ = _open_for(repo, win, ("110104", 0.0))
    assert events == ["110104"]
    assert win.latencies == [pytest.approx(0.0, abs=POLL)]
    assert win.wait() == MIN_WAIT  # 3 x ~0 + SETTLE is below the floor
    opened, events, _ = _open_for(repo, win)  # C-ECHO: nothing audited
    assert events == [] and opened == pytest.approx(MIN_WAIT, abs=POLL)


def test_the_wait_is_three_times_the_largest_latency_plus_settle(repo: Repository) -> None:
    win = _window(repo)
    _open_for(repo, win, ("110112", 0.3))
    _open_for(repo, win, ("110112", 0.1))  # a quicker one does not shrink it
    assert 0.3 <= max(win.latencies) <= 0.3 + POLL  # seen at the first read after it arrived
    wait = win.wait()
    assert wait == pytest.approx(3 * max(win.latencies) + SETTLE)
    opened, _, _ = _open_for(repo, win)
    assert opened == pytest.approx(wait, abs=POLL)


def test_a_slow_device_s_wait_is_capped_at_patience(repo: Repository) -> None:
    win = _window(repo)
    _, events, _ = _open_for(repo, win, ("110104", 1.2))
    assert events == ["110104"]  # inside the first window (PATIENCE), so collected and learned
    assert win.wait() == PATIENCE


def test_messages_that_keep_coming_widen_the_window(repo: Repository) -> None:
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))  # learned: fast, MIN_WAIT
    trickle = [("110102", 0.0), ("110104", 0.15), ("110104", 0.3), ("110104", 0.45)]
    opened, events, _ = _open_for(repo, win, *trickle)
    assert events == ["110102", "110104", "110104", "110104"]
    assert 0.45 <= max(win.latencies) <= 0.45 + POLL
    assert opened == pytest.approx(3 * max(win.latencies) + SETTLE, abs=POLL)  # widened as they came


def test_the_first_window_with_messages_closes_as_its_own_latency_allows(repo: Repository) -> None:
    win = _window(repo)
    assert win.wait() == PATIENCE
    opened, events, _ = _open_for(repo, win, ("110104", 0.0))
    assert events == ["110104"] and opened == pytest.approx(MIN_WAIT, abs=POLL)


def test_a_message_later_than_its_window_lands_in_no_case_and_is_counted_late(repo: Repository) -> None:
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))  # learned: MIN_WAIT
    _, events, late = _open_for(repo, win, ("110112", 1.0))  # this time the device is slow
    assert events == [] and late == 0
    repo.sleep(1.0)  # it arrives between the windows
    _, events, late = _open_for(repo, win, ("110104", 0.0))
    assert events == ["110104"] and late == 1  # not taken for the next case's own
    assert win.late == 1
    assert max(win.latencies) == pytest.approx(1.0, abs=POLL)  # learned from the late one: the next windows fit it
    assert win.wait() == PATIENCE


def test_a_window_is_not_shortened_by_a_stalled_machine(repo: Repository) -> None:
    """A stall takes the device's audit sender too: the window counts time this process was running, not stalled."""
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))  # learned: fast, MIN_WAIT
    repo.stalls = [0.0, 1.0]  # the action runs (a sleep), then the first poll after it oversleeps by a second
    opened, events, _ = _open_for(repo, win, ("110112", 1.1))  # and the stalled device's message comes after it
    assert events == ["110112"]  # without the stall counted, it closed at 1.02 s and this came late
    assert win.latencies[-1] == pytest.approx(1.1 - 1.0, abs=3 * POLL)  # the device's latency, not the stall's
    assert opened == pytest.approx(1.0 + win.wait(), abs=3 * POLL)  # its own wait, plus the stall: not PATIENCE


def test_stalls_widen_a_window_only_up_to_a_bound(repo: Repository) -> None:
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))
    repo.stalls = [0.0] + [3.0] * 10  # after the action, a machine that never gives this process its time back
    opened, events, _ = _open_for(repo, win)
    assert events == []
    assert opened <= MIN_WAIT + STALL_LIMIT + 3.0 + POLL  # bounded: at most STALL_LIMIT added, plus the last stall


def test_earlier_work_still_arriving_is_drained_before_the_action(repo: Repository) -> None:
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))
    repo.send("110113")  # a burst of other work's messages, still coming as the next case starts
    repo.send("110113", SETTLE - POLL)
    _, events, late = _open_for(repo, win, ("110112", 0.0))
    assert events == ["110112"] and late == 2


def test_draining_a_log_that_never_goes_quiet_is_bounded(repo: Repository) -> None:
    win = _window(repo)
    for k in range(200):
        repo.send("110112", 0.02 * k)
    started = repo.now()
    win.drain(quiet=0.5, limit=0.6)
    assert repo.now() - started == pytest.approx(0.6, abs=POLL)


def test_a_repository_that_received_nothing_needs_no_draining(repo: Repository) -> None:
    started = repo.now()
    Window(repo.path, repo).drain(quiet=1.0, limit=5.0)
    assert repo.now() == started


def test_records_of_an_absent_repository_file_are_none(tmp_path: Path) -> None:
    assert window.records(tmp_path / "absent.jsonl") == []


def test_a_late_message_has_every_window_measured_again_with_the_latency_it_taught(repo: Repository) -> None:
    """Pass one: b's message comes after b's window and counts late in c's. Pass two waits long enough for it."""
    win = _window(repo)
    runs: list[str] = []

    def action(name: str, *messages: tuple[str, float]) -> Callable[[], str]:
        def run() -> str:
            runs.append(name)
            return _action(repo, *messages)

        return run

    actions = [
        ("a", action("a", ("110104", 0.0))),
        ("b", action("b", ("110112", 1.0))),  # the device needs a second for b's message, every time
        ("c", action("c")),
    ]
    got = measure(win, actions)
    assert runs == ["a", "b", "c", "a", "b", "c"]
    assert [r.event_code for r in got["b"].received] == ["110112"]  # in its own window this time
    assert [collected.late for collected in got.values()] == [0, 0, 0]
    assert [r.event_code for r in got["c"].received] == []


def test_windows_that_fit_are_measured_once(repo: Repository) -> None:
    win = _window(repo)
    runs: list[str] = []

    def action() -> str:
        runs.append("x")
        return _action(repo, ("110104", 0.0))

    got = measure(win, [("x", action), ("y", action)])
    assert runs == ["x", "x"] and [c.late for c in got.values()] == [0, 0]


def _slow_move_then_get(repo: Repository) -> tuple[dict[str, list[str]], list[str]]:
    """A C-MOVE whose Instances Transferred comes 0.6 s after it, then a C-GET that audits the same two events."""
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))  # learned: fast, MIN_WAIT
    runs: list[str] = []

    def move() -> str:
        runs.append("move")
        return _action(repo, ("110102", 0.0), ("110104", 0.6))

    def get() -> str:
        runs.append("get")
        return _action(repo, ("110102", 0.0), ("110104", 0.0))

    got = measure(win, [("move", move), ("get", get)])
    return {name: [r.event_code for r in c.received] for name, c in got.items()}, runs


@pytest.mark.parametrize("behind", [0.0, 0.5])
def test_a_message_that_arrives_in_the_next_case_s_window_is_placed_by_its_stamp(
    repo: Repository, behind: float
) -> None:
    repo.stamp = lambda t: _iso(t - behind)
    events, runs = _slow_move_then_get(repo)
    assert events == {"move": ["110102", "110104"], "get": ["110102", "110104"]}
    assert runs == ["move", "get"]  # one stamped pass


def _stamped_actions(repo: Repository, runs: list[str], *plan: tuple[str, tuple[str, float, float, str | None]]):
    """Actions that each take 0.05 s and make the device send (code, after, made, stamp) when they end."""

    def action(name: str, message: tuple[str, float, float, str | None] | None) -> Callable[[], str]:
        def run() -> str:
            runs.append(name)
            repo.sleep(0.05)
            if message:
                repo.send(*message)
            return "done"

        return run

    return [(name, action(name, message)) for name, message in plan]


def test_a_stamped_pass_waits_a_short_gap_between_actions_and_the_last_one_s_arrival(repo: Repository) -> None:
    repo.stamp = _iso
    win = _window(repo)
    runs: list[str] = []
    plan = [(name, ("110112", 0.003, 0.0, None)) for name in "abcde"]
    began = repo.now()
    got = measure(win, _stamped_actions(repo, runs, *plan))
    took = repo.now() - began
    assert runs == list("abcde") and all([r.event_code for r in c.received] == ["110112"] for c in got.values())
    # Five actions of 0.05 s, each followed by MIN_GAP, then MIN_WAIT twice from the last one's end for its
    # messages (as windows wait once more after the last), each wait ending when due, not a poll past it (they
    # overran by 0.12 s together): by windows it took 6 x MIN_WAIT and a drain.
    least = 5 * 0.05 + 4 * MIN_GAP + 2 * MIN_WAIT
    assert least - 1e-9 <= took <= least + POLL / 2


def test_the_last_action_s_message_later_than_its_wait_comes_in_one_more(repo: Repository) -> None:
    """c's Security Alert arrives 0.5 s after c, a is fast: past the wait a's latency teaches (MIN_WAIT), within
    one more, as windows would also wait for it. Before, the stamped pass ended without it."""
    repo.stamp = _iso
    win = _window(repo)
    runs: list[str] = []
    plan = [("a", ("110104", 0.003, 0.0, None)), ("b", None), ("c", ("110113", 0.5, 0.0, None))]
    got = measure(win, _stamped_actions(repo, runs, *plan))
    assert runs == list("abc")
    assert {name: [r.event_code for r in c.received] for name, c in got.items()} == {
        "a": ["110104"],
        "b": [],
        "c": ["110113"],
    }


def test_a_stamp_late_in_its_gap_has_the_actions_measured_by_windows(repo: Repository) -> None:
    """b's message is made 0.07 s after b ended (past half the 0.1 s gap) and arrives 0.5 s later, in c's time:
    a stamp that late may as well have been made in c's; windows measure all three again."""
    repo.stamp = _iso
    win = _window(repo)
    runs: list[str] = []
    plan = [("a", ("110104", 0.0, 0.0, None)), ("b", ("110112", 0.5, 0.07, None)), ("c", None)]
    got = measure(win, _stamped_actions(repo, runs, *plan))
    assert runs == list("abc") * 3  # stamped, then by windows twice: b's message came after its window
    assert {name: [r.event_code for r in c.received] for name, c in got.items()} == {
        "a": ["110104"],
        "b": ["110112"],
        "c": [],
    }


def test_a_message_without_a_stamp_has_the_actions_measured_by_windows(repo: Repository) -> None:
    repo.stamp = _iso
    win = _window(repo)
    runs: list[str] = []
    plan = [("a", ("110104", 0.0, 0.0, None)), ("b", ("110112", 0.0, 0.0, "")), ("c", None)]
    got = measure(win, _stamped_actions(repo, runs, *plan))
    assert runs == ["a", "b", "a", "b", "c"]  # given up as soon as it came
    assert [r.event_code for r in got["b"].received] == ["110112"]


def test_without_stamps_the_same_message_stays_where_it_arrived(repo: Repository) -> None:
    """What the stamps fix: by arrival alone the C-GET's window hides the C-MOVE's Instances Transferred."""
    events, runs = _slow_move_then_get(repo)
    assert events == {"move": ["110102"], "get": ["110102", "110104", "110104"]}
    assert runs == ["move", "get"]


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(lambda t: _iso(t, digits=0), id="whole-seconds"),
        pytest.param(lambda t: _iso(t - 5.0), id="clock-behind"),
        pytest.param(lambda t: _iso(t + 5.0), id="clock-ahead"),
        pytest.param(lambda t: _iso(t)[:-1], id="no-time-zone"),
    ],
)
def test_stamps_too_coarse_or_from_another_clock_are_not_used(repo: Repository, stamp: Callable[[float], str]) -> None:
    repo.stamp = stamp
    events, _ = _slow_move_then_get(repo)
    assert events == {"move": ["110102"], "get": ["110102", "110104", "110104"]}


@pytest.mark.parametrize("behind", [0.03, 0.07, 0.5, 0.9])
def test_a_device_clock_behind_ours_places_each_message_in_its_own_action(repo: Repository, behind: float) -> None:
    """A device on another host, its clock `behind` s behind ours (within SKEW, so its stamps are used): each
    message, made as its action ends and arriving 3 ms later, stamped `behind` early. By the stamp alone it
    lies in the action before, or before the pass (then in none); its fastest arrival bounds the offset."""
    repo.stamp = lambda t: _iso(t - behind)
    win = _window(repo)
    runs: list[str] = []
    plan = [(name, (code, 0.003, 0.0, None)) for name, code in zip("abc", ["110104", "110112", "110113"], strict=True)]
    got = measure(win, _stamped_actions(repo, runs, *plan))
    assert {name: [r.event_code for r in c.received] for name, c in got.items()} == {
        "a": ["110104"],
        "b": ["110112"],
        "c": ["110113"],
    }
    assert runs == list("abc")  # one stamped pass: the offset is known, not a reason to measure by windows


def test_a_stamped_message_between_two_windows_is_placed_not_late(repo: Repository) -> None:
    repo.stamp = _iso
    win = _window(repo)
    _open_for(repo, win, ("110104", 0.0))  # learned: fast, MIN_WAIT
    a = win.during(lambda: _action(repo, ("110112", 1.0)))
    repo.sleep(1.0)  # it arrives between the windows
    b = win.during(lambda: _action(repo))
    assert (a.received, b.late) == ([], 1)  # by arrival: late, in no case
    got = attribute(repo.path, {"a": a, "b": b})
    assert [r.event_code for r in got["a"].received] == ["110112"] and got["b"].received == []
    assert [c.late for c in got.values()] == [0, 0]


def test_no_actions_wait_for_nothing(repo: Repository) -> None:
    repo.stamp = _iso
    win, began = _window(repo), repo.now()
    assert measure(win, []) == {} and repo.now() == began


def _other_cases(repo: Repository, seconds: float, stamp: str | None = None) -> None:
    """What the run does after the audit pass: the device audits an operation every 0.1 s for `seconds`."""
    for _ in range(round(seconds / 0.1)):
        repo.sleep(0.1)
        repo.send("110112", 0.003, stamp=stamp)


def _begun(repo: Repository, arrivals: dict[str, tuple[str, float]]) -> tuple[Measuring[str], list[str]]:
    """A stamped pass begun on actions that each make the device send (code, seconds to arrive) as they end."""
    repo.stamp = _iso
    win = _window(repo)
    runs: list[str] = []
    plan = [(name, (code, after, 0.0, None)) for name, (code, after) in arrivals.items()]
    return begin(win, _stamped_actions(repo, runs, *plan)), runs


def test_a_stamped_pass_placed_after_the_run_s_other_cases_waits_no_more(repo: Repository) -> None:
    """The pass waits MIN_GAP after each action and returns; the run's other cases give the last action's
    messages their time to arrive. What they make the device audit is stamped after the pass: in no case."""
    began = repo.now() + 10  # after the device's start (`_window`)
    measuring, runs = _begun(repo, {"a": ("110104", 0.003), "b": ("110110", 0.003), "c": ("110113", 0.003)})
    assert repo.now() - began == pytest.approx(3 * 0.05 + 3 * MIN_GAP, abs=3 * 0.002)
    _other_cases(repo, 3.0)
    asked = repo.now()
    got = measuring.result()
    assert repo.now() == asked and runs == list("abc")
    assert {name: [r.event_code for r in c.received] for name, c in got.items()} == {
        "a": ["110104"],
        "b": ["110110"],
        "c": ["110113"],
    }
    assert measuring.result() is got  # placed once


def test_a_last_message_stamped_in_the_pass_is_placed_however_late_it_arrives(repo: Repository) -> None:
    measuring, runs = _begun(repo, {"a": ("110104", 0.003), "b": ("110113", 2.5)})
    _other_cases(repo, 3.0)
    got = measuring.result()
    assert runs == ["a", "b"] and [r.event_code for r in got["b"].received] == ["110113"]


def test_a_stamped_pass_asked_at_once_waits_for_the_last_action_s_messages(repo: Repository) -> None:
    """Nothing ran since the pass: its result waits twice MIN_WAIT from the last action's end, as windows would."""
    measuring, _ = _begun(repo, {"a": ("110104", 0.003), "b": ("110113", 0.45)})
    got = measuring.result()
    assert [r.event_code for r in got["b"].received] == ["110113"]


def test_an_unstamped_message_after_the_pass_has_the_actions_measured_by_windows(repo: Repository) -> None:
    """The pass cannot tell whose a message without a stamp is: its actions are measured again, by windows."""
    measuring, runs = _begun(repo, {"a": ("110104", 0.003), "b": ("110113", 0.003)})
    _other_cases(repo, 1.0, stamp="")
    got = measuring.result()
    assert runs == ["a", "b", "a", "b"]
    assert {name: [r.event_code for r in c.received] for name, c in got.items()} == {
        "a": ["110104"],
        "b": ["110113"],
    }
