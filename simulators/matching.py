"""C-FIND matching (DICOM Part 4 C.2.2.2 and C.4): attribute rules and hierarchical query evaluation.

Pure functions, no network: `matches(vr, query, stored)` says whether a stored attribute
(its values as text, empty when absent) satisfies one query key; `parse_query`, `evaluate`
and `response` turn a Query/Retrieve identifier into matching groups of indexed objects
and the response identifiers, for C-FIND and (unique keys only) C-MOVE / C-GET.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from simulators.index import IndexedInstance

__all__ = [
    "LEVELS",
    "RANGE_VRS",
    "TEXT_VRS",
    "UNIQUE_KEYS",
    "Group",
    "Query",
    "QueryError",
    "QueryKey",
    "element_text",
    "evaluate",
    "is_universal",
    "matches",
    "parse_query",
    "range_error",
    "response",
    "split_values",
]

# Value representations whose query values may hold wildcards.
TEXT_VRS = frozenset({"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
# Value representations that take range matching (`a-b`, `-b`, `a-`).
RANGE_VRS = frozenset({"DA", "TM", "DT"})
_NUMERIC_VRS = frozenset({"IS", "DS", "US", "UL", "UV", "SS", "SL", "SV", "FL", "FD"})
# Free text: a backslash is part of the value, not a delimiter.
_UNSPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})

_DA = re.compile(r"^(\d{4})(\d{2})?(\d{2})?$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


def split_values(text: str) -> list[str]:
    """A multi-valued DICOM string split on backslashes, each value stripped of padding."""
    return [v.strip(" \0") for v in text.split("\\")]


def is_universal(query: str) -> bool:
    """An empty value or a lone `*` matches everything, even an absent attribute."""
    q = query.strip(" \0")
    return q in ("", "*")


def matches(vr: str, query: str, stored: Sequence[str], *, pn_case_insensitive: bool = True) -> bool:
    """Whether any of the `stored` values satisfies the query value `query` for an attribute of `vr`."""
    if is_universal(query):
        return True
    values = [s.strip(" \0") for s in stored]
    values = [v for v in values if v]
    if not values:
        return False
    q = query.strip(" \0")
    if vr == "UI":
        wanted = set(split_values(q))
        return any(v in wanted for v in values)
    if vr in RANGE_VRS:
        return any(_range_match(vr, q, v) for v in values)
    alternatives = [q] if vr in _UNSPLIT_VRS else split_values(q)
    if vr in _NUMERIC_VRS:
        return any(_numeric_equal(a, v) for a in alternatives for v in values)
    fold = vr == "PN" and pn_case_insensitive
    return any(_text_match(vr, a, v, fold) for a in alternatives for v in values)


def _text_match(vr: str, query: str, value: str, fold: bool) -> bool:
    if vr == "PN":
        return _pn_match(query, value, fold)
    return _pattern_match(query, value, fold)


def _pn_match(query: str, value: str, fold: bool) -> bool:
    """A person name, by component group (alphabetic=ideographic=phonetic, PS3.5 6.2.1.1).

    A query of one group may be any of the stored name's groups ("山田^太郎" finds
    "Yamada^Tarou=山田^太郎=..."); a query with "=" matches group by group, an empty group
    matching anything. Trailing empty components ("DOE^JANE^^") do not change a name.
    """
    stored = [g.rstrip("^") for g in value.rstrip("^=").split("=")]
    if "=" not in query:
        return any(_pattern_match(query.rstrip("^"), g, fold) for g in stored)
    wanted = [g.rstrip("^") for g in query.split("=")]
    stored += [""] * (len(wanted) - len(stored))
    return all(not w or _pattern_match(w, g, fold) for w, g in zip(wanted, stored, strict=False))


def _pattern_match(query: str, value: str, fold: bool) -> bool:
    if "*" in query or "?" in query:
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in query)
        flags = re.IGNORECASE | re.DOTALL if fold else re.DOTALL
        return re.fullmatch(pattern, value, flags) is not None
    return query.casefold() == value.casefold() if fold else query == value


def _numeric_equal(query: str, value: str) -> bool:
    try:
        return float(query) == float(value)
    except ValueError:
        return query == value


def _range_match(vr: str, query: str, value: str) -> bool:
    low_text, high_text = _split_range(vr, query)
    stored = _bound(vr, value, upper=False)
    if stored is None:
        return False
    low = _bound(vr, low_text, upper=False) if low_text else ""
    high = _bound(vr, high_text, upper=True) if high_text else "~"  # "~" sorts after digits
    if low is None or high is None:
        return False
    if high_text is None:  # a single value: the whole span its precision names
        high = _bound(vr, low_text, upper=True)
        if high is None:
            return False
    return low <= stored <= high


def _split_range(vr: str, query: str) -> tuple[str, str | None]:
    """(low, high) texts; high None for a single value, "" for an open end."""
    if "-" not in query:
        return query, None
    if vr != "DT":
        low, _, high = query.partition("-")
        return low, high
    # A DT may carry a "-HHMM" offset, so try each dash as the range separator.
    for i, c in enumerate(query):
        if c == "-":
            low, high = query[:i], query[i + 1 :]
            if (not low or _DT.match(low)) and (not high or _DT.match(high)):
                return low, high
    return query, None


def _bound(vr: str, text: str, *, upper: bool) -> str | None:
    """A partial date/time as a fixed-width sortable string, filled to its lowest or highest instant."""
    text = text.strip()
    if vr == "DA":
        m = _DA.match(text.replace(".", "")) if len(text) == 10 else _DA.match(text)
        if not m:
            return None
        parts = [m.group(1), m.group(2), m.group(3)]
        fill = ["", "12", "31"] if upper else ["", "01", "01"]
        return "".join(p if p else f for p, f in zip(parts, fill, strict=True))
    if vr == "TM":
        m = _TM.match(text.replace(":", ""))
        if not m:
            return None
        return _fill_time(m.group(1), m.group(2), m.group(3), m.group(4), upper)
    m = _DT.match(text)
    if not m:
        return None
    date_fill = ["", "12", "31"] if upper else ["", "01", "01"]
    date = "".join(p if p else f for p, f in zip(m.groups()[:3], date_fill, strict=True))
    return date + _fill_time(m.group(4), m.group(5), m.group(6), m.group(7), upper, hour_missing=True)


def _fill_time(
    hh: str | None, mm: str | None, ss: str | None, frac: str | None, upper: bool, *, hour_missing: bool = False
) -> str:
    top = ("23", "59", "59", "999999") if upper else ("00", "00", "00", "000000")
    if hour_missing and hh is None:
        return "".join(top[:3]) + "." + top[3]
    fraction = (frac[1:] if frac else "").ljust(6, "9" if upper else "0")
    return (hh or top[0]) + (mm or top[1]) + (ss or top[2]) + "." + fraction


def range_error(vr: str, query: str) -> str:
    """Why `query` is no valid DA/TM/DT value or range (PS3.4 C.2.2.2.5), "" if it is one, universal or another VR.

    `matches` lets an unparsable value match nothing; an SCP that refuses it instead (0xC000) asks this first.
    """
    if vr not in RANGE_VRS or is_universal(query):
        return ""
    q = query.strip(" \0")
    low, high = _split_range(vr, q)
    if high is not None and not low and not high:
        return f"{vr} range {q!r} has neither end"
    for text, upper in ((low, False), (high, True)):
        if text and _bound(vr, text, upper=upper) is None:
            return f"{q!r}: {text!r} is not a valid {vr} value"
    return ""


# Query/Retrieve levels of each information model, top down.
LEVELS: Mapping[str, tuple[str, ...]] = {
    "patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    "study": ("STUDY", "SERIES", "IMAGE"),
}
# The unique key of each level: PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID.
UNIQUE_KEYS: Mapping[str, int] = {
    "PATIENT": 0x00100020,
    "STUDY": 0x0020000D,
    "SERIES": 0x0020000E,
    "IMAGE": 0x00080018,
}
_QUERY_LEVEL = 0x00080052
_CHARSET = 0x00080005
_RETRIEVE_AE = 0x00080054
_AVAILABILITY = 0x00080056
_MODALITY = 0x00080060
_MODALITIES_IN_STUDY = 0x00080061
_SOP_CLASSES_IN_STUDY = 0x00080062
# Keys the SCP computes from the objects it holds instead of copying them from one object.
_COMPUTED: Mapping[int, str] = {
    0x00201200: "patient_studies",
    0x00201202: "patient_series",
    0x00201204: "patient_instances",
    0x00201206: "study_series",
    0x00201208: "study_instances",
    0x00201209: "series_instances",
    _MODALITIES_IN_STUDY: "modalities",
    _SOP_CLASSES_IN_STUDY: "sop_classes",
}
# The level each computed key belongs to (PS3.4 C.6.1.1): asked at another level, it is answered empty.
_COMPUTED_LEVEL: Mapping[str, str] = {
    "patient_studies": "PATIENT",
    "patient_series": "PATIENT",
    "patient_instances": "PATIENT",
    "study_series": "STUDY",
    "study_instances": "STUDY",
    "modalities": "STUDY",
    "sop_classes": "STUDY",
    "series_instances": "SERIES",
}
_NOT_MATCHED = frozenset({_QUERY_LEVEL, _CHARSET, _RETRIEVE_AE, _AVAILABILITY, *_COMPUTED})
# Value representations that hold characters of the SpecificCharacterSet (the others are plain ASCII).
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_INT_VRS = frozenset({"US", "UL", "SS", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
# Identifier does not match SOP Class: pynetdicom, DCMTK and most PACS answer bad identifiers so.
IDENTIFIER_MISMATCH = 0xA900


class QueryError(Exception):
    """A Query/Retrieve identifier the SCP must refuse; `status` is the DIMSE failure status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class QueryKey:
    """One key of an identifier: its tag, VR and query value as text ('' for universal).

    A sequence key (VR "SQ") has no value but the item keys of its single item (PS3.4 C.2.2.2.6);
    none is universal matching of the whole sequence.
    """

    tag: int
    vr: str
    value: str
    items: tuple[QueryKey, ...] = ()


