"""Worklist: MWL C-FIND with each matching key and type of PS3.4 K.6 / C.2.2.2, answered from the seeded worklist.

The device serves `worklist_items` (the harness wrote them as .wl files before it started, or the
RIS generates the same), so the answers the standard requires are known: a case asserts them where
PS3.4 makes the key a required matching key (Table K.6-1, type R) and only observes the answers for
optional keys (type O) and implementation-defined matching (PN case). Every case records the
status sequence and the answers, sorted by SPS ID, so the order a device answers in does not matter.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from harness.context import SuiteContext
from harness.model import JSON, Endpoint
from harness.plugin import Observe
from simulators.modality import FindResult, Modality
from simulators.ris import OTHER_STATION, ScheduledItem
from simulators.status import category
from suites._support import status_hex

pytestmark = pytest.mark.service("mwl")

Items = tuple[ScheduledItem, ...]
# Return keys every query asks for (PS3.4 Table K.6-1), matching keys set per case on top.
TOP_KEYS = (
    "AccessionNumber",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "RequestedProcedureID",
)
SPS_KEYS = (
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "Modality",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
)
_SPS = "00400100"
_SPS_ID = "00400009"


def identifier(top: Mapping[str, str] | None = None, sps: Mapping[str, str] | None = None) -> Dataset:
    """The return keys above, empty, with `top` and `sps` (SPS item) keys set as matching keys."""
    ds = Dataset()
    for keyword in TOP_KEYS:
        setattr(ds, keyword, "")
    for keyword, value in (top or {}).items():
        setattr(ds, keyword, value)
    item = Dataset()
    for keyword in SPS_KEYS:
        setattr(item, keyword, "")
    for keyword, value in (sps or {}).items():
        setattr(item, keyword, value)
    ds.ScheduledProcedureStepSequence = DicomSequence([item])
    return ds


def day(date: str, offset: int) -> str:
    """`date` (YYYYMMDD) moved by `offset` days."""
    moved = datetime.date(int(date[:4]), int(date[4:6]), int(date[6:])) + datetime.timedelta(days=offset)
    return moved.strftime("%Y%m%d")


def _sps_id(answer: Mapping[str, Any]) -> str:
    items = answer.get(_SPS, {}).get("Value") or [{}]
    return str((items[0].get(_SPS_ID, {}).get("Value") or [""])[0])


def answers(result: FindResult) -> list[JSON]:
    """The answers in the DICOM JSON model, sorted by SPS ID (a device may answer in any order)."""
    return sorted((m.to_json_dict() for m in result.matches), key=_sps_id)


def matched(result: FindResult) -> list[str]:
    """The SPS IDs answered, sorted."""
    return sorted(_sps_id(m.to_json_dict()) for m in result.matches)


def statuses(result: FindResult) -> dict[str, JSON]:
    """The status sequence: how many pending answers, then the final status by code and category."""
    final = result.status
    return {
        "pending": len(result.matches),
        "final": status_hex(final),
        "category": category(final) if final is not None else "none",
        "error": result.error,
    }


def sps_ids(items: Sequence[ScheduledItem]) -> list[str]:
    return sorted(item.sps_id for item in items)


@dataclass(frozen=True)
class WorklistCase:
    """One query built from the worklist (its items and date) and, for required matching, the items it must find."""

    id: str
    build: Callable[[Items, str], Dataset]
    expected: Callable[[Items, str], list[ScheduledItem]] | None  # None: optional key or implementation-defined


def _station(items: Items) -> str:
    return next(i.station_ae for i in items if i.station_ae != OTHER_STATION)


def _name(pattern: str) -> Callable[[Items, str], list[ScheduledItem]]:
    return lambda items, _: [i for i in items if fnmatch.fnmatchcase(i.patient_name, pattern)]


def _time(low: str, high: str) -> Callable[[Items, str], list[ScheduledItem]]:
    return lambda items, _: [i for i in items if low <= i.start_time <= high]


CASES = [
    # Universal matching (C.2.2.2.3): every key empty.
    WorklistCase("universal", lambda items, d: identifier(), lambda items, d: list(items)),
    # Single value matching (C.2.2.2.1) on the required keys.
    WorklistCase(
        "station",
        lambda items, d: identifier(sps={"ScheduledStationAETitle": _station(items)}),
        lambda items, d: [i for i in items if i.station_ae == _station(items)],
    ),
    WorklistCase(
        "station-other",
        lambda items, d: identifier(sps={"ScheduledStationAETitle": OTHER_STATION}),
        lambda items, d: [i for i in items if i.station_ae == OTHER_STATION],
    ),
    WorklistCase(
        "modality",
        lambda items, d: identifier(sps={"Modality": "CT"}),
        lambda items, d: [i for i in items if i.modality == "CT"],
    ),
    WorklistCase(
        "patient-id",
        lambda items, d: identifier({"PatientID": items[3].patient_id}),
        lambda items, d: [i for i in items if i.patient_id == items[3].patient_id],
    ),
    # Wildcard matching (C.2.2.2.4) on Patient's Name, a required key.
    WorklistCase("patient-name-star", lambda items, d: identifier({"PatientName": "DOE*"}), _name("DOE*")),
    WorklistCase("patient-name-question", lambda items, d: identifier({"PatientName": "DO?^JANE"}), _name("DO?^JANE")),
    # PN case sensitivity is implementation-defined (C.2.2.2.1): observed only.
    WorklistCase("patient-name-lowercase", lambda items, d: identifier({"PatientName": "doe*"}), None),
    # Multiple values of a non-UID key (C.2.2.2.8): an SCP may or may not support it.
    WorklistCase(
        "patient-id-list",
        lambda items, d: identifier({"PatientID": f"{items[0].patient_id}\\{items[3].patient_id}"}),
        None,
    ),
    # Optional matching keys (type O in Table K.6-1): observed.
    WorklistCase("accession", lambda items, d: identifier({"AccessionNumber": items[2].accession_number}), None),
    WorklistCase("accession-wildcard", lambda items, d: identifier({"AccessionNumber": "PGA000?"}), None),
    # List of UID matching (C.2.2.2.2) on Study Instance UID.
    WorklistCase(
        "study-uid-list",
        lambda items, d: identifier(
            {"StudyInstanceUID": f"{items[1].study_instance_uid}\\{items[4].study_instance_uid}"}
        ),
        None,
    ),
    WorklistCase("sps-id", lambda items, d: identifier(sps={"ScheduledProcedureStepID": items[5].sps_id}), None),
    # Date and time: single value and range matching (C.2.2.2.5), including open ranges.
    WorklistCase(
        "date",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartDate": d}),
        lambda items, d: [i for i in items if i.start_date == d],
    ),
    WorklistCase(
        "date-other-day", lambda items, d: identifier(sps={"ScheduledProcedureStepStartDate": day(d, 1)}), lambda *_: []
    ),
    WorklistCase(
        "date-range",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartDate": f"{day(d, -1)}-{d}"}),
        lambda items, d: list(items),
    ),
    WorklistCase(
        "date-open-end",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartDate": f"{d}-"}),
        lambda items, d: list(items),
    ),
    WorklistCase(
        "date-open-start",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartDate": f"-{day(d, -1)}"}),
        lambda *_: [],
    ),
    WorklistCase(
        "time-range",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartTime": "0900-1200"}),
        _time("090000", "120000"),
    ),
    WorklistCase(
        "time-open-end",
        lambda items, d: identifier(sps={"ScheduledProcedureStepStartTime": "1400-"}),
        _time("140000", "235959"),
    ),
    # No match: success with no answers.
    WorklistCase("empty-result", lambda items, d: identifier({"PatientID": "PG-NOBODY"}), lambda *_: []),
]


def _ask(modality: Modality, device: Endpoint, query: Dataset) -> FindResult:
    result = modality.worklist(device, query)
    assert result.accepted, f"the device refused the MWL association: {result.error}"
    return result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_worklist(
    case: WorklistCase,
    worklist_items: Items,
    device: Endpoint,
    modality: Modality,
    patchgate_context: SuiteContext,
    observe: Observe,
) -> None:
    """PS3.4 K.6.1.2 with C.2.2.2: the items a required key selects, each answered once, then Success (0x0000)."""
    date = patchgate_context.worklist_date
    result = _ask(modality, device, case.build(worklist_items, date))
    observe("mwl.status", statuses(result))
    observe("mwl.matched", matched(result))
    observe("mwl.answers", answers(result))
    assert result.status == 0x0000, f"final status {status_hex(result.status)} {result.error}"
    if case.expected is not None:
        assert matched(result) == sps_ids(case.expected(worklist_items, date))


def test_combined_date_time(
    worklist_items: Items, device: Endpoint, modality: Modality, patchgate_context: SuiteContext, observe: Observe
) -> None:
    """PS3.4 C.2.2.2.5.1: SPS Start Date and Time given as ranges together are one date-time range.

    From the day before at 10:00 to the worklist day at 12:30: a device that matches the two keys
    apart answers only the items between 10:00 and 12:30; both readings are recorded by name.
    """
    date = patchgate_context.worklist_date
    query = identifier(
        sps={
            "ScheduledProcedureStepStartDate": f"{day(date, -1)}-{date}",
            "ScheduledProcedureStepStartTime": "1000-1230",
        }
    )
    result = _ask(modality, device, query)
    combined = sps_ids([i for i in worklist_items if i.start_time <= "123000"])
    apart = sps_ids([i for i in worklist_items if "100000" <= i.start_time <= "123000"])
    reading = {tuple(combined): "combined", tuple(apart): "apart"}.get(tuple(matched(result)), "neither")
    observe("mwl.status", statuses(result))
    observe("mwl.datetime_reading", reading)
    observe("mwl.answers", answers(result))
    assert result.status == 0x0000 and reading != "neither", (reading, matched(result))


def test_return_keys(worklist_items: Items, device: Endpoint, modality: Modality, observe: Observe) -> None:
    """PS3.4 K.4.1.1.3.2 (as C.4.1.1.3.2): an answer holds the requested keys only (and the character set).

    Study Instance UID, Accession Number and SPS ID are return keys with values (Table K.6-1).
    """
    item = worklist_items[0]
    query = Dataset()
    query.PatientID = item.patient_id
    query.AccessionNumber = ""
    query.StudyInstanceUID = ""
    sps = Dataset()
    sps.ScheduledProcedureStepID = ""
    sps.Modality = ""
    query.ScheduledProcedureStepSequence = DicomSequence([sps])
    result = _ask(modality, device, query)
    observe("mwl.status", statuses(result))
    observe("mwl.answers", answers(result))
    assert result.status == 0x0000 and result.matches, statuses(result)
    wanted = {"PatientID", "AccessionNumber", "StudyInstanceUID", "ScheduledProcedureStepSequence"}
    for answer in result.matches:
        assert {e.keyword for e in answer} - {"SpecificCharacterSet"} <= wanted, sorted(e.keyword for e in answer)
        assert {e.keyword for e in answer.ScheduledProcedureStepSequence[0]} <= {"ScheduledProcedureStepID", "Modality"}
    mine = [m for m in result.matches if m.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == item.sps_id]
    assert len(mine) == 1, matched(result)
    assert (mine[0].StudyInstanceUID, mine[0].AccessionNumber) == (item.study_instance_uid, item.accession_number)


def test_whole_sps_item(worklist_items: Items, device: Endpoint, modality: Modality, observe: Observe) -> None:
    """PS3.4 C.2.2.2.6: a zero-length sequence key is universal and returns the whole SPS item of every answer."""
    query = identifier()
    query.ScheduledProcedureStepSequence = DicomSequence()
    result = _ask(modality, device, query)
    observe("mwl.status", statuses(result))
    observe("mwl.answers", answers(result))
    assert result.status == 0x0000 and matched(result) == sps_ids(worklist_items), matched(result)
    by_id = {i.sps_id: i for i in worklist_items}
    for answer in result.matches:
        sps = answer.ScheduledProcedureStepSequence[0]
        held = by_id[str(sps.ScheduledProcedureStepID)]
        assert (sps.ScheduledStationAETitle, sps.Modality) == (held.station_ae, held.modality)


@pytest.mark.parametrize("bad", ["sps-two-items", "bad-date"])
def test_bad_query(bad: str, device: Endpoint, modality: Modality, observe: Observe) -> None:
    """A wrong identifier is refused with a Failure and no answers: two items in a sequence key (PS3.4 C.2.2.2.6,
    0xA900 Identifier does not match SOP Class) or a date that is not one (PS3.4 K.4.1.1.4, a 0xA900 or 0xCxxx code)."""
    query = identifier()
    if bad == "sps-two-items":
        query.ScheduledProcedureStepSequence.append(Dataset())
    else:
        query.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate = "2026-11-30x"
    result = _ask(modality, device, query)
    observe("mwl.status", statuses(result))
    assert result.status is not None and category(result.status) == "Failure", statuses(result)
    assert result.matches == (), matched(result)


def test_cancel(worklist_items: Items, device: Endpoint, modality: Modality, observe: Observe) -> None:
    """PS3.4 K.4.1.2 (C-CANCEL): after the first answer the query is cancelled; the device ends it with Cancel
    (0xFE00), or with Success if it had sent every answer before the C-CANCEL came (a race, so both are
    recorded as one outcome). Then it answers the next query as before."""
    result = modality.worklist(device, identifier(), cancel_after=1)
    assert result.accepted, result.error
    ended = result.status in (0xFE00, 0x0000) and 1 <= len(result.matches) <= len(worklist_items)
    observe("mwl.cancel", "ended" if ended else statuses(result))
    known = set(sps_ids(worklist_items))
    assert ended and set(matched(result)) <= known, statuses(result)
    after = _ask(modality, device, identifier())
    observe("mwl.after_cancel", {"status": statuses(after), "matched": matched(after)})
    assert after.status == 0x0000 and matched(after) == sps_ids(worklist_items)
