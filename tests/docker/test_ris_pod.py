"""The RIS simulator in a Docker run: started in the run's pod beside a container device, found by the suites there."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness.model import Outcome
from harness.rundir import RunDir, read_run
from simulators.endpoint import PROBE_AE_TITLE
from simulators.ris import read_requests
from tests.conftest import ROOT, run_cli

SUITE = """
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence


def test_worklist(ris, ris_requests, device, modality, observe):
    ds = Dataset()
    ds.PatientID = ""
    item = Dataset()
    item.ScheduledStationAETitle = device.ae_title
    item.ScheduledProcedureStepID = ""
    ds.ScheduledProcedureStepSequence = Sequence([item])
    result = modality.worklist(ris, ds)
    assert result.error == "" and result.status == 0x0000, result.summary()
    answered = [str(m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) for m in result.matches]
    observe("mwl.answers", answered)
    finds = [line for line in ris_requests() if line.dimse == "C-FIND"]
    assert finds and finds[-1].answers == answered
"""

CONFTEST = """
from suites.conftest import device, make_modality, modality, ris, ris_requests

__all__ = ["device", "make_modality", "modality", "ris", "ris_requests"]
"""


def test_a_declared_ris_runs_in_the_pod_of_a_container_device(images: dict[str, str], tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "test_pod_ris.py").write_text(SUITE, encoding="utf-8")
    (suites / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    shutil.copy(ROOT / "devices" / "dcmtk" / "dcmqrscp.cfg", tmp_path / "dcmqrscp.cfg")
    text = (ROOT / "devices" / "dcmtk" / "profile.toml").read_text(encoding="utf-8")
    extra = '[simulators.ris]\nae_title = "PODRIS"\n\n[suites]\npaths = ["suites"]\n\n'
    profile = tmp_path / "ris.toml"
    profile.write_text(text.replace("[variants.baseline]", extra + "[variants.baseline]", 1), encoding="utf-8")

    out = tmp_path / "run"
    result = run_cli("run", "--profile", str(profile), "--variant", "baseline", "--out", str(out), timeout=300)
    assert result.code == 0, result.stderr + result.stdout
    run = RunDir(out)
    network = run.read_manifest().extra.network or {}
    assert network.get("mode") == "bridge" and network.get("pod"), network  # the default: a network and pod per run
    case = read_run(out).by_case()["test_pod_ris.py::test_worklist"]
    assert case.outcome is Outcome.PASSED, case
    observed: dict[str, Any] = case.observed()
    assert observed["mwl.answers"], observed  # the RIS scheduled items for the device's AE title
    lines = [line for line in read_requests(run.ris_requests) if line.calling_ae != PROBE_AE_TITLE]
    assert [(line.dimse, line.calling_ae, line.called_ae) for line in lines] == [("C-FIND", "PGMODALITY", "PODRIS")]
    assert run.log("ris").is_file()