@dataclass(frozen=True)
class Query:
    """A checked identifier: model, level, keys to match, and UID scope for the index."""

    model: str
    level: str
    keys: tuple[QueryKey, ...]
    # Index prefilter from UID keys at or above the level: column name -> UIDs.
    scope: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Group:
    """One match at the query level: every object under it, and the first one that matched."""

    key: str
    instances: tuple[IndexedInstance, ...]
    representative: IndexedInstance


def element_text(elem: DataElement) -> str:
    """An element's value as DICOM text: multiple values joined by backslashes, "" when empty."""
    return _text(elem)


def _text(elem: DataElement) -> str:
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _vr(vr: str) -> str:
    # Implicit VR identifiers can carry ambiguous VRs such as "US or SS"; take the first.
    return vr.split(" or ")[0]


def parse_query(identifier: Dataset, model: str, *, retrieve: bool = False) -> Query:
    """Check the identifier against the model; QueryError (0xA900) for a bad level or missing unique key.

    With `retrieve` (C-MOVE / C-GET) only unique keys are kept and the level's own unique
    key must have a value, so an empty identifier never retrieves the whole archive.
    """
    levels = LEVELS.get(model)
    if levels is None:
        raise QueryError(IDENTIFIER_MISMATCH, f"unknown information model {model!r}")
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip()
    if level not in levels:
        raise QueryError(
            IDENTIFIER_MISMATCH,
            f"QueryRetrieveLevel {level!r} is not one of {', '.join(levels)} for the {model} root model",
        )
    position = levels.index(level)
    required = list(levels[:position]) + ([level] if retrieve else [])
    for name in required:
        elem = identifier.get(UNIQUE_KEYS[name])
        if elem is None or is_universal(_text(elem)):
            raise QueryError(
                IDENTIFIER_MISMATCH,
                f"a {level} level {'retrieve' if retrieve else 'query'} needs a value for the {name}"
                f" unique key ({UNIQUE_KEYS[name]:08X})",
            )
    unique = {UNIQUE_KEYS[n] for n in levels[: position + 1]}
    keys: list[QueryKey] = []
    for elem in identifier:
        tag = int(elem.tag)
        if tag in _NOT_MATCHED or elem.tag.group in (0x0000, 0x0002):
            continue
        if retrieve and tag not in unique:
            continue
        keys.append(_sequence_key(elem) if elem.VR == "SQ" else QueryKey(tag, _vr(elem.VR), _text(elem)))
    scope: dict[str, tuple[str, ...]] = {}
    for name, column in (("STUDY", "study_uids"), ("SERIES", "series_uids"), ("IMAGE", "sop_uids")):
        elem = identifier.get(UNIQUE_KEYS[name])
        if name in levels[: position + 1] and elem is not None and not is_universal(_text(elem)):
            scope[column] = tuple(split_values(_text(elem)))
    return Query(model, level, tuple(keys), scope)


