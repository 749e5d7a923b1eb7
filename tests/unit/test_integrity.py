"""IHE Scheduled Workflow integrity checks (suites.workflow.integrity): each check ok, missing, mismatch and n/a.

The evidence is what a conformant modality leaves: the MPPS it would send (simulators.workflow_scu)
and images with the worklist attributes copied in (tests/workflow_device.py); each test breaks one
copy the way a patched device might, per IHE RAD TF-2x Table A.1-1 and RAD TF-2 4.6, 4.7, 4.10.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators.corpus import by_key, generate
from simulators.ris import RequestLine
from simulators.ris.worklist import scheduled_items
from simulators.workflow_scu import MPPS, MWL_FIND, PerformedSeries, mpps_final, mpps_in_progress
from suites.workflow._procedure import by_role, mwl_query, stable
from suites.workflow.integrity import CHECKS, NA, OK, Evidence, checks, refs_of
from tests.workflow_device import acquired_image

STATION = "REFMOD"
ITEM = scheduled_items(1422, "20261130", STATION)[0]  # SPS-1: CT, patient PG-0001
MPPS_UID = "2.25.1001"
SERIES = "2.25.2001"
BASE = by_key(generate(1422))["CT-explicit"].dataset


@dataclass
class Parts:
    """A conformant procedure's evidence, built up to be broken one copy at a time."""

    create: Dataset | None
    images: list[Dataset]
    sets: list[Dataset] = field(default_factory=list)
    commit_refs: tuple[tuple[str, str], ...] | None = None
    received: frozenset[tuple[str, str]] | None = None

    def evidence(self) -> Evidence:
        return Evidence(
            item=ITEM,
            station_ae=STATION,
            mpps_uid=MPPS_UID if self.create is not None else "",
            mpps_create=self.create,
            mpps_sets=tuple(self.sets),
            images=tuple(self.images),
            received=self.received,
            commit_refs=self.commit_refs,
        )


def conformant() -> Parts:
    item = ITEM.dataset()
    create = mpps_in_progress(item, station_ae=STATION, pps_id="PPS1", start_date="20261130", start_time="100000")
    mpps = {"uid": MPPS_UID, "pps_id": "PPS1", "start_date": "20261130", "start_time": "100000"}
    images = [
        acquired_image(BASE, item, series_uid=SERIES, instance_uid=f"2.25.300{n}", number=n, mpps=mpps) for n in (1, 2)
    ]
    refs = refs_of(images)
    final = mpps_final(
        "COMPLETED", end_date="20261130", end_time="101500", series=[PerformedSeries(SERIES, tuple(refs))]
    )
    return Parts(create, images, [final], tuple(refs))


def test_a_conformant_procedure_passes_every_check() -> None:
    """RAD TF-2x A.1-1: every worklist value copied into the MPPS and the images, the step listed and committed whole."""
    assert checks(conformant().evidence()) == dict.fromkeys(CHECKS, OK)


def test_without_mpps_images_or_commitment_every_check_is_not_applicable() -> None:
    """A device that did nothing of a kind has nothing to check for it: n/a, never ok."""
    assert checks(Parts(None, []).evidence()) == dict.fromkeys(CHECKS, NA)


def _drop(keyword: str, *, where: str = "images", first_only: bool = False) -> Callable[[Parts], None]:
    def change(parts: Parts) -> None:
        if where == "mpps":
            assert parts.create is not None
            targets = [parts.create]
        elif where == "ssas":
            assert parts.create is not None
            targets = [parts.create.ScheduledStepAttributesSequence[0]]
        elif where == "ras":
            targets = [i.RequestAttributesSequence[0] for i in parts.images]
        else:
            targets = parts.images[:1] if first_only else parts.images
        for ds in targets:
            del ds[keyword]

    return change


def _set(keyword: str, value: object, *, where: str = "images") -> Callable[[Parts], None]:
    def change(parts: Parts) -> None:
        assert parts.create is not None
        targets = {
            "mpps": [parts.create],
            "ssas": [parts.create.ScheduledStepAttributesSequence[0]],
            "ras": [i.RequestAttributesSequence[0] for i in parts.images],
            "images": parts.images,
        }[where]
        for ds in targets:
            setattr(ds, keyword, value)

    return change


