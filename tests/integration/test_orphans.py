"""A harness killed with SIGKILL: what it started (simulators, device, suites) notices and stops by itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.rundir import RunDir
from simulators._lifeline import LIMIT_ENV
from tests.conftest import ROOT
from tests.procs import alive, descendants, kill_all

LIMIT = 5  # seconds without a heartbeat; the default (30 s) would only make the test slower


def test_what_a_killed_harness_started_stops_by_itself(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    profile = ROOT / "devices" / "reference" / "profile.toml"
    # With the robustness corpus after the suites, the suites outlast LIMIT after the kill: without it they
    # can end (5 s in all) before noticing the harness is gone, and the message below is never written.
    argv = ["run", "--profile", str(profile), "--variant", "baseline", "--out", str(run_dir), "--robustness"]
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, LIMIT_ENV: str(LIMIT)},
        start_new_session=True,
    )
    started: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(RunDir(run_dir).read_cases()) < 5:
            time.sleep(0.2)
        assert len(RunDir(run_dir).read_cases()) >= 5, "the run never got going"
        started = descendants(harness.pid)  # the simulators and pytest are the fork server's children
        kinds = sorted(k for k in ("simulators.audit.repository", "simulators.pacs", "simulators.reference", "pytest")
                       if any(f" -m {k} " in line for line in started.values()))  # fmt: skip
        assert kinds == ["pytest", "simulators.audit.repository", "simulators.pacs", "simulators.reference"], started
        harness.kill()  # the harness alone, as `kill -9 PID` would: its children live on, orphaned
        harness.wait(timeout=30)
        deadline = time.monotonic() + LIMIT + 45
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.2)
        left = {pid: line for pid, line in started.items() if alive(pid)}
        assert not left, f"still running {LIMIT + 45} s after the kill: {left}"
    finally:  # whatever is still ours; a pid that exited may since belong to someone else
        if harness.poll() is None:
            harness.kill()
        kill_all(started)
    recorded = RunDir(run_dir).read_cases()  # every line still parses
    time.sleep(1.0)
    assert RunDir(run_dir).read_cases() == recorded  # and nothing moves any more
    log = (run_dir / "logs" / "pacs.log").read_text(encoding="utf-8")
    assert "the harness that started this run is gone" in log, log[-2000:]
    pytest_log = (run_dir / "logs" / "pytest.log").read_text(encoding="utf-8")
    assert "the harness that started this run is gone" in pytest_log, pytest_log[-2000:]
