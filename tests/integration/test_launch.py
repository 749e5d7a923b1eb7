"""The launcher: real processes, each readiness kind, and the failures a start can end in."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from harness.errors import TargetError
from harness.launch.base import LaunchSpec, Readiness
from harness.launch.process import ProcessLauncher
from harness.launch.readiness import Echo, Http, Immediately, LogLine, Tcp, echo_once
from simulators._net import LOOPBACK, NO_CONNECTION, free_port
from simulators.endpoint import Endpoint


def _spec(tmp_path: Path, code: str, ready: Readiness, timeout: float = 10.0, *args: str) -> LaunchSpec:
    return LaunchSpec(
        role="thing",
        label="test thing",
        argv=(sys.executable, "-c", code, *args),
        log=tmp_path / "logs" / "thing.log",
        ready=ready,
        start_timeout=timeout,
        stop_timeout=5.0,
    )


LISTEN = """
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("listening", flush=True)
time.sleep(60)
"""


def test_log_line_readiness_and_stop(tmp_path: Path) -> None:
    started = ProcessLauncher().launch(_spec(tmp_path, LISTEN, LogLine("listening"), 10.0, str(free_port())))
    assert started.alive()
    started.stop()
    assert not started.alive() and started.exit_code is not None
    assert "listening" in (tmp_path / "logs" / "thing.log").read_text()


def test_tcp_readiness(tmp_path: Path) -> None:
    port = free_port()
    started = ProcessLauncher().launch(_spec(tmp_path, LISTEN, Tcp("127.0.0.1", port), 10.0, str(port)))
    try:
        assert Tcp("127.0.0.1", port).probe(started) == ""
    finally:
        started.stop()


def test_http_readiness(tmp_path: Path) -> None:
    port = free_port()
    spec = LaunchSpec(
        role="web",
        label="web server",
        argv=(sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)),
        log=tmp_path / "web.log",
        ready=Http("127.0.0.1", port, "/"),
        cwd=tmp_path,
        start_timeout=15.0,
    )
    started = ProcessLauncher().launch(spec)
    started.stop()
    assert started.exit_code is not None


def test_echo_readiness_with_the_pacs_simulator(tmp_path: Path) -> None:
    endpoint = Endpoint("LAUNCHPACS", "127.0.0.1", free_port())
    argv = (sys.executable, "-m", "simulators.pacs", "--ae-title", endpoint.ae_title, "--host", endpoint.host)
    argv += ("--port", str(endpoint.port), "--storage", str(tmp_path / "storage"))
    spec = LaunchSpec(
        "pacs", "PACS simulator", argv, tmp_path / "pacs.log", Echo(endpoint, "PGPROBE"), start_timeout=20
    )
    started = ProcessLauncher().launch(spec)
    try:
        assert Echo(endpoint, "PGPROBE").probe(started) == ""
    finally:
        started.stop()


def test_a_refused_echo_does_not_sleep_out_pynetdicom_s_abort(sleeps: list[float]) -> None:
    """pynetdicom sleeps 0.1 s after aborting a refused connection; a start poll must not wait for it."""
    assert echo_once(Endpoint("NOBODY", LOOPBACK, free_port()), "PGPROBE", 2.0) == NO_CONNECTION
    assert not [s for s in sleeps if s >= 0.1], sleeps


def test_echoes_leave_no_association_behind_at_a_stock_scp() -> None:
    """A readiness probe must not hold a device's association slots: a stock pynetdicom SCP keeps a connection
    that sends nothing for its ARTIM timeout, so a bare TCP connect before each echo filled one in CI."""
    ae = AE(ae_title="STOCK")
    ae.add_supported_context(Verification)
    server = ae.start_server((LOOPBACK, 0), block=False)
    try:
        endpoint = Endpoint("STOCK", LOOPBACK, server.server_address[1])
        assert [echo_once(endpoint, "PGPROBE", 2.0) for _ in range(3)] == ["", "", ""]
        deadline = time.monotonic() + 10.0
        while ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ae.active_associations == []
    finally:
        server.shutdown()


def test_a_pause_ends_when_the_process_does(tmp_path: Path) -> None:
    """The runner pauses between looks at the suites: their end must not wait out the pause."""
    started = ProcessLauncher().launch(_spec(tmp_path, "import time; time.sleep(0.3)", Immediately()))
    began = time.monotonic()
    started.pause(20.0)
    assert not started.alive() and started.exit_code == 0
    assert time.monotonic() - began < 10.0  # woken by the exit, not by the 20 s
    started.stop()


def test_exit_before_ready_names_the_code_and_the_log_tail(tmp_path: Path) -> None:
    code = "import sys; print('bad configuration line 3', flush=True); sys.exit(3)"
    with pytest.raises(TargetError) as caught:
        ProcessLauncher().launch(_spec(tmp_path, code, LogLine("never")))
    assert "test thing: exited with code 3 before answering with 'never' in its log" in caught.value.message
    assert "bad configuration line 3" in caught.value.message  # the log tail, on the one line


def test_never_ready_ends_at_the_deadline(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"did not answer TCP at 127\.0\.0\.1:\d+ within 1 s") as caught:
        ProcessLauncher().launch(_spec(tmp_path, "import time; time.sleep(60)", Tcp("127.0.0.1", free_port()), 1.0))
    assert "attempts" in caught.value.message


def test_missing_program_is_a_target_error(tmp_path: Path) -> None:
    spec = LaunchSpec("x", "device", ("/nonexistent/program",), tmp_path / "x.log", Immediately())
    with pytest.raises(TargetError, match="cannot start '/nonexistent/program'"):
        ProcessLauncher().launch(spec)


def test_lifeline_environment_reaches_the_process(tmp_path: Path) -> None:
    code = "import os, time; print('beat=' + os.environ['PATCHGATE_TEST_BEAT'], flush=True); time.sleep(60)"
    started = ProcessLauncher({"PATCHGATE_TEST_BEAT": "here"}).launch(_spec(tmp_path, code, LogLine("beat=here")))
    started.stop()
