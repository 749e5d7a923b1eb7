"""Retrieve: C-MOVE to the PACS simulator and C-GET, at each level: sub-operation counts and identical objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from harness.model import Endpoint
from harness.plugin import Observe
from simulators.corpus import CorpusItem
from simulators.modality import Modality, StoreResult, dataset_sha256
from suites._support import clear_received, query, received_by_pacs, status_hex


@dataclass(frozen=True)
class Selection:
    """What one retrieve asks for, as corpus items (so the expected objects are known)."""

    id: str
    level: str
    model: str

    def items(self, corpus: Mapping[str, CorpusItem]) -> list[CorpusItem]:
        first = next(iter(corpus.values()))
        if self.level == "PATIENT":
            return [i for i in corpus.values() if i.patient_id == first.patient_id]
        if self.level == "STUDY":
            return [i for i in corpus.values() if i.study_instance_uid == first.study_instance_uid]
        if self.level == "SERIES":
            return [i for i in corpus.values() if i.series_instance_uid == first.series_instance_uid]
        return [first]

    def identifier(self, corpus: Mapping[str, CorpusItem]) -> Dataset:
        item = self.items(corpus)[0]
        keys = {"PatientID": item.patient_id} if self.model == "patient" else {}
        if self.level in ("STUDY", "SERIES", "IMAGE"):
            keys["StudyInstanceUID"] = item.study_instance_uid
        if self.level in ("SERIES", "IMAGE"):
            keys["SeriesInstanceUID"] = item.series_instance_uid
        if self.level == "IMAGE":
            keys["SOPInstanceUID"] = item.sop_instance_uid
        return query(self.level, **keys)


SELECTIONS = [
    Selection("patient-root-patient", "PATIENT", "patient"),
    Selection("patient-root-study", "STUDY", "patient"),
    Selection("study-root-study", "STUDY", "study"),
    Selection("study-root-series", "SERIES", "study"),
    Selection("study-root-image", "IMAGE", "study"),
]
IDS = [s.id for s in SELECTIONS]


def _identity(items: list[CorpusItem], received: Mapping[str, str]) -> dict[str, str]:
    """Per expected object, by corpus key: identical, different, or missing at the receiver."""
    result = {}
    for item in items:
        got = received.get(item.sop_instance_uid)
        sent = dataset_sha256(item.dataset, item.transfer_syntax_uid)
        result[item.key] = "missing" if got is None else ("identical" if got == sent else "different")
    return result


@pytest.mark.service("move")
@pytest.mark.parametrize("selection", SELECTIONS, ids=IDS)
def test_move(
    selection: Selection,
    device: Endpoint,
    pacs: Endpoint,
    pacs_storage: Path,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    items = selection.items(corpus)
    clear_received(pacs_storage)  # so an object moved by an earlier case cannot stand in for this one
    result = modality.move(device, selection.identifier(corpus), pacs.ae_title, selection.model)  # type: ignore[arg-type]
    identity = _identity(items, received_by_pacs(pacs_storage, [i.sop_instance_uid for i in items]))
    observe("move", result.summary())
    observe("objects", identity)
    assert result.status == 0x0000, f"C-MOVE final status {status_hex(result.status)}: {result.error}"
    assert (result.completed, result.failed) == (len(items), 0), "sub-operation counts"
    assert set(identity.values()) == {"identical"}, f"objects at the destination: {identity}"


@pytest.mark.service("move")
def test_move_unknown_destination(
    device: Endpoint, modality: Modality, corpus: Mapping[str, CorpusItem], stored_corpus: StoreResult, observe: Observe
) -> None:
    identifier = SELECTIONS[2].identifier(corpus)
    result = modality.move(device, identifier, "NOSUCHAE", "study")
    observe("move", result.summary())
    assert result.status == 0xA801, f"unknown move destination must give 0xA801, got {status_hex(result.status)}"


@pytest.mark.service("get")
@pytest.mark.parametrize("selection", SELECTIONS, ids=IDS)
def test_get(
    selection: Selection,
    device: Endpoint,
    modality: Modality,
    corpus: Mapping[str, CorpusItem],
    stored_corpus: StoreResult,
    observe: Observe,
) -> None:
    items = selection.items(corpus)
    contexts = sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in items})
    result = modality.get(device, selection.identifier(corpus), selection.model, sop_classes=contexts)  # type: ignore[arg-type]
    identity = _identity(items, {r.sop_instance_uid: r.sha256 for r in result.received})
    observe("get", result.summary())
    observe("objects", identity)
    assert result.status == 0x0000, f"C-GET final status {status_hex(result.status)}: {result.error}"
    assert (result.completed, result.failed) == (len(items), 0), "sub-operation counts"
    assert set(identity.values()) == {"identical"}, f"objects received: {identity}"
