"""A ticketed file channel from the suites to the harness: write a numbered request, wait (bounded) for its answer."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from harness.rundir import claim_ticket, next_ticket
from simulators._lifeline import Lifeline

__all__ = ["CLOSED", "GONE", "Channel", "Closed", "read_answer"]

T = TypeVar("T")


class Closed(enum.Enum):
    """The harness closed the channel before it answered, or is gone (killed: it never will)."""

    CLOSED = "closed"
    GONE = "gone"


CLOSED: Final = Closed.CLOSED
GONE: Final = Closed.GONE


class Channel:
    """`send(request)` -> ticket; `wait(answer_path, read)` -> the answer, CLOSED, GONE, or None when `timeout`
    passed.

    A ticket number is claimed by creating its request file exclusively (a hard link of a written
    temporary, `harness.rundir.claim_ticket`), so several suites processes may share one folder and the
    harness never reads half a request. The harness writes every answer before it creates `closed`, so
    a closed channel is read once more before it counts as closed. A harness killed with SIGKILL closes
    nothing: once its heartbeat has gone stale (`lifeline`; why in `gone`) a wait ends GONE, not at its
    timeout (an attack window's is minutes), so orphaned suites stop as soon as they can tell.
    """

    def __init__(
        self,
        folder: Path,
        request: Callable[[int], Path],
        closed: Path,
        timeout: float,
        poll: float,
        *,
        what: str,
        lifeline: Lifeline | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"{what} timeout must be > 0 s, not {timeout:g}")
        self.folder = folder
        self.request = request
        self.closed = closed
        self.timeout = timeout
        self.poll = poll
        self.lifeline = lifeline or Lifeline()
        self.gone = ""  # why the harness counts as gone, once a wait found it so
        self._next = 0  # 0: not looked at the folder yet

    def send(self, request: Mapping[str, Any]) -> int:
        data = (json.dumps(request, sort_keys=True) + "\n").encode("utf-8")
        if not self._next:
            self._next = next_ticket(self.folder)
        ticket = claim_ticket(self.folder, self.request, data, self._next)
        self._next = ticket + 1
        return ticket

    def wait(self, path: Path, read: Callable[[Path], T | None]) -> T | Closed | None:
        until = time.monotonic() + self.timeout
        while True:
            answer = read(path)
            if answer is not None:
                return answer
            if self.closed.exists():
                answer = read(path)
                return CLOSED if answer is None else answer
            if why := self.lifeline.gone():
                self.gone = why
                return GONE
            if time.monotonic() >= until:
                return None
            time.sleep(self.poll)


def read_answer(path: Path, parse: Callable[[Any], T], invalid: Callable[[], T]) -> T | None:
    """The answer at `path`, None while there is none; `invalid()` for one that does not parse.

    Answers are written atomically, so one that does not parse is a harness bug, never half a file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return parse(json.loads(text))
    except ValueError:
        return invalid()
