"""Operator prompts through a real terminal (a pty): done, fail, deadline, type-ahead, and no terminal at all."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.demo import demo_text
from harness.rundir import RunDir, write_json_atomic

ROOT = Path(__file__).resolve().parents[2]

# The harness's side, as the runner has it: a broker that serves one prompt request on this terminal.
BROKER = """
import sys, time
from pathlib import Path
from harness.actions import ActionBroker
from harness.profile import ActionSpec
from harness.rundir import RunDir

run, deadline, gate = RunDir(Path(sys.argv[1])), float(sys.argv[2]), Path(sys.argv[3])
print("READY", flush=True)
until = time.monotonic() + 30
while not gate.exists() and time.monotonic() < until:
    time.sleep(0.02)
spec = ActionSpec("scenario", "prompt", text="Select {item.patient_name} ({item.accession_number}), acquire, end", deadline=deadline)
broker = ActionBroker(run, {"scenario": spec}, {}, ("PGA0001",), label="baseline-2 (variant baseline)", device_workdir=run.path)
broker.serve()
broker.close(timeout=deadline + 10)
"""


class Terminal:
    """The broker on the slave side of a pty; this test types on the master side."""

    def __init__(self, tmp_path: Path, deadline: float) -> None:
        self.run = RunDir(tmp_path / "run")
        self.run.actions.mkdir(parents=True)
        values = {"item.patient_name": "Doe^Jane", "item.accession_number": "PGA0001"}
        write_json_atomic(self.run.action_request("1-0001-scenario"), {"name": "scenario", "values": values})
        self.gate = tmp_path / "gate"
        self.seen = b""
        argv = [sys.executable, "-c", BROKER, str(self.run.path), str(deadline), str(self.gate)]
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its stdin, stdout and stderr
            os.chdir(ROOT)
            os.execv(sys.executable, argv)
        self.pid, self.fd = pid, fd

    def read_until(self, text: bytes, timeout: float = 30.0) -> bytes:
        until = time.monotonic() + timeout
        while text not in self.seen:
            left = until - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal; it shows: {self.seen!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
        return self.seen

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def result(self, timeout: float = 30.0) -> dict[str, object]:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):  # EIO once the child closed the terminal
                    self.seen += os.read(self.fd, 4096)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0, self.seen
                (line,) = self.run.read_actions()
                assert line == {
                    **json.loads(self.run.action_result("1-0001-scenario").read_text()),
                    "ticket": line["ticket"],
                    "run": line["run"],
                    "by": "harness",
                }
                return line
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        pytest.fail(f"the broker did not finish; the terminal shows {self.seen!r}")

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def terminal(tmp_path: Path, request: pytest.FixtureRequest) -> Terminal:
    term = Terminal(tmp_path, getattr(request, "param", 20.0))
    request.addfinalizer(term.close)
    return term


def _start(term: Terminal) -> bytes:
    term.read_until(b"READY")
    term.gate.touch()
    return term.read_until(b"and Enter, within ")


def test_enter_means_done(terminal: Terminal) -> None:
    shown = _start(terminal)
    assert (
        b"[patchgate] baseline-2 (variant baseline): OPERATOR ACTION scenario: Select Doe^Jane (PGA0001), acquire, end"
        in shown
    )
    terminal.read_until(b" s: ")
    terminal.type(b"\r")
    line = terminal.result()
    assert (line["outcome"], line["kind"], line["name"]) == ("done", "prompt", "scenario")
    assert line["detail"] == {
        "request": {"text": "Select Doe^Jane (***), acquire, end"},
        "operator": "",
    }  # recorded redacted


def test_fail_means_failed(terminal: Terminal) -> None:
    _start(terminal)
    terminal.read_until(b" s: ")
    terminal.type(b"fail\r")
    line = terminal.result()
    assert line["outcome"] == "failed" and line["detail"]["operator"] == "fail"  # type: ignore[index]


@pytest.mark.parametrize("terminal", [1.0], indirect=True)
def test_no_answer_by_the_deadline_is_a_timeout(terminal: Terminal) -> None:
    _start(terminal)
    line = terminal.result()
    assert line["outcome"] == "timeout"
    assert b"scenario: no answer within 1 s" in terminal.seen


@pytest.mark.parametrize("terminal", [1.0], indirect=True)
def test_keys_typed_before_the_prompt_do_not_answer_it(terminal: Terminal) -> None:
    terminal.read_until(b"READY")
    terminal.type(b"\r")  # pressed before the question was shown: flushed, not taken as "done"
    time.sleep(0.2)  # not a timing assertion: lets the line discipline queue it before the prompt starts
    terminal.gate.touch()
    line = terminal.result()
    assert line["outcome"] == "timeout", terminal.seen


def test_prompts_without_a_terminal_fail_before_anything_starts(tmp_path: Path) -> None:
    prompt = '[device.actions.scenario]\nkind = "prompt"\ntext = "do the exam"\n'
    profile = tmp_path / "bench.toml"
    profile.write_text(demo_text().replace("[variants.baseline]", prompt + "\n[variants.baseline]"), encoding="utf-8")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "validate", "--profile", str(profile), "--out", str(out)],
        stdin=subprocess.DEVNULL,  # as in CI
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "the profile declares operator actions (scenario) but patchgate has no terminal" in done.stderr
    assert "declare command/http actions for CI" in done.stderr
    assert not (out / "runs").exists()  # nothing started
