"""MPPS N-CREATE and N-SET rules (PS3.4 F.7.2): a thread-safe store of Performed Procedure Steps, no network.

`MppsStore.create(uid, ds)` and `.set(uid, ds)` return a `Reply` (status, ErrorComment, ErrorID,
AttributeIdentifierList, the response Attribute List); the RIS's handlers only carry it to the wire.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

__all__ = [
    "DUPLICATE_INSTANCE",
    "FINAL_STATES",
    "INVALID_VALUE",
    "MAY_NO_LONGER_BE_UPDATED",
    "MISSING_ATTRIBUTE",
    "MISSING_VALUE",
    "NOT_SETTABLE",
    "NO_SUCH_INSTANCE",
    "PROCESSING_FAILURE",
    "MppsStore",
    "Reply",
]

# PS3.7 C / PS3.4 F.7.2.1.4 and F.7.2.2.4 statuses.
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
NO_SUCH_INSTANCE = 0x0112
INVALID_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
MISSING_VALUE = 0x0121
# Error ID of the processing failure for an N-SET of a final PPS (PS3.4 F.7.2.2.4, Table F.7.2-2).
MAY_NO_LONGER_BE_UPDATED = 0xA710
_NO_LONGER_COMMENT = "Performed Procedure Step Object may no longer be updated"
FINAL_STATES = frozenset({"COMPLETED", "DISCONTINUED"})
_STATES = frozenset({"IN PROGRESS", *FINAL_STATES})
# Type 1 for N-CREATE (PS3.4 Table F.7.2-1); the Scheduled Step Attributes Sequence items need a Study Instance UID.
_CREATE_TYPE1 = (
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "Modality",
    "ScheduledStepAttributesSequence",
)
# "Not allowed" in the N-SET column of PS3.4 Table F.7.2-1: identity of the step, the patient, the schedule.
NOT_SETTABLE: frozenset[str] = frozenset(
    {
        "ScheduledStepAttributesSequence",
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferencedPatientSequence",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedStationName",
        "PerformedLocation",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "Modality",
        "StudyID",
    }
)
# What a final state needs (PS3.4 F.7.2.2.2, Table F.7.2-1 "Final State" requirements).
_FINAL_TYPE1 = ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "PerformedSeriesSequence")


@dataclass(frozen=True)
class Reply:
    """What to answer: a status, its optional fields, and on success the response Attribute List."""

    status: int
    sop_instance_uid: str = ""
    error_comment: str = ""
    error_id: int | None = None
    attribute_ids: tuple[int, ...] = ()  # AttributeIdentifierList (N-SET)
    attributes: Dataset | None = field(default=None, compare=False)

    def status_dataset(self) -> Dataset:
        """Status and optional fields as a pynetdicom handler returns them (it copies ErrorComment, ErrorID, ...)."""
        ds = Dataset()
        ds.Status = self.status
        if self.error_comment:
            ds.ErrorComment = self.error_comment[:64]  # LO
        if self.error_id is not None:
            ds.ErrorID = self.error_id
        if self.attribute_ids:
            ds.AttributeIdentifierList = list(self.attribute_ids)
        return ds


def _tag(keyword: str) -> int:
    return int(tag_for_keyword(keyword) or 0)


def _missing(ds: Dataset, keywords: tuple[str, ...], status_missing: int) -> Reply | None:
    """The first absent (MISSING_ATTRIBUTE / status_missing) or empty (MISSING_VALUE) keyword, as a Reply."""
    for keyword in keywords:
        if keyword not in ds:
            return Reply(status_missing, error_comment=f"{keyword} missing", attribute_ids=(_tag(keyword),))
        value = ds[keyword].value
        if value in (None, "") or (ds[keyword].VR == "SQ" and len(value) == 0):
            return Reply(MISSING_VALUE, error_comment=f"{keyword} has no value", attribute_ids=(_tag(keyword),))
    return None


class MppsStore:
    """Performed Procedure Steps by SOP Instance UID, with the PS3.4 F.7.2 transition rules.

    `reopen` accepts an N-SET of a step already COMPLETED or DISCONTINUED (a PS3.4 F.7.2.2.3
    violation: the RIS quirk `mpps_reopen`). `new_uid` makes the UID when an N-CREATE has none.
    """

    def __init__(self, new_uid: Callable[[int], str], *, reopen: bool = False) -> None:
        self._new_uid = new_uid
        self._reopen = reopen
        self._steps: dict[str, Dataset] = {}
        self._made = 0
        self._lock = threading.Lock()

    def get(self, uid: str) -> Dataset | None:
        """A copy of the step as it stands, None if there is none."""
        with self._lock:
            ds = self._steps.get(uid)
            return copy.deepcopy(ds) if ds is not None else None

    def create(self, uid: str | None, attributes: Dataset) -> Reply:
        """N-CREATE (PS3.4 F.7.2.1): a new step IN PROGRESS with its Type 1 attributes."""
        status = str(attributes.get("PerformedProcedureStepStatus", "") or "").strip()
        if "PerformedProcedureStepStatus" not in attributes:
            return Reply(
                MISSING_ATTRIBUTE, uid or "", "PerformedProcedureStepStatus missing", attribute_ids=(0x00400252,)
            )
        if status != "IN PROGRESS":
            return Reply(
                INVALID_VALUE, uid or "", f"PerformedProcedureStepStatus {status!r} at N-CREATE: must be IN PROGRESS"
            )
        if (reply := _missing(attributes, _CREATE_TYPE1, MISSING_ATTRIBUTE)) is not None:
            return Reply(reply.status, uid or "", reply.error_comment, attribute_ids=reply.attribute_ids)
        for n, item in enumerate(attributes.ScheduledStepAttributesSequence, start=1):
            if not str(item.get("StudyInstanceUID", "") or ""):
                comment = f"ScheduledStepAttributesSequence item {n}: StudyInstanceUID missing"
                return Reply(MISSING_ATTRIBUTE if "StudyInstanceUID" not in item else MISSING_VALUE, uid or "", comment)
        with self._lock:
            if uid is None:
                self._made += 1
                uid = self._new_uid(self._made)
            elif uid in self._steps:
                return Reply(DUPLICATE_INSTANCE, uid, "a Performed Procedure Step with this SOP Instance UID exists")
            self._steps[uid] = copy.deepcopy(attributes)
        return Reply(0x0000, uid, attributes=copy.deepcopy(attributes))

    def set(self, uid: str, modification: Dataset) -> Reply:
        """N-SET (PS3.4 F.7.2.2): changes to a step IN PROGRESS; a final state needs its final attributes."""
        with self._lock:
            current = self._steps.get(uid)
            if current is None:
                return Reply(NO_SUCH_INSTANCE, uid, "no Performed Procedure Step with this SOP Instance UID")
            state = str(current.get("PerformedProcedureStepStatus", "")).strip()
            if state in FINAL_STATES and not self._reopen:
                return Reply(PROCESSING_FAILURE, uid, _NO_LONGER_COMMENT, MAY_NO_LONGER_BE_UPDATED)
            refused = sorted(int(e.tag) for e in modification if e.keyword in NOT_SETTABLE)
            if refused:
                names = ", ".join(modification[t].keyword for t in refused)
                return Reply(INVALID_VALUE, uid, f"not allowed in N-SET: {names}", attribute_ids=tuple(refused))
            new_state = state
            if "PerformedProcedureStepStatus" in modification:
                new_state = str(modification.PerformedProcedureStepStatus or "").strip()
                if new_state not in _STATES:
                    comment = (
                        f"PerformedProcedureStepStatus {new_state!r}: must be IN PROGRESS, COMPLETED or DISCONTINUED"
                    )
                    return Reply(INVALID_VALUE, uid, comment, attribute_ids=(0x00400252,))
            merged = copy.deepcopy(current)
            for elem in modification:
                merged[elem.tag] = copy.deepcopy(elem)
            if new_state in FINAL_STATES:
                if (reply := _missing(merged, _FINAL_TYPE1, MISSING_VALUE)) is not None:
                    comment = f"{new_state} needs {reply.error_comment}"
                    return Reply(MISSING_VALUE, uid, comment, attribute_ids=reply.attribute_ids)
                for n, item in enumerate(merged.PerformedSeriesSequence, start=1):
                    if not str(item.get("SeriesInstanceUID", "") or ""):
                        comment = f"PerformedSeriesSequence item {n}: SeriesInstanceUID has no value"
                        return Reply(MISSING_VALUE, uid, comment, attribute_ids=(0x0020000E,))
            self._steps[uid] = merged
        return Reply(0x0000, uid, attributes=copy.deepcopy(modification))
