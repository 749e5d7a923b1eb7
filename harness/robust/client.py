"""The suites' end of the attack window channel: begin and end an input's window, ask for a revival, wait for each answer."""

from __future__ import annotations

from pathlib import Path

from harness.channel import CLOSED, GONE, Channel, read_answer
from harness.robust.records import WindowAnswer, WindowRequest
from harness.rundir import RunDir

__all__ = ["POLL", "Windows"]

POLL = 0.02  # seconds between looks for an answer; the harness looks at requests about as often
_CLOSED = "the harness closed the attack window channel"


class Windows:
    """`begin(input)`, `end(input)`, `revive(input, reaction, detail)` -> WindowAnswer; every wait bounded.

    A request is `robustness/windows/NNNN.request.json`, its answer `NNNN.result.json`. An answer that does
    not come within `timeout` s, or a channel the harness has closed, is a `stop`: the suites send no more
    inputs. Once a stop came, every later request gets the same stop at once (`stopped`).
    """

    def __init__(self, run: RunDir, timeout: float, *, poll: float = POLL) -> None:
        self.run = run
        self.channel = Channel(run.windows, run.window_request, run.windows_closed, timeout, poll, what="window")
        self.stopped = ""

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
            return self._stop(_CLOSED)
        ticket = self.channel.send(request.to_json())
        answer = self.channel.wait(self.run.window_result(ticket), _read)
        if answer is None:
            return self._stop(f"no answer to {request.op} {request.input} within {self.channel.timeout:g} s")
        if answer is CLOSED:
            return self._stop(_CLOSED)
        if answer is GONE:
            return self._stop(self.channel.gone)
        if answer.stop:
            self.stopped = answer.stop
        return answer

    def _stop(self, why: str) -> WindowAnswer:
        self.stopped = why
        return WindowAnswer(stop=why)


def _read(path: Path) -> WindowAnswer | None:
    return read_answer(
        path, WindowAnswer.from_json, lambda: WindowAnswer(stop=f"{path}: an answer that does not parse")
    )