def _code(code_value: str) -> DicomSequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code_value, "99PG", "Other"
    return DicomSequence([item])


def _no_mpps(parts: Parts) -> None:
    parts.create, parts.sets = None, []


def _no_images(parts: Parts) -> None:
    parts.images = []


def _nothing(parts: Parts) -> None:
    parts.create, parts.sets, parts.images, parts.commit_refs = None, [], [], None


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop_instance
    return ref


def _rewrite_pps_ref(parts: Parts, uid: str) -> None:
    for image in parts.images:
        image.ReferencedPerformedProcedureStepSequence = DicomSequence([_ref(MPPS, uid)])


# check -> (break it: missing, expected), (break it: mismatch, expected), make it n/a
TABLE: dict[str, tuple[tuple[Callable[[Parts], None], str], tuple[Callable[[Parts], None], str], Callable[[Parts], None]]] = {
    "patient_id": ((_drop("PatientID", first_only=True), "missing: 1 of 2 images"), (_set("PatientID", "X1", where="mpps"), "mismatch: mpps X1"), _nothing),
    "patient_name": ((_drop("PatientName", where="mpps"), "missing: mpps"), (_set("PatientName", "Doe^John"), "mismatch: images Doe^John"), _nothing),
    "birth_date": ((_drop("PatientBirthDate"), "missing: images"), (_set("PatientBirthDate", "19000101", where="mpps"), "mismatch: mpps 19000101"), _nothing),
    "sex": ((_drop("PatientSex"), "missing: images"), (_set("PatientSex", "O"), "mismatch: images O"), _nothing),
    "study_uid": ((_drop("StudyInstanceUID", where="ssas"), "missing: mpps"), (_set("StudyInstanceUID", "2.25.9"), "mismatch: images 2.25.9"), _nothing),
    "accession_number": ((_drop("AccessionNumber"), "missing: images"), (_set("AccessionNumber", "PGA9999", where="ssas"), "mismatch: mpps PGA9999"), _nothing),
    "requested_procedure_id": ((_drop("RequestedProcedureID", where="ras"), "missing: images"), (_set("RequestedProcedureID", "RP9", where="ssas"), "mismatch: mpps RP9"), _nothing),
    "sps_id": ((_drop("ScheduledProcedureStepID", where="ssas"), "missing: mpps"), (_set("ScheduledProcedureStepID", "SPS9", where="ras"), "mismatch: images SPS9"), _nothing),
    "sps_description": ((_drop("ScheduledProcedureStepDescription", where="ras"), "missing: images"), (_set("ScheduledProcedureStepDescription", "Other", where="ssas"), "mismatch: mpps Other"), _nothing),
    "protocol_code": ((_drop("ScheduledProtocolCodeSequence", where="ssas"), "missing: mpps"), (_set("ScheduledProtocolCodeSequence", _code("P9"), where="ras"), "mismatch: images P9^99PG^Other"), _nothing),
    # The RIS's items reference no study, so an absent copy is a correct one (Type 2 in SSAS, Type 3 in images).
    "referenced_study": ((_drop("ReferencedStudySequence"), OK), (_set("ReferencedStudySequence", DicomSequence([_ref("1.2.840.10008.3.1.2.3.1", "2.25.7")])), "mismatch: images"), _nothing),
    "procedure_code": ((_drop("ProcedureCodeSequence", where="mpps"), "missing: mpps"), (_set("ProcedureCodeSequence", _code("X")), "mismatch: images X^99PG^Other"), _nothing),
    "modality": ((_drop("Modality"), "missing: images"), (_set("Modality", "MR", where="mpps"), "mismatch: mpps MR"), _nothing),
    "station": ((_drop("PerformedStationAETitle", where="mpps"), "missing: mpps"), (_set("PerformedStationAETitle", "OTHER", where="mpps"), "mismatch: mpps OTHER"), _no_mpps),
    "mpps_reference": ((_drop("ReferencedPerformedProcedureStepSequence", first_only=True), "missing: 1 of 2 images"), (lambda p: _rewrite_pps_ref(p, "2.25.4"), "mismatch: images"), _no_mpps),
    "pps_id": ((_drop("PerformedProcedureStepID"), "missing: images"), (_set("PerformedProcedureStepStartTime", "100001"), "mismatch: images"), _no_mpps),
    "create_status": ((_drop("PerformedProcedureStepStatus", where="mpps"), "missing: mpps"), (_set("PerformedProcedureStepStatus", "COMPLETED", where="mpps"), "mismatch: mpps COMPLETED"), _no_mpps),
    "final_status": ((lambda p: p.sets.clear(), "missing: mpps"), (lambda p: p.sets.append(p.sets[0]), "mismatch: mpps 2 final N-SETs"), _no_mpps),
    "series_listed": ((lambda p: delattr(p.sets[0], "PerformedSeriesSequence"), "missing: mpps"), (lambda p: setattr(p.images[1], "SeriesInstanceUID", "2.25.2002"), "mismatch: 1 series not listed, 0 listed but not received"), _no_mpps),
    "images_listed": ((lambda p: delattr(p.sets[0], "PerformedSeriesSequence"), "missing: mpps"), (lambda p: p.images.pop(), "mismatch: 0 objects not listed, 1 listed but not received"), _no_mpps),
    "commit_covers_sent": ((lambda p: setattr(p, "commit_refs", None), "missing"), (lambda p: setattr(p, "commit_refs", p.commit_refs[:1] if p.commit_refs else ()), "mismatch: 1 objects not listed, 0 listed but not received"), _nothing),
}  # fmt: skip


