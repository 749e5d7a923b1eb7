"""Faults against real validations of the reference device: each ends in its documented verdict, nothing torn or left.

Every test runs `patchgate` as a user would (a subprocess), injects one fault, and then checks
the exit code and the one-line message, that every observations.jsonl line parses with no torn
tail and no temporary file is left, and that no process, listening port or reserved port of the
run outlives it. docs/robustness.md lists these faults and what each ends in.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.rundir import RunDir
from simulators._lifeline import LIMIT_ENV
from tests.conftest import start_cli
from tests.procs import alive, descendants, kill_all, mentioning

LIMIT = 3  # seconds a helper outlives a killed harness (the default, 30 s, only slows the tests)
SIGTERM_SEED = 20261130  # the moments of the SIGTERM test, reproducible
SIGTERM_COUNT = 10


def _start(*args: str) -> subprocess.Popen[str]:
    return start_cli(*args, env={LIMIT_ENV: str(LIMIT)})


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"patchgate did not end within {timeout} s: {err[-2000:]}")
    return proc.returncode, out, err


def _wait_for_cases(run: RunDir, count: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.cases_finished() < count and proc.poll() is None:
        time.sleep(0.1)
    assert run.cases_finished() >= count, f"the run recorded {run.cases_finished()} cases, expected {count}"


def _helper(out: Path, run: str, module: str) -> int:
    """The pid of the helper process `module` (simulators.pacs, ...) of run `run` under `out`."""
    found = [pid for pid, line in mentioning(str(out / "runs" / run)).items() if f"-m {module} " in line]
    assert len(found) == 1, mentioning(str(out))
    return found[0]


def _one_line(err: str, *fragments: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("  running:")]
    assert lines, err
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def _listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _ports_of(out: Path) -> set[int]:
    """Every port a run under `out` used, from its endpoints and manifest."""
    ports: set[int] = set()
    for run in (out / "runs").glob("*"):
        for name in ("endpoints.json", "manifest.json"):
            path = run / name
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                ports |= {int(p) for p in _numbers_after(text, '"port": ')}
    return ports


def _numbers_after(text: str, key: str) -> list[str]:
    return [part.split(",")[0].split("}")[0].strip() for part in text.split(key)[1:]]


def _assert_clean(out: Path) -> None:
    """Nothing of the validation is left: processes, listening ports, torn lines, temporaries, held locks."""
    deadline = time.monotonic() + LIMIT + 30
    while time.monotonic() < deadline and mentioning(str(out)):
        time.sleep(0.2)
    left = mentioning(str(out))
    kill_all(left)
    assert not left, f"still running {LIMIT + 30} s after the end: {left}"
    assert not _ports_of(out) & _listening_ports(), "a port of the run is still listening"
    for run in (out / "runs").glob("*"):
        records = RunDir(run)
        records.read_cases()  # every line parses
        assert records.torn_tail() == 0, f"{records.observations} ends in a torn line"
        with records.lock():  # nobody holds it any more
            pass
    assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "out"
    yield where
    kill_all(mentioning(str(where)))  # never leave a failed test's processes to the next one


def test_device_sigkill_is_a_crash_not_a_regression(out: Path) -> None:
    proc = _start("validate", "--demo", "--out", str(out))
    try:
        _wait_for_cases(RunDir(out / "runs" / "candidate-1"), 20, proc)
        os.kill(_helper(out, "candidate-1", "simulators.reference"), signal.SIGKILL)
    finally:
        code, _, err = _finish(proc)
    assert code == 2, err[-2000:]
    _one_line(err, "INCONCLUSIVE", "device_crashed")
    _assert_clean(out)


@pytest.mark.parametrize(
    ("module", "named", "how"),
    [
        ("simulators.pacs", "PACS", signal.SIGKILL),
        ("simulators.audit.repository", "audit", signal.SIGKILL),
        ("simulators.pacs", "PACS", signal.SIGSTOP),  # hung: alive, but it answers nothing
    ],
    ids=["pacs-killed", "arr-killed", "pacs-hung"],
)
def test_simulator_sigkill_is_the_harness_not_the_device(
    out: Path, module: str, named: str, how: signal.Signals
) -> None:
    """A dead PACS used to read as `move.completed 10 -> 0` (REGRESSED), a dead audit repository as lost audit events."""
    proc = _start("validate", "--demo", "--out", str(out))
    try:
        _wait_for_cases(RunDir(out / "runs" / "candidate-1"), 10, proc)
        os.kill(_helper(out, "candidate-1", module), how)
    finally:
        code, _, err = _finish(proc)
    assert code == 2, err[-2000:]
    line = _one_line(err, "INCONCLUSIVE", "harness_failed", named)
    assert "REGRESSED" not in line and "loosened" not in err
    manifest = RunDir(out / "runs" / "candidate-1").read_manifest()
    assert manifest.status.value == "harness_failed" and "not evidence" in manifest.status_detail
    _assert_clean(out)


def test_harness_sigkill_then_rerun(out: Path, tmp_path: Path) -> None:
    proc = _start("validate", "--demo", "--out", str(out))
    _wait_for_cases(RunDir(out / "runs" / "candidate-1"), 10, proc)
    started = descendants(proc.pid)  # the fork server's children too
    proc.kill()  # the harness alone: its helpers are orphaned and must stop by themselves
    proc.communicate(timeout=30)
    _assert_clean(out)  # within the heartbeat limit, and every recorded line parses
    assert not any(alive(pid) for pid in started)
    again = tmp_path / "again"
    code, _, err = _finish(_start("validate", "--demo", "--out", str(again)))
    assert code == 0, err[-2000:]
    _assert_clean(again)


MOMENTS = sorted(round(random.Random(SIGTERM_SEED + i).uniform(0.0, 20.0), 2) for i in range(SIGTERM_COUNT))


@pytest.mark.parametrize("moment", MOMENTS)
def test_sigterm_at_any_moment_ends_130_and_leaves_nothing(out: Path, moment: float) -> None:
    proc = _start("validate", "--demo", "--out", str(out))
    time.sleep(moment)
    finished = proc.poll() is not None  # a fast machine may be done: then the verdict stands
    proc.send_signal(signal.SIGTERM)
    code, stdout, err = _finish(proc, timeout=120)
    assert "Traceback" not in err, (moment, err[-3000:])
    # Done, or killed by the default action while the interpreter shut down after its answer was out.
    if finished or (code == -signal.SIGTERM and "  took " in stdout):
        assert code in (0, -signal.SIGTERM), (moment, code, err[-2000:])
        return
    assert code == 130, (moment, code, err[-2000:])
    _one_line(err, "interrupted")
    if out.exists():
        _assert_clean(out)


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[Path]:
    """A 8 MiB tmpfs: too small for a run (root only; CI runs as root)."""
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the full-disk fault needs root to mount a tmpfs (CI=true: not skipped)")
        pytest.skip("needs root to mount a tmpfs")
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], check=True, timeout=30)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def test_full_disk_is_inconclusive_naming_the_folder(tiny: Path) -> None:
    out = tiny / "out"
    code, _, err = _finish(_start("validate", "--demo", "--out", str(out)))
    assert code == 2, err[-2000:]
    _one_line(err, "no space left on", str(tiny))
    if out.exists():
        _assert_clean(out)


def test_a_write_that_fills_the_disk_leaves_whole_lines(tiny: Path) -> None:
    """The writer's own guarantee, on a real full filesystem: the failed line is undone, the rest parse."""
    from harness.errors import RunDirError
    from harness.model import CaseRecord, Observation, Outcome

    run = RunDir(tiny / "run")
    writer = run.case_writer()
    big = "x" * 100_000
    written = 0
    with pytest.raises(RunDirError, match="no space left on"):
        for i in range(1000):  # 100 MB: more than the 8 MiB there are
            writer.write(CaseRecord(f"t.py::case[{i}]", Outcome.PASSED, 0.0, "", (Observation("blob", big),)))
            written += 1
    writer.close()
    assert run.torn_tail() == 0 and len(run.read_cases()) == written > 0


