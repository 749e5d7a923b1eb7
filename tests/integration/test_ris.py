"""The RIS simulator over loopback: every MWL and MPPS status, C-CANCEL, negotiation, the journal, the process."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom import AE
from pynetdicom.presentation import build_context

from simulators._arrivals import read_arrivals
from simulators._lifeline import HEARTBEAT_ENV, LIMIT_ENV
from simulators._net import LOOPBACK, parse_listening
from simulators.endpoint import Endpoint
from simulators.modality import Modality
from simulators.ris import REQUESTS, RisConfig, RisQuirks, RisSimulator, read_requests
from simulators.ris.worklist import scheduled_items
from simulators.workflow_scu import PerformedSeries, mpps_final, mpps_in_progress
from tests.conftest import wait_for_device

DATE = "20261130"
STATION = "MOD1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MakeRis = Callable[..., RisSimulator]


@pytest.fixture
def make_ris(tmp_path: Path) -> Iterator[MakeRis]:
    started: list[RisSimulator] = []

    def make(name: str = "ris", *, quirks: RisQuirks | None = None, **kwargs: Any) -> RisSimulator:
        config = RisConfig(
            port=0,
            out=tmp_path / name,
            date=DATE,
            station_ae=STATION,
            quirks=quirks or RisQuirks(),
            acse_timeout=3,
            dimse_timeout=5,
            network_timeout=5,
        )
        ris = RisSimulator(config, **kwargs).start()
        started.append(ris)
        return ris

    yield make
    for ris in started:
        ris.stop()


def peer(ris: RisSimulator) -> Endpoint:
    return Endpoint("PGRIS", LOOPBACK, ris.port)


def modality() -> Modality:
    return Modality(STATION, acse_timeout=5, dimse_timeout=10, network_timeout=5)


def station_query(**sps: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = ""
    ds.AccessionNumber = ""
    item = Dataset()
    item.ScheduledStationAETitle = STATION
    item.ScheduledProcedureStepStartDate = DATE
    item.ScheduledProcedureStepID = ""
    item.Modality = ""
    for keyword, value in sps.items():
        setattr(item, keyword, value)
    ds.ScheduledProcedureStepSequence = DicomSequence([item])
    return ds


def full_query(patient_id: str) -> Dataset:
    """A query for everything the RIS knows of one patient's items (what a modality needs for MPPS)."""
    ds = Dataset()
    ds.PatientID = patient_id
    for keyword in ("PatientName", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "AccessionNumber"):
        setattr(ds, keyword, "")
    for keyword in ("StudyInstanceUID", "RequestedProcedureID", "RequestedProcedureDescription"):
        setattr(ds, keyword, "")
    ds.ReferencedStudySequence = DicomSequence()
    ds.RequestedProcedureCodeSequence = DicomSequence()
    ds.ScheduledProcedureStepSequence = DicomSequence()
    return ds


def sps_ids(matches: tuple[Dataset, ...]) -> list[str]:
    return [str(m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) for m in matches]


def test_echo_and_a_worklist_query_answer_the_station_s_items(make_ris: MakeRis) -> None:
    """PS3.4 K.4.1.1.4: one Pending 0xFF00 per match (every key supported, never 0xFF01), then Success 0x0000."""
    ris = make_ris()
    scu = modality()
    assert scu.echo(peer(ris)).status == 0x0000
    result = scu.worklist(peer(ris), station_query())
    assert result.error == "" and result.status == 0x0000
    assert sps_ids(result.matches) == [f"PGSPS000{n}" for n in range(1, 7)]
    first = result.matches[0]
    assert (str(first.PatientName), first.PatientID, first.AccessionNumber) == ("Müller^Jürgen", "PG-0001", "PGA0001")
    lines = read_requests(ris.journal_path)
    assert [line.answers for line in lines if line.dimse == "C-FIND"] == [sps_ids(result.matches)]


def test_no_match_is_success_without_answers(make_ris: MakeRis) -> None:
    result = modality().worklist(peer(make_ris()), station_query(Modality="NM"))
    assert (result.status, result.matches) == (0x0000, ())


def test_bad_identifiers_are_refused_a900_and_c000(make_ris: MakeRis) -> None:
    """PS3.4 K.4.1.1.4: 0xA900 identifier does not match (two SPS items), 0xC000 unable to process (bad date)."""
    ris = make_ris()
    two = station_query()
    two.ScheduledProcedureStepSequence.append(Dataset())
    assert modality().worklist(peer(ris), two).status == 0xA900
    assert modality().worklist(peer(ris), station_query(ScheduledProcedureStepStartDate="30.11.2026x")).status == 0xC000
    lines = read_requests(ris.journal_path)
    assert [(line.status, line.error_comment != "") for line in lines] == [("0xA900", True), ("0xC000", True)]
    assert len(lines[0].dataset["00400100"]["Value"]) == 2  # what the device asked is recorded, refused or not
    assert lines[1].dataset["00400100"]["Value"][0]["00400002"]["Value"] == ["30.11.2026x"]


