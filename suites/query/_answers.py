"""What the query suites record of C-FIND answers: matches as sorted DICOM JSON, and the final status in words."""

from __future__ import annotations

import json
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from simulators.modality import FindResult
from simulators.status import category
from suites._support import dataset_json, status_hex

__all__ = ["ABSENT", "canonical", "keyed", "outcome"]

# What `keyed` records for a key the answer left out (an empty one is "").
ABSENT = "(absent)"


def canonical(matches: tuple[Dataset, ...]) -> list[Any]:
    """Matches as DICOM JSON, sorted: C-FIND returns a set, so order is not a behaviour."""
    as_json = [dataset_json(m) for m in matches]
    return sorted(as_json, key=lambda d: json.dumps(d, sort_keys=True))


def outcome(result: FindResult) -> dict[str, Any]:
    """The final status as code and PS3.7 category ("none" when no final response came), and the match count."""
    return {
        "status": status_hex(result.status),
        "category": category(result.status) if result.status is not None else "none",
        "count": len(result.matches),
    }


def keyed(matches: tuple[Dataset, ...], keywords: list[str]) -> list[dict[str, Any]]:
    """Each match's values of `keywords` as text, by keyword (so a report names them in words), sorted like `canonical`."""
    rows = []
    for match in matches:
        row: dict[str, Any] = {}
        for keyword in keywords:
            value = match.get(keyword) if keyword in match else ABSENT
            if value is None:
                value = ""
            # Several values as DICOM writes them ("\\ISO 2022 IR 87"): a change reads as one value changed.
            row[keyword] = "\\".join(str(v) for v in value) if isinstance(value, (list, MultiValue)) else str(value)
        rows.append(row)
    return sorted(rows, key=lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False))
