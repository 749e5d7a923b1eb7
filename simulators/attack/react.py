"""How a device reacted to one input: a closed set of kinds ranked by severity, read off the wire in bounded time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from io import BytesIO
from typing import Protocol

from pydicom.filereader import read_dataset

from simulators import status as dimse_status
from simulators.attack import pdu as P
from simulators.endpoint import JSON

__all__ = ["IMMEDIATE", "KINDS", "SEVERITY", "Ended", "Reaction", "Reader", "read_reaction", "when"]

# The closed set of reactions and their rank (design 8.4): 0 the device refused or answered, 1 it accepted what
# the standard says to refuse or held the connection, 2 it stopped answering, 3 it went away.
SEVERITY: dict[str, int] = {
    "answered": 0,
    "rejected": 0,
    "aborted": 0,
    "released": 0,
    "closed": 0,
    "reset": 0,
    "accepted": 1,
    "silent": 1,
    "unresponsive": 2,
    "restarted": 3,
    "exited": 3,
}
KINDS = tuple(SEVERITY)
# Under a second is "immediate": far from both a 50 ms reply and a 5 s ARTIM timer.
IMMEDIATE = 1.0


def when(seconds: float) -> str:
    """ "immediate" below one second, else "delayed"."""
    return "immediate" if seconds < IMMEDIATE else "delayed"


@dataclass(frozen=True)
class Reaction:
    """One reaction: its kind (of `KINDS`), what was seen, and how long after the input it came."""

    kind: str
    detail: str
    seconds: float

    def __post_init__(self) -> None:
        if self.kind not in SEVERITY:
            raise ValueError(f"unknown reaction kind {self.kind!r}; kinds: {', '.join(KINDS)}")

    @property
    def severity(self) -> int:
        return SEVERITY[self.kind]

    @property
    def when(self) -> str:
        return when(self.seconds)

    def worst(self, other: Reaction | None) -> Reaction:
        """The more severe of the two (this one on a tie): wire kind, then health, then incarnation (8.4)."""
        return other if other is not None and other.severity > self.severity else self

    def to_json(self) -> dict[str, JSON]:
        return {"kind": self.kind, "when": self.when, "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Ended:
    """A read that got no PDU: the peer closed ("eof"), reset ("reset"), or the deadline passed ("timeout")."""

    how: str
    detail: str = ""


class Reader(Protocol):
    """What reads PDUs: `Wire`, or anything with its `read_pdu`."""

    def read_pdu(self, until: float) -> P.Pdu | Ended: ...


def read_reaction(
    reader: Reader,
    deadline: float,
    *,
    refusal_expected: bool = False,
    started: float | None = None,
    first: P.Pdu | Ended | None = None,
) -> Reaction:
    """The reaction: read until the first telling PDU, the end of the connection, or `deadline` seconds.

    Pending DIMSE responses (C-FIND matches) and data set fragments are read past; the final status
    decides. `started` (time.monotonic()) is when the input went out, `first` a PDU already read.
    """
    start = time.monotonic() if started is None else started
    until = time.monotonic() + deadline
    command = b""
    pending: str | None = None
    while True:
        got = first if first is not None else reader.read_pdu(until)
        first = None
        seconds = time.monotonic() - start
        if isinstance(got, Ended):
            if got.how == "reset":
                return Reaction("reset", got.detail or "connection reset", seconds)
            if got.how == "eof":
                return Reaction("closed", got.detail or "EOF", seconds)
            if pending is not None:
                return Reaction("answered", f"{pending}, no final status before the deadline", seconds)
            return Reaction("silent", got.detail or "no answer before the deadline", seconds)
        if got.type != P.P_DATA_TF:
            return _pdu_reaction(got, seconds, refusal_expected)
        if not got.complete:
            return Reaction("answered", f"P-DATA-TF declaring {got.length} bytes (not read)", seconds)
        for _, control, fragment in P.pdvs(got.body):
            if not control & 1:
                continue  # a data set fragment: the status is in the command
            command += fragment
            if not control & 2:
                continue
            code = _status(command)
            command = b""
            if code is None:
                return Reaction("answered", "a response without a decodable status", seconds)
            meaning = dimse_status.category(code)
            text = f"status 0x{code:04X} ({meaning.lower()})"
            if meaning == "Pending":
                pending = text
                continue
            kind = "accepted" if refusal_expected and meaning in ("Success", "Warning") else "answered"
            return Reaction(kind, text, seconds)


def _pdu_reaction(got: P.Pdu, seconds: float, refusal_expected: bool) -> Reaction:
    body = got.body
    fields = body[1:4] if got.complete and len(body) >= 4 else b""
    if got.type == P.ASSOCIATE_AC:
        return Reaction("accepted" if refusal_expected else "answered", "A-ASSOCIATE-AC", seconds)
    if got.type == P.ASSOCIATE_RJ and fields:
        return Reaction("rejected", "A-ASSOCIATE-RJ result {} source {} reason {}".format(*fields), seconds)
    if got.type == P.ABORT and fields:
        return Reaction("aborted", f"A-ABORT source {fields[1]} reason {fields[2]}", seconds)
    if got.type == P.RELEASE_RP:
        return Reaction("released", "A-RELEASE-RP", seconds)
    if got.type == P.RELEASE_RQ:
        return Reaction("released", "A-RELEASE-RQ from the device", seconds)
    return Reaction("answered", f"PDU type 0x{got.type:02X} declaring {got.length} bytes", seconds)


def _status(command: bytes) -> int | None:
    """The Status (0000,0900) of an implicit VR LE command set (PS3.7 6.3.1), None if it does not decode."""
    try:
        ds = read_dataset(BytesIO(command), is_implicit_VR=True, is_little_endian=True)
        value = ds.get("Status")
    except Exception:  # noqa: BLE001 - a device's garbage must not end the reading
        return None
    return int(value) if isinstance(value, int) else None
