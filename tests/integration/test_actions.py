"""Device actions done for real: processes, an HTTP server and the reference device over loopback, and a suite end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.actions import ActionBroker, ActionClient, ActionResult
from harness.context import SuiteContext
from harness.demo import demo_text
from harness.model import Endpoint, Outcome
from harness.profile import ActionSpec, parse_profile
from harness.rundir import RunDir, read_run
from simulators._net import free_port
from tests.conftest import run_cli, wait_for_device

SECRET = "s3cr3t-Token/42"

# A tiny device web API: echoes what it got, answers 404, or stalls past any short deadline.
HTTP_DEVICE = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Api(BaseHTTPRequestHandler):
    def _answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/slow"):
            time.sleep(30)
        self._answer(200, {"path": self.path, "body": json.loads(body or b"null"),
                           "type": self.headers.get("Content-Type"), "auth": self.headers.get("Authorization")})

    def do_GET(self):
        self._answer(404, {"error": "no such procedure", "path": self.path})

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Api)
print("listening", flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def http_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    script = tmp_path_factory.mktemp("api") / "api.py"
    script.write_text(HTTP_DEVICE, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        yield port
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Path]]:
    storage = tmp_path_factory.mktemp("reference")
    device = Endpoint("REFDEVICE", "127.0.0.1", free_port())
    cmd = [sys.executable, "-m", "simulators.reference", "--variant", "clean", "--ae-title", device.ae_title]
    cmd += ["--port", str(device.port), "--storage", str(storage)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_device(device, proc)
        yield device, storage
    finally:
        proc.kill()
        proc.communicate(timeout=10)


class Channel:
    """A run directory with the harness's broker serving it in a thread, and the suites' client: the real file channel."""

    def __init__(self, run_dir: Path, actions: dict[str, ActionSpec], values: dict[str, str], device: Endpoint) -> None:
        self.run = RunDir(run_dir)
        self.run.actions.mkdir(parents=True)
        self.broker = ActionBroker(self.run, actions, values, (SECRET,), label="baseline-1", device_workdir=run_dir)
        context = SuiteContext(
            str(run_dir), device, device, "", "PGMODALITY", ("echo",), 1422,
            actions={n: a.to_json() for n, a in actions.items()}, placeholders=values, secrets=(SECRET,),
        )  # fmt: skip
        self.client = ActionClient(context)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.broker.serve()
            time.sleep(0.05)

    def __call__(self, name: str, values: dict[str, str] | None = None) -> ActionResult:
        return self.client(name, values)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.broker.close()


def _channel(tmp_path: Path, device: Endpoint | None = None, **actions: dict[str, Any]) -> Channel:
    specs = {name: ActionSpec(name, **fields) for name, fields in actions.items()}
    values = {"python": sys.executable, "http_port": "0", "modality.ae_title": "PGMODALITY"}
    return Channel(tmp_path / "run", specs, values, device or Endpoint("REFDEVICE", "127.0.0.1", 1))


def test_commands_record_exit_code_and_output(tmp_path: Path) -> None:
    script = "import sys; print('acquired', sys.argv[1]); sys.exit(3)"
    argv = ("{python}", "-c", script, "{item.sps_id}")
    channel = _channel(
        tmp_path,
        acquire={"kind": "command", "command": argv},
        complete={"kind": "command", "command": argv, "ok_exit": (0, 3)},
        reset={"kind": "command", "command": ("/nonexistent/ctl",)},
    )
    try:
        failed = channel("acquire", {"item.sps_id": "PGSPS0001"})
        done = channel("complete", {"item.sps_id": "PGSPS0002"})
        missing = channel("reset")
    finally:
        channel.close()
    assert failed.summary() == {"outcome": "failed", "exit_code": 3}
    assert failed.detail["output"] == "acquired PGSPS0001\n"
    assert done.summary() == {"outcome": "done", "exit_code": 3} and done.detail["output"] == "acquired PGSPS0002\n"
    assert missing.outcome == "error" and "cannot start '/nonexistent/ctl'" in str(missing.detail["error"])
    lines = channel.run.read_actions()
    assert [(line["name"], line["outcome"], line["by"]) for line in lines] == [
        ("acquire", "failed", "harness"),
        ("complete", "done", "harness"),
        ("reset", "error", "harness"),
    ]
    assert lines[0]["detail"]["request"]["argv"][-1] == "PGSPS0001"


def test_a_command_past_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; child = subprocess.Popen(['sleep', '60']); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); print('started', flush=True); time.sleep(60)"
    )
    channel = _channel(tmp_path, acquire={"kind": "command", "command": ("{python}", "-c", script), "deadline": 1.0})
    try:
        result = channel("acquire")
    finally:
        channel.close()
    assert result.outcome == "timeout" and "still running after 1 s: killed" in str(result.detail["error"])
    assert result.detail["output"] == "started\n"
    child = int(pid_file.read_text())
    for _ in range(100):  # the grandchild was killed with its group: gone once its parent reaped it or init did
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the command's child {child} outlived the deadline")


def test_http_status_body_and_deadline(tmp_path: Path, http_port: int) -> None:
    url = f"http://127.0.0.1:{http_port}"
    channel = _channel(
        tmp_path,
        start_procedure={
            "kind": "http",
            "url": url + "/procedures/{item.sps_id}/start",
            "body": {"who": "{item.patient_name}", "n": [1]},
        },
        commit_result={"kind": "http", "method": "GET", "url": url + "/procedures/{item.sps_id}"},
        complete={"kind": "http", "url": url + "/slow", "deadline": 0.5},
        discontinue={"kind": "http", "url": f"http://127.0.0.1:{free_port()}/gone", "deadline": 5.0},
    )
    tricky = 'Doe^"Jane"\\ {x}'
    try:
        started = channel("start_procedure", {"item.sps_id": "SPS 1", "item.patient_name": tricky})
        missing = channel("commit_result", {"item.sps_id": "SPS-1"})
        slow = channel("complete")
        refused = channel("discontinue")
    finally:
        channel.close()
    assert started.summary() == {"outcome": "done", "status": 200}
    body = started.detail["body"]
    assert body == {
        "path": "/procedures/SPS%201/start",
        "body": {"who": tricky, "n": [1]},
        "type": "application/json",
        "auth": None,
    }
    assert missing.summary() == {"outcome": "failed", "status": 404}
    assert missing.detail["body"] == {"error": "no such procedure", "path": "/procedures/SPS-1"}
    assert slow.summary() == {"outcome": "timeout"}
    assert refused.outcome == "failed" and "ConnectionRefusedError" in str(refused.detail["error"])
    assert [line["by"] for line in channel.run.read_actions()] == ["suites"] * 4  # http runs in the suites process


def test_dicom_echo_and_store_to_the_reference_device(tmp_path: Path, reference: tuple[Endpoint, Path]) -> None:
    """C-ECHO (PS3.7 9.1.5) and C-STORE (PS3.4 B.2.3): status 0x0000 is done, no association is failed."""
    device, storage = reference
    channel = _channel(
        tmp_path,
        device,
        reset={"kind": "dicom", "message": "C-ECHO"},
        forward={"kind": "dicom", "message": "C-STORE", "items": ("CT-explicit", "MR-implicit")},
    )
    try:
        echo = channel("reset")
        store = channel("forward")
    finally:
        channel.close()
    assert echo.summary() == {"outcome": "done", "status": "0x0000"}
    assert store.summary() == {"outcome": "done", "status": ["0x0000", "0x0000"]}
    assert len([p for p in storage.rglob("*") if p.is_file()]) >= 2

    nobody = _channel(
        tmp_path / "nobody",
        Endpoint("REFDEVICE", "127.0.0.1", free_port()),
        reset={"kind": "dicom", "message": "C-ECHO", "deadline": 5.0},
    )
    try:
        unanswered = nobody("reset")
    finally:
        nobody.close()
    assert unanswered.summary() == {"outcome": "failed", "status": None}
    assert "no connection" in str(unanswered.detail["error"])


def test_secrets_are_masked_in_everything_actions_record(tmp_path: Path, http_port: int) -> None:
    channel = _channel(
        tmp_path,
        acquire={"kind": "command", "command": ("{python}", "-c", f"print('token={SECRET}')")},
        start_procedure={
            "kind": "http",
            "url": f"http://127.0.0.1:{http_port}/procedures",
            "headers": {"Authorization": f"Bearer {SECRET}"},
            "body": {"password": SECRET},
        },
    )
    try:
        command = channel("acquire")
        http = channel("start_procedure")
    finally:
        channel.close()
    assert command.outcome == http.outcome == "done"
    assert command.detail["output"] == "token=***\n"
    assert http.detail["body"]["auth"] == "Bearer ***" and http.detail["request"]["headers"] == {
        "Authorization": "Bearer ***"
    }
    recorded = [channel.run.actions_log, *channel.run.actions.glob("*.json")]
    assert len(recorded) == 3  # the log, one request, one result (the http action needs no channel)
    for path in recorded:
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text and json.dumps(SECRET)[1:-1] not in text, path
    assert "***" in channel.run.actions_log.read_text(encoding="utf-8")


SUITE = '''
"""A suite that makes the device act, through the plugin API only."""

import pytest


@pytest.mark.action("reset")
def test_reset(device_action):
    result = device_action("reset", {"item.sps_id": "PGSPS0001"})
    result.require()
    assert result.settle == 0.5


def test_echo(device_action):
    device_action("acquire").require()


@pytest.mark.action("commit")
def test_undeclared_marker(device_action):
    raise AssertionError("never runs")


def test_undeclared_call(device_action):
    device_action("forward")
    raise AssertionError("never reached")


@pytest.mark.initiates("mpps")
def test_undeclared_role(device_action):
    raise AssertionError("never runs")
'''


def test_a_suite_triggers_actions_through_patchgate_run(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_acting.py").write_text(SUITE, encoding="utf-8")
    marker = "import sys, pathlib; pathlib.Path(sys.argv[1], 'reset-' + sys.argv[2]).write_text('x'); print('marked')"
    actions = f"""
