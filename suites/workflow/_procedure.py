"""One scheduled procedure as a suite drives it: the device's actions for an item, and what they left at the simulators.

A `Procedure` marks where the RIS and commitment journals stand and clears what the PACS holds
when it begins, so what it reads back is this case's only; every wait is bounded by the
`settle` of the action that caused it. Observations are made comparable between runs here:
datasets the device made keep their device-made UIDs (the comparison numbers those by role),
while their dates and times of the run become `<today>` / `<time>` (two times that happen to
fall in one second would otherwise share a token in one run and not in the next).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from harness.model import JSON
from harness.plugin import Act, ActionResult
from simulators.pacs import JOURNAL
from simulators.ris import RequestLine
from simulators.ris.worklist import ScheduledItem
from simulators.workflow_scu import MPPS, MWL_FIND
from suites._support import Arrival, arrivals_at_pacs, clear_received
from suites._window import quiet, wait_for
from suites.workflow.integrity import FINAL_STATES, Evidence

__all__ = [
    "Procedure",
    "Reaction",
    "by_role",
    "final_state",
    "mwl_query",
    "request_dataset",
    "stable",
]

_STANDARD_UID = "1.2.840.10008."  # DICOM's own UIDs (SOP classes, syntaxes): never a device's
WORKLIST_DATE, TODAY, TIME = "<worklist-date>", "<today>", "<time>"
_NEAR = dt.timedelta(minutes=15)  # a time this close to now is the run's, not a fixed value
_QUIET = 0.5  # seconds without a new object before a device's sending counts as done
_DA = re.compile(r"\d{8}")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?")
_DT = re.compile(r"(\d{8})(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?")
_PATIENT_KEYS = ("PatientID", "PatientName", "AccessionNumber", "RequestedProcedureID", "StudyInstanceUID")
_BROAD_KEYS = {
    "ScheduledProcedureStepSequence>ScheduledStationAETitle": "station",
    "ScheduledProcedureStepSequence>Modality": "modality",
    "ScheduledProcedureStepSequence>ScheduledProcedureStepStartDate": "date",
}


# -- values of the run made comparable --------------------------------------------------------


def _nows() -> list[dt.datetime]:
    """Now on the UTC clock and on the local one (a device may stamp either), both naive."""
    utc = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return [utc, dt.datetime.now()]


def _near_today(value: str) -> bool:
    try:
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return False
    return any(abs((day - now.date()).days) <= 1 for now in _nows())


def _near_now(value: str) -> bool:
    m = _TM.fullmatch(value)
    if not m or not m[2]:  # an hour alone is a fixed value (a query range), not a moment
        return False
    seconds = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)
    for now in _nows():
        gap = abs(seconds - (now.hour * 3600 + now.minute * 60 + now.second))
        if min(gap, 86400 - gap) <= _NEAR.total_seconds():
            return True
    return False


def _stable_value(vr: str, value: str, worklist_date: str) -> str:
    """One DA/TM/DT value (or `A-B` range) with the worklist date and the run's dates and times as markers."""
    if "-" in value and vr != "DT":
        return "-".join(_stable_value(vr, part, worklist_date) if part else "" for part in value.split("-"))
    if vr == "DA" and _DA.fullmatch(value):
        if worklist_date and value == worklist_date:
            return WORKLIST_DATE
        return TODAY if _near_today(value) else value
    if vr == "TM":
        return TIME if _near_now(value) else value
    if vr == "DT":
        m = _DT.fullmatch(value)
        if m and _near_today(m[1]) and (not m[2] or _near_now(m[2])):
            return f"{TODAY}{TIME if m[2] else ''}"
    return value


def stable(model: JSON, worklist_date: str = "") -> JSON:
    """A DICOM JSON model with dates and times of the run as markers: `<today>`, `<time>`, and `<worklist-date>` if given.

    The worklist date is marked in what the device asked (a query); in what it made, a date of the
    run is `<today>` even when it equals the worklist's, so a validation across midnight stays
    comparable. UIDs stay: the comparison turns device-made ones into tokens by role and keeps
    the RIS's (UID_ROOT-based) exact. A malformed date or time stays as it is, so a device that
    breaks one shows a difference.
    """
    if isinstance(model, list):
        return [stable(v, worklist_date) for v in model]
    if not isinstance(model, dict):
        return model
    vr = model.get("vr")
    if isinstance(vr, str) and isinstance(model.get("Value"), list):
        values = model["Value"]
        assert isinstance(values, list)
        if vr in ("DA", "TM", "DT"):
            values = [_stable_value(vr, v, worklist_date) if isinstance(v, str) else v for v in values]
        elif vr == "SQ":
            values = [stable(v, worklist_date) for v in values]
        return {**model, "Value": values}
    return {k: stable(v, worklist_date) for k, v in model.items()}


