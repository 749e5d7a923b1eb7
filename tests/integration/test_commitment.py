"""Storage commitment over real associations on 127.0.0.1: the PACS's SCP, Modality.commit, CommitmentListener."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.presentation import build_context

from simulators._net import parse_listening
from simulators.commitment import COMMITMENT, PUSH_MODEL, PUSH_MODEL_INSTANCE, Report, read_journal, request_dataset
from simulators.commitment_scu import CommitmentListener, CommitResult
from simulators.corpus import CorpusItem, generate
from simulators.endpoint import JSON, Endpoint
from simulators.modality import Modality
from simulators.pacs import PacsConfig, PacsSimulator, Quirks, storage_name
from tests.conftest import wait_for_device

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
REQUESTER = "PGMOD"
MakePacs = Callable[..., PacsSimulator]


@pytest.fixture(scope="module")
def items() -> tuple[CorpusItem, ...]:
    return tuple(i for i in generate(1422) if i.sop_class_uid == CT)[:2]


@pytest.fixture(scope="module")
def modality() -> Modality:
    return Modality(REQUESTER, acse_timeout=5, dimse_timeout=5, network_timeout=5)


@pytest.fixture
def listener() -> Iterator[CommitmentListener]:
    with CommitmentListener(REQUESTER, timeout=5) as started:
        yield started


@pytest.fixture
def make_pacs(
    tmp_path: Path, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> Iterator[MakePacs]:
    """A PACS holding `items`, whose destinations say where the requester's listener is."""
    started: list[PacsSimulator] = []

    def make(
        mode: str = "auto", *, quirks: Quirks | None = None, delay: float = 0.2, name: str = "pacs", to: int = 0
    ) -> PacsSimulator:
        config = PacsConfig(
            ae_title="PACS",
            port=0,
            storage=tmp_path / name,
            destinations={REQUESTER: ("127.0.0.1", to or listener.port)},
            quirks=quirks or Quirks(),
            commitment_report=mode,
            commitment_delay=delay,
            dimse_timeout=5,
            network_timeout=5,
        )
        sim = PacsSimulator(config).start()
        started.append(sim)
        stored = modality.store(endpoint(sim), [i.dataset for i in items])
        assert [o.status for o in stored.instances] == [0x0000] * len(items), stored.summary()
        return sim

    yield make
    for sim in started:
        sim.stop()


def endpoint(sim: PacsSimulator) -> Endpoint:
    return Endpoint(sim.config.ae_title, "127.0.0.1", sim.port)


def refs(items: tuple[CorpusItem, ...]) -> list[tuple[str, str]]:
    return [(i.sop_class_uid, i.sop_instance_uid) for i in items]


def journal(folder: Path, reports: int, deadline: float = 15.0) -> list[dict[str, JSON]]:
    """The commitment journal once it holds `reports` N-EVENT-REPORT lines (the report is asynchronous)."""
    end = time.monotonic() + deadline
    while True:
        lines = read_journal(folder / COMMITMENT)
        if sum(1 for line in lines if line["dimse"] == "N-EVENT-REPORT") >= reports or time.monotonic() > end:
            return lines


def by_dimse(lines: list[dict[str, JSON]], dimse: str) -> list[dict[str, JSON]]:
    return [line for line in lines if line["dimse"] == dimse]


def committed_all(result: CommitResult, items: tuple[CorpusItem, ...]) -> bool:
    report = result.report
    return report is not None and report.event_type == 1 and list(report.committed) == refs(items)


