"""The reference modality as a process over loopback: what reaches a real RIS and PACS simulator, per variant.

A RisSimulator and a PacsSimulator run in this process; the modality runs as
`python -m simulators.reference_modality` and is driven through its control API, its `ctl`
sub-command and a C-ECHO, as the device actions of devices/reference-modality/profile.toml do.
Each variant's fingerprint (what the journals hold after a whole workflow and a commitment
failure) must differ from the clean one in exactly the behaviour the variant names. At the end
the shipped profiles are validated through the `patchgate` CLI.
"""

from __future__ import annotations

import datetime
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from harness.model import Verdict
from simulators._net import free_port, parse_listening
from simulators.commitment import COMMITMENT, read_journal
from simulators.endpoint import JSON, Endpoint
from simulators.modality import Modality
from simulators.pacs import JOURNAL, PacsConfig, PacsSimulator, storage_name
from simulators.reference_modality import STATE, VARIANTS
from simulators.reference_modality.control import call
from simulators.ris import RequestLine, RisConfig, RisSimulator, read_requests
from simulators.workflow_scu import MPPS
from tests.conftest import ROOT, run_cli
from tests.shipped import expected_verdict

AE_TITLE = "REFMOD"
SERVICE_AE = "PGSERVICE"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
_START = 20.0  # seconds a modality may take to print its listening line
PROFILES = ROOT / "devices" / "reference-modality"


