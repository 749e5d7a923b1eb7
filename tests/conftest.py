"""Shared test helpers: run the `patchgate` CLI as a user would, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.launch.readiness import wait_for_echo
from harness.model import Endpoint

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, timeout: float = 240.0, cwd: Path = ROOT) -> CliResult:
    """`patchgate ARGS` in a fresh interpreter, bounded by `timeout` seconds."""
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`patchgate ARGS` started in a fresh interpreter and session of its own, for a test that signals or kills it."""
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


@pytest.fixture
def cli() -> object:
    return run_cli


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds of every time.sleep in this test, in any thread (each still sleeps them)."""
    slept: list[float] = []
    real = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: (slept.append(seconds), real(seconds))[1])
    return slept


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest test modules first, by tests/weights.json (seconds per module in a CI run's junit.xml, written by
    scripts/test_weights.py). tox runs `--dist loadscope --no-loadscope-reorder`: xdist hands whole modules to
    the workers in this order, so the last ones handed out are short and neither worker idles long at the end.
    A module not in the file goes first (its weight unknown); a stale file only costs time, never a result."""
    import json

    weights: dict[str, float] = json.loads((ROOT / "tests" / "weights.json").read_text(encoding="utf-8"))
    items.sort(key=lambda item: -weights.get(item.nodeid.split("::", 1)[0], float("inf")))  # stable: order kept


def wait_for_device(peer: Endpoint, proc: subprocess.Popen[str], deadline: float = 15.0) -> None:
    """Until the process at `peer` answers C-ECHO; fails with its stderr if it exits or the deadline passes."""
    probe = wait_for_echo(peer, "PGMODALITY", deadline, alive=lambda: proc.poll() is None)
    assert probe.answered, (probe.last_error, proc.poll() is None or proc.communicate()[1])


def require_tool(name: str, install: str) -> str:
    """The system tool's path; skips when it is missing on a developer machine, fails in CI (CI=true).

    The Python environment's own bin directory is left out of the search: pynetdicom installs console
    scripts named like DCMTK's tools (storescp, findscu ...), and tox puts that directory first on PATH,
    so DCMTK's storescp was once a pynetdicom server there (maximum length 16382, not DCMTK's 16384).
    """
    import os
    import shutil

    ours = Path(sys.executable).parent.resolve()
    dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d and Path(d).resolve() != ours]
    path = shutil.which(name, path=os.pathsep.join(dirs))
    if path:
        return path
    message = f"{name} not found: {install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a missing tool is a failure, not a skip)")
    pytest.skip(message)