def test_same_association_reports_after_the_n_action_rsp(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """PS3.4 J.3.2.1.3 / J.3.3.1.2: the N-ACTION-RSP says the request was received; the report follows it."""
    sim = make_pacs("same", delay=0.0)  # no grace: the order rests on waiting for the response to leave
    uid = generate_uid()
    result = modality.commit(endpoint(sim), uid, refs(items), keep_open=5, wait_report=10)
    assert (result.action_status, result.how, result.role, result.error) == (0x0000, "same", "scp", ""), result
    assert result.order == ("N-ACTION-RSP", "N-EVENT-REPORT-RQ")
    assert committed_all(result, items) and result.report is not None
    assert result.report.transaction_uid == uid and result.report.retrieve_ae == "PACS"
    assert listener.received == []
    lines = journal(sim.config.storage, 1)
    [action] = by_dimse(lines, "N-ACTION")
    [report] = by_dimse(lines, "N-EVENT-REPORT")
    assert action["association"] == 2  # the stores were association 1: one numbering for both journals
    assert (action["calling_ae"], action["transaction_uid"], action["status"]) == (REQUESTER, uid, "0x0000")
    assert action["referenced"] == [list(r) for r in refs(items)]
    assert (report["how"], report["mode"], report["role"], report["status"], report["event_type"]) == (
        "same",
        "same",
        "scp",
        "0x0000",
        1,
    )


def test_new_association_reports_in_the_scp_role(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """PS3.4 J.3.3.1.3 and J.2.1: the SCP opens an association to the requester and proposes the SCP role."""
    sim = make_pacs("new")
    uid = generate_uid()
    result = modality.commit(endpoint(sim), uid, refs(items), keep_open=5, wait_report=10, listener=listener)
    assert (result.how, result.role, result.error) == ("new", "scp", ""), result
    assert result.order == ("N-ACTION-RSP",)  # nothing came on the request's association
    assert committed_all(result, items)
    [received] = listener.received
    assert (received.calling_ae, received.role) == ("PACS", "scp")
    [report] = by_dimse(journal(sim.config.storage, 1), "N-EVENT-REPORT")
    assert (report["how"], report["role"], report["status"]) == ("new", "scp", "0x0000")


def test_always_new_quirk_overrides_the_configured_mode(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """Quirks.commitment_report = "new": a device that always reports on a new association (PS3.4 J.3.3.1.2 allows it)."""
    sim = make_pacs("same", quirks=Quirks(commitment_report="new"))
    result = modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=5, listener=listener)
    assert (result.how, result.role, result.order) == ("new", "scp", ("N-ACTION-RSP",)), result
    [report] = by_dimse(journal(sim.config.storage, 1), "N-EVENT-REPORT")
    assert (report["mode"], report["how"]) == ("new", "new")


@pytest.mark.parametrize(("keep_open", "how"), [(5.0, "same"), (0.0, "new")], ids=["keeps", "releases"])
def test_auto_follows_the_requester(
    make_pacs: MakePacs,
    modality: Modality,
    items: tuple[CorpusItem, ...],
    listener: CommitmentListener,
    keep_open: float,
    how: str,
) -> None:
    """PS3.4 J.3.3.1.2 note 1: the SCU may release at any time after the N-ACTION-RSP; then a new association."""
    sim = make_pacs("auto", delay=0.5)
    result = modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=keep_open, listener=listener)
    assert (result.how, result.role, result.error) == (how, "scp", ""), result
    assert committed_all(result, items)
    assert len(listener.received) == (how == "new")
    reports = by_dimse(journal(sim.config.storage, 1), "N-EVENT-REPORT")
    assert (reports[-1]["how"], reports[-1]["mode"], reports[-1]["status"]) == (how, "auto", "0x0000")


def test_same_association_released_by_the_requester_is_journaled_lost(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """PS3.4 J.3.3.1.2 note 1: reporting on the same association may fail because the SCU released it."""
    sim = make_pacs("same", delay=0.5)
    result = modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=0, wait_report=1, listener=listener)
    assert (result.action_status, result.report, result.how) == (0x0000, None, "")
    assert result.error == "no report within 1 s"
    [report] = by_dimse(journal(sim.config.storage, 1), "N-EVENT-REPORT")
    assert (report["how"], report["status"]) == ("lost", None) and report["error"]
    assert listener.received == []


def test_report_before_response_quirk_is_seen_by_the_requester(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    """Quirks.report_before_response: sent from inside the N-ACTION handler, it arrives before the N-ACTION-RSP."""
    sim = make_pacs("same", quirks=Quirks(report_before_response=True))
    result = modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=5)
    assert result.order == ("N-EVENT-REPORT-RQ", "N-ACTION-RSP"), result
    assert (result.action_status, result.how) == (0x0000, "same") and committed_all(result, items)
    lines = journal(sim.config.storage, 1)
    assert [line["dimse"] for line in lines] == ["N-ACTION", "N-EVENT-REPORT"]
    assert (lines[1]["mode"], lines[1]["how"], lines[1]["status"]) == ("before-response", "same", "0x0000")


def test_a_requester_refusing_the_scp_role_gets_no_report(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], tmp_path: Path
) -> None:
    """PS3.4 J.3.3.1.3, J.2.1: the report goes in the SCP role; a listener that does not grant it gets none.

    pynetdicom would send anyway (it ignores roles); a Push Model SCP must not.
    """
    with CommitmentListener(REQUESTER, accept_scp_role=False, timeout=5) as refusing:
        sim = make_pacs("new", name="refused", to=refusing.port)
        result = modality.commit(
            endpoint(sim), generate_uid(), refs(items), keep_open=0, wait_report=2, listener=refusing
        )
        [report] = by_dimse(journal(sim.config.storage, 1), "N-EVENT-REPORT")
        assert refusing.received == []
    assert (result.action_status, result.report, result.error) == (0x0000, None, "no report within 2 s")
    assert (report["how"], report["role"], report["status"]) == ("new", "scu", None)
    assert "did not accept the SCP role" in str(report["error"])


