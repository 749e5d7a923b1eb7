"""DIMSE status meanings by service, copied from pynetdicom's status tables (a unit test holds them equal).

A copy rather than an import: reports run in the compare process, which no longer loads pynetdicom or pydicom
(their import costs memory and start-up: scripts/bench_compare.py). tests/unit/test_ci_reports.py says
which entry differs when pynetdicom changes.
"""

from __future__ import annotations

__all__ = ["SERVICE_TABLES", "meaning", "status_words", "table"]

# (first code, last code, category, description)
_Range = tuple[int, int, str, str]
# pynetdicom.status.GENERAL_STATUS
_GENERAL: tuple[_Range, ...] = (
    (0x0000, 0x0000, "Success", ""),
    (0x0105, 0x0105, "Failure", "No Such Attribute"),
    (0x0106, 0x0106, "Failure", "Invalid Attribute Value"),
    (0x0107, 0x0107, "Warning", "Attribute List Error"),
    (0x0110, 0x0110, "Failure", "Processing Failure"),
    (0x0111, 0x0111, "Failure", "Duplication SOP Instance"),
    (0x0112, 0x0112, "Failure", "No Such SOP Instance"),
    (0x0113, 0x0113, "Failure", "No Such Event Type"),
    (0x0114, 0x0114, "Failure", "No Such Argument"),
    (0x0115, 0x0115, "Failure", "Invalid Argument Value"),
    (0x0116, 0x0116, "Warning", "Attribute Value Out of Range"),
    (0x0117, 0x0117, "Failure", "Invalid Object Instance"),
    (0x0118, 0x0118, "Failure", "No Such SOP Class"),
    (0x0119, 0x0119, "Failure", "Class-Instance Conflict"),
    (0x0120, 0x0120, "Failure", "Missing Attribute"),
    (0x0121, 0x0121, "Failure", "Missing Attribute Value"),
    (0x0122, 0x0122, "Failure", "Refused: SOP Class Not Supported"),
    (0x0123, 0x0123, "Failure", "No Such Action"),
    (0x0124, 0x0124, "Failure", "Refused: Not Authorised"),
    (0x0210, 0x0210, "Failure", "Duplicate Invocation"),
    (0x0211, 0x0211, "Failure", "Unrecognised Operation"),
    (0x0212, 0x0212, "Failure", "Mistyped Argument"),
    (0x0213, 0x0213, "Failure", "Resource Limitation"),
    (0xFE00, 0xFE00, "Cancel", ""),
)
# patchgate's service (the `service` marker) -> the pynetdicom table of its statuses
SERVICE_TABLES: dict[str, str] = {
    "echo": "VERIFICATION_SERVICE_CLASS_STATUS",
    "store": "STORAGE_SERVICE_CLASS_STATUS",
    "find": "QR_FIND_SERVICE_CLASS_STATUS",
    "move": "QR_MOVE_SERVICE_CLASS_STATUS",
    "get": "QR_GET_SERVICE_CLASS_STATUS",
    "mwl": "MODALITY_WORKLIST_SERVICE_CLASS_STATUS",
    "mpps": "PROCEDURE_STEP_STATUS",
    "commitment": "STORAGE_COMMITMENT_SERVICE_CLASS_STATUS",
}
# Each table's entries that GENERAL_STATUS lacks or says otherwise (every table holds all of GENERAL_STATUS)
# C-MOVE's and C-GET's tables (pynetdicom's QR_MOVE / QR_GET) share these rows, in this order.
_REFUSED: tuple[_Range, ...] = (
    (0xA701, 0xA701, "Failure", "Refused: Out of resources, unable to calculate number of matches"),
    (0xA702, 0xA702, "Failure", "Refused: Out of resources, unable to perform sub-operations"),
)
_RETRIEVE_FAILURES: tuple[_Range, ...] = (
    (0xA900, 0xA900, "Failure", "Identifier does not match SOP class"),
    (0xAA00, 0xAA00, "Failure", "None of the frames requested were found in the SOP instance"),
    (0xAA01, 0xAA01, "Failure", "Unable to create new object for this SOP class"),
    (0xAA02, 0xAA02, "Failure", "Unable to extract frames"),
    (0xAA03, 0xAA03, "Failure", "Time-based request received for a non-time-based original SOP Instance"),
    (0xAA04, 0xAA04, "Failure", "Invalid request"),
)
_RETRIEVE_REST: tuple[_Range, ...] = (
    (0xC000, 0xCFFF, "Failure", "Unable to Process"),
    (0xFF00, 0xFF00, "Pending", "Sub-operations are continuing"),
)
_SPECIFIC: dict[str, tuple[_Range, ...]] = {
    "echo": (),
    "store": (
        (0xA700, 0xA7FF, "Failure", "Refused: Out of Resources"),
        (0xA900, 0xA9FF, "Failure", "Data Set Does Not Match SOP Class"),
        (0xB000, 0xB000, "Warning", "Coercion of Data Elements"),
        (0xB006, 0xB006, "Warning", "Element Discarded"),
        (0xB007, 0xB007, "Warning", "Data Set Does Not Match SOP Class"),
        (0xC000, 0xCFFF, "Failure", "Cannot Understand"),
    ),
    "find": (
        (0xA700, 0xA700, "Failure", "Refused: Out of Resources"),
        (0xA710, 0xA710, "Failure", "Invalid Prior Record Key"),
        (0xA900, 0xA900, "Failure", "Identifier Does Not Match SOP Class"),
        (
            0xB001,
            0xB001,
            "Warning",
            "Matching reached response limit, subsequent request may return additional matches",
        ),
        (0xC000, 0xCFFF, "Failure", "Unable to Process"),
        (0xFF00, 0xFF00, "Pending", "Matches are continuing, current match supplied"),
        (0xFF01, 0xFF01, "Pending", "Matches are continuing, warning"),
    ),
    "move": (
        *_REFUSED,
        (0xA801, 0xA801, "Failure", "Move destination unknown"),
        *_RETRIEVE_FAILURES,
        (0xB000, 0xB000, "Warning", "Sub-operations completed, one or more failures"),
        *_RETRIEVE_REST,
    ),
    "get": (
        *_REFUSED,
        *_RETRIEVE_FAILURES,
        (0xB000, 0xB000, "Warning", "Sub-operations complete, one or more failures or warnings"),
        *_RETRIEVE_REST,
    ),
    "mwl": (
        (0xA700, 0xA700, "Failure", "Refused: Out of resources"),
        (0xA900, 0xA900, "Failure", "Identifier does not match SOP class"),
        (0xC000, 0xCFFF, "Failure", "Unable to Process"),
        (
            0xFF00,
            0xFF00,
            "Pending",
            "Matches are continuing - current match is supplied and any Optional Keys were supported in the same manner as Required Keys",
        ),
        (
            0xFF01,
            0xFF01,
            "Pending",
            "Matches are continuing - warning that one or more Optional Keys were not supported for existence for this Identifier",
        ),
    ),
    "mpps": ((0x0001, 0x0001, "Warning", "Requested optional attributes are not supported"),),
    "commitment": (),
}


