"""Per-run identity: the corpus re-identified for one run, so objects a device keeps never meet the next run's."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from simulators.corpus._datasets import IMPLEMENTATION_CLASS_UID, UID_ROOT
from simulators.corpus._items import CorpusItem

__all__ = [
    "CORPUS_PATIENT",
    "FIXED_PATIENT_PREFIX",
    "Reidentified",
    "fixed_patient_id",
    "identity_of",
    "patient_id",
    "patient_prefix",
    "reidentify",
]

# Every corpus PatientID starts with this (simulators.corpus._plan); per run it becomes "PG<tag>-".
FIXED_PATIENT_PREFIX = "PG-"
_PATIENT_ID = 0x00100020
# Leading digits of a corpus UID's suffix a run keeps: they order the corpus's UIDs (distinct in 12 digits).
_KEPT_DIGITS = 12
_TAG_CHARS = 6  # 30 bits: two runs of one validation meet with odds of about 1 in a billion
# A corpus PatientID of any run: fixed ("PG-0001") or per-run ("PG<tag>-0001"); group 2 is the fixed part's tail.
CORPUS_PATIENT = re.compile(r"PG([A-Z2-7]{6})?-(\d{4})")


def identity_of(run_id: str) -> str:
    """The run's identity tag: six upper-case letters and digits derived from `run_id`, the same every time."""
    digest = hashlib.sha256(f"patchgate-identity/{run_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:_TAG_CHARS]


def patient_prefix(identity: str) -> str:
    """The PatientID prefix of a run's corpus ("PG-" when the identity is fixed)."""
    return f"PG{identity}-" if identity else FIXED_PATIENT_PREFIX


def patient_id(fixed: str, identity: str) -> str:
    """A corpus PatientID (or a pattern over them, "PG-*") as the run with `identity` has it."""
    if identity and fixed.startswith(FIXED_PATIENT_PREFIX):
        return patient_prefix(identity) + fixed[len(FIXED_PATIENT_PREFIX) :]
    return fixed


def fixed_patient_id(run_id: str) -> str:
    """A run's corpus PatientID as the fixed corpus has it ("PG<tag>-0001" -> "PG-0001"); others unchanged."""
    m = CORPUS_PATIENT.fullmatch(run_id)
    return FIXED_PATIENT_PREFIX + m.group(2) if m else run_id


@dataclass(frozen=True)
class Reidentified:
    """A corpus re-identified for one run, and how to map its identities back to the fixed corpus's."""

    items: tuple[CorpusItem, ...]
    uids: Mapping[str, str]  # the run's UID -> the fixed corpus's
    prefixes: Mapping[str, str]  # the run's PatientID prefix -> the fixed one


def reidentify(items: Iterable[CorpusItem], identity: str) -> Reidentified:
    """`items` with fresh Study, Series, SOP Instance and Frame of Reference UIDs and PatientIDs for `identity`.

    Only identities change: pixel data, names, dates and texts (the PDF's printed patient id too) stay,
    so what a suite observes maps back to the fixed corpus by `uids` and `prefixes`. An empty
    identity gives the items back as they are. The originals are never modified: elements that
    do not change are shared, as CorpusItem's dataset is read-only by convention.
    """
    items = tuple(items)
    if not identity:
        return Reidentified(items, {}, {})
    uids: dict[str, str] = {}
    made = tuple(_item(item, identity, uids) for item in items)
    return Reidentified(made, {new: old for old, new in uids.items()}, {patient_prefix(identity): FIXED_PATIENT_PREFIX})


def _item(item: CorpusItem, identity: str, uids: dict[str, str]) -> CorpusItem:
    ds = _dataset(item.dataset, identity, uids)
    file_meta = getattr(item.dataset, "file_meta", None)
    if file_meta is not None:
        ds.file_meta = _dataset(file_meta, identity, uids, FileMetaDataset())  # type: ignore[assignment]
    return dataclasses.replace(
        item,
        patient_id=str(ds.PatientID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        dataset=ds,
    )


def _dataset(ds: Dataset, identity: str, uids: dict[str, str], into: Dataset | None = None) -> Dataset:
    out = Dataset() if into is None else into
    for elem in ds:
        out.add(_element(elem, identity, uids))
    return out


def _element(elem: DataElement, identity: str, uids: dict[str, str]) -> DataElement:
    if elem.VR == "SQ":
        items = [_dataset(i, identity, uids) for i in elem.value]
        return DataElement(elem.tag, "SQ", items)
    if elem.VR == "UI" and isinstance(elem.value, str) and _ours(elem.value):
        return DataElement(elem.tag, "UI", _new_uid(elem.value, identity, uids))
    if elem.tag == _PATIENT_ID:
        return DataElement(elem.tag, elem.VR, patient_id(str(elem.value), identity))
    return elem  # shared: never modified (CorpusItem.dataset is read-only)


def _ours(uid: str) -> bool:
    return uid.startswith(UID_ROOT) and uid != IMPLEMENTATION_CLASS_UID


def _new_uid(old: str, identity: str, uids: dict[str, str]) -> str:
    """The run's UID for `old`: its first digits kept, the rest derived from the identity, the length kept.

    So the run's UIDs sort as the fixed ones do, as strings and as numbers: a device that answers in
    UID order, and a suite that sorts matches, order them the same in every run.
    """
    if old not in uids:
        suffix = old[len(UID_ROOT) :]
        tail = len(suffix) - _KEPT_DIGITS
        if not suffix.isdigit() or tail < _KEPT_DIGITS:  # not one of generate_uid's (none is): a fresh one
            uids[old] = str(generate_uid(prefix=UID_ROOT, entropy_srcs=[f"patchgate-identity/{identity}/{old}"]))
        else:
            digest = hashlib.sha256(f"patchgate-identity/{identity}/{old}".encode()).digest()
            uids[old] = UID_ROOT + suffix[:_KEPT_DIGITS] + str(int.from_bytes(digest)).zfill(tail)[-tail:]
    return uids[old]