def by_role(model: JSON, roles: Mapping[str, str]) -> JSON:
    """`model` with each device-made UID of `roles` replaced by its role (`<mpps>`, `<series-1>`, `<object-2>` ...).

    Numbering UIDs by their first appearance in a run (the comparison's way) lets one missing
    observation renumber every later one; a role names what the UID is, so only real changes show.
    """
    if isinstance(model, str):
        return roles.get(model, model)
    if isinstance(model, list):
        return [by_role(v, roles) for v in model]
    if isinstance(model, dict):
        return {k: by_role(v, roles) for k, v in model.items()}
    return model


def request_dataset(line: RequestLine) -> Dataset:
    """The dataset a RIS journal line holds; an empty one if the journal could not convert it (it says so)."""
    model = line.dataset
    if not isinstance(model, dict) or "error" in model:
        return Dataset()
    return Dataset.from_json(dict(model), bulk_data_uri_handler=lambda *_: b"")


# -- the worklist query -----------------------------------------------------------------------


def _keyword(tag: str) -> str:
    t = Tag(int(tag, 16))
    return keyword_for_tag(t) or f"({t.group:04X},{t.element:04X})"


def _flat(model: Mapping[str, JSON], prefix: str = "") -> dict[str, str | None]:
    """`path -> value` of a DICOM JSON identifier (a sequence's first item nested as `Seq>Key`); None: no value."""
    out: dict[str, str | None] = {}
    for tag, element in model.items():
        path = prefix + _keyword(tag)
        if not isinstance(element, dict):
            continue
        values = element.get("Value")
        if element.get("vr") == "SQ":
            items = values if isinstance(values, list) else []
            if items and isinstance(items[0], dict):
                out |= _flat(items[0], path + ">")
            else:
                out[path] = None
            continue
        if not isinstance(values, list) or not values:
            out[path] = None
            continue
        shown = [str(v.get("Alphabetic", "")) if isinstance(v, dict) else str(v) for v in values]
        out[path] = "\\".join(shown)
    return out


def mwl_query(line: RequestLine, worklist_date: str) -> dict[str, JSON]:
    """What one MWL C-FIND asked (keys, matching values, kind), who asked, and what the RIS answered."""
    model = line.dataset if isinstance(line.dataset, dict) else {}
    flat = _flat(model)
    vrs = _vrs(model)
    values = {
        path: _stable_value(vrs.get(path, ""), value, worklist_date) for path, value in sorted(flat.items()) if value
    }
    if any(k in values for k in _PATIENT_KEYS):
        kind = "patient-based"
    else:
        broad = [name for key, name in _BROAD_KEYS.items() if key in values]
        kind = f"broad: {', '.join(broad)}" if broad else "universal"
    return {
        "keys": sorted(flat),
        "values": dict(values),
        "kind": kind,
        "answers": list(line.answers or []),
        "status": line.status,
        "calling_ae": line.calling_ae,
        "called_ae": line.called_ae,
    }


