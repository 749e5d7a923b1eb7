"""Arrival logs: one JSON line per DIMSE request a simulator receives or C-STORE it sends, stamped with time.time_ns().

The performance phase times what happens in another process (C-MOVE-RQ sent by the suites ->
first / last object at the move destination; a device's action -> the first request it causes at
the PACS or RIS simulator) by subtracting `time.time_ns()` values taken in both: one kernel, one
CLOCK_REALTIME, containers included. Each line is one O_APPEND write
(simulators._journal), so lines from concurrent associations never tear. Line:

    {"t_ns": 1764495012345678901, "direction": "received", "message": "C-STORE-RQ", "association": 3,
     "peer_ae": "PGMODALITY", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "sop_instance_uid": "1.2...",
     "bytes": 1234, "move_originator_ae": "PGSUITES", "move_originator_message_id": 1}

`direction` "received": a request that arrived whole (EVT_DIMSE_RECV, before its handler runs);
"sent": a C-STORE-RQ this simulator sends (a C-MOVE or C-GET sub-operation, EVT_DIMSE_SENT).
The move originator fields are those of PS3.7 9.3.1.1 (C-STORE-RQ of a C-MOVE sub-operation);
"" and null when the request had none. An MPPS N-CREATE-RQ / N-SET-RQ line also has "mpps_status",
the Performed Procedure Step Status its data set carries ("IN PROGRESS", "COMPLETED", "DISCONTINUED";
"" when it has none or cannot be decoded: the request's handler says why), so the first N-SET
COMPLETED can be told from an earlier N-SET that only updates the step.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynetdicom import evt
from pynetdicom.dsutils import decode

from simulators._journal import append_json_line
from simulators._server import AssociationNumbers
from simulators.endpoint import JSON

__all__ = ["MPPS_MESSAGES", "Arrival", "ArrivalLog", "c_stores", "read_arrivals"]

_LOG = logging.getLogger("simulators.arrivals")
# The requests whose line carries "mpps_status" (N-CREATE and N-SET are MPPS's only ones at a RIS).
MPPS_MESSAGES = ("N-CREATE-RQ", "N-SET-RQ")
_PPS_STATUS = 0x00400252  # Performed Procedure Step Status


@dataclass(frozen=True)
class Arrival:
    """One line of an arrival log."""

    t_ns: int  # time.time_ns() in the simulator's process
    direction: str  # "received" | "sent"
    message: str  # "C-STORE-RQ", "C-FIND-RQ", ...
    association: int  # 1, 2, 3 ... in the order the log first saw each association
    peer_ae: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    bytes: int = 0  # the data set's encoded length (0: none)
    move_originator_ae: str = ""
    move_originator_message_id: int | None = None
    mpps_status: str = ""  # an N-CREATE-RQ / N-SET-RQ's Performed Procedure Step Status ("" : none)

    @property
    def kind(self) -> str:
        """The message, and its MPPS status when it has one: "N-SET-RQ COMPLETED", "C-STORE-RQ"."""
        return f"{self.message} {self.mpps_status}" if self.mpps_status else self.message

    @classmethod
    def from_json(cls, d: dict[str, JSON]) -> Arrival:
        return cls(
            int(d["t_ns"]),
            str(d["direction"]),
            str(d["message"]),
            int(d["association"]),
            str(d["peer_ae"]),
            str(d.get("sop_class_uid", "")),
            str(d.get("sop_instance_uid", "")),
            int(d.get("bytes", 0)),
            str(d.get("move_originator_ae", "")),
            None if d.get("move_originator_message_id") is None else int(d["move_originator_message_id"]),
            str(d.get("mpps_status", "")),
        )


def _message_name(message: Any) -> str:
    """pynetdicom's class name as PS3.7 spells it: C_STORE_RQ -> C-STORE-RQ."""
    return type(message).__name__.replace("_", "-")


def _data_set_length(message: Any) -> int:
    data = getattr(message, "data_set", None)
    if data is not None:
        return int(data.getbuffer().nbytes)
    path = getattr(message, "_data_set_path", None)  # a file sent as it is (STORE_SEND_CHUNKED_DATASET)
    if isinstance(path, tuple):
        return max(0, os.path.getsize(path[0]) - int(path[1]))
    return 0