def test_allure_results_that_fill_the_disk_name_the_folder(tiny: Path) -> None:
    """The writer process's failure on a real full filesystem, and its spool's: a RunDirError for the folder."""
    from harness.batch import Batch
    from harness.errors import RunDirError

    folder = tiny / "allure-results"
    folder.mkdir()
    files = [(f"{i}-result.json", b"x" * 100_000) for i in range(200)]
    batch = Batch(folder, files[:50])  # a 5 MB spool fits in 8 MiB; the files beside it do not
    with pytest.raises(RunDirError) as caught:
        batch.wait()
    assert caught.value.message == f"no space left on {folder}", caught.value.message
    assert batch._process.returncode == 1
    with pytest.raises(RunDirError) as caught:
        Batch(folder, files)  # 20 MB: the spool itself does not fit
    assert caught.value.message == f"no space left on {folder}", caught.value.message
    assert [p.name for p in tiny.rglob("*") if not p.name.endswith("-result.json")] == ["allure-results"]


def test_read_only_out_is_refused_with_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only tmpfs")
    where = tmp_path / "ro"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)], check=True, timeout=30)
    try:
        code, _, err = _finish(_start("validate", "--demo", "--out", str(where / "out")), timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)
    assert code == 2, err[-2000:]
    _one_line(err, "read-only")
    assert not mentioning(str(where))


def test_two_writers_the_second_is_refused_at_once(out: Path) -> None:
    first = _start("validate", "--demo", "--out", str(out))
    try:
        _wait_for_cases(RunDir(out / "runs" / "candidate-1"), 1, first)
        began = time.monotonic()
        code, _, err = _finish(_start("validate", "--demo", "--out", str(out)), timeout=60)
        assert code == 2 and time.monotonic() - began < 30, err[-2000:]
        _one_line(err, "another patchgate", "is writing here")
    finally:
        code, stdout, err = _finish(first)
    assert code == 0, err[-2000:]
    assert "UNCHANGED" in stdout
    cases = [c.case for c in RunDir(out / "runs" / "candidate-1").read_cases()]
    assert len(cases) == len(set(cases)), "a case was recorded twice"
    assert json.loads((out / "comparison.json").read_text(encoding="utf-8"))["verdict"] == "UNCHANGED"
    _assert_clean(out)
