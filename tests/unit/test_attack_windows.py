"""The attack window channel (harness.robust) and an input's final reaction (suites.robustness._reaction)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.demo import demo_profile
from harness.errors import TargetError
from harness.launch.resources import CLK_TCK, container_incarnation
from harness.perf.records import Incarnation, ResourceSample
from harness.profile import RobustnessSpec
from harness.robust.client import Windows
from harness.robust.keeper import WindowKeeper
from harness.robust.records import WindowAnswer, exit_detail
from harness.rundir import RunDir
from simulators._lifeline import HEARTBEAT_ENV
from simulators.attack.health import Health
from simulators.attack.react import Reaction
from simulators.attack.run import Outcome
from suites.robustness._reaction import NOT_SENT, buckets, final


class FakeProbe:
    """Who the device is: one long-lived server process (pid 10) until `replace()`, after which it is pid 11."""

    source = "fake"

    def __init__(self) -> None:
        self.pid = 10
        self.start = 100
        self.taken = 10_000

    def read(self) -> ResourceSample | None:
        return None

    def incarnation(self) -> Incarnation:
        # Started at tick 100, read at tick 10,000: settled, so its going is a restart, not an association's child.
        processes = frozenset({(1, 1), (self.pid, self.start)})
        return Incarnation(True, None, None, False, 0, "1", processes, taken=self.taken)

    def replace(self) -> None:
        self.pid = 11


class FakeDevice:
    """A device process as the keeper sees one: alive until `exit(code)`."""

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.probe = FakeProbe()

    def alive(self) -> bool:
        return self.exit_code is None

    def exit(self, code: int) -> None:
        self.exit_code = code

    def resources(self) -> FakeProbe:
        return self.probe


class Harness:
    """The runner's part: the current device, and a restart that starts a new one (or fails)."""

    def __init__(self, run: RunDir, spec: RobustnessSpec, *, fail: bool = False) -> None:
        self.device = FakeDevice()
        self.restarts: list[str] = []
        self.slept: list[float] = []
        self.fail = fail
        self.keeper = WindowKeeper(run, spec, lambda: self.device, self.restart, sleep=self.sleep).start()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.device.probe.taken += round(seconds * CLK_TCK)

    def restart(self, after: str) -> None:
        if self.fail:
            raise TargetError("device did not answer C-ECHO within 20 s")
        self.restarts.append(after)
        self.device = FakeDevice()


def _ask(harness: Harness, client: Windows, call: str, *args: str) -> WindowAnswer:
    """One request from a suites thread, answered by the keeper on this (the runner's) thread."""
    got: list[WindowAnswer] = []
    thread = threading.Thread(target=lambda: got.append(getattr(client, call)(*args)))
    thread.start()
    while thread.is_alive():
        harness.keeper.serve()
        thread.join(0.01)
    return got[0]


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    return RunDir(tmp_path)


def test_an_exit_inside_a_window_is_the_input_s_reaction_and_is_revived(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True)), Windows(run, timeout=5)
    assert _ask(harness, client, "begin", "pdu.pdata.over-max") == WindowAnswer()
    harness.device.exit(70)
    assert _ask(harness, client, "end", "pdu.pdata.over-max") == WindowAnswer(exited=True, detail="exit code 70")
    assert harness.keeper.covers_exit and not harness.keeper.crashed_outside
    assert _ask(harness, client, "revive", "pdu.pdata.over-max", "exited", "exit code 70").revived
    assert harness.restarts == ["pdu.pdata.over-max"] and harness.device.alive()
    assert not harness.keeper.covers_exit  # the device runs again: a later exit is news
    setup = harness.keeper.setup("1", "ab" * 32, ("pdu.pdata.over-max",))
    assert [(r.input, r.reaction, r.detail) for r in setup.revivals] == [
        ("pdu.pdata.over-max", "exited", "exit code 70")
    ]
    assert setup.stopped == ""
    events = [(line["event"], line["in_window"]) for line in run.read_lines(run.robustness_device)]
    assert events == [("exited", True), ("revived", True)]