def _mpps_status(event: Any) -> str:
    """The Performed Procedure Step Status in the request's data set; "" when it has none or cannot be decoded."""
    message = event.message
    data = getattr(message, "data_set", None)
    contexts = {cx.context_id: cx for cx in event.assoc.accepted_contexts}
    context = contexts.get(getattr(message, "context_id", None))
    if data is None or context is None or not context.transfer_syntax:
        return ""
    syntax = context.transfer_syntax[0]
    try:
        # decode() rewinds the stream first, as the request's handler does again after this.
        ds = decode(data, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
        return str(ds.get(_PPS_STATUS).value or "").strip() if _PPS_STATUS in ds else ""
    except Exception:  # noqa: BLE001 - any undecodable data set: the handler refuses it and journals why
        return ""


class ArrivalLog:
    """Appends arrival lines to `path`; bind `handlers()` to the associations whose traffic counts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._numbers = AssociationNumbers()  # its own: the journals' numbering must not change with it

    def handlers(self) -> list[tuple[Any, Any]]:
        """EVT_DIMSE_RECV (requests received) and EVT_DIMSE_SENT (C-STORE-RQ sent) handlers."""
        return [(evt.EVT_DIMSE_RECV, self.on_received), (evt.EVT_DIMSE_SENT, self.on_sent)]

    def on_received(self, event: Any) -> None:
        name = _message_name(event.message)
        if name.endswith("-RQ"):
            self._write(event, "received", name)

    def on_sent(self, event: Any) -> None:
        name = _message_name(event.message)
        if name == "C-STORE-RQ":
            self._write(event, "sent", name)

    def _write(self, event: Any, direction: str, name: str) -> None:
        t_ns = time.time_ns()  # first: the stamp is the event's, not the JSON encoding's
        assoc, message = event.assoc, event.message
        cs = message.command_set
        peer = assoc.acceptor if assoc.is_requestor else assoc.requestor
        originator = cs.get("MoveOriginatorMessageID")
        line = {
            "t_ns": t_ns,
            "direction": direction,
            "message": name,
            "association": self._numbers.number(assoc),
            "peer_ae": str(peer.ae_title).strip(),
            "sop_class_uid": str(cs.get("AffectedSOPClassUID") or cs.get("RequestedSOPClassUID") or ""),
            "sop_instance_uid": str(cs.get("AffectedSOPInstanceUID") or cs.get("RequestedSOPInstanceUID") or ""),
            "bytes": _data_set_length(message),
            "move_originator_ae": str(cs.get("MoveOriginatorApplicationEntityTitle") or "").strip(),
            "move_originator_message_id": None if originator in (None, "") else int(originator),
        }
        if name in MPPS_MESSAGES:
            line["mpps_status"] = _mpps_status(event)
        try:
            append_json_line(self.path, line)
        except OSError as exc:  # the request is served all the same; only its timing is lost, and said so
            _LOG.warning("cannot append to the arrival log %s: %s", self.path, exc)


def read_arrivals(path: Path, offset: int = 0) -> tuple[list[Arrival], int]:
    """The whole lines of `path` from byte `offset` on, and the offset after the last whole line.

    A missing file reads as empty; a line still being written (no newline yet) is left for the
    next read. A malformed line raises ValueError naming the file and its byte offset.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    arrivals: list[Arrival] = []
    at = offset
    for raw in data[:end].splitlines(keepends=True):
        try:
            arrivals.append(Arrival.from_json(json.loads(raw)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: malformed arrival line at byte {at}: {exc}; "
                "expected one JSON object per line as simulators._arrivals.ArrivalLog writes"
            ) from None
        at += len(raw)
    return arrivals, offset + end


def c_stores(arrivals: Sequence[Arrival], *, direction: str = "received") -> list[Arrival]:
    """The C-STORE-RQ lines of one direction, in file order."""
    return [a for a in arrivals if a.message == "C-STORE-RQ" and a.direction == direction]
