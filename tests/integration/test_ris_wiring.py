"""The RIS simulator and the PACS's commitment options wired into a run: started, found by suites, watched.

A profile that declares `[simulators.ris]` (the reference device plus a suites folder of its own)
goes through `patchgate run` and `patchgate validate` as a user would: the suite case queries the
RIS through the `ris` fixture and reads the request journal through `ris_requests`; a command
action proves the `{ris.*}` placeholders. A RIS killed mid-run ends INCONCLUSIVE (harness_failed),
never REGRESSED.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.demo import demo_text
from harness.model import Outcome
from harness.profile import parse_profile
from harness.rundir import RunDir, read_run
from simulators._lifeline import LIMIT_ENV
from simulators.endpoint import PROBE_AE_TITLE
from simulators.ris import read_requests
from tests.conftest import run_cli, start_cli
from tests.procs import kill_all, mentioning

SUITE = """
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence


def _query(station):
    ds = Dataset()
    ds.PatientID = ""
    ds.AccessionNumber = ""
    item = Dataset()
    item.ScheduledStationAETitle = station
    item.ScheduledProcedureStepID = ""
    item.ScheduledProcedureStepStartDate = ""
    ds.ScheduledProcedureStepSequence = Sequence([item])
    return ds


def test_worklist(ris, ris_requests, device, modality, observe):
    result = modality.worklist(ris, _query(device.ae_title))
    assert result.error == "" and result.status == 0x0000, result.summary()
    answered = [str(m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) for m in result.matches]
    observe("mwl.answers", answered)
    dates = sorted({str(m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate) for m in result.matches})
    observe("mwl.dates", dates)
    finds = [line for line in ris_requests() if line.dimse == "C-FIND"]
    observe("ris.finds", [[line.calling_ae, line.called_ae, line.status, line.answers] for line in finds])
    assert finds[-1].answers == answered


def test_placeholders(ris, device_action, observe):
    result = device_action("query_worklist")
    result.require()
    observe("placeholders.filled", result.answer().split() == [ris.ae_title, ris.host, str(ris.port)])


def test_commitment_journal(commitment_journal, observe):
    observe("commitment.lines", len(commitment_journal()))


def test_slow(ris, observe):
    time.sleep(float(__import__("os").environ.get("SLOW_CASE", "0")))
    observe("slept", True)
"""

# A suites folder of one's own takes the built-in suites' fixtures by importing them.
CONFTEST = """
from suites.conftest import commitment_journal, device, make_modality, modality, ris, ris_requests

__all__ = ["commitment_journal", "device", "make_modality", "modality", "ris", "ris_requests"]
"""

ACTIONS = """
[device.actions.query_worklist]
kind = "command"
command = ["{python}", "-c", "import sys; print(' '.join(sys.argv[1:]))", "{ris.ae_title}", "{ris.host}", "{ris.port}"]

[simulators.ris]
ae_title = "WIRERIS"

[simulators.pacs]
commitment_report = "same"
commitment_delay = 0.5

[suites]
paths = ["suites"]
"""


def _profile(tmp_path: Path) -> Path:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_wired.py").write_text(SUITE, encoding="utf-8")
    (suites / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    text = demo_text("clean", "clean").replace("[variants.baseline]", ACTIONS + "\n[variants.baseline]")
    path = tmp_path / "wired.toml"
    path.write_text(text, encoding="utf-8")
    profile = parse_profile(text, str(path))  # a valid profile, before spending a run on it
    assert profile.ris is not None and profile.pacs.commitment_report == "same"
    return path


def test_a_declared_ris_is_started_found_by_the_suites_and_stopped(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(_profile(tmp_path)), "--variant", "baseline", "--out", str(out))
    assert result.code == 0, result.stderr + result.stdout
    run = RunDir(out)
    context = run.read_context()
    assert context.ris is not None and context.ris.ae_title == "WIRERIS"
    assert (context.ris_requests, context.commitment_log) == (str(run.ris_requests), str(run.commitment_journal))

    record = read_run(out).by_case()
    worklist = record["test_wired.py::test_worklist"]
    assert worklist.outcome is Outcome.PASSED, worklist
    observed = worklist.observed()
    assert observed["mwl.answers"], observed  # the RIS scheduled items for the device's AE title
    assert observed["ris.finds"] == [["PGMODALITY", "WIRERIS", "0x0000", observed["mwl.answers"]]]
    assert record["test_wired.py::test_placeholders"].observed()["placeholders.filled"] is True
    assert record["test_wired.py::test_commitment_journal"].observed() == {"commitment.lines": 0}

    lines = read_requests(run.ris_requests)  # the journal is where RunDir says, written by the RIS
    assert [(line.dimse, line.called_ae) for line in lines if line.calling_ae != PROBE_AE_TITLE] == [
        ("C-FIND", "WIRERIS")
    ]
    assert ("C-ECHO", PROBE_AE_TITLE) in [(line.dimse, line.calling_ae) for line in lines]  # its readiness
    assert run.log("ris").is_file()
    peaks = run.read_manifest().extra.memory_peak_bytes or {}
    assert set(peaks) == {"device", "pacs", "ris"}, peaks  # measured like the PACS simulator's
    assert not mentioning(str(out)), "a simulator outlived its run"


def test_a_ris_profile_validates_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("validate", "--profile", str(_profile(tmp_path)), "--out", str(out), timeout=300)
    assert result.code == 0 and "VERDICT: UNCHANGED" in result.stdout, result.stderr + result.stdout
    dates = []
    for label in ("baseline-1", "baseline-2", "candidate-1"):
        case = read_run(out / "runs" / label).by_case()["test_wired.py::test_worklist"]
        assert case.outcome is Outcome.PASSED, case
        dates.append(case.observed()["mwl.dates"])
    assert dates[0] and dates.count(dates[0]) == 3, dates  # one worklist date for the whole validation


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "out"
    yield where
    kill_all(mentioning(str(where)))  # never leave a failed test's processes to the next one


def test_a_ris_killed_mid_run_is_the_harness_not_the_device(tmp_path: Path, out: Path) -> None:
    profile = _profile(tmp_path)
    env = {LIMIT_ENV: "3", "SLOW_CASE": "8"}  # the last case waits, so the kill lands while the suites run
    proc = start_cli("validate", "--profile", str(profile), "--out", str(out), env=env)
    try:
        pid = _wait_for_ris(out / "runs" / "candidate-1", proc)
        (pacs,) = [line for line in mentioning(str(out / "runs" / "candidate-1")).values() if "simulators.pacs" in line]
        assert "--commitment-report same --commitment-delay 0.5 " in pacs, pacs  # the profile's commitment keys
        time.sleep(2)  # the suites are under way (the slow case holds them)
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    assert proc.returncode == 2, err[-3000:]
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert "INCONCLUSIVE" in last and "harness_failed" in last and "RIS" in last, err[-3000:]
    assert "REGRESSED" not in last
    manifest = RunDir(out / "runs" / "candidate-1").read_manifest()
    assert manifest.status.value == "harness_failed" and "the RIS simulator exited" in manifest.status_detail
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and mentioning(str(out)):
        time.sleep(0.2)
    assert not mentioning(str(out)), "a process of the validation outlived it"


def _wait_for_ris(run: Path, proc: subprocess.Popen[str], timeout: float = 120) -> int:
    """The pid of run `run`'s RIS simulator once its suites have started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p, line in mentioning(str(run)).items() if "-m simulators.ris " in line]
        if found and RunDir(run).collected() > 0:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no RIS simulator with running suites under {run}: {proc.poll()}")
