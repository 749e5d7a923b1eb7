"""The fork server's own process: imports the libraries once, then forks a fresh child for every start it is asked for.

Protocol, one JSON object a line. In (stdin): `{"module", "argv", "env", "cwd", "log"}`. Out (stdout):
`{"ready": pid}` once the imports are done, `{"pid": N}` or `{"error": "..."}` for each start in order, and
`{"exit": N, "code": C}` when a child ends (C as subprocess reports it: negative for a signal). End of
stdin (the harness gone, even by SIGKILL) ends this process; its children have lifelines of their own.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import select
import signal
import sys
import threading
from typing import Any, NoReturn

# Libraries every forked module needs. Never a module pytest would rewrite the asserts of: the suites, and the
# plugins it loads by entry point (allure_pytest, harness.plugin), so only what those import.
PRELOAD = (
    "pydicom",
    "pynetdicom",
    "cryptography.x509",
    "pytest",
    "_pytest.assertion.rewrite",
    "allure_commons",
    "harness.actions",
    "harness.context",
    "harness.model",
    "harness.perf.client",
    "harness.robust.client",
    "harness.rundir",
    "simulators._server",
    "simulators.pacs",
    "simulators.audit.repository",
    "simulators.ris",
)


def main() -> NoReturn:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness decides when we end; children get the default back
    for name in PRELOAD:
        __import__(name)
    try:
        import setproctitle

        setproctitle.getproctitle()  # set up now, while the environment it moves aside is still whole
    except ImportError:
        pass
    gc.freeze()  # the imports stay shared with every child: no collection writes to their pages
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of every child's end
    _say({"ready": os.getpid()})
    pending = b""
    while True:
        ready, _, _ = select.select([0, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
        _reap()
        if 0 not in ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            os._exit(0)  # the harness is gone
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            _start(json.loads(line), (wake_read, wake_write))


def _say(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _start(request: dict[str, Any], wake: tuple[int, int]) -> None:
    if threading.active_count() != 1:  # a fork copies one thread: never fork a process that started more
        _say({"error": f"the fork server runs {threading.active_count()} threads"})
        return
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        _say({"error": f"cannot open {request['log']}: {exc.strerror}"})
        return
    pid = os.fork()
    if pid:
        os.close(log)
        _say({"pid": pid})
        return
    _child(request, log, wake)


def _child(request: dict[str, Any], log: int, wake: tuple[int, int]) -> NoReturn:
    """Become `python -P -m MODULE ARGV...` as a fresh start would be: own session, log, cwd, environment."""
    os.setsid()  # its own process group, so stopping it takes its children too
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in (null, log, *wake):
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv: list[str] = request["argv"]
    try:
        import setproctitle

        setproctitle.setproctitle(" ".join(argv))  # what ps and /proc/PID/cmdline show: the command it stands for
    except ImportError:
        pass
    sys.argv = ["-m", *argv[4:]]  # argv[0] becomes the module's path, as with -m
    sys.modules.pop(request["module"], None)  # preloaded for its imports: it runs as __main__ alone, as with -m
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    raise SystemExit(0)  # unwinds to the interpreter: threads joined, atexit run, streams flushed, as any exit


if __name__ == "__main__":
    main()
