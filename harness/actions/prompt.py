"""The operator prompt: patchgate asks a person at the bench to do something, then waits for Enter or "fail"."""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import time
from typing import TextIO

from harness.actions.result import DONE, FAILED, TIMEOUT, ActionError
from harness.errors import printable

__all__ = ["prompt", "require_terminal"]

# One prompt at a time, whichever run asks: a person answers one question at a time.
_ONE_AT_A_TIME = threading.Lock()


def require_terminal(names: list[str], stdin: TextIO | None = None) -> None:
    """Before anything starts: a profile with operator prompts needs a terminal to ask on (ActionError otherwise)."""
    stream = sys.stdin if stdin is None else stdin
    try:
        tty = stream is not None and os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):  # closed, or a stream without a descriptor (pytest's capture)
        tty = False
    if not tty:
        raise ActionError(
            f"the profile declares operator actions ({', '.join(names)}) but patchgate has no terminal "
            "(stdin is not a tty; CI?)",
            hint="run it at the bench in a terminal, or declare command/http actions for CI",
        )


def prompt(text: str, deadline: float, *, run: str, name: str, stdin: TextIO, out: TextIO) -> tuple[str, str]:
    """Show what to do and wait up to `deadline` s: ("done", text) on Enter, ("failed", "fail") on "fail", or ("timeout", "").

    Anything typed before Enter other than "fail" is kept as the operator's remark; it still means done.
    """
    with _ONE_AT_A_TIME:
        fd = stdin.fileno()
        # Before printing: a key pressed earlier (or an answer to an earlier prompt typed twice) must not answer this one.
        try:
            termios.tcflush(fd, termios.TCIFLUSH)
        except termios.error as exc:  # not a terminal after all (run_variant called from a program)
            raise ActionError(f"operator action {name!r}: stdin is not a terminal ({exc})") from None
        out.write(
            f"\n[patchgate] {printable(run)}: OPERATOR ACTION {printable(name)}: {printable(text)}\n"
            f"  press Enter when done, or type 'fail' and Enter, within {deadline:.0f} s: "
        )
        out.flush()
        line = _read_line(fd, time.monotonic() + deadline)
        if line is None:
            out.write(f"\n[patchgate] {printable(run)}: {printable(name)}: no answer within {deadline:.0f} s\n")
            out.flush()
            return TIMEOUT, ""
        answer = line.strip()
        return (FAILED, answer) if answer.lower() == "fail" else (DONE, answer)


def _read_line(fd: int, until: float) -> str | None:
    """One line from the terminal, read unbuffered (so nothing typed after it is swallowed); None at the deadline."""
    data = b""
    while b"\n" not in data and b"\r" not in data:
        left = until - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1024)
        if not chunk:  # the terminal went away: as good as no answer
            return None
        data += chunk
    return data.decode("utf-8", errors="replace").splitlines()[0]