def test_c_cancel_ends_a_worklist_query_with_fe00(make_ris: MakeRis) -> None:
    """PS3.4 C.4.1.2.3 / K.4.1.2: after a C-CANCEL the SCP stops and answers Cancel 0xFE00; journal: C-CANCEL, C-FIND.

    The RIS's `pace` holds the second answer until the cancel arrived, so the race a real
    modality would have with a fast RIS is settled the same way every time.
    """

    def pace(n: int, cancelled: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)

    ris = make_ris(pace=pace)
    result = modality().worklist(peer(ris), station_query(), cancel_after=1)
    assert result.status == 0xFE00
    assert sps_ids(result.matches) == ["PGSPS0001"]
    lines = read_requests(ris.journal_path)
    assert [(line.dimse, line.status) for line in lines] == [("C-CANCEL", None), ("C-FIND", "0xFE00")]
    assert lines[1].answers == ["PGSPS0001"] and lines[0].association == lines[1].association


def _create(scu: Modality, ris: RisSimulator, uid: str | None, **changes: str) -> Any:
    item = scu.worklist(peer(ris), full_query("PG-0001")).matches[0]
    attrs = mpps_in_progress(item, station_ae=STATION, pps_id="PPS1", start_date=DATE, start_time="080500")
    for keyword, value in changes.items():
        setattr(attrs, keyword, value)
    return scu.mpps_create(peer(ris), uid, attrs)


def _final(state: str = "COMPLETED", *, series: bool = True) -> Dataset:
    made = [PerformedSeries("1.2.826.0.1.3680043.10.1422.7.1", ((CT, "1.2.826.0.1.3680043.10.1422.7.1.1"),))]
    return mpps_final(state, end_date=DATE, end_time="081500", series=made if series else [])


def test_mpps_create_set_and_every_refusal_over_the_wire(make_ris: MakeRis) -> None:
    """PS3.4 F.7.2.1.4 and F.7.2.2.4 statuses as a pynetdicom SCU sees them, with ErrorComment / ErrorID fields."""
    ris = make_ris()
    scu = modality()
    made = _create(scu, ris, None)  # the SCP makes the UID and returns it in the response
    assert made.status == 0x0000 and made.sop_instance_uid.startswith("1.2.826.0.1.3680043.10.1422.")
    assert made.attributes is not None and made.attributes["00400252"]["Value"] == ["IN PROGRESS"]
    uid = "1.2.826.0.1.3680043.10.1422.9.1"
    assert _create(scu, ris, uid).status == 0x0000
    assert _create(scu, ris, uid).status == 0x0111
    assert (
        _create(scu, ris, "1.2.826.0.1.3680043.10.1422.9.2", PerformedProcedureStepStatus="COMPLETED").status == 0x0106
    )
    missing = _create(scu, ris, "1.2.826.0.1.3680043.10.1422.9.3", PerformedStationAETitle="")
    assert missing.status == 0x0121 and "PerformedStationAETitle" in missing.error_comment
    not_allowed = Dataset()
    not_allowed.PerformedProcedureStepID = "PPS2"
    refused = scu.mpps_set(peer(ris), uid, not_allowed)
    assert (refused.status, refused.attribute_ids) == (0x0106, (0x00400253,))
    assert scu.mpps_set(peer(ris), uid, _final(series=False)).status == 0x0121
    assert scu.mpps_set(peer(ris), "1.2.826.0.1.3680043.10.1422.9.404", _final()).status == 0x0112
    assert scu.mpps_set(peer(ris), uid, _final()).status == 0x0000
    again = scu.mpps_set(peer(ris), uid, _final("DISCONTINUED"))
    assert (again.status, again.error_id) == (0x0110, 0xA710)
    assert again.error_comment == "Performed Procedure Step Object may no longer be updated"
    summary = again.summary()
    assert (summary["status"], summary["error_id"]) == ("0x0110", "0xA710")
    n_lines = [(line.dimse, line.status) for line in read_requests(ris.journal_path) if line.dimse.startswith("N-")]
    assert n_lines == [
        ("N-CREATE", "0x0000"),
        ("N-CREATE", "0x0000"),
        ("N-CREATE", "0x0111"),
        ("N-CREATE", "0x0106"),
        ("N-CREATE", "0x0121"),
        ("N-SET", "0x0106"),
        ("N-SET", "0x0121"),
        ("N-SET", "0x0112"),
        ("N-SET", "0x0000"),
        ("N-SET", "0x0110"),
    ]


