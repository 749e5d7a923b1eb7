"""The harness's end of the attack window channel: answers begin, end and revive, and watches the device meanwhile."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from harness.errors import HarnessError
from harness.launch.resources import Incarnation, ResourceProbe, change, engine_restarted, unsettled
from harness.model import JSON, Revival, RobustnessSetup
from harness.profile import RobustnessSpec
from harness.robust.records import WindowAnswer, WindowRequest, exit_detail
from harness.rundir import RunDir, write_json_atomic

__all__ = ["Device", "WindowKeeper"]


class Device(Protocol):
    """What the keeper needs of the device it watches (a `harness.launch.base.Launched`)."""

    exit_code: int | None

    def alive(self) -> bool: ...

    def resources(self) -> ResourceProbe | None: ...


class WindowKeeper:
    """One run's attack windows (design 8.6), served from the runner's loop with `serve()`.

    A device exit seen at an input's `end` is that input's reaction, not a crashed run (`covers_exit`);
    an exit found at a `begin` happened outside any window (`crashed_outside`). A device that runs at
    `end` but whose settled processes changed since `begin` (a supervisor inside replaced its server;
    harness.launch.resources.change) `restarted`. `revive` restarts the device through `restart(input)`
    (which raises HarnessError when it does not come back) up to `max_revivals` times; past them, or
    with `revive = false`, the phase stops (`stopped`) and every later request gets that stop. A device that
    started just now (the first window, or after a revival or a restart) is given until its processes have run
    `SETTLE` before the window opens (`unsettled`): younger ones are not counted, so a restart would go unseen.

    A container the engine restarted (its restart policy: RestartCount grew, StartedAt changed) `restarted` too;
    `settle()` then waits until it is ready again (within its start timeout; "" when it is, else why not), so the
    next input meets a device that is up. An exit reads from the device's incarnation where it has one: a
    container's exit code, the signal behind docker-init's 128 + N, and whether the engine killed it for memory.
    """

    def __init__(self, run: RunDir, spec: RobustnessSpec, device: Callable[[], Device | None],
                 restart: Callable[[str], None], settle: Callable[[], str] = lambda: "",
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.run = run
        self.clock = clock
        self.sleep = sleep
        # The device may have started just now (the phase's first window, or after a revival or a restart):
        # the next begin waits until its processes have settled, or a restart inside the window reads `same`.
        self._fresh = True
        self._first: float | None = None  # when the first input's window began: the phase's budget runs from it
        self._begun = 0  # inputs whose window began
        self.spec = spec
        self.device = device
        self.restart = restart
        self.settle = settle
        self.revivals: list[Revival] = []
        self.stopped = ""  # why the remaining inputs were not run
        self.failure = ""  # a revival that failed: the run ends device_failed
        self.crashed_outside = ""
        self._down = ""  # the input whose window saw the device exit, while it is not revived
        self._before: Incarnation | None = None  # who the device was at the open window's begin
        self._next = 1
        self._closed = False

    @property
    def covers_exit(self) -> bool:
        """The device is down after an exit inside a window (with no revival since): not a crashed run."""
        return bool(self._down) and not self.crashed_outside

    def start(self) -> WindowKeeper:
        self.run.windows.mkdir(parents=True, exist_ok=True)
        return self

    def serve(self) -> None:
        """Answer every request written since the last call, in ticket order."""
        while not self._closed:
            path = self.run.window_request(self._next)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return
            try:
                answer = self._answer(WindowRequest.from_json(json.loads(text)))
            except (ValueError, KeyError) as exc:
                answer = WindowAnswer(stop=f"{path}: not a window request: {exc}")
            write_json_atomic(self.run.window_result(self._next), answer.to_json(), sync=False)
            self._next += 1

    def close(self) -> None:
        """No more answers: a suites process asking later is told at once (idempotent)."""
        if not self._closed:
            self.serve()
            self._closed = True
            self._log_state()
            self.run.windows.mkdir(parents=True, exist_ok=True)
            self.run.windows_closed.touch()

    def setup(
        self,
        corpus_version: str,
        corpus_sha256: str,
        inputs: tuple[str, ...],
        descriptions: Mapping[str, str] | None = None,
    ) -> RobustnessSetup:
        return RobustnessSetup(
            corpus_version, corpus_sha256, inputs, tuple(self.revivals), self.stopped, dict(descriptions or {})
        )

    def _answer(self, request: WindowRequest) -> WindowAnswer:
        if request.op == "begin":
            return self._begin(request.input)
        if request.op == "end":
            return self._end(request.input)
        return self._revive(request)

    def _begin(self, input_id: str) -> WindowAnswer:
        if self.stopped:
            return WindowAnswer(stop=self.stopped)
        now = self.clock()
        if self._first is None:
            self._first = now
        elif now - self._first > self.spec.budget:
            self.stopped = (
                f"the robustness budget of {self.spec.budget:g} s was spent after {self._begun} input(s), "
                f"before input {input_id}: the remaining inputs were not run (raise [robustness] budget)"
            )
            return WindowAnswer(stop=self.stopped)
        self._begun += 1
        device = self.device()
        if device is None or not device.alive():
            if not self._down:  # it died after the last window closed: the run's crash, as outside the phase
                detail = _exit(device) if device is not None else exit_detail(None)
                self.crashed_outside = (
                    f"the device exited ({detail}) outside any attack window, before input {input_id}"
                )
                self._log("exited", input_id, detail, window=False)
            self.stopped = self.crashed_outside or f"the device is down after input {self._down}"
            return WindowAnswer(stop=self.stopped)
        probe = device.resources()
        self._before = probe.incarnation() if probe is not None else None
        if self._fresh and probe is not None and self._before is not None:
            wait = unsettled(self._before)
            if wait:
                self.sleep(wait)
                self._before = probe.incarnation()
        self._fresh = False
        return WindowAnswer()

    def _end(self, input_id: str) -> WindowAnswer:
        device = self.device()
        if device is not None and not device.alive():
            detail = _exit(device)
            if not self._down:
                self._down = input_id
                self._log("exited", input_id, detail, window=True)
            return WindowAnswer(exited=True, detail=detail)
        before, self._before = self._before, None
        probe = device.resources() if device is not None else None
        after = probe.incarnation() if probe is not None else None
        if before is None or after is None or change(before, after) != "restarted":
            return WindowAnswer()
        # No pids, counts or times in the detail: it is compared between runs.
        if engine_restarted(before, after):
            detail = "restarted: the engine started the container again (its restart policy)"
        else:
            detail = "restarted: a process of the device was replaced while the device ran on"
        self._log("restarted", input_id, detail, window=True)
        self._fresh = True
        late = self.settle()
        if late:  # the next input finds it not answering, and that input's health check says so
            self._log("not-ready", input_id, late, window=True)
        return WindowAnswer(restarted=True, detail=detail)

    def _revive(self, request: WindowRequest) -> WindowAnswer:
        if self.stopped:
            return WindowAnswer(stop=self.stopped)
        what = f"the device {request.reaction or 'failed'} on input {request.input}"
        if not self.spec.revive:
            self.stopped = f"{what} and [robustness] revive is off: the remaining inputs were not run"
        elif len(self.revivals) >= self.spec.max_revivals:
            self.stopped = (
                f"revivals exhausted: {what} after {len(self.revivals)} revival(s) "
                f"(max_revivals = {self.spec.max_revivals}): the remaining inputs were not run"
            )
        if self.stopped:
            return WindowAnswer(stop=self.stopped)
        try:
            self.restart(request.input)
        except HarnessError as exc:
            self.failure = f"the device did not come back after robustness input {request.input}: {exc.one_line()}"
            self.stopped = self.failure
            return WindowAnswer(stop=self.stopped)
        self.revivals.append(Revival(request.input, request.reaction, request.detail))
        self._down = ""
        self._fresh = True
        self._log("revived", request.input, f"after {request.reaction}: {request.detail}", window=True)
        return WindowAnswer(revived=True)

    def _log_state(self) -> None:
        """The device's state as the phase ends, for people and tests: running, and how often its engine restarted it."""
        device = self.device()
        try:
            probe = device.resources() if device is not None else None
            now = probe.incarnation() if probe is not None else None
        except (OSError, HarnessError) as exc:  # close() runs in the runner's finally: never raise from here
            self._log("state", "", f"unknown: {exc}", window=False)
            return
        if now is None:  # nothing left to read (a removed container)
            self._log("state", "", "gone", window=False, running=False)
            return
        detail = "running" if now.running else _described(now)
        extra: dict[str, JSON] = {
            "running": now.running,
            "restart_count": now.restart_count,
            "oom_killed": now.oom_killed,
        }
        self._log("state", "", detail, window=False, **extra)

    def _log(self, event: str, input_id: str, detail: str, *, window: bool, **extra: JSON) -> None:
        line: dict[str, JSON] = {"event": event, "input": input_id, "detail": detail, "in_window": window}
        line |= extra
        line["t_ns"] = time.time_ns()
        self.run.append_line(self.run.robustness_device, line)


def _described(now: Incarnation) -> str:
    """How an exit reads: "exit code 70", "signal 11" (docker-init's 128 + 11 too), and an out-of-memory kill said."""
    code = -now.signal if now.signal is not None else now.exit_code
    detail = exit_detail(code)
    return f"{detail}, killed for memory (OOMKilled)" if now.oom_killed else detail


def _exit(device: Device) -> str:
    """An exited device's detail: from its incarnation where it has one, else its exit code."""
    probe = device.resources()
    now = probe.incarnation() if probe is not None else None
    if now is not None and not now.running:
        return _described(now)
    return exit_detail(device.exit_code)
