"""The RIS request journal (simulators.ris.journal): whole numbered lines, read back, bad lines named by file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from simulators.ris.journal import REQUESTS, Journal, RequestLine, dataset_json, read_requests


def _write(journal: Journal, dimse: str, status: str | None) -> RequestLine:
    return journal.write(
        association=1,
        calling_ae="MOD1",
        called_ae="PGRIS",
        dimse=dimse,
        sop_class="1.2.840.10008.5.1.4.31",
        sop_instance="",
        status=status,
        dataset=None,
        answers=["PGSPS0001"] if dimse == "C-FIND" else None,
    )


def test_lines_are_numbered_and_read_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    written = [_write(journal, "C-CANCEL", None), _write(journal, "C-FIND", "0xFE00")]
    assert [line.seq for line in written] == [1, 2]
    assert read_requests(tmp_path) == written == read_requests(tmp_path / REQUESTS)
    assert (tmp_path / REQUESTS).read_text().count("\n") == 2


def test_a_missing_journal_is_empty(tmp_path: Path) -> None:
    assert read_requests(tmp_path / "nothing") == []


def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    _write(Journal(tmp_path), "C-ECHO", "0x0000")
    with (tmp_path / REQUESTS).open("a") as f:
        f.write('{"seq": 2}\n')
    with pytest.raises(ValueError, match=rf"{REQUESTS}:2: not a RIS request line .*hint"):
        read_requests(tmp_path)


def test_bulk_data_is_journalled_as_its_hash() -> None:
    """Like the observations: a long binary value becomes a sha256 URI, so a line stays small and comparable."""
    ds = Dataset()
    ds.add_new(0x00091010, "OB", b"\x01" * 4096)
    ds.PatientID = "PG-0001"
    out = dataset_json(ds)
    assert out["00091010"]["BulkDataURI"].startswith("sha256:")
    assert out["00100020"] == {"vr": "LO", "Value": ["PG-0001"]}
    assert dataset_json(None) is None