def _vrs(model: Mapping[str, JSON], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for tag, element in model.items():
        if not isinstance(element, dict):
            continue
        path = prefix + _keyword(tag)
        out[path] = str(element.get("vr", ""))
        values = element.get("Value")
        if element.get("vr") == "SQ" and isinstance(values, list) and values and isinstance(values[0], dict):
            out |= _vrs(values[0], path + ">")
    return out


# -- MPPS -------------------------------------------------------------------------------------


def final_state(create: RequestLine | None, sets: Sequence[RequestLine]) -> str:
    """The Performed Procedure Step Status the RIS holds after these requests ("none": nothing was created)."""
    if create is None or create.status != "0x0000":
        return "none"
    state = str(request_dataset(create).get("PerformedProcedureStepStatus", "") or "")
    for line in sets:
        if line.status == "0x0000":
            state = str(request_dataset(line).get("PerformedProcedureStepStatus", "") or state)
    return state or "none"


# -- one procedure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reaction:
    """What a device did after a commitment report said an object was not held, within the commit's settle."""

    resent: bool
    asked_again: bool

    @property
    def word(self) -> str:
        return (
            "+".join(w for w, did in (("resent", self.resent), ("asked_again", self.asked_again)) if did) or "nothing"
        )


class Procedure:
    """One worklist item driven through the device's actions, and the journals read back for it."""

    def __init__(
        self,
        item: ScheduledItem,
        act: Act,
        *,
        station_ae: str,
        worklist_date: str,
        ris_requests: Callable[[], list[RequestLine]] | None,
        commitment_journal: Callable[[], list[dict[str, JSON]]],
        pacs_storage: Path,
    ) -> None:
        self.item = item
        self._act = act
        self.station_ae = station_ae
        self.worklist_date = worklist_date
        self._ris = ris_requests or (lambda: [])
        self._commitment = commitment_journal
        self.storage = pacs_storage
        # Earlier cases' objects and journal lines are not this one's.
        clear_received(pacs_storage)
        self._ris_mark = len(self._ris())
        self._commit_mark = len(self._commitment())

    # -- acting ---------------------------------------------------------------------------------

    def act(self, name: str, *, item: bool = True, **extra: str) -> ActionResult:
        """The device does `name` for this item (`item=False`: for none) plus `extra` values; the case fails if not done."""
        result = self._act(name, {**(self.item.placeholders() if item else {}), **extra})
        result.require()
        return result

    # -- the RIS ----------------------------------------------------------------------------------

    def requests(self) -> list[RequestLine]:
        return self._ris()[self._ris_mark :]

    def finds(self) -> list[RequestLine]:
        return [r for r in self.requests() if r.dimse == "C-FIND" and r.sop_class == MWL_FIND]

    def wait_find(self, settle: float) -> list[RequestLine]:
        return wait_for(self.finds, bool, settle)

    def creates(self) -> list[RequestLine]:
        return [r for r in self.requests() if r.dimse == "N-CREATE" and r.sop_class == MPPS]

    def create(self) -> RequestLine | None:
        """This item's N-CREATE: the one whose Scheduled Step Attributes name its SPS ID, else the first."""
        creates = self.creates()
        for line in creates:
            steps = request_dataset(line).get("ScheduledStepAttributesSequence") or []
            if any(str(s.get("ScheduledProcedureStepID", "")) == self.item.sps_id for s in steps):
                return line
        return creates[0] if creates else None

    def wait_create(self, settle: float) -> RequestLine | None:
        wait_for(self.creates, bool, settle)
        return self.create()

    def sets(self) -> list[RequestLine]:
        create = self.create()
        if create is None:
            return []
        return [r for r in self.requests() if r.dimse == "N-SET" and r.sop_instance == create.sop_instance]

    def wait_final(self, settle: float) -> list[RequestLine]:
        """The N-SETs once a final one (COMPLETED / DISCONTINUED) arrived and no other followed, or after `settle` s.

        Waiting a moment past the first final N-SET lets a device that sends it twice show both.
        """

        def final(lines: list[RequestLine]) -> bool:
            return any(request_dataset(r).get("PerformedProcedureStepStatus") in FINAL_STATES for r in lines)

        started = time.monotonic()
        if final(wait_for(self.sets, final, settle)):
            quiet(lambda: len(self.sets()), _QUIET, max(0.0, settle - (time.monotonic() - started)))
        return self.sets()

    # -- the PACS ---------------------------------------------------------------------------------

    def _journal(self) -> list[dict[str, Any]]:
        path = self.storage / JOURNAL
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_arrivals(self, settle: float) -> list[Arrival]:
        """What the PACS received in this case, once the device stopped sending (or after `settle` s)."""
        quiet(lambda: len(self._journal()), _QUIET, settle)
        return self.arrivals()

    def arrivals(self) -> list[Arrival]:
        uids = [str(line["sop_instance_uid"]) for line in self._journal()]
        return arrivals_at_pacs(self.storage, uids)

    def received(self) -> list[tuple[str, str]]:
        """(SOP class, SOP instance) of every object the PACS received in this case, in order, once each."""
        seen: dict[str, str] = {}
        for arrival in self.arrivals():
            seen.setdefault(arrival.sop_instance_uid, str(arrival.dataset.get("SOPClassUID", "")))
        return [(c, i) for i, c in seen.items()]

    def times_received(self, sop_instance_uid: str) -> int:
        return sum(1 for line in self._journal() if line.get("sop_instance_uid") == sop_instance_uid)

    # -- storage commitment -----------------------------------------------------------------------

    def commitment(self) -> list[dict[str, JSON]]:
        return self._commitment()[self._commit_mark :]

    def actions(self) -> list[dict[str, JSON]]:
        return [line for line in self.commitment() if line.get("dimse") == "N-ACTION"]

    def reports(self) -> list[dict[str, JSON]]:
        return [line for line in self.commitment() if line.get("dimse") == "N-EVENT-REPORT"]

    def wait_report(self, settle: float) -> list[dict[str, JSON]]:
        """The commitment lines once a report for this case's first N-ACTION is journalled, or after `settle` s."""

        def reported(lines: list[dict[str, JSON]]) -> bool:
            asked = [line for line in lines if line.get("dimse") == "N-ACTION"]
            if not asked:
                return False
            uid = asked[0].get("transaction_uid")
            return any(line.get("dimse") == "N-EVENT-REPORT" and line.get("transaction_uid") == uid for line in lines)

        return wait_for(self.commitment, reported, settle)

    def first_refs(self) -> tuple[tuple[str, str], ...] | None:
        asked = self.actions()
        if not asked:
            return None
        refs = asked[0].get("referenced")
        return tuple((str(r[0]), str(r[1])) for r in refs if isinstance(r, list)) if isinstance(refs, list) else ()

    # -- evidence -------------------------------------------------------------------------------

    def roles(self) -> dict[str, str]:
        """This case's device-made UIDs by role: the MPPS, each series and object received, then those only listed.

        Received ones are numbered in arrival order; series and objects the N-SETs list that never
        arrived are `<listed-series-n>` / `<listed-object-n>`. The RIS's study UID keeps its value.
        """
        roles: dict[str, str] = {}
        keep = {self.item.study_instance_uid, ""}  # the RIS's: compared exactly

        def add(uid: str, role: str) -> None:
            if uid not in keep and uid not in roles and not uid.startswith(_STANDARD_UID):
                count = sum(1 for r in roles.values() if r.startswith(f"<{role}-"))
                roles[uid] = f"<{role}-{count + 1}>"

        create = self.create()
        if create is not None and create.sop_instance:
            roles[create.sop_instance] = "<mpps>"
        for arrival in _first(self.arrivals()):
            add(str(arrival.dataset.get("SeriesInstanceUID", "")), "series")
            add(arrival.sop_instance_uid, "object")
        for line in self.sets():
            for series in request_dataset(line).get("PerformedSeriesSequence") or []:
                add(str(series.get("SeriesInstanceUID", "")), "listed-series")
                for key in ("ReferencedImageSequence", "ReferencedNonImageCompositeSOPInstanceSequence"):
                    for ref in series.get(key) or []:
                        add(str(ref.get("ReferencedSOPInstanceUID", "")), "listed-object")
        return roles

    def evidence(self, received: Sequence[tuple[str, str]] | None = None) -> Evidence:
        """What the journals hold for this item, for the IHE integrity checks."""
        create = self.create()
        return Evidence(
            item=self.item,
            station_ae=self.station_ae,
            mpps_uid=create.sop_instance if create is not None else "",
            mpps_create=request_dataset(create) if create is not None else None,
            mpps_sets=tuple(request_dataset(line) for line in self.sets()),
            images=tuple(a.dataset for a in _first(self.arrivals())),
            received=frozenset(received) if received is not None else None,
            commit_refs=self.first_refs(),
        )


def _first(arrivals: Sequence[Arrival]) -> list[Arrival]:
    """One arrival per object: the first (a resent object is one object)."""
    seen: dict[str, Arrival] = {}
    for arrival in arrivals:
        seen.setdefault(arrival.sop_instance_uid, arrival)
    return list(seen.values())