def test_the_table_covers_every_check() -> None:
    assert set(TABLE) == set(CHECKS)


@pytest.mark.parametrize("check", CHECKS)
def test_a_missing_copy_is_missing(check: str) -> None:
    """Type 1/2 copies absent (RAD TF-2x A.1-1; PS3.4 F.7.2-1 final-state Type 1): `missing: <where>`."""
    parts = conformant()
    (change, expected), _, _ = TABLE[check]
    change(parts)
    assert checks(parts.evidence(), [check]) == {check: expected}


@pytest.mark.parametrize("check", CHECKS)
def test_a_changed_copy_is_a_mismatch(check: str) -> None:
    """A copy that differs from the worklist's value (or a list that differs from what was sent): `mismatch: ...`."""
    parts = conformant()
    _, (change, expected), _ = TABLE[check]
    change(parts)
    assert checks(parts.evidence(), [check]) == {check: expected}


@pytest.mark.parametrize("check", CHECKS)
def test_without_the_source_a_check_is_not_applicable(check: str) -> None:
    parts = conformant()
    _, _, change = TABLE[check]
    change(parts)
    assert checks(parts.evidence(), [check]) == {check: NA}


def test_device_made_values_are_never_shown() -> None:
    """A mismatch of the device's own UIDs or times says where and how many, not the value: the same in every run."""
    parts = conformant()
    _rewrite_pps_ref(parts, "2.25.123456789")
    parts.images[0].PerformedProcedureStepStartTime = "235959"
    shown = checks(parts.evidence(), ["mpps_reference", "pps_id"])
    assert shown == {"mpps_reference": "mismatch: images", "pps_id": "mismatch: 1 of 2 images"}


def test_committing_an_object_since_deleted_still_covers_what_was_sent() -> None:
    """RAD-10 refs are judged against what the PACS received (`received`), not what it still holds."""
    parts = conformant()
    sent = frozenset(refs_of(parts.images))
    parts.images.pop()  # deleted at the PACS before the commitment
    assert checks(replace(parts.evidence(), received=sent), ["commit_covers_sent"]) == {"commit_covers_sent": OK}


def test_a_discontinued_step_without_images_lists_an_empty_series() -> None:
    """PS3.4 F.7.2-1 wants a Performed Series Sequence item even when no image was made: an empty one lists nothing."""
    parts = conformant()
    parts.images = []
    parts.sets = [
        mpps_final("DISCONTINUED", end_date="20261130", end_time="1015", series=[PerformedSeries(SERIES, ())])
    ]
    assert checks(parts.evidence(), ["final_status", "series_listed", "images_listed"]) == {
        "final_status": OK,
        "series_listed": OK,
        "images_listed": OK,
    }