def _sequence_key(elem: DataElement) -> QueryKey:
    """A sequence key: one item of item keys (nested sequences in it are returned, not matched)."""
    items = list(elem.value or ())
    if len(items) > 1:
        raise QueryError(
            IDENTIFIER_MISMATCH,
            f"sequence key ({int(elem.tag):08X}) has {len(items)} items; sequence matching takes one (PS3.4 C.2.2.2.6)",
        )
    keys = [QueryKey(int(e.tag), _vr(e.VR), "" if e.VR == "SQ" else _text(e)) for e in items[0]] if items else []
    return QueryKey(int(elem.tag), "SQ", "", tuple(keys))


def _item_matches(keys: Sequence[QueryKey], item: Mapping[str, tuple[str, tuple[str, ...]]], fold: bool) -> bool:
    for key in keys:
        stored = item.get(f"{key.tag:08X}")
        if key.vr == "SQ" or (stored is not None and stored[0] == "SQ"):
            continue  # nested sequences: returned, not matched
        vr = stored[0] if stored else key.vr
        if not matches(vr, key.value, stored[1] if stored else (), pn_case_insensitive=fold):
            return False
    return True


def _sequence_matches(key: QueryKey, inst: IndexedInstance, fold: bool) -> bool:
    """PS3.4 C.2.2.2.6: some item of the stored sequence matches every item key; no item key is universal."""
    if all(k.vr == "SQ" or is_universal(k.value) for k in key.items):
        return True
    return any(_item_matches(key.items, item, fold) for item in inst.items(key.tag))


