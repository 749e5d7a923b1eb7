"""Modality Worklist C-FIND (PS3.4 K.6): a query identifier checked, matched against scheduled items, answered.

Pure, no network. Matching reuses `simulators.matching` (single value, wildcards, lists, DA/TM/DT
ranges, universal, PN by component group); the worklist's own rules are here: keys at the top
level and in one Scheduled Procedure Step Sequence item, SPS Start Date and Time matched as one
combined date-time range (PS3.4 C.2.2.2.5), a zero-length SPS sequence universal and answered
with the whole SPS item. Other sequences are returned, not matched. QueryRetrieveLevel and
Retrieve AE Title, which some modalities add, are ignored (wlmscpfs does the same).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from simulators.matching import IDENTIFIER_MISMATCH, QueryError, element_text, is_universal, matches, range_error

__all__ = ["UNABLE_TO_PROCESS", "MwlQuery", "answer", "parse_mwl_query", "select"]

# Failure, unable to process (PS3.4 K.4.1.1.4, Table K.4-1: C000-CFFF): a key value it cannot parse.
UNABLE_TO_PROCESS = 0xC000
_SPS = 0x00400100
_SPS_START_DATE = 0x00400002
_SPS_START_TIME = 0x00400003
_STATION_AE = 0x00400001
_CHARSET = 0x00080005
# Q/R keys some modalities add to a worklist query: neither matched nor returned, as wlmscpfs does
# (refusing them would fail a device that works with every RIS; the journal still shows them).
_QR_ONLY = frozenset({0x00080052, 0x00080054})


@dataclass(frozen=True)
class MwlQuery:
    """A checked MWL identifier: the matching keys (tag, VR, value) at the top level and in the SPS item."""

    top: tuple[tuple[int, str, str], ...]
    sps: tuple[tuple[int, str, str], ...]  # () when the SPS sequence is absent or zero-length: universal
    identifier: Dataset = field(compare=False, repr=False)  # for the return keys


def _vr(elem: DataElement) -> str:
    return str(elem.VR).split(" or ")[0]  # implicit VR identifiers can carry "US or SS"


def _keys(ds: Dataset, where: str) -> list[tuple[int, str, str]]:
    """The matching keys of `ds`, each value checked; sequences are checked for one item and left out."""
    keys: list[tuple[int, str, str]] = []
    for elem in ds:
        tag = int(elem.tag)
        if elem.tag.group in (0x0000, 0x0002) or tag == _CHARSET or tag in _QR_ONLY:
            continue
        if elem.VR == "SQ":
            if len(elem.value or ()) > 1:
                raise QueryError(
                    IDENTIFIER_MISMATCH,
                    f"sequence key ({tag:08X}) {where} has {len(elem.value)} items; a key takes one (PS3.4 C.2.2.2.6)",
                )
            continue
        text = element_text(elem)
        if why := range_error(_vr(elem), text):
            raise QueryError(UNABLE_TO_PROCESS, f"key ({tag:08X}) {where}: {why}")
        keys.append((tag, _vr(elem), text))
    return keys


def parse_mwl_query(identifier: Dataset) -> MwlQuery:
    """Check an MWL identifier; QueryError 0xA900 for a wrong structure, 0xC000 for a value it cannot parse."""
    top = _keys(identifier, "at the top level")
    sps: list[tuple[int, str, str]] = []
    elem = identifier.get(_SPS)
    if elem is not None:
        if elem.VR != "SQ":
            raise QueryError(IDENTIFIER_MISMATCH, "ScheduledProcedureStepSequence (0040,0100) is not a sequence")
        if elem.value:
            sps = _keys(elem.value[0], "in the ScheduledProcedureStepSequence item")
    return MwlQuery(tuple(top), tuple(sps), identifier)


def _stored(ds: Dataset, tag: int) -> tuple[str, list[str]]:
    """(VR, values as text) of an attribute of a stored item; ("", []) if absent or empty."""
    elem = ds.get(tag)
    if elem is None or elem.VR == "SQ" or elem.value in (None, ""):
        return ("", []) if elem is None or elem.VR != "SQ" else ("SQ", [])
    return _vr(elem), [element_text(elem)] if _vr(elem) in ("LT", "ST", "UT", "UR") else element_text(elem).split("\\")


def _key_matches(tag: int, vr: str, value: str, stored: Dataset, fold: bool) -> bool:
    stored_vr, values = _stored(stored, tag)
    if stored_vr == "SQ":  # a sequence asked for as a plain value
        return is_universal(value)
    return matches(stored_vr or vr, value, values, pn_case_insensitive=fold)


def _clock(text: str) -> str:
    return text.strip(" \0").replace(":", "")


def _combined(date: str, time: str, stored_date: str, stored_time: str) -> bool:
    """SPS Start Date and Time both asked for: one date-time range (PS3.4 C.2.2.2.5), as DT matching."""
    date, time = date.strip(" \0"), _clock(time)
    d_low, d_dash, d_high = date.partition("-")
    t_low, t_dash, t_high = time.partition("-")
    if not d_dash and not t_dash:
        query = date + time
    else:
        if not d_dash:
            d_high = d_low
        if not t_dash:
            t_high = t_low
        low = d_low + t_low if d_low else ""
        high = d_high + t_high if d_high else ""
        query = f"{low}-{high}"
    return matches("DT", query, [stored_date.strip(" \0") + _clock(stored_time)])


def _sps_matches(query: MwlQuery, item: Dataset, fold: bool, ignore_station_ae: bool) -> bool:
    sps_items = list(item.get(_SPS).value or ()) if _SPS in item else []
    keys = [k for k in query.sps if not (ignore_station_ae and k[0] == _STATION_AE)]
    values = {tag: value for tag, _, value in keys}
    date, time = values.get(_SPS_START_DATE, ""), values.get(_SPS_START_TIME, "")
    combined = not is_universal(date) and not is_universal(time)
    if combined:
        keys = [k for k in keys if k[0] not in (_SPS_START_DATE, _SPS_START_TIME)]
    if not keys and not combined:
        return True
    for sps in sps_items:
        if combined and not _combined(
            date,
            time,
            str(sps.get("ScheduledProcedureStepStartDate", "")),
            str(sps.get("ScheduledProcedureStepStartTime", "")),
        ):
            continue
        if all(_key_matches(tag, vr, value, sps, fold) for tag, vr, value in keys):
            return True
    return False


def select(
    query: MwlQuery, items: Sequence[Dataset], *, pn_case_insensitive: bool = True, ignore_station_ae: bool = False
) -> list[Dataset]:
    """The items (MWL datasets, in the order given) that match every key of `query`."""
    return [
        item
        for item in items
        if all(_key_matches(tag, vr, value, item, pn_case_insensitive) for tag, vr, value in query.top)
        and _sps_matches(query, item, pn_case_insensitive, ignore_station_ae)
    ]


def _restrict(stored: DataElement | None, wanted: Dataset | None, tag: int) -> DataElement:
    """A sequence return key: the stored items whole (zero-length key), or each holding the requested item keys."""
    items = DicomSequence()
    for stored_item in list(stored.value or ()) if stored is not None and stored.VR == "SQ" else []:
        items.append(copy.deepcopy(stored_item) if wanted is None else _fill(wanted, stored_item))
    return DataElement(tag, "SQ", items)


def _fill(request: Dataset, stored: Dataset) -> Dataset:
    """`request`'s keys (not its character set) with the values `stored` has, empty where it has none."""
    out = Dataset()
    for elem in request:
        tag = int(elem.tag)
        if elem.tag.group in (0x0000, 0x0002) or tag == _CHARSET or tag in _QR_ONLY:
            continue
        have = stored.get(tag)
        if elem.VR == "SQ" or (have is not None and have.VR == "SQ"):
            out.add(_restrict(have, elem.value[0] if elem.VR == "SQ" and elem.value else None, tag))
        elif have is not None:
            out.add(copy.deepcopy(have))
        else:
            out.add(DataElement(tag, _vr(elem), None if _vr(elem) in ("US", "UL", "SS", "SL", "FL", "FD") else ""))
    return out


def answer(query: MwlQuery, item: Dataset) -> Dataset:
    """The C-FIND response identifier for one matching item: exactly the requested return keys, filled.

    The item's SpecificCharacterSet comes first, so its names are encoded (and read) in it.
    """
    out = Dataset()
    if _CHARSET in item:
        out.add(copy.deepcopy(item[_CHARSET]))
    for elem in _fill(query.identifier, item):
        out.add(elem)
    return out
