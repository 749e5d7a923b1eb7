"""IHE Scheduled Workflow integrity checks (RAD TF-2x Table A.1-1): a worklist item against its MPPS, images and commitment.

`checks(evidence)` gives one verdict per check (CHECKS), each `"ok"`, `"n/a"` (nothing to check
it against: no MPPS, no images), `"missing: <where>"` or `"mismatch: <where> <value>"`, where
`<where>` is `mpps` or `images` (`2 of 3 images` when only some are wrong). Values that are
device-made UIDs or times are never shown, so a verdict is the same in two runs of one device;
item values (the RIS's) are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from simulators.ris.worklist import ScheduledItem
from simulators.workflow_scu import MPPS

__all__ = ["CHECKS", "FINAL_STATES", "NA", "OK", "Evidence", "checks", "refs_of"]

OK, NA = "ok", "n/a"
FINAL_STATES = ("COMPLETED", "DISCONTINUED")
# One per row of workflow.md section 8.3 (RAD TF-2x Table A.1-1 and the RAD-6/7/10 transactions).
CHECKS = (
    "patient_id",
    "patient_name",
    "birth_date",
    "sex",
    "study_uid",
    "accession_number",
    "requested_procedure_id",
    "sps_id",
    "sps_description",
    "protocol_code",
    "referenced_study",
    "procedure_code",
    "modality",
    "station",
    "mpps_reference",
    "pps_id",
    "create_status",
    "final_status",
    "series_listed",
    "images_listed",
    "commit_covers_sent",
)

Ref = tuple[str, str]  # (SOP Class UID, SOP Instance UID)
Value = Hashable | None  # None: the attribute is absent


@dataclass(frozen=True)
class Evidence:
    """What one procedure left at the simulators: the RIS's MPPS requests, the PACS's objects and N-ACTIONs."""

    item: ScheduledItem
    station_ae: str  # the device's AE title
    mpps_uid: str = ""  # the N-CREATE's SOP Instance UID ("" no N-CREATE)
    mpps_create: Dataset | None = None  # the N-CREATE attribute list
    mpps_sets: tuple[Dataset, ...] = ()  # the N-SET modification lists, in order
    images: tuple[Dataset, ...] = ()  # the objects the PACS holds for the procedure, as received
    # What the PACS received (also objects since deleted); None: the SOP class and instance of `images`.
    received: frozenset[Ref] | None = None
    commit_refs: tuple[Ref, ...] | None = None  # the first N-ACTION's Referenced SOP Sequence; None: none sent
    sent: frozenset[Ref] = field(init=False)

    def __post_init__(self) -> None:
        received = self.received if self.received is not None else frozenset(refs_of(self.images))
        object.__setattr__(self, "sent", received)


def refs_of(images: Sequence[Dataset]) -> list[Ref]:
    return [(str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", ""))) for ds in images]


def _text(ds: Dataset | None, *path: str) -> str | None:
    """The value at `path` (sequences: their first item) as text; None if any step is absent."""
    node: Dataset | None = ds
    for keyword in path[:-1]:
        if node is None or keyword not in node:
            return None
        items = node[keyword].value
        node = items[0] if items else None
    if node is None or path[-1] not in node:
        return None
    value = node[path[-1]].value
    if value is None:
        return ""
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _code(ds: Dataset | None, keyword: str) -> tuple[str, ...] | None:
    """The first code of a code sequence as (value, scheme, meaning); () if empty, None if absent."""
    if ds is None or keyword not in ds:
        return None
    items = ds[keyword].value or []
    if not items:
        return ()
    code = items[0]
    return tuple(str(code.get(k, "") or "") for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning"))


def _refs(items: Sequence[Dataset] | None) -> frozenset[Ref]:
    return frozenset(
        (str(i.get("ReferencedSOPClassUID", "")), str(i.get("ReferencedSOPInstanceUID", ""))) for i in items or []
    )


def _step(ds: Dataset | None, keyword: str, sps_id: str) -> Dataset | None:
    """The item of `keyword` (SSAS, Request Attributes Sequence) for `sps_id`, else its first; None if none."""
    if ds is None or keyword not in ds or not ds[keyword].value:
        return None
    items: list[Dataset] = list(ds[keyword].value)
    return next((i for i in items if str(i.get("ScheduledProcedureStepID", "")) == sps_id), items[0])


def _empty(value: Value) -> bool:
    return value is None or value == "" or value == () or value == frozenset()


def _where(source: str, bad: int, total: int) -> str:
    if source == "mpps" or bad == total:
        return source
    return f"{bad} of {total} {source}"


def _shown(value: Value) -> str:
    if isinstance(value, tuple):
        return "^".join(str(v) for v in value)
    return str(value)


def _copies(expected: Value, sources: Sequence[tuple[str, list[Value]]], *, show: bool = True) -> str:
    """Each copy of an item value against the item's: the first source that is wrong says how; n/a if no copies."""
    used = [(where, values) for where, values in sources if values]
    if not used:
        return NA
    for where, values in used:
        missing = [v for v in values if _empty(v) and not _empty(expected)]
        if missing:
            return f"missing: {_where(where, len(missing), len(values))}"
        wrong = [v for v in values if not (_empty(v) and _empty(expected)) and v != expected]
        if wrong:
            shown = f" {_shown(wrong[0])}" if show else ""
            return f"mismatch: {_where(where, len(wrong), len(values))}{shown}"
    return OK


