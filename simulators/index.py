"""The PACS simulator's SQLite index of the objects it holds, filled off the C-STORE path by a worker thread.

C-STORE handlers only `submit()` the bytes they wrote; one worker parses them and
writes the rows in batches (WAL, synchronous=NORMAL), so receiving stays as cheap as a
bare SCP. Readers call `flush()` first, so a query sees every object stored before it.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["INDEX_FILENAME", "Index", "IndexedInstance", "extract_attributes"]

INDEX_FILENAME = ".pacs-index.sqlite3"
_LOG = logging.getLogger("simulators.index")
# Binary or nested values are not matched on and not returned by C-FIND.
_SKIP_VRS = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_BATCH = 256

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


def extract_attributes(ds: Dataset) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The top-level, non-binary attributes of `ds` as tag `GGGGEEEE` -> (VR, values as text)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for elem in ds:
        if elem.VR in _SKIP_VRS or elem.tag.group == 0x0002:
            continue
        value = elem.value
        if value is None or value == "":
            values: tuple[str, ...] = ()
        elif isinstance(value, (MultiValue, list, tuple)):
            values = tuple(str(v) for v in value)
        else:
            values = (str(value),)
        out[f"{int(elem.tag):08X}"] = (str(elem.VR), values)
    return out


class Index:
    """Rows of what the storage folder holds; thread-safe; rebuilt from the folder on `start()`."""

    def __init__(self, storage: Path) -> None:
        self._storage = storage
        self._path = storage / INDEX_FILENAME
        self._queue: queue.Queue[tuple[str, bytes | None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = 0
        self._done = threading.Condition()
        self._conn: sqlite3.Connection | None = None
        self._worker: threading.Thread | None = None
        self.errors = 0  # objects that could not be parsed; they stay stored but unindexed

    def start(self) -> None:
        """Open a fresh database and queue every `*.dcm` already in the folder for indexing."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._path}{suffix}").unlink(missing_ok=True)
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn
        self._worker = threading.Thread(target=self._run, name="pacs-index", daemon=True)
        self._worker.start()
        for path in sorted(self._storage.glob("*.dcm")):
            self.submit(path.name, None)

    def close(self) -> None:
        """Index what is queued, then stop the worker and close the database."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)
            self._worker = None
        if self._conn is not None:
            with self._lock:
                self._conn.close()
            self._conn = None

    def submit(self, filename: str, data: bytes | None) -> None:
        """Queue a stored file (its Part 10 bytes, or None to read it from the folder)."""
        with self._done:
            self._pending += 1
        self._queue.put((filename, data))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every submitted object is indexed; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"index still has {self._pending} objects queued after {timeout}s")
                self._done.wait(remaining)

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
        return [
            IndexedInstance(
                r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7],
                {k: (v[0], tuple(v[1])) for k, v in json.loads(r[8]).items()},
            )  # fmt: skip
            for r in rows
        ]

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while first is not None and len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            jobs = [job for job in batch if job is not None]
            try:
                self._write([row for row in map(self._row, jobs) if row is not None])
            finally:
                with self._done:
                    self._pending -= len(jobs)
                    self._done.notify_all()
            if len(jobs) != len(batch):
                return

    def _row(self, job: tuple[str, bytes | None]) -> tuple[str | int, ...] | None:
        filename, data = job
        try:
            source = BytesIO(data) if data is not None else self._storage / filename
            ds = dcmread(source, stop_before_pixels=True, force=True)
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
        except Exception as exc:  # a stored object that does not parse must not stop the index
            self.errors += 1
            _LOG.warning("cannot index %s: %s", filename, exc)
            return None

    def _write(self, rows: list[tuple[str | int, ...]]) -> None:
        if not rows:
            return
        with self._lock:
            if self._conn is None:
                return
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)", rows)
            self._conn.execute("COMMIT")
