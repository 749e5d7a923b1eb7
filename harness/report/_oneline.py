"""A regressed case in one line, as CI reporters show a failure: the service and parameter, the change, the rest."""

from __future__ import annotations

import re

from harness.model import JSON, CaseComparison, Classification, Difference, DiffKind
from harness.report._case import split_case
from harness.report._status import status_words
from harness.wording import format_side

__all__ = ["SERVICE_WORDS", "case_words", "headline", "is_status", "parameter", "regressed"]

# The `service` marker's names as a DICOM reader says them.
SERVICE_WORDS = {
    "echo": "C-ECHO",
    "store": "C-STORE",
    "find": "C-FIND",
    "move": "C-MOVE",
    "get": "C-GET",
    "mwl": "MWL C-FIND",
    "mpps": "MPPS",
    "commitment": "Storage Commitment",
}
_STATUS = re.compile(r"0x[0-9A-Fa-f]{4}")
_SUCCESS = "0x0000"
_LONGEST = 60  # characters of one side's value in the line; the failure's body has them all


def regressed(case: CaseComparison) -> list[Difference]:
    """The case's regressed differences, the ones that say the most first: statuses, other observations, the
    outcome last (a case failing in the candidate is what the changes made it do, not why)."""
    found = [d for d in case.differences if d.classification is Classification.REGRESSED]
    return sorted(found, key=lambda d: 2 if d.path == "outcome" else 0 if is_status(d) else 1)


def parameter(case: str) -> str:
    """The case's parametrisation, the `[...]` part of its id ("" when it has none)."""
    _, test = split_case(case)
    return test[test.index("[") + 1 : -1] if "[" in test and test.endswith("]") else ""


def case_words(case: CaseComparison) -> str:
    """ "C-STORE CR-explicit": the service in DICOM's words and the parameter; the test's name without a service."""
    service = SERVICE_WORDS.get(case.service, case.service)
    if not service:
        return split_case(case.case)[1]
    said = parameter(case.case)
    if said in ("", case.service):  # test_unknown_calling_ae[store]: the parameter is the service itself
        said = split_case(case.case)[1].split("[")[0].rsplit("::", 1)[-1].removeprefix("test_").replace("_", " ")
    return f"{service} {said}"


def headline(case: CaseComparison) -> str:
    """One line: `C-STORE CR-explicit: status 0x0000 → 0xB000 (Warning: coercion of data elements) (+3 more)`."""
    found = regressed(case)
    if not found:
        return f"{case_words(case)}: {case.status.value}"
    first = found[0]
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    return f"{case_words(case)}: {_change(first, case.service)}{more}"


def _change(diff: Difference, service: str) -> str:
    if is_status(diff):
        before, after = (_side(v, diff, side, service) for v, side in ((diff.before, "before"), (diff.after, "after")))
        return f"status {before} → {after}"
    before, after = _cut(format_side(diff, "before")), _cut(format_side(diff, "after"))
    return f"{diff.path} {before} → {after}"


def _side(value: JSON, diff: Difference, side: str, service: str) -> str:
    if value is None:
        return "(absent)"
    if status_words(value, service).startswith(f"{_SUCCESS} "):
        return _SUCCESS  # "0x0000 → 0xB000 (...)": success goes without saying
    words = status_words(value, service)
    return words if words != str(value) else _cut(format_side(diff, "before" if side == "before" else "after"))


def is_status(diff: Difference) -> bool:
    """A DICOM status on both sides (the suites record them as "0x%04X"), or a status-typed change."""
    if diff.kind is DiffKind.STATUS_CHANGED and diff.path != "outcome":
        return True
    sides = [v for v in (diff.before, diff.after) if v is not None]
    return bool(sides) and all(isinstance(v, str) and _STATUS.fullmatch(v) for v in sides)


def _cut(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"
