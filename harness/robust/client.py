"""The suites' end of the attack window channel: begin and end an input's window, ask for a revival, wait for each answer."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.robust.records import WindowAnswer, WindowRequest
from harness.rundir import RunDir, claim_ticket, next_ticket

__all__ = ["POLL", "Windows"]

POLL = 0.02  # seconds between looks for an answer; the harness looks at requests about as often


class Windows:
    """`begin(input)`, `end(input)`, `revive(input, reaction, detail)` -> WindowAnswer; every wait bounded.

    A request is `robustness/windows/NNNN.request.json`, its answer `NNNN.result.json`. An answer that does
    not come within `timeout` s, or a channel the harness has closed, is a `stop`: the suites send no more
    inputs. Once a stop came, every later request gets the same stop at once (`stopped`).
    """

    def __init__(self, run: RunDir, timeout: float, *, poll: float = POLL) -> None:
        if timeout <= 0:
            raise ValueError(f"window timeout must be > 0 s, not {timeout:g}")
        self.run = run
        self.timeout = timeout
        self.poll = poll
        self.stopped = ""
        self._next = 0  # 0: not looked at the folder yet

    def begin(self, input_id: str) -> WindowAnswer:
        return self._ask(WindowRequest("begin", input_id))

    def end(self, input_id: str) -> WindowAnswer:
        return self._ask(WindowRequest("end", input_id))

    def revive(self, input_id: str, reaction: str, detail: str) -> WindowAnswer:
        return self._ask(WindowRequest("revive", input_id, reaction, detail))

    def _ask(self, request: WindowRequest) -> WindowAnswer:
        if self.stopped:
            return WindowAnswer(stop=self.stopped)
        if self.run.windows_closed.exists():
            return self._stop("the harness closed the attack window channel")
        data = (json.dumps(request.to_json(), sort_keys=True) + "\n").encode("utf-8")
        if not self._next:
            self._next = next_ticket(self.run.windows)
        ticket = claim_ticket(self.run.windows, self.run.window_request, data, self._next)
        self._next = ticket + 1
        path = self.run.window_result(ticket)
        until = time.monotonic() + self.timeout
        while True:
            answer = _read(path)
            if answer is None and self.run.windows_closed.exists():  # answers are written before the close
                answer = _read(path) or WindowAnswer(stop="the harness closed the attack window channel")
            if answer is not None:
                if answer.stop:
                    self.stopped = answer.stop
                return answer
            if time.monotonic() >= until:
                return self._stop(f"no answer to {request.op} {request.input} within {self.timeout:g} s")
            time.sleep(self.poll)

    def _stop(self, why: str) -> WindowAnswer:
        self.stopped = why
        return WindowAnswer(stop=why)


def _read(path: Path) -> WindowAnswer | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return WindowAnswer.from_json(json.loads(text))
    except ValueError:  # written atomically: an answer that does not parse is a harness bug, and ends the phase
        return WindowAnswer(stop=f"{path}: an answer that does not parse")