def _group_key(level: str, inst: IndexedInstance) -> str:
    return {
        "PATIENT": inst.patient_id,
        "STUDY": inst.study_instance_uid,
        "SERIES": inst.series_instance_uid,
        "IMAGE": inst.sop_instance_uid,
    }[level]


def _instance_matches(query: Query, inst: IndexedInstance, pn_case_insensitive: bool) -> bool:
    for key in query.keys:
        if key.vr == "SQ":
            if not _sequence_matches(key, inst, pn_case_insensitive):
                return False
            continue
        stored = inst.attributes.get(f"{key.tag:08X}")
        if stored is not None and stored[0] == "SQ":  # a sequence asked for as a plain value
            if not is_universal(key.value):
                return False
            continue
        vr = stored[0] if stored else key.vr
        if not matches(vr, key.value, stored[1] if stored else (), pn_case_insensitive=pn_case_insensitive):
            return False
    return True


def evaluate(
    query: Query,
    instances: Sequence[IndexedInstance],
    identifier: Dataset,
    *,
    pn_case_insensitive: bool = True,
) -> list[Group]:
    """The groups at the query level with an object matching every key, in index order.

    `instances` must hold every object of each candidate group (the index rows within
    `query.scope`), since counts such as NumberOfStudyRelatedInstances cover whole groups.
    """
    groups: dict[str, list[IndexedInstance]] = {}
    for inst in instances:
        groups.setdefault(_group_key(query.level, inst), []).append(inst)
    modalities = identifier.get(_MODALITIES_IN_STUDY)
    wanted_modalities = _text(modalities) if modalities is not None else ""
    out: list[Group] = []
    for key, members in groups.items():
        first = next((i for i in members if _instance_matches(query, i, pn_case_insensitive)), None)
        if first is None:
            continue
        if not is_universal(wanted_modalities):
            present = [v for i in members for v in i.values(_MODALITY)]
            if not matches("CS", wanted_modalities, present):
                continue
        out.append(Group(key, tuple(members), first))
    return out


def _computed(name: str, group: Group, level: str) -> list[str]:
    if _COMPUTED_LEVEL[name] != level:
        return []
    members = group.instances
    if name.endswith("_instances"):
        return [str(len(members))]
    if name.endswith("_series"):
        return [str(len({i.series_instance_uid for i in members}))]
    if name.endswith("_studies"):
        return [str(len({i.study_instance_uid for i in members}))]
    if name == "modalities":
        return sorted({v for i in members for v in i.values(_MODALITY) if v})
    return sorted({i.sop_class_uid for i in members})


