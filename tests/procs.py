"""Test processes: simulators started and stopped, and what /proc shows (who is alive, what runs with a path)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NoReturn

import pytest

from simulators._net import parse_listening

LISTENING_TIMEOUT = 30.0  # a simulator's imports on a loaded 2-core machine take seconds; 30 s is far from them


def launch(args: Sequence[str], *, log: Path | None = None, new_session: bool = False) -> subprocess.Popen[str]:
    """`python ARGS` (e.g. `-m simulators.pacs ... --port 0`), stdout piped for its 'listening' line, stderr to `log`.

    `new_session`: its own process group (what ProcProbe reads). Without `log` stderr is dropped.
    """
    with contextlib.ExitStack() as stack:
        err: IO[str] | int = stack.enter_context(log.open("w")) if log is not None else subprocess.DEVNULL
        # The child keeps its own copy of the log's descriptor; ours closes when the block ends.
        return subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=new_session
        )


def listening(
    proc: subprocess.Popen[str], *, log: Path | None = None, name: str = "dicom", timeout: float = LISTENING_TIMEOUT
) -> tuple[str, int]:
    """(host, port) of listener `name` in the 'listening' line `proc` prints (simulators._net.parse_listening).

    Waits `timeout` seconds at most; on no line, an exit or a line that does not parse, kills `proc`
    and fails the test with what it wrote to `log`.
    """
    assert proc.stdout is not None, "launch the simulator with stdout=PIPE"
    fd = proc.stdout.fileno()  # read raw: a readline() on the text wrapper could block past the deadline
    end = time.monotonic() + timeout
    got = b""
    while b"\n" not in got:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            _fail(proc, log, f"no 'listening' line within {timeout:g} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            _fail(proc, log, f"exited with code {proc.wait(5)} before its 'listening' line")
        got += chunk
    line = got.split(b"\n", 1)[0].decode(errors="replace")
    try:
        return parse_listening(line)[name]
    except (ValueError, KeyError) as exc:
        _fail(proc, log, f"no {name} listener in its first line: {exc}")


def start_simulator(
    args: Sequence[str], *, log: Path | None = None, new_session: bool = False, timeout: float = LISTENING_TIMEOUT
) -> tuple[subprocess.Popen[str], str, int]:
    """`launch` then `listening`: the process and the host and port of its DICOM listener."""
    proc = launch(args, log=log, new_session=new_session)
    host, port = listening(proc, log=log, timeout=timeout)
    return proc, host, port


def stop(proc: subprocess.Popen[str], grace: float = 10.0) -> int:
    """SIGTERM, SIGKILL if it has not ended after `grace` seconds (then 5 s more at most); its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def _fail(proc: subprocess.Popen[str], log: Path | None, why: str) -> NoReturn:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)
    text = log.read_text(errors="replace") if log is not None and log.exists() else ""
    where = f"; its stderr ({log}):\n{text}" if text else ("; its stderr log is empty" if log else "")
    words = proc.args if isinstance(proc.args, list) else [proc.args]  # launch() passes a list
    command = textwrap.shorten(" ".join(map(str, words)), 160)  # a `python -c` script is long
    pytest.fail(f"{command}: {why}{where}")


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> dict[int, str]:
    """pid -> command line of the live processes below `pid`: children, and theirs (the fork server's children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    below: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in below}
        below |= frontier
    return {found: cmdline(found) for found in sorted(below)}


def mentioning(text: str) -> dict[int, str]:
    """pid -> command line of every live process (but this one) whose command line holds `text`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            line = cmdline(int(entry.name))
            if text in line and alive(int(entry.name)):
                found[int(entry.name)] = line
    return found


def kill_all(found: dict[int, str]) -> None:
    """SIGKILL what is still the same process (a pid that exited may since belong to someone else)."""
    for pid, line in found.items():
        if alive(pid) and cmdline(pid) == line:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
