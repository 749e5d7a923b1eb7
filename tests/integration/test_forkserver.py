"""The fork server: a forked start behaves as a fresh `python -P -m MODULE` (exit codes, signals, session, log,
environment, working folder, command line), and a server that dies never reads as a child's result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.launch import forkserver
from harness.launch.base import LaunchSpec
from harness.launch.forkserver import FORK_ENV, LOST, Forked, ForkServer, forkable
from harness.launch.process import Process, stop_group
from harness.launch.readiness import Immediately
from tests.procs import alive, cmdline

PY = sys.executable


@pytest.fixture
def forks() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


def _pytest(tmp_path: Path, body: str, *extra: str) -> list[str]:
    """`python -P -m pytest` on one test file holding `body`: a forkable command of ours."""
    test = tmp_path / "test_child.py"
    test.write_text(textwrap.dedent(body), encoding="utf-8")
    return [PY, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test), *extra]


def _spawn(forks: ForkServer, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Forked:
    """Forked in `cwd`, its output in cwd/child.log."""
    return forks.spawn("pytest", argv, {**os.environ, **(env or {})}, cwd, cwd / "child.log")


@pytest.mark.parametrize(("body", "code"), [("def test_ok(): pass", 0), ("def test_no(): assert False", 1)])
def test_the_exit_code_is_the_childs(forks: ForkServer, tmp_path: Path, body: str, code: int) -> None:
    child = _spawn(forks, _pytest(tmp_path, body), tmp_path)
    assert child.wait(timeout=60) == code and child.poll() == code
    log = (tmp_path / "child.log").read_text()
    assert ("1 passed" if code == 0 else "1 failed") in log
    assert "warning" not in log  # no plugin the server imported that pytest wanted to rewrite


def test_a_child_sees_its_own_environment_folder_session_stdin_and_command_line(
    forks: ForkServer, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    body = f"""
        import os, sys
        def test_where():
            with open({str(seen)!r}, "w") as out:
                out.write(repr((os.environ.get("PG_MARK"), os.getcwd(), os.getsid(0) == os.getpid(),
                                os.readlink("/proc/self/fd/0"), sys.flags.safe_path, sys.argv[1:3])))
        """
    argv = _pytest(tmp_path, body)
    work = tmp_path / "work"
    work.mkdir()
    child = _spawn(forks, argv, work, env={"PG_MARK": "mine"})
    deadline = time.monotonic() + 60
    while child.poll() is None and not cmdline(child.pid).startswith(" ".join(argv)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() is not None or cmdline(child.pid).startswith(" ".join(argv))  # ps shows what it runs
    assert child.wait(timeout=60) == 0, (work / "child.log").read_text()
    assert eval(seen.read_text()) == ("mine", str(work), True, os.devnull, True, ["-q", "-p"])
    assert "PG_MARK" not in os.environ  # nothing of the child's leaks into this process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_child_reads_as_that_signal_and_its_group_goes_with_it(
    forks: ForkServer, tmp_path: Path, sig: signal.Signals
) -> None:
    grandchild = tmp_path / "grandchild.pid"
    body = f"""
        import subprocess, sys, time
        def test_hold():
            helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            open({str(grandchild)!r}, "w").write(str(helper.pid))
            time.sleep(120)
        """
    child = _spawn(forks, _pytest(tmp_path, body), tmp_path)
    deadline = time.monotonic() + 60
    while not grandchild.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    helper = int(grandchild.read_text())
    assert child.poll() is None
    os.killpg(child.pid, sig)  # as Process.kill and stop_group do: the whole group
    assert child.wait(timeout=30) == -sig
    deadline = time.monotonic() + 10
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(helper)


def test_stop_group_waits_boundedly_on_a_forked_child(forks: ForkServer, tmp_path: Path) -> None:
    child = _spawn(forks, _pytest(tmp_path, "import time\ndef test_hold(): time.sleep(120)"), tmp_path)
    time.sleep(0.5)
    started = time.monotonic()
    stop_group(child, 5.0)
    assert child.poll() == -signal.SIGTERM and time.monotonic() - started < 10
    with pytest.raises(subprocess.TimeoutExpired):
        _spawn(forks, _pytest(tmp_path, "import time\ndef test_hold(): time.sleep(120)"), tmp_path).wait(0.2)


def test_a_server_that_dies_never_gives_a_childs_result(forks: ForkServer, tmp_path: Path) -> None:
    child = _spawn(forks, _pytest(tmp_path, "import time\ndef test_hold(): time.sleep(120)"), tmp_path)
    os.kill(forks._process.pid, signal.SIGKILL)
    forks._process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while not forks.dead and time.monotonic() < deadline:
        time.sleep(0.05)
    assert forks.dead and child.poll() is None  # still running: not "exited 0"
    os.killpg(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() == LOST  # its status went with the server: neither 0 nor 1 nor a signal
    with pytest.raises(OSError, match="gone"):
        _spawn(forks, _pytest(tmp_path, "def test_ok(): pass"), tmp_path)


def test_the_server_ends_with_its_harness_even_killed(tmp_path: Path) -> None:
    script = "from harness.launch.forkserver import ForkServer\nimport time\ns = ForkServer()\nprint(s._process.pid, flush=True)\ntime.sleep(120)\n"
    harness = subprocess.Popen([PY, "-P", "-c", script], stdout=subprocess.PIPE, text=True)
    assert harness.stdout is not None
    server = int(harness.stdout.readline())
    assert alive(server)
    harness.kill()
    harness.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server)


def test_only_our_modules_run_as_python_minus_p_are_forked_and_never_the_device() -> None:
    assert forkable([PY, "-P", "-m", "simulators.pacs", "--port", "0"], "pacs") == "simulators.pacs"
    assert forkable([PY, "-P", "-m", "pytest"], "suites") == "pytest"
    assert forkable([PY, "-m", "simulators.pacs"], "pacs") is None  # other flags: a fresh interpreter
    assert forkable(["python", "-P", "-m", "simulators.pacs"], "pacs") is None  # another interpreter (a container's)
    assert forkable([PY, "-P", "-m", "simulators.reference"], "device") is None
    assert forkable([PY, "-P", "-m", "simulators.pacs"], "device") is None


@pytest.mark.parametrize(("setting", "forked"), [(None, True), ("0", False), ("1", True)])
def test_a_start_is_forked_unless_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, forked: bool
) -> None:
    if setting is None:
        monkeypatch.delenv(FORK_ENV, raising=False)
    else:
        monkeypatch.setenv(FORK_ENV, setting)
    spec = LaunchSpec(
        role="suites",
        label="suites",
        argv=tuple(_pytest(tmp_path, "def test_ok(): pass")),
        log=tmp_path / "plain.log",
        ready=Immediately(),
        cwd=tmp_path,
    )
    process = Process(spec, {})
    assert isinstance(process._process, Forked if forked else subprocess.Popen)
    deadline = time.monotonic() + 60
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.stop()
    assert process.exit_code == 0


def test_a_pid_used_again_does_not_inherit_the_ended_childs_code(forks: ForkServer, tmp_path: Path) -> None:
    """The kernel reuses pids: the server reaped a child with pid N (and said so) before it forks another that
    gets N. Seen in CI: the new audit repository read as "exited with code 0" at once, and its run stopped."""
    child = _spawn(forks, _pytest(tmp_path, "def test_ok(): pass"), tmp_path)
    assert child.wait(timeout=60) == 0
    forks._heard({"pid": child.pid})  # the answer to a start that got the same pid, in the order the server says
    assert forks._replies.get(timeout=1) == {"pid": child.pid}
    assert forks.code_of(child.pid) is None  # running, as far as anyone knows, until its own end is said
    forks._heard({"exit": child.pid, "code": 3})
    assert forks.code_of(child.pid) == 3


def test_a_forked_module_runs_as_main_without_a_warning(forks: ForkServer, tmp_path: Path) -> None:
    """The server preloads the simulators for their imports; each still runs as __main__ alone, as with -m."""
    argv = [PY, "-P", "-m", "simulators.audit.repository", "--help"]
    child = forks.spawn("simulators.audit.repository", argv, dict(os.environ), tmp_path, tmp_path / "child.log")
    assert child.wait(timeout=60) == 0
    log = (tmp_path / "child.log").read_text()
    assert "usage:" in log and "Warning" not in log, log


@pytest.mark.parametrize(("setting", "started"), [(None, True), ("0", False)])
def test_warm_starts_the_server_in_the_background_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, started: bool
) -> None:
    """A run warms the server as it begins, so its imports overlap the run's set-up; warm() itself never waits."""
    if setting is None:
        monkeypatch.delenv(FORK_ENV, raising=False)
    else:
        monkeypatch.setenv(FORK_ENV, setting)
    monkeypatch.setattr(forkserver, "_server", None)
    monkeypatch.setattr(forkserver, "_failed", False)
    began = time.monotonic()
    forkserver.warm()
    assert time.monotonic() - began < 0.5  # the imports happen in the server, waited for by a thread
    deadline = time.monotonic() + 60
    while forkserver._server is None and time.monotonic() < deadline and started:
        time.sleep(0.05)
    warmed = forkserver._server
    try:
        assert (warmed is not None) is started
        assert (forkserver.server() is warmed) if started else forkserver.server() is None
    finally:
        if warmed is not None:
            warmed.close()