def test_mpps_reopen_quirk_over_the_wire(make_ris: MakeRis) -> None:
    ris = make_ris(quirks=RisQuirks(mpps_reopen=True))
    scu = modality()
    uid = _create(scu, ris, None).sop_instance_uid
    assert [scu.mpps_set(peer(ris), uid, _final()).status for _ in range(2)] == [0x0000, 0x0000]


@pytest.mark.parametrize(
    "abstract_syntax",
    ["1.2.840.10008.3.1.2.3.5", "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.1.2"],
    ids=["mpps-notification", "study-root-find", "ct-storage"],
)
def test_services_it_does_not_provide_are_rejected_at_negotiation(make_ris: MakeRis, abstract_syntax: str) -> None:
    """Unbound services fail loudly: no presentation context is accepted for them (PS3.8 9.3.3.2 result 3)."""
    ris = make_ris()
    ae = AE("PROBE")
    assoc = ae.associate(LOOPBACK, ris.port, contexts=[build_context(abstract_syntax)], ae_title="PGRIS")
    try:
        assert assoc.is_established or assoc.is_rejected or assoc.is_aborted
        assert not assoc.accepted_contexts
    finally:
        if assoc.is_established:
            assoc.release()


def _session(ris: RisSimulator) -> None:
    """The same requests in the same order: what two runs of a suite send."""
    scu = modality()
    scu.echo(peer(ris))
    scu.worklist(peer(ris), station_query())
    uid = _create(scu, ris, None).sop_instance_uid
    scu.mpps_set(peer(ris), uid, _final())
    scu.mpps_set(peer(ris), uid, _final())