def _sets(listed: Collection[Hashable], made: Collection[Hashable], what: str) -> str:
    """A listed set against what was made: counts only (the members are device-made UIDs)."""
    extra, absent = len(set(listed) - set(made)), len(set(made) - set(listed))
    if not extra and not absent:
        return OK
    return f"mismatch: {absent} {what} not listed, {extra} listed but not received"


class _Judge:
    """The checks of one Evidence; each method one row of the table."""

    def __init__(self, evidence: Evidence) -> None:
        self.e = evidence
        self.item = evidence.item
        create = evidence.mpps_create
        self.create = create
        self.ssas = _step(create, "ScheduledStepAttributesSequence", self.item.sps_id)
        self.finals = [s for s in evidence.mpps_sets if _text(s, "PerformedProcedureStepStatus") in FINAL_STATES]

    def _both(
        self, expected: Value, mpps: Callable[[], Value], image: Callable[[Dataset], Value], *, show: bool = True
    ) -> str:
        """A value copied into the MPPS (when there is one) and into every image."""
        return _copies(
            expected,
            [("mpps", [mpps()] if self.create is not None else []), ("images", [image(i) for i in self.e.images])],
            show=show,
        )

    def top(self, keyword: str, expected: str) -> str:
        return self._both(expected, lambda: _text(self.create, keyword), lambda i: _text(i, keyword))

    def in_request(self, keyword: str, expected: str) -> str:
        """SSAS > keyword in the MPPS; Request Attributes Sequence > keyword in the images."""
        sps = self.item.sps_id
        return self._both(
            expected,
            lambda: _text(self.ssas, keyword),
            lambda i: _text(_step(i, "RequestAttributesSequence", sps), keyword),
        )

    def study_level(self, keyword: str, expected: str) -> str:
        """SSAS > keyword in the MPPS; the top level of the images."""
        return self._both(expected, lambda: _text(self.ssas, keyword), lambda i: _text(i, keyword))

    def protocol_code(self) -> str:
        sps = self.item.sps_id
        return self._both(
            self.item.scheduled_protocol_code,
            lambda: _code(self.ssas, "ScheduledProtocolCodeSequence"),
            lambda i: _code(_step(i, "RequestAttributesSequence", sps), "ScheduledProtocolCodeSequence"),
        )

    def referenced_study(self) -> str:
        # The RIS's items reference no study: a copy must be empty (or absent: Type 2 / Type 3).
        def refs(ds: Dataset | None) -> frozenset[Ref]:
            return _refs(ds.get("ReferencedStudySequence") if ds is not None else None)

        return self._both(frozenset(), lambda: refs(self.ssas), refs, show=False)

    def procedure_code(self) -> str:
        return self._both(
            self.item.requested_procedure_code,
            lambda: _code(self.create, "ProcedureCodeSequence"),
            lambda i: _code(i, "ProcedureCodeSequence"),
        )

    def station(self) -> str:
        values: list[Value] = [_text(self.create, "PerformedStationAETitle")] if self.create is not None else []
        return _copies(self.e.station_ae, [("mpps", values)])

    def mpps_reference(self) -> str:
        if self.create is None or not self.e.mpps_uid:
            return NA
        expected = (MPPS, self.e.mpps_uid)

        def ref(ds: Dataset) -> Value:
            items = ds.get("ReferencedPerformedProcedureStepSequence")
            if not items:
                return None
            return (str(items[0].get("ReferencedSOPClassUID", "")), str(items[0].get("ReferencedSOPInstanceUID", "")))

        return _copies(expected, [("images", [ref(i) for i in self.e.images])], show=False)

    def pps_id(self) -> str:
        if self.create is None:
            return NA
        keys = ("PerformedProcedureStepID", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime")
        made = tuple(_text(self.create, k) for k in keys)
        if any(_empty(v) for v in made):
            return "missing: mpps"
        # The device's own ID, date and time: shown only as missing or mismatched, never by value.

        def copied(image: Dataset) -> Value:
            values = tuple(_text(image, k) for k in keys)
            return None if any(_empty(v) for v in values) else values

        return _copies(made, [("images", [copied(i) for i in self.e.images])], show=False)

    def create_status(self) -> str:
        if self.create is None:
            return NA
        return _copies("IN PROGRESS", [("mpps", [_text(self.create, "PerformedProcedureStepStatus")])])

    def final_status(self) -> str:
        if self.create is None:
            return NA
        if not self.finals:
            return "missing: mpps"
        if len(self.finals) > 1:
            return f"mismatch: mpps {len(self.finals)} final N-SETs"
        final = self.finals[0]
        if any(_empty(_text(final, k)) for k in ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime")):
            return "missing: mpps end date/time"
        return OK

    def _listed(self) -> Dataset | str:
        """The final N-SET whose Performed Series Sequence lists what was made; else the verdict (n/a, missing)."""
        if self.create is None or not self.finals:
            return NA
        final = self.finals[0]
        return final if "PerformedSeriesSequence" in final else "missing: mpps"

    def series_listed(self) -> str:
        final = self._listed()
        if isinstance(final, str):
            return final
        # A series is listed when it references objects: an empty item (a step discontinued before any image) makes none.
        listed = {
            str(s.get("SeriesInstanceUID", ""))
            for s in final.PerformedSeriesSequence
            if s.get("ReferencedImageSequence") or s.get("ReferencedNonImageCompositeSOPInstanceSequence")
        }
        made = {str(i.get("SeriesInstanceUID", "")) for i in self.e.images}
        return _sets(listed, made, "series")

    def images_listed(self) -> str:
        final = self._listed()
        if isinstance(final, str):
            return final
        listed: set[Ref] = set()
        for series in final.PerformedSeriesSequence:
            listed |= _refs(series.get("ReferencedImageSequence"))
            listed |= _refs(series.get("ReferencedNonImageCompositeSOPInstanceSequence"))
        return _sets(listed, self.e.sent, "objects")

    def commit_covers_sent(self) -> str:
        if self.e.commit_refs is None:
            return NA if not self.e.sent else "missing"
        return _sets(self.e.commit_refs, self.e.sent, "objects")


def checks(evidence: Evidence, names: Collection[str] = CHECKS) -> dict[str, str]:
    """The verdict of each check in `names` (CHECKS order); KeyError naming an unknown check."""
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise KeyError(f"unknown integrity check(s) {unknown}; known: {', '.join(CHECKS)}")
    j, item = _Judge(evidence), evidence.item
    table: dict[str, Callable[[], str]] = {
        "patient_id": lambda: j.top("PatientID", item.patient_id),
        "patient_name": lambda: j.top("PatientName", item.patient_name),
        "birth_date": lambda: j.top("PatientBirthDate", item.birth_date),
        "sex": lambda: j.top("PatientSex", item.sex),
        "study_uid": lambda: j.study_level("StudyInstanceUID", item.study_instance_uid),
        "accession_number": lambda: j.study_level("AccessionNumber", item.accession_number),
        "requested_procedure_id": lambda: j.in_request("RequestedProcedureID", item.requested_procedure_id),
        "sps_id": lambda: j.in_request("ScheduledProcedureStepID", item.sps_id),
        "sps_description": lambda: j.in_request("ScheduledProcedureStepDescription", item.sps_description),
        "protocol_code": j.protocol_code,
        "referenced_study": j.referenced_study,
        "procedure_code": j.procedure_code,
        "modality": lambda: j.top("Modality", item.modality),
        "station": j.station,
        "mpps_reference": j.mpps_reference,
        "pps_id": j.pps_id,
        "create_status": j.create_status,
        "final_status": j.final_status,
        "series_listed": j.series_listed,
        "images_listed": j.images_listed,
        "commit_covers_sent": j.commit_covers_sent,
    }
    return {name: table[name]() for name in CHECKS if name in names}
