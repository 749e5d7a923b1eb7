"""Helpers the suites share: DICOM JSON observations with bulk data as hashes, and hashes of stored files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from harness.model import Endpoint
from simulators.corpus import CorpusItem
from simulators.modality import Modality, file_sha256

__all__ = [
    "SERVICES",
    "SUCCESS_OR_WARNING",
    "ask",
    "clear_received",
    "dataset_json",
    "query",
    "received_by_pacs",
    "status_hex",
]

# One parameter per DICOM service, each with its marker: undeclared services are recorded as not applicable.
SERVICES = [pytest.param(s, marks=pytest.mark.service(s), id=s) for s in ("echo", "store", "find", "move", "get")]


def ask(service: str, modality: Modality, peer: Endpoint, item: CorpusItem, pacs: Endpoint) -> Any:
    """One request of `service` about `item`'s study (store: the item itself); the Modality result."""
    study = query("STUDY", StudyInstanceUID=item.study_instance_uid)
    calls: Mapping[str, Callable[[], Any]] = {
        "echo": lambda: modality.echo(peer),
        # The object is one the store suite stores anyway, so letting it in changes no count.
        "store": lambda: modality.store(peer, [item.dataset]),
        "find": lambda: modality.find(peer, query("STUDY", StudyInstanceUID="", StudyDate=""), "study"),
        "move": lambda: modality.move(peer, study, pacs.ae_title, "study"),
        "get": lambda: modality.get(peer, study, "study", sop_classes=[(item.sop_class_uid, item.transfer_syntax_uid)]),
    }
    return calls[service]()


# PS3.4 C-STORE: success, or warnings that still mean "stored" (coercion, elements discarded, mismatch).
SUCCESS_OR_WARNING = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


def _bulk(element: Any) -> str:
    return "sha256:" + hashlib.sha256(element.value if isinstance(element.value, bytes) else b"").hexdigest()


def dataset_json(ds: Dataset) -> dict[str, Any]:
    """The DICOM JSON model of `ds` with binary values over 64 bytes replaced by their sha256."""
    return ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=lambda el: _bulk(el))


def status_hex(status: int | None) -> str:
    return "none" if status is None else f"0x{status:04X}"


def query(level: str, **keys: str) -> Dataset:
    """A C-FIND/C-MOVE/C-GET identifier: QueryRetrieveLevel plus the given keywords."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _dicom_files(storage: Path) -> Iterable[tuple[Path, str]]:
    """(path, SOP Instance UID) of every DICOM file under `storage`; other files (the index) are passed over."""
    for path in sorted(storage.rglob("*")):
        if not path.is_file():
            continue
        try:
            yield path, str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        except (InvalidDicomError, OSError, ValueError, AttributeError):
            continue  # not a DICOM file: the index, a journal


def clear_received(storage: Path) -> None:
    """Remove what the PACS simulator received so far (its index may go stale; the files are the truth)."""
    for path, _ in list(_dicom_files(storage)):
        path.unlink(missing_ok=True)


def received_by_pacs(storage: Path, uids: Iterable[str]) -> dict[str, str]:
    """SOP Instance UID → sha256 of what the PACS simulator received, for the wanted UIDs found."""
    wanted = set(uids)
    return {uid: file_sha256(path) for path, uid in _dicom_files(storage) if uid in wanted}