def test_the_listener_records_a_sender_that_did_not_propose_the_scp_role(listener: CommitmentListener) -> None:
    """PS3.4 J.3.3.1.3: the SCP should propose the SCP role; pynetdicom delivers the report anyway, recorded as scu."""
    ae = AE(ae_title="LAXPACS")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", listener.port, contexts=[build_context(PUSH_MODEL)], ae_title=REQUESTER)
    assert assoc.is_established
    try:
        report = Report("1.2.3.9", 1, ((CT, "1.2.3.1"),))
        rsp, _ = assoc.send_n_event_report(report.dataset(), 1, PUSH_MODEL, PUSH_MODEL_INSTANCE)
    finally:
        assoc.release()
    assert int(rsp.Status) == 0x0000
    received = listener.wait("1.2.3.9", 5)
    assert received is not None and (received.calling_ae, received.role, received.report) == ("LAXPACS", "scu", report)


def test_failures_are_judged_from_the_files_it_holds(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    """PS3.3 C.14.1.1: 0x0112 (file deleted), 0x0119 (held as CT, asked as MR), 0x0122 (not a storage class)."""
    sim = make_pacs("same")
    (sim.config.storage / storage_name(items[1].sop_instance_uid)).unlink()
    asked = [*refs(items), (MR, items[0].sop_instance_uid), ("1.2.3.4.5", items[0].sop_instance_uid)]
    uid = generate_uid()
    result = modality.commit(endpoint(sim), uid, asked, keep_open=5)
    assert result.report is not None and result.report.event_type == 2, result
    assert result.report.committed == ((CT, items[0].sop_instance_uid),)
    assert result.report.failed == (
        (CT, items[1].sop_instance_uid, 0x0112),
        (MR, items[0].sop_instance_uid, 0x0119),
        ("1.2.3.4.5", items[0].sop_instance_uid, 0x0122),
    )
    again = modality.commit(endpoint(sim), uid, refs(items)[:1], keep_open=5)
    assert again.report is not None and again.report.failed == ((CT, items[0].sop_instance_uid, 0x0131),), again
    [*_, last] = by_dimse(journal(sim.config.storage, 2), "N-EVENT-REPORT")
    assert (last["event_type"], last["committed"], last["failed"]) == (
        2,
        [],
        [[CT, items[0].sop_instance_uid, "0x0131"]],
    )


def test_commit_nothing_quirk_fails_everything(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    """Quirks.commit_nothing: PS3.3 C.14.1.1 0110H for every instance, held or not."""
    sim = make_pacs("same", quirks=Quirks(commit_nothing=True))
    result = modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=5)
    assert result.report is not None and [r for *_, r in result.report.failed] == [0x0110, 0x0110], result


def test_a_pacs_without_commitment_rejects_the_context(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    """Unbound services fail loudly: PUSH_MODEL in Quirks.rejected_sop_classes is rejected at negotiation."""
    sim = make_pacs(quirks=Quirks(rejected_sop_classes=frozenset({PUSH_MODEL})))
    result = modality.commit(endpoint(sim), generate_uid(), refs(items))
    assert (result.accepted, result.action_status) == (False, None) and result.error, result
    assert not (sim.config.storage / COMMITMENT).exists()


def _no_transaction() -> Dataset:
    ds = request_dataset("1.2.3", [(CT, "1.2.3.1")])
    del ds.TransactionUID
    return ds


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize(
    ("action_type", "instance", "info", "status"),
    [
        (2, PUSH_MODEL_INSTANCE, request_dataset("1.2.3", [(CT, "1.2.3.1")]), 0x0123),
        (1, "1.2.3.x", request_dataset("1.2.3", [(CT, "1.2.3.1")]), 0x0117),
        (1, "1.2.3.4", request_dataset("1.2.3", [(CT, "1.2.3.1")]), 0x0112),
        (1, PUSH_MODEL_INSTANCE, _no_transaction(), 0x0115),
        (1, PUSH_MODEL_INSTANCE, None, 0x0115),
    ],
    ids=["no-such-action", "invalid-instance", "other-instance", "no-transaction-uid", "no-action-information"],
)
def test_n_action_errors(
    make_pacs: MakePacs, action_type: int, instance: str, info: Dataset | None, status: int
) -> None:
    """PS3.4 J.3.2.1.2 (Action Type ID 1, the well-known instance, Table J.3-1); statuses from PS3.7 C.5."""
    sim = make_pacs()
    ae = AE(ae_title=REQUESTER)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", sim.port, contexts=[build_context(PUSH_MODEL)], ae_title="PACS")
    assert assoc.is_established
    try:
        rsp, _ = assoc.send_n_action(info, action_type, PUSH_MODEL, instance)
    finally:
        assoc.release()
    assert int(rsp.Status) == status and rsp.ErrorComment, rsp
    [line] = read_journal(sim.config.storage / COMMITMENT)
    assert (line["dimse"], line["status"], line["action_type"]) == ("N-ACTION", f"0x{status:04X}", action_type)
    assert line["error"] == rsp.ErrorComment


def test_commit_of_nothing_is_refused_and_no_report_is_awaited(
    make_pacs: MakePacs, modality: Modality, listener: CommitmentListener
) -> None:
    """PS3.4 J.3.2.1.2: a failure status means the SCP will not process the request (so no report comes)."""
    sim = make_pacs()
    result = modality.commit(endpoint(sim), generate_uid(), [], listener=listener)
    assert (result.accepted, result.action_status, result.report, result.how, result.error) == (
        True,
        0x0115,
        None,
        "",
        "",
    )
    assert result.order == ("N-ACTION-RSP",)
    assert [line["status"] for line in read_journal(sim.config.storage / COMMITMENT)] == ["0x0115"]


def test_the_journal_is_the_same_in_two_runs(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """Two runs of the same exchange journal byte for byte alike: no times, ports or addresses."""
    uid = generate_uid()
    texts = []
    for run in ("one", "two"):
        sim = make_pacs("new", name=run)
        result = modality.commit(endpoint(sim), uid, refs(items), keep_open=0, listener=listener)
        assert result.how == "new", result
        journal(sim.config.storage, 1)
        texts.append((sim.config.storage / COMMITMENT).read_bytes())
    assert texts[0] == texts[1] and texts[0].count(b"\n") == 2


def test_entry_point_reports_on_a_new_association(
    tmp_path: Path, modality: Modality, items: tuple[CorpusItem, ...], listener: CommitmentListener
) -> None:
    """`python -m simulators.pacs --commitment-report new`: a new association though the requester stays."""
    storage = tmp_path / "store"
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", "CLIPACS", "--port", "0", "--storage", str(storage)]
    cmd += ["--destination", f"{REQUESTER}=127.0.0.1:{listener.port}", "--commitment-report", "new"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 20)[0], "no 'listening' line within 20 s"
        host, port = parse_listening(proc.stdout.readline())["dicom"]
        peer = Endpoint("CLIPACS", host, port)
        wait_for_device(peer, proc)
        assert all(o.status == 0x0000 for o in modality.store(peer, [i.dataset for i in items]).instances)
        result = modality.commit(peer, generate_uid(), refs(items), keep_open=5, listener=listener)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert (result.how, result.role) == ("new", "scp") and committed_all(result, items), result
    assert [line["how"] for line in by_dimse(read_journal(storage / COMMITMENT), "N-EVENT-REPORT")] == ["new"]


def test_entry_point_refuses_an_unknown_mode(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "simulators.pacs", "--ae-title", "X", "--port", "0", "--storage", str(tmp_path)]
    proc = subprocess.run([*cmd, "--commitment-report", "later"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--commitment-report" in proc.stderr


def test_the_listener_takes_more_than_pynetdicoms_default_ten_associations(listener: CommitmentListener) -> None:
    """A burst of associations (reports, then a reset C-ECHO) once met "local limit exceeded" at pynetdicom's 10."""
    ae = AE(ae_title="PGBURST")
    ae.add_requested_context("1.2.840.10008.1.1")
    held = [ae.associate("127.0.0.1", listener.port, ae_title=listener.ae_title) for _ in range(12)]
    try:
        assert [a.is_established for a in held] == [True] * 12
    finally:
        for assoc in held:
            if assoc.is_established:
                assoc.release()


def test_reports_on_the_same_association_never_hang_the_release(
    make_pacs: MakePacs, modality: Modality, items: tuple[CorpusItem, ...]
) -> None:
    """pynetdicom serves the report in a thread of its own that marks the reactor unpaused when done: a release that
    paused the reactor just before then spun forever (simulators._reactor.Checkpoint.holding). 40 in a row, bounded."""
    sim = make_pacs("same", delay=0.0)
    for n in range(40):
        results: list[CommitResult] = []
        worker = threading.Thread(
            target=lambda into=results: into.append(
                modality.commit(endpoint(sim), generate_uid(), refs(items), keep_open=5)
            ),
            daemon=True,  # a hung release spins for ever: the test must not wait for it
        )
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), f"commitment {n + 1} of 40: the release never returned"
        assert results and (results[0].how, results[0].error) == ("same", ""), results
