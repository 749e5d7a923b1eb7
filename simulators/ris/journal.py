"""The RIS request journal: one JSON line per DIMSE request received, written whole, the same in two runs.

No times, ports or addresses: `association` is a per-run sequence, `seq` the line's number, and
datasets are DICOM JSON with bulk data as a sha256. Suites read it with `read_requests`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from simulators._journal import append_json_line
from simulators.endpoint import JSON

__all__ = ["REQUESTS", "Journal", "RequestLine", "dataset_json", "read_requests"]

_LOG = logging.getLogger("simulators.ris")
# In the RIS's output folder (RunDir.ris_dir in a run).
REQUESTS = "requests.jsonl"
_BULK = 1024  # bytes: a longer binary value is journalled as its hash


@dataclass(frozen=True)
class RequestLine:
    """One request as the RIS saw and answered it."""

    seq: int
    association: int
    calling_ae: str
    called_ae: str
    dimse: str  # "C-ECHO" | "C-FIND" | "C-CANCEL" | "N-CREATE" | "N-SET"
    sop_class: str
    sop_instance: str  # N-CREATE: the created (or refused) UID; N-SET: the requested one; else ""
    status: str | None  # "0x0000"; None for a C-CANCEL (it has no response)
    dataset: JSON  # the identifier, attribute list or modification list in DICOM JSON; None if none
    error_comment: str = ""
    answers: list[str] | None = None  # C-FIND: the SPS IDs answered, in order

    @classmethod
    def from_json(cls, d: Mapping[str, JSON]) -> RequestLine:
        return cls(
            seq=int(d["seq"]),
            association=int(d["association"]),
            calling_ae=str(d["calling_ae"]),
            called_ae=str(d["called_ae"]),
            dimse=str(d["dimse"]),
            sop_class=str(d["sop_class"]),
            sop_instance=str(d["sop_instance"]),
            status=None if d["status"] is None else str(d["status"]),
            dataset=d["dataset"],
            error_comment=str(d.get("error_comment", "")),
            answers=None if d.get("answers") is None else [str(a) for a in d["answers"]],
        )


def _bulk(elem: Any) -> str:
    value = elem.value if isinstance(elem.value, bytes) else str(elem.value).encode()
    return "sha256:" + hashlib.sha256(value).hexdigest()


def dataset_json(ds: Dataset | None) -> JSON:
    """`ds` in the DICOM JSON model, bulk data as a sha256 URI; {"error": ...} if it cannot be converted."""
    if ds is None:
        return None
    try:
        return ds.to_json_dict(bulk_data_threshold=_BULK, bulk_data_element_handler=_bulk)
    except Exception as exc:  # noqa: BLE001 - a peer's malformed value: journal that, never lose the line
        return {"error": f"not convertible to DICOM JSON: {exc.__class__.__name__}: {exc}"}


class Journal:
    """Appends RequestLines to `folder/REQUESTS`: numbered under a lock, each one O_APPEND write."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / REQUESTS
        self._lock = threading.Lock()
        self._seq = 0

    def write(self, **fields: JSON) -> RequestLine:
        with self._lock:
            self._seq += 1
            line = RequestLine(seq=self._seq, **fields)
            try:
                append_json_line(self.path, asdict(line))
            except OSError as exc:  # the request is answered; only its record is lost, and said so
                _LOG.warning("cannot journal %s to %s: %s", line.dimse, self.path, exc)
        return line


def read_requests(path: str | Path) -> list[RequestLine]:
    """The lines of a requests journal ([] if it does not exist); ValueError naming file:line for a bad one."""
    target = Path(path)
    if target.is_dir():
        target = target / REQUESTS
    if not target.exists():
        return []
    lines: list[RequestLine] = []
    for number, text in enumerate(target.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            lines.append(RequestLine.from_json(json.loads(text)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{target}:{number}: not a RIS request line ({exc.__class__.__name__}: {exc}); "
                "hint: the file is written by simulators.ris only"
            ) from exc
    return lines