def test_a_server_replaced_inside_a_window_restarted(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True)), Windows(run, timeout=5)
    _ask(harness, client, "begin", "a")
    assert _ask(harness, client, "end", "a") == WindowAnswer()  # the same processes: nothing to say
    _ask(harness, client, "begin", "b")
    harness.device.probe.replace()  # a supervisor inside started a new server
    answer = _ask(harness, client, "end", "b")
    assert answer.restarted and not answer.exited and "restarted" in answer.detail and "11" not in answer.detail
    assert not harness.keeper.covers_exit and harness.restarts == []


def test_a_device_started_just_now_settles_before_its_first_window_so_a_restart_reads_restarted(
    run: RunDir,
) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True)), Windows(run, timeout=5)
    harness.device.probe.start = harness.device.probe.taken - round(0.3 * CLK_TCK)  # the server runs 0.3 s
    _ask(harness, client, "begin", "a")
    assert harness.slept == [pytest.approx(0.7)]  # until it has run SETTLE (1 s)
    harness.device.probe.replace()
    assert _ask(harness, client, "end", "a").restarted
    # After a restart the new server is young again: the next window waits for it, a later one does not.
    harness.device.probe.start = harness.device.probe.taken - round(0.5 * CLK_TCK)
    _ask(harness, client, "begin", "b")
    _ask(harness, client, "end", "b")
    _ask(harness, client, "begin", "c")
    assert harness.slept == [pytest.approx(0.7), pytest.approx(0.5)]


def test_an_exit_between_windows_is_a_crash_outside_and_stops_the_phase(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True)), Windows(run, timeout=5)
    _ask(harness, client, "begin", "a")
    _ask(harness, client, "end", "a")
    harness.device.exit(-11)
    answer = _ask(harness, client, "begin", "b")
    assert "signal 11" in answer.stop and "outside any attack window, before input b" in answer.stop
    assert harness.keeper.crashed_outside and not harness.keeper.covers_exit
    assert client.stopped == answer.stop
    assert client.begin("c").stop == answer.stop  # later requests are told at once, without asking


def test_revivals_beyond_max_revivals_stop_the_phase(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True, max_revivals=1)), Windows(run, timeout=5)
    assert _ask(harness, client, "revive", "ds.store.sq-unterminated", "unresponsive", "silent").revived
    answer = _ask(harness, client, "revive", "ds.find.sq-unterminated", "unresponsive", "silent")
    assert not answer.revived and answer.stop.startswith("revivals exhausted")
    assert "max_revivals = 1" in answer.stop and "ds.find.sq-unterminated" in answer.stop
    assert harness.restarts == ["ds.store.sq-unterminated"]
    assert harness.keeper.setup("1", "", ()).stopped == answer.stop


def test_revive_off_stops_at_the_first_exit_and_the_exit_is_still_covered(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True, revive=False)), Windows(run, timeout=5)
    _ask(harness, client, "begin", "x")
    harness.device.exit(70)
    _ask(harness, client, "end", "x")
    answer = _ask(harness, client, "revive", "x", "exited", "exit code 70")
    assert "revive is off" in answer.stop and harness.restarts == []
    assert harness.keeper.covers_exit  # down after an exit inside a window: not device_crashed


def test_a_revival_that_fails_is_the_run_s_device_failure(run: RunDir) -> None:
    harness, client = Harness(run, RobustnessSpec(enabled=True), fail=True), Windows(run, timeout=5)
    answer = _ask(harness, client, "revive", "x", "exited", "exit code 70")
    assert answer.stop == harness.keeper.failure
    assert "did not come back after robustness input x" in answer.stop and "C-ECHO" in answer.stop


def test_a_closed_channel_and_a_silent_harness_stop_the_client(run: RunDir) -> None:
    harness = Harness(run, RobustnessSpec(enabled=True))
    slow = Windows(run, timeout=0.2)
    assert "no answer to begin a within 0.2 s" in slow.begin("a").stop  # nobody served it: bounded
    harness.keeper.close()
    assert "closed" in Windows(run, timeout=5).begin("b").stop


