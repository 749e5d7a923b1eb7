"""Association negotiation (simulators.negotiation) against the reference device's variants and dcmqrscp, on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

from harness.model import Endpoint
from simulators._net import VERIFICATION, free_port, qr_sop_class
from simulators.identity.credentials import offer, standard_credentials
from simulators.negotiation import MAX_CONTEXTS, Negotiation, Proposal, context_words, negotiate, syntax_words
from simulators.pacs import PacsSimulator
from simulators.reference import IDENTITY_SECRET, build
from suites.negotiation.test_negotiation import SYNTAXES as SUITE_SYNTAXES
from tests.conftest import require_tool, wait_for_device

CT = "1.2.840.10008.5.1.4.1.1.2"
UNKNOWN_CLASS = "1.2.826.0.1.3680043.10.1422.99.1"  # no device knows this abstract syntax
SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless, JPEG2000)
Device = Callable[..., Endpoint]


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Device]:
    """The reference device in a variant, started on a free port; stopped after the test."""
    started: list[PacsSimulator] = []

    def start(variant: str = "clean", **kwargs: object) -> Endpoint:
        device = build(variant, ae_title="REFDEVICE", port=0, storage=tmp_path / variant, **kwargs).start()  # type: ignore[arg-type]
        started.append(device)
        return Endpoint("REFDEVICE", "127.0.0.1", device.port)

    yield start
    for device in started:
        device.stop()


def _store_ct(peer: Endpoint) -> Negotiation:
    proposals = [Proposal(CT, (ts,)) for ts in SYNTAXES] + [Proposal(CT, SYNTAXES), Proposal(UNKNOWN_CLASS, SYNTAXES)]
    return negotiate(peer, "PGMODALITY", proposals, roles={CT: (False, True)}, asynchronous_operations=(4, 4))


def _answers(result: Negotiation) -> list[str]:
    return [context_words(c) for c in result.contexts]


def test_each_pair_is_answered_with_its_reason(reference: Device) -> None:
    result = _store_ct(reference())
    assert result.words() == "accepted" and result.rejected is None and not result.error
    assert _answers(result) == [*["accepted"] * 6, "rejected: abstract syntax unsupported"]
    assert [c.transfer_syntax for c in result.contexts[:5]] == list(SYNTAXES)
    assert result.contexts[5].transfer_syntax in SYNTAXES  # proposed together: the device chose one of them
    assert result.contexts[6].transfer_syntax == ""


def test_the_ac_fields_are_read(reference: Device) -> None:
    ac = _store_ct(reference()).accepted
    assert ac is not None
    assert (ac.implementation_class_uid, ac.implementation_version_name) == (
        PYNETDICOM_IMPLEMENTATION_UID,
        PYNETDICOM_IMPLEMENTATION_VERSION,
    )
    assert ac.maximum_length == 0  # the reference device announces no limit
    assert ac.roles == {CT: (False, True)}  # it lets a C-GET requestor be the storage SCP
    assert ac.asynchronous_operations is None and ac.sop_class_extended == {}  # pynetdicom replies to neither


def test_no_jpeg2000_rejects_only_jpeg_2000(reference: Device) -> None:
    answers = dict(zip(SYNTAXES, _answers(_store_ct(reference("no-jpeg2000"))), strict=False))
    assert answers == {
        ImplicitVRLittleEndian: "accepted",
        ExplicitVRLittleEndian: "accepted",
        RLELossless: "accepted",
        JPEG2000Lossless: "rejected: transfer syntax unsupported",
        JPEG2000: "rejected: transfer syntax unsupported",
    }


def test_implementation_version_announces_its_new_name(reference: Device) -> None:
    ac = _store_ct(reference("implementation-version")).accepted
    assert ac is not None and ac.implementation_version_name == "REFDEVICE_2_0"
    assert ac.implementation_class_uid == PYNETDICOM_IMPLEMENTATION_UID


def test_a_refusal_reads_as_result_source_reason(reference: Device) -> None:
    peer = reference("known-peers", known_peers=["PGMODALITY"])
    wrong = Endpoint("NOTTHEDEVICE", peer.host, peer.port)
    result = negotiate(wrong, "PGMODALITY", [Proposal(VERIFICATION, (ImplicitVRLittleEndian,))])
    assert result.accepted is None and result.contexts == ()
    assert (result.rejected.result, result.rejected.source, result.rejected.reason) == (1, 1, 7)  # type: ignore[union-attr]
    assert result.words() == "rejected permanent by the service user: called AE title not recognised"


def test_a_wrong_passcode_is_refused_by_a_device_that_checks_identities(reference: Device) -> None:
    peer = reference(identity_secret=IDENTITY_SECRET)
    credentials = standard_credentials(IDENTITY_SECRET)
    identity = offer("username_passcode", "invalid", credentials).negotiation(response_requested=True)
    proposals = [Proposal(VERIFICATION, (ImplicitVRLittleEndian,))]
    assert negotiate(peer, "PGMODALITY", proposals, extra=[identity]).words() == (
        "rejected transient by the service provider (ACSE): no reason given"
    )
    valid = offer("username_passcode", "valid", credentials).negotiation(response_requested=True)
    assert negotiate(peer, "PGMODALITY", proposals, extra=[valid]).words() == "accepted"


def test_no_listener_is_an_error_not_a_refusal() -> None:
    result = negotiate(
        Endpoint("NOBODY", "127.0.0.1", free_port()), "PGMODALITY", [Proposal(VERIFICATION, (ImplicitVRLittleEndian,))]
    )
    assert (result.accepted, result.rejected) == (None, None)
    assert result.error == result.words() == "no connection (refused or unreachable)"


def test_proposals_are_checked_before_any_connection() -> None:
    peer = Endpoint("NOBODY", "127.0.0.1", 9)
    with pytest.raises(ValueError, match="between 1 and 128"):
        negotiate(peer, "PGMODALITY", [Proposal(CT, (ImplicitVRLittleEndian,))] * (MAX_CONTEXTS + 1))
    with pytest.raises(ValueError, match="at least one transfer syntax"):
        negotiate(peer, "PGMODALITY", [Proposal(CT, ())])
    with pytest.raises(ValueError, match="requires TLS"):
        negotiate(Endpoint("TLS", "127.0.0.1", 9, tls=True), "PGMODALITY", [Proposal(CT, (ImplicitVRLittleEndian,))])


def test_dcmqrscp_answers_each_context_in_its_own_way(tmp_path: Path) -> None:
    """A real third-party acceptor: context IDs map back to the proposals, the AC names DCMTK."""
    tool = require_tool("dcmqrscp", "apt-get install dcmtk")
    port = free_port()
    config = tmp_path / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\nHostTable BEGIN\nHostTable END\n"
        f"VendorTable BEGIN\nVendorTable END\nAETable BEGIN\nDCMQRSCP {tmp_path} RW (200, 1024mb) ANY\nAETable END\n"
    )
    proc = subprocess.Popen([tool, "--disable-host-lookup", "-c", str(config)], stderr=subprocess.PIPE, text=True)
    peer = Endpoint("DCMQRSCP", "127.0.0.1", port)
    try:
        wait_for_device(peer, proc)
        find = qr_sop_class("study", "find")
        proposals = [Proposal(find, (ts,)) for ts in SYNTAXES] + [Proposal(UNKNOWN_CLASS, (ImplicitVRLittleEndian,))]
        result = negotiate(peer, "PGMODALITY", proposals)
        assert _answers(result) == [
            "accepted",
            "accepted",
            *["rejected: transfer syntax unsupported"] * 3,
            "rejected: abstract syntax unsupported",
        ]
        assert result.accepted is not None and result.accepted.maximum_length == 16384
        assert result.accepted.implementation_version_name.startswith("OFFIS_DCMTK")  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_syntax_words_name_what_pydicom_knows() -> None:
    assert syntax_words(JPEG2000Lossless) == "1.2.840.10008.1.2.4.90 JPEG 2000 Image Compression (Lossless Only)"
    assert syntax_words(UNKNOWN_CLASS) == UNKNOWN_CLASS


def test_the_suite_negotiates_only_declared_services_and_one_entry_accepts_an_upgrade(tmp_path: Path) -> None:
    """Store only: echo and Q/R cases are not applicable, the identity comes from the store association,
    and one [[expected]] entry makes the implementation-version upgrade CHANGED_AS_EXPECTED."""
    from harness.demo import demo_text
    from harness.model import CaseStatus, Observation, Outcome, Verdict
    from harness.profile import parse_profile
    from harness.rundir import read_run
    from harness.validation import run_validation

    text = demo_text("implementation-version").replace(
        'services = ["echo", "store", "find", "move", "get", "commitment"]', 'services = ["store"]'
    )
    assert 'services = ["store"]' in text, "the reference profile's services line changed"
    entry = (
        '\n[[expected]]\ncase = "negotiation/test_negotiation.py::test_implementation"\n'
        'path = "implementation.*"\nreason = "upgrade"\n'
    )
    profile = parse_profile(text + entry, str(tmp_path / "store-only.toml"))
    comparison = run_validation(profile, tmp_path / "out", replicas=1).comparison
    assert comparison.verdict is Verdict.CHANGED_AS_EXPECTED, comparison.reasons
    by_case = {c.case: c for c in comparison.cases if c.case.startswith("negotiation/")}
    changed = {case for case, c in by_case.items() if c.status is CaseStatus.CHANGED_AS_EXPECTED}
    assert changed == {"negotiation/test_negotiation.py::test_implementation"}
    not_applicable = {case for case, c in by_case.items() if c.status is CaseStatus.NOT_APPLICABLE}
    assert not_applicable == {
        case for case in by_case if "[store" not in case and not case.endswith("test_implementation")
    }
    assert "negotiation/test_negotiation.py::test_refused_association" in not_applicable

    records = read_run(tmp_path / "out" / "runs" / "candidate-1").by_case()
    identity = records["negotiation/test_negotiation.py::test_implementation"]
    assert identity.outcome is Outcome.PASSED
    (observed,) = identity.observations
    assert observed.tags == (Observation.INVENTORY,)
    assert observed.value == {f"DICOM implementation {PYNETDICOM_IMPLEMENTATION_UID}": "REFDEVICE_2_0"}
    ct = records["negotiation/test_negotiation.py::test_transfer_syntaxes[store-CT]"].observed()
    assert ct["transfer_syntaxes"] == {syntax_words(ts): "accepted" for ts in SUITE_SYNTAXES}
    assert ct["chosen"] == syntax_words(ExplicitVRLittleEndian)
