"""Storage commitment without a network: judging a request, the report dataset, parsing N-ACTIONs, the journal."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom.dsutils import decode, encode

from simulators.commitment import (
    PUSH_MODEL_INSTANCE,
    Report,
    Request,
    RequestError,
    judge,
    parse_request,
    read_journal,
    request_dataset,
    stored_sop_class,
)
from simulators.pacs import PacsConfig, Quirks, part10_header

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SUPPORTED = frozenset({CT, MR})
HELD = {"1.2.3.1": CT, "1.2.3.2": CT}
TRANSACTION = "1.2.3.99"


def request(*refs: tuple[str, str]) -> Request:
    return Request(TRANSACTION, refs)


def test_all_held_is_event_type_1_with_every_reference() -> None:
    """PS3.4 J.3.3.1.2: all committed -> Event Type ID 1, every referenced instance in Referenced SOP Sequence."""
    report = judge(request((CT, "1.2.3.1"), (CT, "1.2.3.2")), HELD.get, supported=SUPPORTED, retrieve_ae="PACS")
    assert (report.event_type, report.committed, report.failed) == (1, ((CT, "1.2.3.1"), (CT, "1.2.3.2")), ())
    ds = report.dataset()
    assert "FailedSOPSequence" not in ds and ds.RetrieveAETitle == "PACS" and ds.TransactionUID == TRANSACTION


def test_one_missing_is_event_type_2_with_0x0112_and_the_rest_committed() -> None:
    """PS3.3 C.14.1.1 0112H no such object instance; PS3.4 J.3.3.1.2: both lists, failures -> Event Type ID 2."""
    report = judge(request((CT, "1.2.3.1"), (CT, "1.2.3.404")), HELD.get, supported=SUPPORTED)
    assert report.event_type == 2
    assert report.committed == ((CT, "1.2.3.1"),)
    assert report.failed == ((CT, "1.2.3.404", 0x0112),)
    ds = report.dataset()
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in ds.FailedSOPSequence] == [("1.2.3.404", 0x0112)]


def test_held_under_another_class_is_a_class_instance_conflict() -> None:
    """PS3.3 C.14.1.1 0119H: the class asked for is not the class the instance is held as."""
    report = judge(request((MR, "1.2.3.1")), HELD.get, supported=SUPPORTED)
    assert (report.event_type, report.committed, report.failed) == (2, (), ((MR, "1.2.3.1", 0x0119),))


def test_a_class_it_does_not_store_is_not_supported() -> None:
    """PS3.3 C.14.1.1 0122H referenced SOP class not supported (e.g. one in Quirks.rejected_sop_classes)."""
    report = judge(request(("1.2.3.4.5", "1.2.3.1")), HELD.get, supported=SUPPORTED)
    assert report.failed == (("1.2.3.4.5", "1.2.3.1", 0x0122),)


def test_a_duplicate_transaction_fails_every_instance_even_held_ones() -> None:
    """PS3.3 C.14.1.1 0131H: the Transaction UID is already in use (PS3.4 J.3.3.1.2: never reused)."""
    report = judge(request((CT, "1.2.3.1"), (CT, "1.2.3.404")), HELD.get, supported=SUPPORTED, duplicate=True)
    assert report.event_type == 2 and report.committed == ()
    assert [r for *_, r in report.failed] == [0x0131, 0x0131]


def test_fail_all_quirk_is_processing_failure_for_everything() -> None:
    """PS3.3 C.14.1.1 0110H processing failure: the commit_nothing quirk."""
    report = judge(request((CT, "1.2.3.1")), HELD.get, supported=SUPPORTED, fail_all=True)
    assert report.failed == ((CT, "1.2.3.1", 0x0110),)


def test_the_report_survives_encoding_and_reads_back() -> None:
    """PS3.4 Table J.3-2: the Event Information as sent decodes to the same report."""
    report = judge(request((CT, "1.2.3.1"), (MR, "1.2.3.2")), HELD.get, supported=SUPPORTED, retrieve_ae="PACS")
    data = encode(report.dataset(), True, True)
    assert data is not None
    assert Report.from_dataset(report.event_type, decode(BytesIO(data), True, True)) == report
    assert report.summary()["failed"] == [[MR, "1.2.3.2", "0x0119"]]


def test_a_malformed_report_is_a_value_error() -> None:
    ds = Dataset()
    ds.ReferencedSOPSequence = DicomSequence([Dataset()])
    with pytest.raises(ValueError, match="malformed Storage Commitment Result"):
        Report.from_dataset(1, ds)


def action(info: Dataset | None = None) -> Dataset:
    return info if info is not None else request_dataset(TRANSACTION, [(CT, "1.2.3.1")])


def test_a_request_parses() -> None:
    """PS3.4 J.3.2.1.2: Action Type ID 1 on the well-known instance, Transaction UID and references."""
    assert parse_request(1, PUSH_MODEL_INSTANCE, action) == Request(TRANSACTION, ((CT, "1.2.3.1"),))


def _missing(keyword: str) -> Dataset:
    ds = action()
    delattr(ds, keyword)
    return ds


def _empty_item() -> Dataset:
    ds = action()
    ds.ReferencedSOPSequence = DicomSequence([Dataset()])
    return ds


@pytest.mark.parametrize(
    ("action_type", "instance", "info", "status"),
    [
        (2, PUSH_MODEL_INSTANCE, action(), 0x0123),  # PS3.7 C.5: no such action
        (1, "1.2.3.4", action(), 0x0112),  # PS3.7 C.5.9: a UID, but not the well-known instance
        (1, "1.2.x.4", action(), 0x0117),  # PS3.7 C.5.12: not a UID at all
        (1, PUSH_MODEL_INSTANCE, _missing("TransactionUID"), 0x0115),  # Table J.3-1: Type 1
        (1, PUSH_MODEL_INSTANCE, _missing("ReferencedSOPSequence"), 0x0115),
        (1, PUSH_MODEL_INSTANCE, request_dataset(TRANSACTION, []), 0x0115),
        (1, PUSH_MODEL_INSTANCE, _empty_item(), 0x0115),
    ],
    ids=[
        "action-type-2",
        "other-instance",
        "malformed-instance",
        "no-transaction",
        "no-sequence",
        "empty",
        "empty-item",
    ],
)
def test_a_bad_request_is_refused_with_its_status(action_type: int, instance: str, info: Dataset, status: int) -> None:
    """PS3.4 J.3.2.1.2 and Table J.3-1; statuses from PS3.7 C.5 (0x0120 is not an N-ACTION status)."""
    with pytest.raises(RequestError) as caught:
        parse_request(action_type, instance, lambda: info)
    assert caught.value.status == status and caught.value.comment


def test_undecodable_action_information_is_an_invalid_argument() -> None:
    def broken() -> Dataset:
        raise ValueError("truncated")

    with pytest.raises(RequestError) as caught:
        parse_request(1, PUSH_MODEL_INSTANCE, broken)
    assert caught.value.status == 0x0115


def test_stored_sop_class_reads_the_file_meta(tmp_path: Path) -> None:
    path = tmp_path / "1.2.3.1.dcm"
    path.write_bytes(part10_header(CT, "1.2.3.1", "1.2.840.10008.1.2.1") + b"\x08\x00\x16\x00UI\x00\x00")
    assert stored_sop_class(path, "1.2.3.1") == CT
    assert stored_sop_class(path, "1.2.3.2") is None  # a file that holds another instance
    assert stored_sop_class(tmp_path / "absent.dcm", "1.2.3.1") is None
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    assert stored_sop_class(tmp_path / "junk.dcm", "1.2.3.1") is None


def test_read_journal(tmp_path: Path) -> None:
    path = tmp_path / "commitment.jsonl"
    assert read_journal(path) == []
    path.write_text('{"seq": 1}\n{"seq": 2', encoding="utf-8")
    with pytest.raises(ValueError, match=r"commitment\.jsonl:2: not a JSON line"):
        read_journal(path)
    path.write_text('{"seq": 1}\n[1]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r":2: expected a JSON object"):
        read_journal(path)


@pytest.mark.parametrize(
    ("mode", "quirk"), [("sometimes", ""), ("auto", "auto")], ids=["bad-mode", "quirk-cannot-be-auto"]
)
def test_pacs_config_refuses_an_unknown_report_mode(tmp_path: Path, mode: str, quirk: str) -> None:
    with pytest.raises(ValueError, match="commitment_report must be one of same, new, auto"):
        PacsConfig(
            ae_title="PACS", port=0, storage=tmp_path, commitment_report=mode, quirks=Quirks(commitment_report=quirk)
        )