def test_an_unknown_check_is_named() -> None:
    with pytest.raises(KeyError, match=r"unknown integrity check.*'patient_idd'"):
        checks(conformant().evidence(), ["patient_idd"])


# -- observations comparable between runs (suites.workflow._procedure) ------------------------------


def _element(vr: str, *values: str) -> dict[str, object]:
    return {"vr": vr, "Value": list(values)}


def test_dates_and_times_of_the_run_become_markers_and_others_stay() -> None:
    """Two runs' clocks differ: a date or time of the run is a marker; a fixed or malformed one stays, so a change shows."""
    now = dt.datetime.now(dt.UTC)
    today, time_now = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    model = {
        "00080012": _element("DA", today),
        "00080013": _element("TM", time_now + ".123"),
        "00080020": _element("DA", "19991231"),
        "0008002A": _element("DT", today + time_now),
        "00400244": _element("DA", "2026113"),  # malformed: kept
        "00400100": {"vr": "SQ", "Value": [{"00400002": _element("DA", f"{today}-{today}")}]},
    }
    assert stable(model) == {
        "00080012": _element("DA", "<today>"),
        "00080013": _element("TM", "<time>"),
        "00080020": _element("DA", "19991231"),
        "0008002A": _element("DT", "<today><time>"),
        "00400244": _element("DA", "2026113"),
        "00400100": {"vr": "SQ", "Value": [{"00400002": _element("DA", "<today>-<today>")}]},
    }
    assert stable({"00400002": _element("DA", today)}, worklist_date=today) == {
        "00400002": _element("DA", "<worklist-date>")
    }


def _find(identifier: Dataset) -> RequestLine:
    return RequestLine(1, 1, "REFMOD", "PGRIS", "C-FIND", MWL_FIND, "", "0x0000", identifier.to_json_dict(), "", ["S1"])


def test_a_worklist_query_is_described_by_its_keys_values_and_kind() -> None:
    """PS3.4 K.6.1.2.1 matching keys; IHE RAD TF-2 4.5.4.1.2: a broad query (station, modality, date) or a patient one."""
    query = Dataset()
    query.PatientName = ""
    sps = Dataset()
    sps.ScheduledStationAETitle = "REFMOD"
    sps.ScheduledProcedureStepStartDate = "20261130"
    sps.Modality = ""
    query.ScheduledProcedureStepSequence = DicomSequence([sps])
    described = mwl_query(_find(query), "20261130")
    assert described["keys"] == [
        "PatientName",
        "ScheduledProcedureStepSequence>Modality",
        "ScheduledProcedureStepSequence>ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepSequence>ScheduledStationAETitle",
    ]
    assert described["values"] == {
        "ScheduledProcedureStepSequence>ScheduledProcedureStepStartDate": "<worklist-date>",
        "ScheduledProcedureStepSequence>ScheduledStationAETitle": "REFMOD",
    }
    assert described["kind"] == "broad: station, date"
    query.PatientID = "PG-0001"
    assert mwl_query(_find(query), "20261130")["kind"] == "patient-based"
    assert mwl_query(_find(Dataset()), "20261130")["kind"] == "universal"


def test_device_made_uids_become_their_roles_wherever_they_appear() -> None:
    """The MPPS UID in an image's reference and in no other place is still `<mpps>`: no renumbering by appearance."""
    model = {
        "00081111": {"vr": "SQ", "Value": [{"00081155": _element("UI", "2.25.1")}]},
        "0020000E": _element("UI", "2.25.2"),
        "0020000D": _element("UI", ITEM.study_instance_uid),
    }
    roles = {"2.25.1": "<mpps>", "2.25.2": "<series-1>"}
    assert by_role(model, roles) == {
        "00081111": {"vr": "SQ", "Value": [{"00081155": _element("UI", "<mpps>")}]},
        "0020000E": _element("UI", "<series-1>"),
        "0020000D": _element("UI", ITEM.study_instance_uid),
    }
