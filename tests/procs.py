"""Processes as /proc shows them: who is alive, what runs with a given path on its command line."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


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


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the live processes whose parent is `pid`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found[int(entry.name)] = cmdline(int(entry.name))
    return found


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