def meaning(code: int, service: str) -> tuple[str, str] | None:
    """`(category, description)` of a status code in a service's table (else the general one); None: unknown."""
    for first, last, category, description in (*_SPECIFIC.get(service, ()), *_GENERAL):
        if first <= code <= last:
            return category, description
    return None


def status_words(value: object, service: str) -> str:
    """A status as a person reads it: `0xB000 (Warning: coercion of data elements)`; other values as they are.

    `value` is a recorded status, "0xB000" (the suites write hex strings) or an int; a code no table holds
    is shown bare. Success is said too: the line names both sides of a change.
    """
    code = _code(value)
    if code is None:
        return str(value)
    found = meaning(code, service)
    text = f"0x{code:04X}"
    if found is None:
        return text
    category, description = found
    if not description:
        return f"{text} ({category})"
    # pynetdicom writes Title Case: "Coercion of Data Elements" reads "coercion of data elements"; "SOP" stays.
    words = (w.lower() if w[1:].islower() else w for w in description.split(" "))
    return f"{text} ({category}: {' '.join(words)})"


def table(service: str) -> dict[int, tuple[str, str]]:
    """Every code of a service's table, expanded: what pynetdicom's table holds (the unit test compares them)."""
    out = {code: (c, d) for first, last, c, d in _GENERAL for code in range(first, last + 1)}
    out.update({code: (c, d) for first, last, c, d in _SPECIFIC.get(service, ()) for code in range(first, last + 1)})
    return out


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 0xFFFF else None
    if isinstance(value, str) and value[:2].lower() == "0x":
        try:
            code = int(value, 16)
        except ValueError:
            return None
        return code if 0 <= code <= 0xFFFF else None
    return None