def test_a_killed_harness_stops_the_client_at_once_not_at_its_timeout(
    run: RunDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed with SIGKILL, the harness answers nothing and closes nothing; its heartbeat says it is gone."""
    monkeypatch.setenv(HEARTBEAT_ENV, str(run.path / "heartbeat-of-a-killed-harness"))  # removed: gone at once
    client = Windows(run, timeout=60)
    stop = client.begin("a").stop
    assert stop.startswith("the harness that started this run is gone"), stop
    assert client.end("a").stop == stop  # every later request: the same stop


def test_exit_detail_names_a_signal_for_a_negative_code() -> None:
    assert (exit_detail(70), exit_detail(-6), exit_detail(None)) == ("exit code 70", "signal 6", "exited")


HEALTHY, FAILED = Health(True, 1, "C-ECHO 0x0000"), Health(False, 3, "no association")


@pytest.mark.parametrize(
    ("reaction", "health", "exited", "expected"),
    [
        (Reaction("aborted", "A-ABORT source 0 reason 0", 0.01), HEALTHY, None, ("aborted", 0)),
        (Reaction("silent", "no answer before the deadline", 3.0), HEALTHY, None, ("silent", 1)),
        (Reaction("silent", "no answer before the deadline", 3.0), FAILED, None, ("unresponsive", 2)),
        (Reaction("closed", "EOF", 0.02), FAILED, "exit code 70", ("exited", 3)),
        (None, HEALTHY, None, (NOT_SENT, 0)),
        (None, FAILED, None, ("unresponsive", 2)),
    ],
)
def test_the_final_reaction_is_the_most_severe_that_applies(
    reaction: Reaction | None, health: Health, exited: str | None, expected: tuple[str, int]
) -> None:
    outcome = Outcome("x", reaction, health, 1.0, skipped="" if reaction else "announced no maximum")
    got = final(outcome, exited)
    assert (got.kind, got.severity) == expected
    assert got.needs_revival is (got.kind in ("exited", "unresponsive"))
    if exited:
        assert (got.detail, got.when) == (exited, "immediate")


def test_flood_counts_become_buckets() -> None:
    assert buckets((("accepted", 32),)) == {"accepted": "all"}
    assert buckets((("accepted", 20), ("rejected", 12), ("silent", 0))) == {"accepted": "some", "rejected": "some"}


def test_demo_switches_the_robustness_phase_on_for_its_variants() -> None:
    assert demo_profile().robustness.enabled is False
    crash = demo_profile("crash-on-oversized-pdu").robustness
    assert crash.enabled and crash.inputs == ("pdu.pdata.over-max",)
    assert demo_profile("hang-on-unterminated-sequence").robustness.inputs == ("ds.*.sq-unterminated",)
    assert demo_profile("pdu-limit", baseline="crash-on-oversized-pdu").robustness.inputs == ("pdu.pdata.over-max",)
    assert demo_profile("slow-store").robustness.enabled is False


def test_a_restart_outranks_what_the_wire_saw() -> None:
    outcome = Outcome("x", Reaction("closed", "EOF", 0.02), FAILED, 1.0)
    got = final(outcome, None, "restarted: a process of the device was replaced while the device ran on")
    assert (got.kind, got.severity, got.needs_revival) == ("restarted", 3, False)


class FakeContainer:
    """A container device as the keeper sees one: its state read through inspect attributes (container_incarnation)."""

    def __init__(self) -> None:
        self.state: dict[str, object] = {"Running": True, "ExitCode": 0, "StartedAt": "T1", "OOMKilled": False}
        self.restart_count = 0
        self.exit_code: int | None = None

    def alive(self) -> bool:
        if not self.state["Running"]:
            self.exit_code = int(str(self.state["ExitCode"]))
        return bool(self.state["Running"])

    def resources(self) -> FakeContainer:
        return self

    source = "fake"

    def read(self) -> ResourceSample | None:
        return None

    def incarnation(self) -> Incarnation:
        return container_incarnation({"State": dict(self.state), "RestartCount": self.restart_count}, frozenset(), 0)


def _container_keeper(run: RunDir, settle: str = "") -> tuple[WindowKeeper, FakeContainer, list[int]]:
    device, settled = FakeContainer(), []

    def settle_device() -> str:
        settled.append(1)
        return settle

    keeper = WindowKeeper(run, RobustnessSpec(enabled=True), lambda: device, lambda _: None, settle_device).start()
    return keeper, device, settled


def _window(keeper: WindowKeeper, input_id: str, during: Callable[[], None]) -> WindowAnswer:
    client = Windows(keeper.run, timeout=5)
    got: list[WindowAnswer] = []

    def suites() -> None:
        client.begin(input_id)
        during()
        got.append(client.end(input_id))

    thread = threading.Thread(target=suites)
    thread.start()
    while thread.is_alive():
        keeper.serve()
        thread.join(0.01)
    return got[0]


@pytest.mark.parametrize(
    ("code", "oom", "detail"),
    [(70, False, "exit code 70"), (139, False, "signal 11"), (137, True, "signal 9, killed for memory (OOMKilled)")],
)
def test_a_container_s_exit_reads_its_code_the_signal_behind_docker_init_and_an_oom_kill(
    run: RunDir, code: int, oom: bool, detail: str
) -> None:
    keeper, device, _ = _container_keeper(run)
    answer = _window(keeper, "x", lambda: device.state.update(Running=False, ExitCode=code, OOMKilled=oom))
    assert answer == WindowAnswer(exited=True, detail=detail)
    assert keeper.covers_exit


def test_a_container_the_engine_restarted_reads_restarted_and_is_waited_for(run: RunDir) -> None:
    keeper, device, settled = _container_keeper(run, settle="did not answer C-ECHO within 60 s")
    assert _window(keeper, "a", lambda: None) == WindowAnswer() and settled == []

    def crash_and_restart() -> None:  # on-failure: exit 70, the engine starts it again
        device.restart_count += 1
        device.state.update(StartedAt="T2")

    answer = _window(keeper, "b", crash_and_restart)
    assert answer == WindowAnswer(
        restarted=True, detail="restarted: the engine started the container again (its restart policy)"
    )
    assert settled == [1] and not keeper.covers_exit and keeper.revivals == []
    keeper.close()
    lines = run.read_lines(run.robustness_device)
    assert [(line["event"], line["input"]) for line in lines] == [("restarted", "b"), ("not-ready", "b"), ("state", "")]
    assert lines[1]["detail"] == "did not answer C-ECHO within 60 s"
    assert {k: lines[2][k] for k in ("detail", "running", "restart_count", "oom_killed")} == {
        "detail": "running",
        "running": True,
        "restart_count": 1,
        "oom_killed": False,
    }


def test_inputs_past_the_budget_are_not_begun_and_the_phase_says_why(run: RunDir) -> None:
    now = [100.0]
    spec = RobustnessSpec(enabled=True, budget=30)
    harness = Harness(run, spec)
    harness.keeper.clock = lambda: now[0]
    client = Windows(run, timeout=5)
    for input_id, at in (("a", 100.0), ("b", 120.0), ("c", 130.0)):  # the budget runs from the first begin
        now[0] = at
        assert _ask(harness, client, "begin", input_id) == WindowAnswer()
        assert _ask(harness, client, "end", input_id) == WindowAnswer()
    now[0] = 130.5
    answer = _ask(harness, client, "begin", "d")
    assert answer.stop == (
        "the robustness budget of 30 s was spent after 3 input(s), before input d: "
        "the remaining inputs were not run (raise [robustness] budget)"
    )
    assert harness.keeper.setup("1", "", ()).stopped == answer.stop  # the manifest's stop: INCONCLUSIVE


def test_skip_takes_inputs_out_after_the_inputs_globs() -> None:
    spec = RobustnessSpec(enabled=True, inputs=("pdu.*", "load.*"), skip=("load.flood", "pdu.rq.*"))
    assert [spec.covers(i) for i in ("pdu.type-unknown", "pdu.rq.twice", "load.flood", "load.slowloris", "ds.x")] == [
        True, False, False, True, False,
    ]  # fmt: skip