def _element(tag: int, vr: str, values: Sequence[str]) -> DataElement:
    if vr in _INT_VRS:
        items: list[Any] = [int(v) for v in values]
    elif vr in _FLOAT_VRS:
        items = [float(v) for v in values]
    else:
        items = list(values)
    if len(items) > 1:
        return DataElement(tag, vr, items)
    empty = None if vr in _INT_VRS | _FLOAT_VRS else ""
    return DataElement(tag, vr, items[0] if items else empty)


def _sequence(key: QueryKey, inst: IndexedInstance, fold: bool) -> DataElement:
    """The stored items that match the item keys, each with the item keys filled; every attribute if none."""
    items = DicomSequence()
    for stored in inst.items(key.tag):
        if not _item_matches(key.items, stored, fold):
            continue
        item = Dataset()
        wanted = [k.tag for k in key.items] or sorted(int(t, 16) for t in stored)
        for tag in wanted:
            vr, values = stored.get(f"{tag:08X}", ("", ()))
            if vr == "SQ":
                item.add(DataElement(tag, "SQ", DicomSequence()))
            else:
                requested = next((k.vr for k in key.items if k.tag == tag), "UN")
                item.add(_element(tag, vr or requested, values))
        items.append(item)
    return DataElement(key.tag, "SQ", items)


def _transcode(ds: Dataset, charset: str) -> None:
    """Declare `charset` and keep only the characters it can hold ("?" for the others), as a lossy converter does."""
    codec = python_encoding.get(charset, "ascii")
    for elem in ds:
        if elem.VR in _CHARSET_VRS and elem.value not in (None, ""):
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            kept = [str(v).encode(codec, "replace").decode(codec) for v in values]
            elem.value = kept if len(kept) > 1 else kept[0]
    ds.SpecificCharacterSet = charset


def response(
    identifier: Dataset,
    query: Query,
    group: Group,
    retrieve_ae_title: str,
    *,
    availability: str = "ONLINE",
    answer_charset: str = "",
    pn_case_insensitive: bool = True,
) -> Dataset:
    """The C-FIND response identifier: each requested key filled from the group, plus level and AE.

    Text is answered in the character set of the object it comes from, and SpecificCharacterSet
    says which; with `answer_charset` everything is transcoded to that one instead.
    InstanceAvailability, when asked for, is `availability`.
    """
    rep = group.representative
    ds = Dataset()
    charset = rep.values(_CHARSET)
    if charset:  # first: pydicom encodes the text below in the character set it declares
        ds.SpecificCharacterSet = list(charset) if len(charset) > 1 else charset[0]
    sequences = {k.tag: k for k in query.keys if k.vr == "SQ"}
    for elem in identifier:
        tag = int(elem.tag)
        if tag in (_CHARSET, _QUERY_LEVEL, _RETRIEVE_AE) or elem.tag.group in (0x0000, 0x0002):
            continue
        if elem.VR == "SQ":
            key = sequences.get(tag, QueryKey(tag, "SQ", ""))
            ds.add(_sequence(key, rep, pn_case_insensitive))
        elif tag == _AVAILABILITY:
            ds.add(DataElement(tag, "CS", availability))
        elif tag in _COMPUTED:
            vr = {_MODALITIES_IN_STUDY: "CS", _SOP_CLASSES_IN_STUDY: "UI"}.get(tag, "IS")
            ds.add(_element(tag, vr, _computed(_COMPUTED[tag], group, query.level)))
        else:
            stored = rep.attributes.get(f"{tag:08X}")
            if stored is not None and stored[0] == "SQ":
                ds.add(_sequence(QueryKey(tag, "SQ", ""), rep, pn_case_insensitive))
                continue
            ds.add(_element(tag, stored[0] if stored else _vr(elem.VR), stored[1] if stored else ()))
    unique = UNIQUE_KEYS[query.level]
    if unique not in ds:
        stored = rep.attributes.get(f"{unique:08X}")
        ds.add(_element(unique, "LO" if query.level == "PATIENT" else "UI", stored[1] if stored else ()))
    ds.QueryRetrieveLevel = query.level
    ds.RetrieveAETitle = retrieve_ae_title
    if answer_charset:
        _transcode(ds, answer_charset)
    return ds
