"""Our own Python processes (simulators, the suites' pytest) forked from one process that imported their libraries.

Each run starts four Python processes, and their imports were a third of a demo's CPU (py-spy, design 23).
A fork server (`harness.launch._zygote`) imports pydicom, pynetdicom, pytest and the simulators once per
harness process; a start is then a fork: its own session, log, working folder and environment, its
command line shown by ps as it would be, its exit code and signals as a fresh process gives them. The
device is never forked: it starts as its profile says. On by default; PATCHGATE_FORK=0 starts every
process plainly. A server that cannot start, or dies, leaves every later start to subprocess.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["FORKABLE", "FORK_ENV", "LOST", "ForkServer", "Forked", "forkable", "server", "warm"]

FORK_ENV = "PATCHGATE_FORK"
FORKABLE = frozenset({"simulators.pacs", "simulators.audit.repository", "simulators.ris", "pytest"})
LOST = 255  # the exit code of a child whose server died before telling it: never 0 or 1, never a signal
_READY_TIMEOUT = 60.0  # s for the server's imports on a loaded 2-core machine (about 1 s when idle)
_REPLY_TIMEOUT = 30.0  # s for the answer to one start (a fork: milliseconds)


def forkable(argv: Sequence[str], role: str) -> str | None:
    """The module `argv` runs when it is `python -P -m MODULE ...` of ours and not the device; else None."""
    if role == "device" or len(argv) < 4 or list(argv[:3]) != [sys.executable, "-P", "-m"]:
        return None
    return argv[3] if argv[3] in FORKABLE else None


class Forked:
    """A forked child, as much of subprocess.Popen as the launchers use: pid, poll, wait, returncode, args."""

    def __init__(self, owner: ForkServer, pid: int, args: Sequence[str]) -> None:
        self.owner, self.pid, self.args = owner, pid, list(args)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.owner.code_of(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self.owner.wait_for(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        self.returncode = code
        return code


class ForkServer:
    """One `harness.launch._zygote` process and a thread reading what it says."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "harness.launch._zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is the harness's to handle, not the server's
        )
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._codes: dict[int, int] = {}
        self._ended = threading.Condition()
        self._lock = threading.Lock()  # one start at a time: replies come in the order of the requests
        self.dead = False
        assert self._process.stdout is not None and self._process.stdin is not None
        self._stdin: IO[bytes] = self._process.stdin
        threading.Thread(target=self._read, args=(self._process.stdout,), name="fork-server", daemon=True).start()
        ready = self._reply(_READY_TIMEOUT)
        if "ready" not in ready:
            self.close()
            raise OSError(f"the fork server did not start: {ready}")

    def spawn(self, module: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> Forked:
        """Start `argv` (python -P -m MODULE ...) as a child of the server; OSError when it cannot."""
        request = {"module": module, "argv": list(argv), "env": dict(env), "cwd": str(cwd), "log": str(log)}
        with self._lock:
            if self.dead:
                raise OSError("the fork server is gone")
            try:
                self._stdin.write((json.dumps(request) + "\n").encode())
                self._stdin.flush()
            except OSError:
                self.dead = True
                raise
            reply = self._reply(_REPLY_TIMEOUT)
        if "pid" not in reply:
            raise OSError(str(reply.get("error", reply)))
        return Forked(self, int(reply["pid"]), argv)

    def code_of(self, pid: int) -> int | None:
        """The child's exit code once the server said it; LOST when the server died and the child is gone."""
        with self._ended:
            if pid in self._codes:
                return self._codes[pid]
            if self.dead and not _running(pid):
                return LOST
            return None

    def wait_for(self, pid: int, timeout: float | None) -> int | None:
        with self._ended:
            self._ended.wait_for(lambda: self.code_of(pid) is not None or self.dead, timeout)
        return self.code_of(pid)

    def close(self) -> None:
        """End the server (its children run on: each has its own lifeline and is stopped by its owner)."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=5)

    def _heard(self, message: dict[str, Any]) -> None:
        """One line from the server, in its order: a child's end, or the answer to a start."""
        with self._ended:
            if "exit" in message:
                self._codes[int(message["exit"])] = int(message["code"])
                self._ended.notify_all()
                return
            if "pid" in message:
                # A new child may get the pid of one that ended before (the server reaped it, and said so, first):
                # that one's code is not this one's.
                self._codes.pop(int(message["pid"]), None)
        self._replies.put(message)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            self.dead = True
            return {"error": f"no answer from the fork server within {timeout:g} s"}

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._heard(json.loads(line))
        with self._ended:
            self.dead = True
            self._ended.notify_all()
        self._replies.put({"error": "the fork server ended"})


def _running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie does not): /proc, as the child is not ours to wait for."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


_server: ForkServer | None = None
_failed = False
_guard = threading.Lock()


def _turned_off() -> bool:
    return os.environ.get(FORK_ENV, "").strip() == "0"


def server() -> ForkServer | None:
    """This process's fork server, started on first use; None with PATCHGATE_FORK=0 or when it cannot run."""
    global _server, _failed
    if _turned_off():
        return None
    with _guard:
        if _server is not None and _server.dead:
            _server, _failed = None, True  # lost once: the rest of this process starts processes plainly
        if _server is None and not _failed:
            try:
                _server = ForkServer()
                atexit.register(_server.close)
            except OSError:
                _failed = True
        return _server


def warm() -> None:
    """Start this process's fork server in the background: its imports overlap the run's set-up (ports, PKI)."""
    if not _turned_off() and _server is None and not _failed:
        threading.Thread(target=server, name="fork-server-start", daemon=True).start()
