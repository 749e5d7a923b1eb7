"""Retrieve: C-MOVE to the PACS simulator and C-GET, at each level: counts, what arrived on the wire, IOD conformance.

Per case, `wire` says how the objects arrived: how many associations, sub-operations per
association, and per object (by corpus key) its transfer syntax by name and the attributes
removed, added or changed against what was stored (Pixel Data by its decoded pixels, so a
re-encoding shows as a transfer syntax, not a pixel, change); `iod` holds dciodvfy's errors
and warnings per object, so a patch that breaks conformance regresses even if no byte was compared.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from harness.model import JSON, Endpoint
from harness.plugin import Observe
from simulators.corpus import CorpusItem
from simulators.iod import IodError, IodReport, validate
from simulators.modality import Modality, StoreResult
from suites._support import (
    Arrival,
    arrivals_at_pacs,
    clear_received,
    decoded_pixels_sha256,
    query,
    status_hex,
    wire_objects,
)


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


# Many cases retrieve the same objects: dciodvfy and pixel decoding run once per distinct bytes.
_IOD: dict[str, IodReport] = {}
_PIXELS: dict[str, str | None] = {}


def _digest(arrival: Arrival) -> str:
    return hashlib.sha256(arrival.transfer_syntax_uid.encode() + b"\0" + arrival.encoded).hexdigest()


def _pixels(key: str, ds: Dataset) -> str | None:
    if key not in _PIXELS:
        _PIXELS[key] = decoded_pixels_sha256(ds)
    return _PIXELS[key]


def _conformance(item: CorpusItem, arrival: Arrival) -> dict[str, JSON]:
    """dciodvfy's errors and warnings for what arrived, each with how often it was reported."""
    digest = _digest(arrival)
    if digest not in _IOD:
        try:
            _IOD[digest] = validate(
                arrival.encoded, arrival.transfer_syntax_uid, item.sop_class_uid, arrival.sop_instance_uid
            )
        except IodError as exc:
            # A harness fault: ending the run makes it INCONCLUSIVE, where a failed case in both runs would hide regressions.
            pytest.exit(f"harness fault, IOD check: {exc}", returncode=pytest.ExitCode.INTERNAL_ERROR)
    report = _IOD[digest]
    return {"errors": dict(Counter(report.errors)), "warnings": dict(Counter(report.warnings))}


def _wire(items: Sequence[CorpusItem], arrivals: Sequence[Arrival]) -> tuple[dict[str, JSON], dict[str, JSON]]:
    """(wire, iod) observations: associations, sub-operations per association, and per corpus key what arrived."""
    objects, iod, per_association = wire_objects(
        items,
        arrivals,
        lambda item, got: (_pixels(f"stored:{item.key}", item.dataset), _pixels(_digest(got), got.dataset)),
        _conformance,
    )
    wire: dict[str, JSON] = {
        "associations": len(per_association),
        "suboperations": [per_association[n] for n in sorted(per_association)],
        "objects": objects,
    }
    return wire, iod


def _kept(wire: Mapping[str, JSON]) -> dict[str, str]:
    """Per corpus key whose content did not arrive intact, why: missing, or attributes removed or changed.

    Attributes a device adds (Orthanc does) and a transfer syntax it chose are observed, not failed.
    """
    problems = {}
    objects = wire["objects"]
    assert isinstance(objects, dict)
    for key, got in objects.items():
        if not isinstance(got, dict):
            problems[key] = str(got)
            continue
        attributes = got["attributes"]
        assert isinstance(attributes, dict)
        lost = [*attributes["removed"], *attributes["changed"]]
        if lost:
            problems[key] = "removed or changed: " + ", ".join(str(n) for n in lost)
    return problems


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
    arrivals = arrivals_at_pacs(pacs_storage, [i.sop_instance_uid for i in items])
    wire, iod = _wire(items, arrivals)
    wire["calling_ae"] = sorted({a.calling_ae for a in arrivals})
    observe("move", result.summary())
    observe("wire", wire)
    observe("iod", iod)
    assert result.status == 0x0000, f"C-MOVE final status {status_hex(result.status)}: {result.error}"
    assert (result.completed, result.failed) == (len(items), 0), "sub-operation counts"
    problems = _kept(wire)
    assert not problems, f"objects at the destination: {problems}"


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
    arrivals = [
        Arrival(r.sop_instance_uid, r.transfer_syntax_uid, r.association, "", r.encoded, r.dataset)
        for r in result.received
    ]
    wire, iod = _wire(items, arrivals)
    wanted = {i.sop_instance_uid for i in items}
    wire["unexpected"] = sorted({a.sop_instance_uid for a in arrivals} - wanted)
    summary = result.summary()
    # Each object is in `wire` (syntax, attributes, decoded pixels), which says what changed where a
    # hash says only "different"; bit identity after a round trip is the storage suite's case.
    del summary["received"]
    observe("get", summary)
    observe("wire", wire)
    observe("iod", iod)
    assert result.status == 0x0000, f"C-GET final status {status_hex(result.status)}: {result.error}"
    assert (result.completed, result.failed) == (len(items), 0), "sub-operation counts"
    problems = _kept(wire)
    assert not problems, f"objects received: {problems}"