[device.actions.reset]
kind = "command"
command = ["{{python}}", "-c", "{marker}", "{{workdir}}", "{{item.sps_id}}"]
where = "device"
settle = 0.5
record = true

[device.actions.acquire]
kind = "dicom"
message = "C-ECHO"

[suites]
paths = ["suites"]
"""
    text = demo_text("clean", "clean").replace("[variants.baseline]", actions + "\n[variants.baseline]")
    text = text.replace("start_timeout = 20", 'start_timeout = 20\nready = "tcp"')  # up once its port accepts
    profile_path = tmp_path / "acting.toml"
    profile_path.write_text(text, encoding="utf-8")
    assert parse_profile(text, str(profile_path)).device.ready == "tcp"  # a valid profile, before spending a run on it
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile_path), "--variant", "baseline", "--out", str(out), timeout=180)
    assert result.code == 0, result.stderr + result.stdout

    record = read_run(out).by_case()
    reset, echo = record["test_acting.py::test_reset"], record["test_acting.py::test_echo"]
    assert (reset.outcome, reset.observed()) == (
        Outcome.PASSED,
        {"action.reset": {"outcome": "done", "exit_code": 0}, "action.reset.answer": "marked\n"},
    )
    assert echo.observed() == {"action.acquire": {"outcome": "done", "status": "0x0000"}}
    for case, why in (
        ("test_undeclared_marker", "declares no action 'commit'"),
        ("test_undeclared_call", "declares no action 'forward'"),
        ("test_undeclared_role", "does not declare that it initiates 'mpps'"),
    ):
        na = record[f"test_acting.py::{case}"]
        assert na.outcome is Outcome.NOT_APPLICABLE and why in na.message, na
    assert (out / "device" / "reset-PGSPS0001").is_file()  # where = "device": in the local device's workdir
    lines = RunDir(out).read_actions()
    assert [(line["name"], line["by"], line["outcome"]) for line in lines] == [
        ("reset", "harness", "done"),
        ("acquire", "suites", "done"),
    ]
    assert os.stat(out / "endpoints.json").st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("ready", "says"),
    [
        ("log:never printed", "did not answer with 'never printed' in its log"),
        ("http:/health", "did not answer HTTP at http://127.0.0.1:"),
    ],
)
def test_the_ready_key_chooses_how_the_start_is_judged(tmp_path: Path, ready: str, says: str) -> None:
    text = demo_text("clean", "clean").replace("start_timeout = 20", f'start_timeout = 1\nready = "{ready}"')
    profile_path = tmp_path / "ready.toml"
    profile_path.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile_path), "--variant", "baseline", "--out", str(out), timeout=120)
    assert result.code == 2 and "device_failed" in result.stderr, result.stderr
    assert says in result.stderr, result.stderr  # the reference device listens on DICOM only: never ready this way