@dataclass
class Bench:
    """A RIS and a PACS simulator in this process, and the modality processes started against them."""

    tmp: Path
    date: str
    ris: RisSimulator
    pacs: PacsSimulator
    dicom_port: int
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    control: str = ""
    log: Path = Path("/nonexistent")  # the last modality's stderr

    def start(self, variant: str, *, ris: str = "") -> str:
        """The modality in `variant` (its RIS `ris` if given); its control URL once it listens."""
        cmd = [sys.executable, "-m", "simulators.reference_modality", "--variant", variant, "--ae-title", AE_TITLE]
        cmd += ["--port", str(self.dicom_port), "--http-port", "0", "--state", str(self.tmp / "state")]
        cmd += ["--ris", ris or f"PGRIS=127.0.0.1:{self.ris.port}", "--pacs", f"PGPACS=127.0.0.1:{self.pacs.port}"]
        cmd += ["--date", self.date, "--service-ae", SERVICE_AE]
        self.log = self.tmp / f"modality-{len(self.procs) + 1}.log"
        with self.log.open("w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        self.procs.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _START)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("listening"):
            proc.kill()
            proc.communicate(timeout=10)
            pytest.fail(f"the modality did not start within {_START:g} s: {line!r}\n{self.log_tail()}")
        host, port = parse_listening(line)["http"]
        self.control = f"http://{host}:{port}"
        return self.control

    def post(self, path: str, expect: int = 200) -> Any:
        """`POST path` (or `GET path` when it says so) to the control API; the answer, which must have status `expect`."""
        method = "GET" if path.startswith("GET ") else "POST"
        try:
            status, answer = call(self.control, method, path.removeprefix("GET "), 60)
        except OSError as exc:
            pytest.fail(f"{method} {path}: {exc}\n{self.log_tail()}")
        assert status == expect, (path, status, answer, self.log_tail())
        return answer

    def log_tail(self) -> str:
        """The modality's log (its stderr), last part, for a failure message."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log.exists() else ""

    def requests(self) -> list[RequestLine]:
        return read_requests(self.ris.journal_path)

    def arrivals(self) -> list[dict[str, JSON]]:
        path = self.pacs.config.storage / JOURNAL
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    def commitment(self) -> list[dict[str, JSON]]:
        return read_journal(self.pacs.config.storage / COMMITMENT)

    def stored(self, uid: str) -> Dataset:
        return pydicom.dcmread(self.pacs.config.storage / storage_name(uid))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    dicom_port = free_port()
    ris = RisSimulator(RisConfig(port=0, out=tmp_path / "ris", date=date, station_ae=AE_TITLE)).start()
    pacs_config = PacsConfig(
        ae_title="PGPACS",
        port=0,
        storage=tmp_path / "pacs",
        destinations={AE_TITLE: ("127.0.0.1", dicom_port)},  # commitment reports on a new association
        commitment_report="auto",
    )
    pacs = PacsSimulator(pacs_config).start()
    made = Bench(tmp_path, date, ris, pacs, dicom_port)
    try:
        yield made
    finally:
        made.stop()
        pacs.stop()
        ris.stop()


# -- the clean modality, step by step --------------------------------------------------------------


def test_the_clean_modality_runs_scheduled_workflow(bench: Bench) -> None:
    """IHE RAD-5, 6, 8, 7 and 10 in order for SPS-1, as they reach the RIS and the PACS (RAD TF-2x Table A.1-1).

    PS3.4 K.6.1.2 (the broad worklist query), F.7.2.1/F.7.2.2 (N-CREATE IN PROGRESS, one N-SET
    COMPLETED listing what was sent), J.3.2/J.3.3 (commitment of exactly what was sent, the report
    taken on the same association while it is kept open).
    """
    bench.start("clean")
    assert bench.post("/worklist")["answers"] == [f"PGSPS000{n}" for n in range(1, 7)]
    started = bench.post("/procedures/PGSPS0001/start")
    bench.post("/procedures/PGSPS0001/acquire")
    bench.post("/procedures/PGSPS0001/complete")
    committed = bench.post("/procedures/PGSPS0001/commit")

    find, create, final = bench.requests()
    assert (find.dimse, find.calling_ae, find.status) == ("C-FIND", AE_TITLE, "0x0000")
    query = Dataset.from_json(find.dataset)  # type: ignore[arg-type]
    assert query.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == AE_TITLE
    assert query.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate == bench.date
    assert (create.dimse, create.status, create.sop_instance) == ("N-CREATE", "0x0000", started["mpps_uid"])
    attrs = Dataset.from_json(create.dataset)  # type: ignore[arg-type]
    assert attrs.PerformedProcedureStepStatus == "IN PROGRESS" and attrs.PerformedStationAETitle == AE_TITLE
    assert attrs.ScheduledStepAttributesSequence[0].AccessionNumber == "PGA0001"
    assert (final.dimse, final.status, final.sop_instance) == ("N-SET", "0x0000", started["mpps_uid"])

    arrived = bench.arrivals()
    sent = {str(a["sop_instance_uid"]) for a in arrived}
    assert len(sent) == 2 and {a["transfer_syntax_uid"] for a in arrived} == {EXPLICIT}
    changes = Dataset.from_json(final.dataset)  # type: ignore[arg-type]
    assert changes.PerformedProcedureStepStatus == "COMPLETED"
    series = changes.PerformedSeriesSequence
    assert len(series) == 1
    assert {r.ReferencedSOPInstanceUID for r in series[0].ReferencedImageSequence} == sent
    for uid in sent:
        image = bench.stored(uid)
        assert image.AccessionNumber == "PGA0001" and image.SeriesInstanceUID == series[0].SeriesInstanceUID
        ref = image.ReferencedPerformedProcedureStepSequence[0]
        assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (MPPS, started["mpps_uid"])

    action, report = bench.commitment()
    assert action["dimse"] == "N-ACTION" and {r[1] for r in action["referenced"]} == sent  # type: ignore[union-attr, index]
    assert (report["how"], report["role"], report["event_type"], report["status"]) == ("same", "scp", 1, "0x0000")
    assert committed["requests"][0]["transaction_uid"] == action["transaction_uid"]

    shown = bench.post("GET /procedures/PGSPS0001")
    assert shown["mpps_uid"] == started["mpps_uid"] and {s[1] for s in shown["sent"]} == sent
    assert shown["state"] == "COMPLETED" and shown["resends"] == []
    state = json.loads((bench.tmp / "state" / STATE).read_text(encoding="utf-8"))
    assert state["procedures"]["PGSPS0001"]["mpps_uid"] == started["mpps_uid"]


# -- each variant's fingerprint -------------------------------------------------------------------


def _first_report(bench: Bench, patience: float = 5.0) -> dict[str, JSON] | None:
    """The PACS's first report line; it journals one sent on a new association once that is released, so wait a little."""
    deadline = time.monotonic() + patience
    while True:
        lines = bench.commitment()
        report = next((line for line in lines if line["dimse"] == "N-EVENT-REPORT"), None)
        if report is not None or not lines or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def _fingerprint(bench: Bench, variant: str) -> dict[str, JSON]:
    """What the simulators hold after the scenario for SPS-6 and a commitment failure for SPS-5."""
    bench.start(variant)
    bench.post("/procedures/PGSPS0006/scenario")
    requests = bench.requests()
    find = next(r for r in requests if r.dimse == "C-FIND")
    create = next(r for r in requests if r.dimse == "N-CREATE")
    query = Dataset.from_json(find.dataset)  # type: ignore[arg-type]
    attrs = Dataset.from_json(create.dataset)  # type: ignore[arg-type]
    arrived = bench.arrivals()
    report = _first_report(bench)
    out: dict[str, JSON] = {
        "station_in_query": "ScheduledStationAETitle" in query.ScheduledProcedureStepSequence[0],
        "answers": len(find.answers or []),
        "mpps_accession": str(attrs.ScheduledStepAttributesSequence[0].AccessionNumber),
        "set_statuses": [r.status for r in requests if r.dimse == "N-SET"],
        "image_accession": sorted({str(bench.stored(str(a["sop_instance_uid"])).AccessionNumber) for a in arrived}),
        "syntax": sorted({str(a["transfer_syntax_uid"]) for a in arrived}),
        "commitment": [report["how"], report["role"], report["status"]] if report is not None else None,
    }
    # A commitment failure: the PACS loses one object of SPS-5 before the modality asks.
    marks = len(bench.arrivals()), len(bench.commitment())
    bench.post("/procedures/PGSPS0005/acquire")
    victim = str(bench.arrivals()[marks[0]]["sop_instance_uid"])
    (bench.pacs.config.storage / storage_name(victim)).unlink()
    bench.post("/procedures/PGSPS0005/commit")
    asked = [line for line in bench.commitment()[marks[1] :] if line["dimse"] == "N-ACTION"]
    again = [a for a in bench.arrivals()[marks[0] :] if a["sop_instance_uid"] == victim]
    out["failure"] = {"resent": len(again) - 1, "requests": len(asked)}
    return out


CLEAN: dict[str, JSON] = {
    "station_in_query": True,
    "answers": 6,
    "mpps_accession": "PGA0006",
    "set_statuses": ["0x0000"],
    "image_accession": ["PGA0006"],
    "syntax": [EXPLICIT],
    "commitment": ["same", "scp", "0x0000"],
    "failure": {"resent": 1, "requests": 2},
}
NO_REPORT = {"commitment": ["new", "scu", None], "failure": {"resent": 0, "requests": 1}}
# What each variant changes in the fingerprint; nothing else may change.
CHANGES: dict[str, dict[str, JSON]] = {
    "clean": {},
    "clean-rebuild": {},
    "no-accession-in-images": {"image_accession": [""]},
    "no-accession-in-mpps": {"mpps_accession": ""},
    "completed-twice": {"set_statuses": ["0x0000", "0x0110"]},  # PS3.4 F.7.2.2.3
    "completed-without-series": {"set_statuses": ["0x0121"]},  # PS3.4 F.7.2.2.2, Table F.7.2-1
    "query-without-station": {"station_in_query": False, "answers": 8},  # OTHERSTN's two items too
    "implicit-only": {"syntax": [IMPLICIT]},
    "commit-new-association": {"commitment": ["new", "scp", "0x0000"]},  # PS3.4 J.3.3.1.3
    "no-commitment": {"commitment": None, "failure": {"resent": 0, "requests": 0}},
    "ignores-commitment-failure": {"failure": {"resent": 0, "requests": 1}},
    "refuses-report-role": NO_REPORT,  # PS3.7 D.3.3.4: no SCP role, no report
    "slow-acquire": {},  # slower only: the performance phase tells it (tests/integration/test_workflow_performance.py)
    "slow-start": {},  # the same
    "regression": {
        "station_in_query": False,
        "answers": 8,
        "image_accession": [""],
        "set_statuses": ["0x0000", "0x0110"],
        "failure": {"resent": 0, "requests": 1},
    },
}


def test_every_variant_has_a_fingerprint() -> None:
    assert set(CHANGES) == set(VARIANTS)


@pytest.mark.parametrize("variant", sorted(CHANGES))
def test_a_variant_changes_what_it_says_and_nothing_else(bench: Bench, variant: str) -> None:
    """Each variant against the clean fingerprint: IHE RAD-5..10 as the simulators saw them (PS3.4 F, J, K)."""
    assert _fingerprint(bench, variant) == {**CLEAN, **CHANGES[variant]}


# -- driving it: ctl, the service C-ECHO, refusals ------------------------------------------------


def _ctl(control: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "simulators.reference_modality", "ctl", "--control", control, "--timeout", "30", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)


def test_ctl_makes_it_act_and_says_when_it_could_not(bench: Bench) -> None:
    control = bench.start("clean")
    done = _ctl(control, "acquire", "PGSPS0003")
    assert done.returncode == 0, done.stderr
    assert [i[2] for i in json.loads(done.stdout)["instances"]] == ["0x0000", "0x0000"]
    assert len(bench.arrivals()) == 2
    unknown = _ctl(control, "start", "PGSPS0009")
    assert unknown.returncode == 1
    assert "no worklist item with SPS ID 'PGSPS0009'" in json.loads(unknown.stdout)["error"]
    gone = _ctl(f"http://127.0.0.1:{free_port()}", "worklist")
    assert gone.returncode == 2 and "no answer from http://127.0.0.1:" in gone.stderr


def test_a_c_echo_from_the_service_ae_resets_the_console(bench: Bench) -> None:
    """C-ECHO (PS3.4 A.4) from the service AE title: the console forgets; from anyone else: nothing happens."""
    bench.start("clean")
    bench.post("/procedures/PGSPS0002/acquire")
    peer = Endpoint(AE_TITLE, "127.0.0.1", bench.dicom_port)
    assert Modality("PGMODALITY").echo(peer).status == 0x0000
    assert bench.post("GET /procedures/PGSPS0002")["sent"]
    assert Modality(SERVICE_AE).echo(peer).status == 0x0000
    bench.post("GET /procedures/PGSPS0002", expect=404)


def test_the_profiles_dicom_action_resets_it_through_the_harness(bench: Bench) -> None:
    """devices/reference-modality/profile.toml's `reset` (a dicom action: C-ECHO from PGSERVICE) done as suites do it."""
    from harness.actions.execute import execute
    from harness.profile import load_profile

    action = load_profile(PROFILES / "profile.toml").device.actions["reset"]
    assert (action.kind, action.message, action.calling_ae) == ("dicom", "C-ECHO", SERVICE_AE)
    bench.start("clean")
    bench.post("/procedures/PGSPS0004/acquire")
    device = Endpoint(AE_TITLE, "127.0.0.1", bench.dicom_port)
    result = execute(action, {"modality.ae_title": "PGMODALITY"}, (), device=device, corpus=lambda keys: [])
    assert (result.outcome, result.detail["status"]) == ("done", "0x0000"), result.detail
    bench.post("GET /procedures/PGSPS0004", expect=404)


def test_what_it_cannot_do_is_refused_with_a_reason(bench: Bench) -> None:
    bench.start("clean")
    assert "was not started" in bench.post("/procedures/PGSPS0001/complete", expect=409)["error"]
    assert "nothing was sent" in bench.post("/procedures/PGSPS0001/commit", expect=409)["error"]
    bench.post("/procedures/PGSPS0001/start")
    assert "already IN PROGRESS" in bench.post("/procedures/PGSPS0001/start", expect=409)["error"]
    assert "no such operation" in bench.post("/procedures/PGSPS0001/explode", expect=404)["error"]
    assert bench.requests()[-1].dimse == "N-CREATE"  # nothing refused reached the RIS


def test_a_peer_that_is_down_is_a_502_naming_it(bench: Bench) -> None:
    bench.start("clean", ris=f"PGRIS=127.0.0.1:{free_port()}")
    answer = bench.post("/worklist", expect=502)
    assert "no association with the RIS (worklist)" in answer["error"]


# -- the shipped profiles, through the CLI ------------------------------------------------------

# The cases the regression variant's four changes must turn REGRESSED (suites/workflow).
REGRESSION_CASES = (
    "workflow/test_worklist_query.py::test_worklist_query",  # query-without-station
    "workflow/test_images.py::test_images",  # no-accession-in-images
    "workflow/test_mpps.py::test_mpps_completed",  # completed-twice
    "workflow/test_commitment.py::test_commitment_failure",  # ignores-commitment-failure
)
WORKFLOW_CASES = (*REGRESSION_CASES, "workflow/test_commitment.py::test_commitment_all_held")


def _statuses(out: Path) -> dict[str, str]:
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    return {str(c["case"]): str(c["status"]) for c in comparison["cases"]}


def test_the_shipped_profile_is_unchanged_without_docker(tmp_path: Path) -> None:
    started = time.monotonic()
    path = PROFILES / "profile.toml"
    result = run_cli("validate", "--profile", str(path), "--out", str(tmp_path / "out"))
    took = time.monotonic() - started
    assert result.code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"VERDICT: {expected_verdict(path)}" in result.stdout and expected_verdict(path) is Verdict.UNCHANGED
    statuses = _statuses(tmp_path / "out")
    assert {case: statuses.get(case) for case in WORKFLOW_CASES} == dict.fromkeys(WORKFLOW_CASES, "unchanged")
    print(f"reference modality UNCHANGED in {took:.1f} s")  # measured, not asserted (CONTRIBUTING: no timed tests)


def test_the_regression_profile_exits_1_naming_each_changed_behaviour(tmp_path: Path) -> None:
    path = PROFILES / "regression.toml"
    result = run_cli("validate", "--profile", str(path), "--out", str(tmp_path / "out"))
    assert result.code == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"VERDICT: {expected_verdict(path)}" in result.stdout and expected_verdict(path) is Verdict.REGRESSED
    statuses = _statuses(tmp_path / "out")
    for case in REGRESSION_CASES:
        assert statuses.get(case) == "regressed", (case, statuses.get(case))
        assert case in result.stdout, f"{case} is not named in the terminal report"
    assert statuses.get("workflow/test_commitment.py::test_commitment_all_held") == "unchanged"


# -- the requester's side of commitment it relies on ------------------------------------------------


def test_the_requester_releases_only_once_its_report_answer_has_left(tmp_path: Path) -> None:
    """PS3.4 J.3.3 / PS3.8 9.2: the N-EVENT-REPORT-RSP goes out before the A-RELEASE-RQ, even when sending it is slow.

    pynetdicom fires EVT_DIMSE_SENT before it queues the RSP's P-DATA; a release queued in between is
    sent first, and the RSP then meets Sta7 (Evt9), so the PACS journals the report `lost` (seen about
    once in twenty commitments under load). A slow EVT_DIMSE_SENT handler holds that window open.
    """
    from pynetdicom import AE, evt
    from pynetdicom.presentation import build_context

    from simulators.commitment import PUSH_MODEL
    from simulators.commitment_scu import ReportCatcher
    from simulators.corpus import generate

    config = PacsConfig(ae_title="PGPACS", port=0, storage=tmp_path / "pacs", commitment_report="same")
    with PacsSimulator(config) as pacs:
        item = generate(1422)[0]
        assert Modality(AE_TITLE).store(Endpoint("PGPACS", "127.0.0.1", pacs.port), [item.dataset]).accepted

        def slow(event: Any) -> None:
            if type(event.message).__name__ == "N_EVENT_REPORT_RSP":
                time.sleep(0.5)  # in the reactor thread, between EVT_DIMSE_SENT and queueing the P-DATA

        catcher = ReportCatcher()
        ae = AE(ae_title=AE_TITLE)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
        assoc = ae.associate(
            "127.0.0.1",
            pacs.port,
            contexts=[build_context(PUSH_MODEL)],
            ae_title="PGPACS",
            evt_handlers=[*catcher.handlers(), (evt.EVT_DIMSE_SENT, slow)],
        )
        assert assoc.is_established
        result = catcher.request(
            assoc,
            "1.2.3.4.5.6",
            [(item.sop_class_uid, item.sop_instance_uid)],
            keep_open=5,
            wait_report=5,
            listener=None,
        )
    assert (result.how, result.action_status, result.error) == ("same", 0x0000, "")
    lines = read_journal(tmp_path / "pacs" / COMMITMENT)
    report = next((line for line in lines if line["dimse"] == "N-EVENT-REPORT"), None)
    assert report is not None, f"the PACS never had its answer: {lines}"
    assert (report["how"], report["status"], report["error"]) == ("same", "0x0000", "")


def test_patchgate_variants_lists_the_modalitys_under_a_heading_of_their_own() -> None:
    result = run_cli("variants", timeout=60)
    assert result.code == 0, result.stderr
    device, _, modality = result.stdout.partition("reference modality (devices/reference-modality/profile.toml")
    assert device.startswith("reference device (patchgate validate --demo VARIANT):")
    assert "store-warning" in device and "refuses-report-role" not in device
    for name in VARIANTS:
        assert f"\n  {name} " in modality, name
