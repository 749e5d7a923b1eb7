"""What the audit record repository saw: one record per message received, valid or not, and its JSON-lines file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulators.audit.message import AuditMessageError
from simulators.audit.parse import parse_message
from simulators.audit.syslog import parse_syslog

__all__ = ["AuditRecord", "read_records", "record_failure", "record_message", "stamped"]


@dataclass(frozen=True)
class AuditRecord:
    """One received message (or refused TLS peer) as the ARR saw it; `reason` is "" exactly when `valid`."""

    received: str  # ISO 8601, UTC
    transport: str  # "udp" | "tls"
    peer: str  # host:port
    valid: bool
    reason: str
    problems: tuple[str, ...] = ()
    size: int = 0  # bytes of the syslog message
    sha256: str = ""  # of the syslog message
    app_name: str = ""
    msgid: str = ""
    event_code: str = ""
    event_name: str = ""
    action: str = ""
    outcome: int | None = None
    event_types: tuple[str, ...] = ()
    audit_source_id: str = ""
    user_ids: tuple[str, ...] = ()
    object_ids: tuple[str, ...] = ()
    event_time: str = ""  # EventDateTime as the device stamped it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AuditRecord:
        outcome = d.get("outcome")
        return cls(
            received=str(d["received"]),
            transport=str(d["transport"]),
            peer=str(d.get("peer", "")),
            valid=bool(d["valid"]),
            reason=str(d.get("reason", "")),
            problems=tuple(str(p) for p in d.get("problems", ())),
            size=int(d.get("size", 0)),
            sha256=str(d.get("sha256", "")),
            app_name=str(d.get("app_name", "")),
            msgid=str(d.get("msgid", "")),
            event_code=str(d.get("event_code", "")),
            event_name=str(d.get("event_name", "")),
            action=str(d.get("action", "")),
            outcome=None if outcome is None else int(outcome),
            event_types=tuple(str(t) for t in d.get("event_types", ())),
            audit_source_id=str(d.get("audit_source_id", "")),
            user_ids=tuple(str(u) for u in d.get("user_ids", ())),
            object_ids=tuple(str(o) for o in d.get("object_ids", ())),
            event_time=str(d.get("event_time", "")),
        )

    def summary(self) -> str:
        """One line for logs and timeout messages."""
        what = self.event_name or "-"
        return f"{self.transport} {self.peer} {what}: " + ("valid" if self.valid else f"invalid ({self.reason})")


def read_records(path: Path) -> list[AuditRecord]:
    """The records in an ARR output file; a torn last line (a killed writer) is ignored, any other bad line raises."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    out: list[AuditRecord] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(AuditRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):
                break
            raise ValueError(
                f"{path}:{number}: not an ARR record ({exc}); hint: was it written by simulators.audit.repository?"
            ) from None
    return out


def stamped(record: AuditRecord) -> tuple[float, float] | None:
    """When the device says the event happened: (seconds since the epoch, the stamp's resolution in seconds).

    None without a usable stamp: none at all, not an xs:dateTime, or no time zone (then it names no instant).
    """
    text = record.event_time
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    _, dot, rest = text.partition(".")
    digits = len(rest) - len(rest.lstrip("0123456789")) if dot else 0
    return when.timestamp(), 10.0**-digits


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def record_message(raw: bytes, transport: str, peer: str, max_bytes: int) -> AuditRecord:
    """One syslog message (`max_bytes`: the XML size limit) as a record; never raises for anything the peer sent."""
    base: dict[str, Any] = {
        "received": _now(),
        "transport": transport,
        "peer": peer,
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    try:
        header, msg = parse_syslog(raw)
        base.update(app_name=header.app_name, msgid=header.msgid)
        message = parse_message(msg, max_bytes=max_bytes)
    except AuditMessageError as exc:
        return AuditRecord(valid=False, reason=exc.reason, **base)
    problems = message.problems()
    reason = ""
    if problems:
        reason = problems[0] if len(problems) == 1 else f"{problems[0]} (+{len(problems) - 1} more problems)"
    return AuditRecord(
        valid=not problems,
        reason=reason,
        problems=problems,
        event_code=message.event_id.code,
        event_name=message.event_name,
        action=message.event_action_code,
        outcome=message.event_outcome_indicator,
        event_types=tuple(t.code for t in message.event_type_codes),
        audit_source_id=message.audit_source_id,
        user_ids=tuple(p.user_id for p in message.active_participants),
        object_ids=tuple(o.object_id for o in message.participant_objects),
        event_time=message.event_datetime,
        **base,
    )


def record_failure(transport: str, peer: str, reason: str, size: int = 0) -> AuditRecord:
    """An invalid record for what was no message at all: a refused TLS peer, broken framing, an oversized datagram."""
    return AuditRecord(received=_now(), transport=transport, peer=peer, valid=False, reason=reason, size=size)
