"""The PACS simulator's SQLite index of the objects it holds, filled lazily, off the C-STORE path.

A C-STORE handler only `submit()`s the name of the file it wrote. Readers (C-FIND,
C-MOVE, C-GET) call `flush()`, which parses the files submitted since and writes their
rows in one transaction (WAL, synchronous=NORMAL). Receiving thus costs what a bare SCP
costs (parsing in a background thread would compete for the GIL), and a query still sees
every object stored before it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["INDEX_FILENAME", "Index", "IndexedInstance", "extract_attributes"]

INDEX_FILENAME = ".pacs-index.sqlite3"
_LOG = logging.getLogger("simulators.index")
# Binary values are not matched on and not returned by C-FIND.
_SKIP_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax_uid TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    instance_number INTEGER NOT NULL,
    filename TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS by_patient ON instances (patient_id);
CREATE INDEX IF NOT EXISTS by_study ON instances (study_uid);
CREATE INDEX IF NOT EXISTS by_series ON instances (series_uid);
"""

Attributes = Mapping[str, tuple[str, tuple[str, ...]]]


@dataclass(frozen=True)
class IndexedInstance:
    """One stored object as the index knows it; `attributes` maps tag `GGGGEEEE` -> (VR, values as text)."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    instance_number: int
    filename: str
    attributes: Attributes

    def values(self, tag: int) -> tuple[str, ...]:
        """The attribute's values as text; empty when absent or empty."""
        return self.attributes.get(f"{tag:08X}", ("", ()))[1]

    def items(self, tag: int) -> list[Attributes]:
        """The items of a sequence attribute, each as its attributes; empty when absent or not a sequence."""
        vr, values = self.attributes.get(f"{tag:08X}", ("", ()))
        return [_attributes(json.loads(v)) for v in values] if vr == "SQ" else []


def extract_attributes(ds: Dataset) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The top-level, non-binary attributes of `ds` as tag `GGGGEEEE` -> (VR, values as text).

    Text is decoded in the object's own SpecificCharacterSet (pydicom does, on reading), so a
    name stored in ISO 2022 or UTF-8 is matched as the characters it stands for. A sequence
    (VR "SQ") has one value per item: the item's own attributes in this form, as JSON.
    """
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for elem in ds:
        if elem.VR in _SKIP_VRS or elem.tag.group == 0x0002:
            continue
        value = elem.value
        if elem.VR == "SQ":
            items = tuple(json.dumps(extract_attributes(item), ensure_ascii=False) for item in value or ())
            out[f"{int(elem.tag):08X}"] = ("SQ", items)
            continue
        if value is None or value == "":
            values: tuple[str, ...] = ()
        elif isinstance(value, (MultiValue, list, tuple)):
            values = tuple(str(v) for v in value)
        else:
            values = (str(value),)
        out[f"{int(elem.tag):08X}"] = (str(elem.VR), values)
    return out


def _attributes(raw: Mapping[str, Any]) -> Attributes:
    return {k: (v[0], tuple(v[1])) for k, v in raw.items()}


def _instance(row: tuple[Any, ...]) -> IndexedInstance:
    attributes = _attributes(json.loads(row[8]))
    return IndexedInstance(
        sop_instance_uid=row[0],
        sop_class_uid=row[1],
        transfer_syntax_uid=row[2],
        patient_id=row[3],
        study_instance_uid=row[4],
        series_instance_uid=row[5],
        instance_number=int(row[6]),
        filename=row[7],
        attributes=attributes,
    )


class Index:
    """Rows of what the storage folder holds; thread-safe; rebuilt from the folder on `start()`."""

    def __init__(self, storage: Path) -> None:
        self._storage = storage
        self._path = storage / INDEX_FILENAME
        self._lock = threading.Lock()  # guards the connection
        self._pending_lock = threading.Lock()  # guards _pending only: submit() must never wait long
        self._pending: dict[str, None] = {}  # file names stored but not yet indexed, in order
        self._conn: sqlite3.Connection | None = None
        self.errors = 0  # objects that could not be parsed; they stay stored but unindexed

    def start(self) -> None:
        """Open a fresh database and mark every `*.dcm` already in the folder for indexing."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        with self._lock:
            self._conn = conn
        for path in sorted(self._storage.glob("*.dcm")):
            self.submit(path.name)

    def close(self) -> None:
        """Close the database; objects not yet indexed are indexed again on the next start."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def submit(self, filename: str) -> None:
        """Note a file just stored (or replaced); it is parsed on the next `flush()`."""
        with self._pending_lock:
            self._pending.pop(filename, None)
            self._pending[filename] = None

    def flush(self) -> None:
        """Parse and index every file submitted so far, in one transaction."""
        with self._lock:
            with self._pending_lock:
                names, self._pending = list(self._pending), {}
            rows = [row for row in map(self._row, names) if row is not None]
            if rows and self._conn is not None:
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)", rows)
                self._conn.execute("COMMIT")

    def select(
        self,
        *,
        patient_ids: Iterable[str] | None = None,
        study_uids: Iterable[str] | None = None,
        series_uids: Iterable[str] | None = None,
        sop_uids: Iterable[str] | None = None,
    ) -> list[IndexedInstance]:
        """Instances whose keys are in the given sets (None: any), in patient/study/series/number order."""
        where: list[str] = []
        args: list[str] = []
        for column, wanted in (
            ("patient_id", patient_ids),
            ("study_uid", study_uids),
            ("series_uid", series_uids),
            ("sop_instance_uid", sop_uids),
        ):
            if wanted is not None:
                values = sorted(set(wanted))
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args.extend(values)
        sql = (
            "SELECT sop_instance_uid, sop_class_uid, transfer_syntax_uid, patient_id, study_uid,"
            " series_uid, instance_number, filename, attributes FROM instances"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY patient_id, study_uid, series_uid, instance_number, sop_instance_uid"
        )
        with self._lock:
            if self._conn is None:
                raise RuntimeError("index is not open")
            rows = self._conn.execute(sql, args).fetchall()
        return [_instance(r) for r in rows]

    def _row(self, filename: str) -> tuple[str | int, ...] | None:
        try:
            ds = dcmread(self._storage / filename, stop_before_pixels=True, force=True)
            meta = ds.file_meta
            sop_uid = str(meta.get("MediaStorageSOPInstanceUID", "") or ds.get("SOPInstanceUID", ""))
            number = ds.get("InstanceNumber")
            return (
                sop_uid,
                str(meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", "")),
                str(meta.get("TransferSyntaxUID", "")),
                str(ds.get("PatientID", "") or ""),
                str(ds.get("StudyInstanceUID", "") or ""),
                str(ds.get("SeriesInstanceUID", "") or ""),
                int(number) if number not in (None, "") else 0,
                filename,
                json.dumps(extract_attributes(ds), ensure_ascii=False),
            )
        except Exception as exc:  # noqa: BLE001 - a stored object that does not parse must not stop the index
            self.errors += 1
            _LOG.warning("cannot index %s: %s", filename, exc)
            return None