def test_the_journal_is_whole_lines_the_same_in_two_runs(make_ris: MakeRis) -> None:
    """No times, ports or addresses: the association is a per-run number, the SCP's UIDs are seeded."""
    first, second = make_ris("first"), make_ris("second")
    _session(first)
    _session(second)
    data = first.journal_path.read_bytes()
    assert data == second.journal_path.read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(text) for text in data.decode().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert [line["dimse"] for line in lines] == ["C-ECHO", "C-FIND", "C-FIND", "N-CREATE", "N-SET", "N-SET"]
    assert [line["association"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert {line["calling_ae"] for line in lines} == {STATION} and {line["called_ae"] for line in lines} == {"PGRIS"}
    create = lines[3]
    assert create["dataset"]["00400252"] == {"vr": "CS", "Value": ["IN PROGRESS"]}
    assert create["sop_instance"] == lines[4]["sop_instance"] == lines[5]["sop_instance"]
    fields = {"seq", "association", "calling_ae", "called_ae", "dimse", "sop_class", "sop_instance", "status"}
    assert all(set(line) == {*fields, "dataset", "error_comment", "answers"} for line in lines)  # no port, no time


def test_the_arrival_log_stamps_each_request_with_its_mpps_status_and_leaves_the_journal(tmp_path: Path) -> None:
    """--arrivals (the performance phase's workflow.start_procedure / .complete): one line per request received."""
    arrivals = tmp_path / "arrivals" / "ris.jsonl"
    arrivals.parent.mkdir()
    plain = RisConfig(port=0, out=tmp_path / "plain", date=DATE, station_ae=STATION)
    logged = RisConfig(port=0, out=tmp_path / "logged", date=DATE, station_ae=STATION, arrivals=arrivals)
    with RisSimulator(plain) as ris:
        _session(ris)
    started = time.time_ns()
    with RisSimulator(logged) as ris:
        _session(ris)
        uid = _create(modality(), ris, None).sop_instance_uid
        scu = modality()
        update = Dataset()  # an N-SET that only updates the step: IN PROGRESS, not its end
        update.PerformedProcedureStepStatus = "IN PROGRESS"
        assert scu.mpps_set(peer(ris), uid, update).status == 0x0000
        assert scu.mpps_set(peer(ris), uid, _final("DISCONTINUED")).status == 0x0000
        comment = Dataset()  # an N-SET without a status ("" : any N-SET, never an N-SET COMPLETED)
        comment.PerformedProcedureStepDescription = "late"
        assert scu.mpps_set(peer(ris), uid, comment).status == 0x0110  # the step has ended
    ended = time.time_ns()
    # The journal is the one a RIS without an arrival log writes
    assert (tmp_path / "logged" / REQUESTS).read_bytes().startswith((tmp_path / "plain" / REQUESTS).read_bytes())
    lines, _ = read_arrivals(arrivals)
    assert [a.kind for a in lines] == [
        "C-ECHO-RQ",
        "C-FIND-RQ",
        "C-FIND-RQ",
        "N-CREATE-RQ IN PROGRESS",
        "N-SET-RQ COMPLETED",
        "N-SET-RQ COMPLETED",
        "C-FIND-RQ",
        "N-CREATE-RQ IN PROGRESS",
        "N-SET-RQ IN PROGRESS",
        "N-SET-RQ DISCONTINUED",
        "N-SET-RQ",
    ]
    assert all(a.direction == "received" and a.peer_ae == STATION for a in lines)
    stamps = [a.t_ns for a in lines]
    assert started <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= ended
    assert lines[8].sop_instance_uid == uid  # an N-SET's Requested SOP Instance UID (the SCP made it)


def test_concurrent_associations_never_tear_a_line(make_ris: MakeRis) -> None:
    ris = make_ris()
    workers = [threading.Thread(target=modality().worklist, args=(peer(ris), station_query())) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    lines = read_requests(ris.journal_path)
    assert sorted(line.seq for line in lines) == list(range(1, 7))
    assert sorted(line.association for line in lines) == list(range(1, 7))
    assert all(line.answers == [f"PGSPS000{n}" for n in range(1, 7)] for line in lines)


def test_a_peer_that_sends_no_association_request_is_hung_up(make_ris: MakeRis) -> None:
    """The PACS's guard, reused: no whole A-ASSOCIATE-RQ within the ARTIM deadline (3 s here) and it hangs up."""
    ris = make_ris()
    with socket.create_connection((LOOPBACK, ris.port), timeout=15) as sock:
        sock.sendall(b"\x01\x00")  # the first bytes of an A-ASSOCIATE-RQ, then nothing
        assert sock.recv(1024) == b""  # EOF well within the socket timeout
    assert modality().echo(peer(ris)).status == 0x0000  # and it still serves others


def test_python_m_simulators_ris_on_port_0(tmp_path: Path) -> None:
    """Started as a process: a parseable listening line, answers queries, journals, exits 0 on SIGTERM."""
    out = tmp_path / "journal"
    cmd = [sys.executable, "-m", "simulators.ris", "--port", "0", "--out", str(out), "--date", DATE]
    cmd += ["--station-ae", STATION, "--arrivals", str(tmp_path / "arrivals.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 20)[0], "no 'listening' line within 20 s"
        host, port = parse_listening(proc.stdout.readline())["dicom"]
        assert host == LOOPBACK and port > 0
        endpoint = Endpoint("PGRIS", host, port)
        wait_for_device(endpoint, proc)
        result = modality().worklist(endpoint, station_query(Modality="MR"))
        assert (result.status, sps_ids(result.matches)) == (0x0000, ["PGSPS0004", "PGSPS0006"])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert [line.dimse for line in read_requests(out / REQUESTS)][-1] == "C-FIND"
    assert [a.message for a in read_arrivals(tmp_path / "arrivals.jsonl")[0]][-1] == "C-FIND-RQ"


def test_bad_command_line_exits_2_naming_the_value(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "simulators.ris", "--port", "0", "--out", str(tmp_path), "--date", "30.11.2026"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "30.11.2026" in proc.stderr and "YYYYMMDD" in proc.stderr


def test_items_can_be_given_instead_of_generated(tmp_path: Path) -> None:
    """RisConfig.items: a suite may serve a subset (e.g. one item) while keeping the seeded values."""
    items = scheduled_items(1422, DATE, STATION)[:1]
    config = RisConfig(port=0, out=tmp_path, date=DATE, station_ae=STATION, items=items)
    with RisSimulator(config) as ris:
        result = modality().worklist(peer(ris), station_query())
    assert sps_ids(result.matches) == ["PGSPS0001"]


def test_the_process_stops_by_itself_when_its_harness_is_gone(tmp_path: Path) -> None:
    """simulators._lifeline, as every simulator: a removed heartbeat file means the harness died; exit 0, said why."""
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    env = {**os.environ, HEARTBEAT_ENV: str(heartbeat), LIMIT_ENV: "5"}
    cmd = [sys.executable, "-m", "simulators.ris", "--port", "0", "--out", str(tmp_path / "j"), "--date", DATE]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 20)[0], "no 'listening' line within 20 s"
        parse_listening(proc.stdout.readline())
        heartbeat.unlink()
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    assert "the harness that started this run is gone" in err, err[-2000:]
