"""DICOM in people's words for report.html: tags with keyword and name, datasets (DICOM JSON) as attribute rows.

The names come from pydicom's data dictionary, read from its data file alone: importing pydicom costs the
compare process ~0.5 s and ~30 MB (reports run there, scripts/bench_compare.py), the dictionary 4 ms.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.model import JSON

__all__ = ["Attribute", "attribute_rows", "element_text", "is_dataset", "is_element", "named_path", "tag_words"]

_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
# A whole path segment of 8 hex digits (DICOM JSON keys, as the suites record datasets): `.00081030` then `.`, `[`
# or the end.
_PATH_TAG = re.compile(r"(?<=\.)([0-9A-F]{8})(?=[.\[]|$)")
_ENTRY = tuple[str, str, str, str, str]  # (VR, VM, name, retired, keyword), pydicom's layout
_VALUE_SAID = 80  # characters of one attribute's value in a row; comparison.json has all


@dataclass(frozen=True)
class Attribute:
    """One data element of a dataset, as a row: `(0008,1030)`, `StudyDescription`, `Study Description`, `LO`."""

    tag: str
    keyword: str  # "" for a private or unknown tag
    name: str  # "Private tag" / "Unknown tag" when the dictionary has none
    vr: str
    value: str

    @property
    def distinct_keyword(self) -> str:
        """The keyword when the name does not already say it ("Query/Retrieve Level" does QueryRetrieveLevel)."""
        return "" if self.keyword == re.sub(r"[^0-9A-Za-z]", "", self.name) else self.keyword


@functools.cache
def _dictionary() -> Mapping[int, _ENTRY]:
    """pydicom's DicomDictionary, from `pydicom/_dicom_dict.py` without importing the package; {} when absent."""
    spec = importlib.util.find_spec("pydicom")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / "_dicom_dict.py"
    loaded = importlib.util.spec_from_file_location("_patchgate_dicom_dict", path)
    if loaded is None or loaded.loader is None or not path.is_file():
        return {}
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    table: Mapping[int, _ENTRY] = getattr(module, "DicomDictionary", {})
    return table


def tag_words(tag: str) -> tuple[str, str, str]:
    """`("(0008,1030)", "StudyDescription", "Study Description")` for "00081030"; a private tag (odd group) or one
    the dictionary lacks gets no keyword."""
    value = int(tag, 16)
    shown = f"({tag[:4].upper()},{tag[4:].upper()})"
    if (value >> 16) % 2:
        return shown, "", "Private tag"
    entry = _dictionary().get(value)
    if entry is None:
        return shown, "", "Unknown tag"
    return shown, entry[4], entry[2]


def named_path(path: str) -> str:
    """A difference's path with each bare tag named: `retrieved.dataset.00081030` →
    `retrieved.dataset.(0008,1030) StudyDescription`."""

    def name(match: re.Match[str]) -> str:
        shown, keyword, words = tag_words(match.group(1))
        # Eight digits the dictionary does not know may be no tag at all (a number in a name): left as they are.
        return f"{shown} {keyword}" if keyword else f"{shown} {words}" if words == "Private tag" else match.group(1)

    return _PATH_TAG.sub(name, path)


def is_element(value: JSON) -> bool:
    """A DICOM JSON data element: `{"vr": "LO", "Value": [...]}`."""
    return isinstance(value, dict) and isinstance(value.get("vr"), str) and set(value) <= _ELEMENT_KEYS


_ELEMENT_KEYS = {"vr", "Value", "InlineBinary", "BulkDataURI"}


def is_dataset(value: JSON) -> bool:
    """A DICOM JSON dataset: a non-empty object whose keys are all tags and whose values are all elements."""
    return isinstance(value, dict) and bool(value) and all(_TAG.match(k) and is_element(v) for k, v in value.items())


def element_text(element: Mapping[str, JSON]) -> str:
    """An element's value as a person reads it: values joined by `\\`, names by their alphabetic form, a sequence
    as its item count, bulk data as said."""
    if "InlineBinary" in element or "BulkDataURI" in element:
        return "(binary data)"
    values = element.get("Value")
    if not isinstance(values, list) or not values:
        return "(empty)"
    if element.get("vr") == "SQ":
        return f"{len(values)} item(s)"
    text = "\\".join(_one(v) for v in values)
    return text if len(text) <= _VALUE_SAID else text[: _VALUE_SAID - 1] + "…"


def _one(value: JSON) -> str:
    if isinstance(value, dict) and "Alphabetic" in value:
        return str(value["Alphabetic"])
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def attribute_rows(dataset: Mapping[str, JSON]) -> tuple[Attribute, ...]:
    """Each element of a DICOM JSON dataset as a row, in tag order."""
    rows = []
    for tag in sorted(dataset, key=str.upper):
        element = dataset[tag]
        assert isinstance(element, dict)  # is_dataset held it
        shown, keyword, name = tag_words(tag)
        rows.append(Attribute(shown, keyword, name, str(element.get("vr", "")), element_text(element)))
    return tuple(rows)
