"""DICOM audit messages (PS3.15 A.5): safe parsing of untrusted bytes, conformance checks, building, syslog framing.

The XML is the RFC 3881-derived schema of PS3.15 A.5.1; transport is syslog (RFC 5424
messages), one per UDP datagram (RFC 5426) or octet-counted over TLS (RFC 5425).

Parsing never trusts its input: the size is checked before anything else, UTF-8 is
decoded strictly, and the XML parser (defusedxml) refuses DTDs, entities and external
references, so an entity bomb or an XXE costs nothing. A message that parses can still
lack mandatory fields; `AuditMessage.problems()` lists them (PS3.15 A.5.1 and the
per-event tables of A.5.3).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

__all__ = [
    "APPLICATION_START",
    "APPLICATION_STOP",
    "EVENT_NAMES",
    "ID_NODE",
    "ID_PATIENT_NUMBER",
    "ID_SOP_CLASS_UID",
    "ID_STUDY_INSTANCE_UID",
    "ID_URI",
    "LOGIN",
    "LOGOUT",
    "MAX_MESSAGE_BYTES",
    "NODE_AUTHENTICATION",
    "ROLE_APPLICATION",
    "ROLE_APPLICATION_LAUNCHER",
    "ROLE_DESTINATION",
    "ROLE_SOURCE",
    "SECURITY_CONFIGURATION",
    "SOFTWARE_CONFIGURATION",
    "ActiveParticipant",
    "AuditMessage",
    "AuditMessageError",
    "Code",
    "OctetCountingDecoder",
    "ParticipantObject",
    "SyslogHeader",
    "TlsSender",
    "build_message",
    "event_code",
    "octet_frame",
    "parse_message",
    "parse_syslog",
    "patient",
    "security_subject",
    "send_udp",
    "sop_queried",
    "study",
    "syslog_frame",
]

MAX_MESSAGE_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"

# DCM event IDs of PS3.15 A.5.3 (CID 400).
EVENT_NAMES: Mapping[str, str] = {
    "110100": "Application Activity",
    "110101": "Audit Log Used",
    "110102": "Begin Transferring DICOM Instances",
    "110103": "DICOM Instances Accessed",
    "110104": "DICOM Instances Transferred",
    "110105": "DICOM Study Deleted",
    "110106": "Export",
    "110107": "Import",
    "110108": "Network Entry",
    "110109": "Order Record",
    "110110": "Patient Record",
    "110111": "Procedure Record",
    "110112": "Query",
    "110113": "Security Alert",
    "110114": "User Authentication",
}
_EVENT_BY_NAME = {name.casefold(): code for code, name in EVENT_NAMES.items()}


class AuditMessageError(ValueError):
    """Bytes that are not a usable audit message (or syslog frame); `reason` is short, stable text for records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Code:
    """A coded value (PS3.15 A.5.1 CodedValueType): csd-code, codeSystemName and its meaning (originalText)."""

    code: str
    code_system_name: str = "DCM"
    display_name: str = ""

    def same(self, other: Code | None) -> bool:
        """Same code in the same scheme; the meaning text may differ."""
        return other is not None and (self.code, self.code_system_name) == (other.code, other.code_system_name)


ROLE_APPLICATION = Code("110150", "DCM", "Application")
ROLE_APPLICATION_LAUNCHER = Code("110151", "DCM", "Application Launcher")
ROLE_DESTINATION = Code("110152", "DCM", "Destination Role ID")
ROLE_SOURCE = Code("110153", "DCM", "Source Role ID")
APPLICATION_START = Code("110120", "DCM", "Application Start")
APPLICATION_STOP = Code("110121", "DCM", "Application Stop")
LOGIN = Code("110122", "DCM", "Login")
LOGOUT = Code("110123", "DCM", "Logout")
_ATTACH = Code("110124", "DCM", "Attach")
_DETACH = Code("110125", "DCM", "Detach")
NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")
SECURITY_CONFIGURATION = Code("110129", "DCM", "Security Configuration")
SOFTWARE_CONFIGURATION = Code("110131", "DCM", "Software Configuration")
ID_STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")
ID_SOP_CLASS_UID = Code("110181", "DCM", "SOP Class UID")
ID_NODE = Code("110182", "DCM", "Node ID")
ID_PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
ID_URI = Code("12", "RFC-3881", "URI")


@dataclass(frozen=True)
class ActiveParticipant:
    """One ActiveParticipant; `is_requestor` is None when UserIsRequestor is missing or not a boolean."""

    user_id: str
    is_requestor: bool | None
    role_codes: tuple[Code, ...] = ()
    network_access_point_id: str = ""


@dataclass(frozen=True)
class ParticipantObject:
    """One ParticipantObjectIdentification; integers are None when missing or not integers.

    `query` and the `details` values are base64 text as on the wire (ParticipantObjectQuery,
    ParticipantObjectDetail/@value).
    """

    object_id: str
    type_code: int | None
    role: int | None
    id_type_code: Code | None
    name: str = ""
    query: str = ""
    details: tuple[tuple[str, str], ...] = ()


def study(uid: str) -> ParticipantObject:
    """A study being transferred/accessed: System Object (2), Report (3), Study Instance UID."""
    return ParticipantObject(uid, 2, 3, ID_STUDY_INSTANCE_UID)


def patient(patient_id: str, name: str = "") -> ParticipantObject:
    """The patient of an event: Person (1), Patient (1), Patient Number."""
    return ParticipantObject(patient_id, 1, 1, ID_PATIENT_NUMBER, name=name)


def sop_queried(sop_class_uid: str, query: bytes, transfer_syntax: str = "1.2.840.10008.1.2.1") -> ParticipantObject:
    """The SOP class of a Query event with the query dataset (`query`: its encoded bytes) and their transfer syntax."""
    return ParticipantObject(
        sop_class_uid,
        2,
        3,
        ID_SOP_CLASS_UID,
        query=base64.b64encode(query).decode("ascii"),
        details=(("TransferSyntax", base64.b64encode(transfer_syntax.encode("ascii")).decode("ascii")),),
    )


def security_subject(node_id: str) -> ParticipantObject:
    """The subject of a Security Alert: System Object (2), Security Resource (13), Node ID."""
    return ParticipantObject(node_id, 2, 13, ID_NODE)


# -- the message ------------------------------------------------------------------------

_ACTIONS = ("C", "R", "U", "D", "E")
_OUTCOMES = (0, 4, 8, 12)
# xs:dateTime; group 1 is the optional time zone, which PS3.15 A.5.2.5 requires.
_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?")


@dataclass(frozen=True)
class AuditMessage:
    """What a DICOM audit message says; fields hold what was received ("" / None where it was missing)."""

    event_id: Code
    event_action_code: str
    event_datetime: str
    event_outcome_indicator: int | None
    event_type_codes: tuple[Code, ...]
    active_participants: tuple[ActiveParticipant, ...]
    audit_source_id: str
    participant_objects: tuple[ParticipantObject, ...]
    outcome_description: str = ""

    @property
    def event_name(self) -> str:
        """The DCM event's name (e.g. "Query"); else the message's own meaning text, else the code."""
        if self.event_id.code_system_name == "DCM" and self.event_id.code in EVENT_NAMES:
            return EVENT_NAMES[self.event_id.code]
        return self.event_id.display_name or self.event_id.code

    def problems(self) -> tuple[str, ...]:
        """Every mandatory field that is missing or wrong (PS3.15 A.5.1, A.5.2, A.5.3); empty when conformant."""
        out: list[str] = []
        if not self.event_id.code_system_name:
            out.append("EventID has no codeSystemName")
        action = self.event_action_code
        if not action:
            out.append("EventActionCode missing")
        elif action not in _ACTIONS:
            out.append(f"EventActionCode {action!r} is not one of C, R, U, D, E")
        when = self.event_datetime
        match = _DATETIME.fullmatch(when)
        if not when:
            out.append("EventDateTime missing")
        elif match is None:
            out.append(f"EventDateTime {when!r} is not an xs:dateTime")
        elif match.group(1) is None:
            out.append(f"EventDateTime {when!r} has no time zone (PS3.15 A.5.2.5)")
        if self.event_outcome_indicator is None:
            out.append("EventOutcomeIndicator missing or not an integer")
        elif self.event_outcome_indicator not in _OUTCOMES:
            out.append(f"EventOutcomeIndicator {self.event_outcome_indicator} is not one of 0, 4, 8, 12")
        if not self.active_participants:
            out.append("no ActiveParticipant")
        for i, p in enumerate(self.active_participants, 1):
            if not p.user_id:
                out.append(f"ActiveParticipant {i}: UserID missing")
            if p.is_requestor is None:
                out.append(f"ActiveParticipant {i}: UserIsRequestor missing or not a boolean")
        if not self.audit_source_id:
            out.append("AuditSourceIdentification/AuditSourceID missing")
        for i, o in enumerate(self.participant_objects, 1):
            if not o.object_id:
                out.append(f"ParticipantObjectIdentification {i}: ParticipantObjectID missing")
            if o.id_type_code is None or not o.id_type_code.code:
                out.append(f"ParticipantObjectIdentification {i}: ParticipantObjectIDTypeCode missing")
        rule = _RULES.get(self.event_id.code) if self.event_id.code_system_name == "DCM" else None
        if rule is not None:
            out.extend(rule.check(self))
        return tuple(out)


# -- per-event rules (PS3.15 A.5.3) --------------------------------------------------------


@dataclass(frozen=True)
class _ObjectRule:
    what: str
    id_type: Code
    type_code: int
    role: int
    query: bool = False  # ParticipantObjectQuery is mandatory (Query's SOP Queried)


_STUDY = _ObjectRule("study", ID_STUDY_INSTANCE_UID, 2, 3)
_PATIENT = _ObjectRule("patient", ID_PATIENT_NUMBER, 1, 1)
_SOP_QUERIED = _ObjectRule("SOP class queried", ID_SOP_CLASS_UID, 2, 3, query=True)
_AUDIT_LOG = _ObjectRule("audit log", ID_URI, 2, 13)


def _show(code: Code) -> str:
    return f'({code.code}, {code.code_system_name}, "{code.display_name}")'


@dataclass(frozen=True)
class _EventRule:
    actions: str  # the EventActionCodes the event allows
    type_codes: tuple[Code, ...] = ()  # one of these EventTypeCodes is mandatory
    any_type_code: bool = False  # some EventTypeCode is mandatory
    roles: tuple[Code, ...] = ()  # an ActiveParticipant with each of these RoleIDCodes
    objects: tuple[_ObjectRule, ...] = ()

    def check(self, m: AuditMessage) -> list[str]:
        out: list[str] = []
        name = EVENT_NAMES[m.event_id.code]
        if m.event_action_code in _ACTIONS and m.event_action_code not in self.actions:
            out.append(f"{name}: EventActionCode {m.event_action_code!r} is not {' or '.join(self.actions)}")
        if self.type_codes and not any(t.same(c) for t in self.type_codes for c in m.event_type_codes):
            shown = " or ".join(_show(t) for t in self.type_codes)
            out.append(f"{name}: EventTypeCode {shown} missing")
        if self.any_type_code and not m.event_type_codes:
            out.append(f"{name}: EventTypeCode missing")
        for role in self.roles:
            if not any(role.same(c) for p in m.active_participants for c in p.role_codes):
                out.append(f"{name}: no ActiveParticipant with RoleIDCode {_show(role)}")
        for rule in self.objects:
            found = [o for o in m.participant_objects if rule.id_type.same(o.id_type_code)]
            if not found:
                out.append(
                    f"{name}: no participant object for the {rule.what} (ParticipantObjectIDTypeCode {_show(rule.id_type)})"
                )
            for o in found:
                if o.type_code != rule.type_code:
                    out.append(f"{name}: {rule.what} ParticipantObjectTypeCode is {o.type_code}, not {rule.type_code}")
                if o.role != rule.role:
                    out.append(f"{name}: {rule.what} ParticipantObjectTypeCodeRole is {o.role}, not {rule.role}")
                if rule.query and not o.query:
                    out.append(f"{name}: {rule.what} has no ParticipantObjectQuery")
        return out


_TRANSFER = (ROLE_SOURCE, ROLE_DESTINATION)
_RULES: Mapping[str, _EventRule] = {
    "110100": _EventRule("E", type_codes=(APPLICATION_START, APPLICATION_STOP), roles=(ROLE_APPLICATION,)),
    "110101": _EventRule("R", objects=(_AUDIT_LOG,)),
    "110102": _EventRule("E", roles=_TRANSFER, objects=(_STUDY, _PATIENT)),
    "110103": _EventRule("CRUD", objects=(_STUDY, _PATIENT)),
    "110104": _EventRule("CRU", roles=_TRANSFER, objects=(_STUDY, _PATIENT)),
    "110105": _EventRule("D", objects=(_STUDY, _PATIENT)),
    "110106": _EventRule("R", objects=(_STUDY, _PATIENT)),
    "110107": _EventRule("C", objects=(_STUDY, _PATIENT)),
    "110108": _EventRule("E", type_codes=(_ATTACH, _DETACH)),
    "110109": _EventRule("CRUD", objects=(_PATIENT,)),
    "110110": _EventRule("CRUD", objects=(_PATIENT,)),
    "110111": _EventRule("CRUD", objects=(_PATIENT,)),
    "110112": _EventRule("E", roles=_TRANSFER, objects=(_SOP_QUERIED,)),
    "110113": _EventRule("E", any_type_code=True),
    "110114": _EventRule("E", type_codes=(LOGIN, LOGOUT)),
}


# -- parsing -------------------------------------------------------------------------------

_EXTERNAL_ENTITY = re.compile(r"<!ENTITY\s+(?:%\s+)?\S+\s+(?:SYSTEM|PUBLIC)\b")


def _local(tag: object) -> str:
    """An element's name without its namespace (`{ns}Name` -> `Name`); "" for comments and PIs."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _children(parent: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in parent if _local(child.tag) == name]


def _child(parent: ET.Element, name: str) -> ET.Element | None:
    found = _children(parent, name)
    return found[0] if found else None


def _code(element: ET.Element | None) -> Code | None:
    """A CodedValueType: DICOM's csd-code/originalText, or RFC 3881's code/displayName."""
    if element is None:
        return None
    a = element.attrib
    return Code(
        a.get("csd-code") or a.get("code") or "",
        a.get("codeSystemName", ""),
        a.get("originalText") or a.get("displayName") or "",
    )


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def _bool(text: str | None) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get((text or "").strip())


def _text(element: ET.Element | None) -> str:
    return "" if element is None else "".join(element.itertext()).strip()


def _forbidden(exc: DefusedXmlException, text: str) -> str:
    """The reason for a refused XML construct; for a DTD, what it declared (the DTD itself is never processed)."""
    if isinstance(exc, DTDForbidden):
        if exc.sysid or exc.pubid:
            return "forbidden XML construct: DTD with an external reference"
        if _EXTERNAL_ENTITY.search(text):
            return "forbidden XML construct: external entity declaration"
        if "<!ENTITY" in text:
            return "forbidden XML construct: entity declaration"
        return "forbidden XML construct: DTD"
    if isinstance(exc, EntitiesForbidden):
        return "forbidden XML construct: entity declaration"
    if isinstance(exc, ExternalReferenceForbidden):
        return "forbidden XML construct: external reference"
    return f"forbidden XML construct: {type(exc).__name__}"


def parse_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> AuditMessage:
    """Parse untrusted bytes into an AuditMessage; AuditMessageError(reason) when they are not one.

    Raises only for what makes the message unreadable (size, encoding, XML, no EventID);
    missing mandatory fields are the message's `problems()`.
    """
    if len(data) > max_bytes:
        raise AuditMessageError(f"oversized ({len(data)} > {max_bytes} bytes)")
    offset = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditMessageError(f"not UTF-8 at byte {exc.start + offset}") from None
    if not text.strip():
        raise AuditMessageError("empty message")
    try:
        root = DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise AuditMessageError(_forbidden(exc, text)) from None
    except (ET.ParseError, ValueError) as exc:
        raise AuditMessageError(f"not XML: {exc}") from None
    if _local(root.tag) != "AuditMessage":
        raise AuditMessageError(f"root element is <{_local(root.tag)}>, not <AuditMessage>")
    event = _child(root, "EventIdentification")
    if event is None:
        raise AuditMessageError("missing EventIdentification")
    event_id = _code(_child(event, "EventID"))
    if event_id is None:
        raise AuditMessageError("missing EventIdentification/EventID")
    if not event_id.code:
        raise AuditMessageError("missing EventIdentification/EventID/@csd-code")
    source = _child(root, "AuditSourceIdentification")
    participants = tuple(
        ActiveParticipant(
            user_id=p.get("UserID", ""),
            is_requestor=_bool(p.get("UserIsRequestor")),
            role_codes=tuple(c for c in map(_code, _children(p, "RoleIDCode")) if c is not None),
            network_access_point_id=p.get("NetworkAccessPointID", ""),
        )
        for p in _children(root, "ActiveParticipant")
    )
    objects = tuple(
        ParticipantObject(
            object_id=o.get("ParticipantObjectID", ""),
            type_code=_int(o.get("ParticipantObjectTypeCode")),
            role=_int(o.get("ParticipantObjectTypeCodeRole")),
            id_type_code=_code(_child(o, "ParticipantObjectIDTypeCode")),
            name=_text(_child(o, "ParticipantObjectName")),
            query=_text(_child(o, "ParticipantObjectQuery")),
            details=tuple((d.get("type", ""), d.get("value", "")) for d in _children(o, "ParticipantObjectDetail")),
        )
        for o in _children(root, "ParticipantObjectIdentification")
    )
    return AuditMessage(
        event_id=event_id,
        event_action_code=event.get("EventActionCode", ""),
        event_datetime=event.get("EventDateTime", "").strip(),
        event_outcome_indicator=_int(event.get("EventOutcomeIndicator")),
        event_type_codes=tuple(c for c in map(_code, _children(event, "EventTypeCode")) if c is not None),
        active_participants=participants,
        audit_source_id="" if source is None else source.get("AuditSourceID", ""),
        participant_objects=objects,
        outcome_description=_text(_child(event, "EventOutcomeDescription")),
    )


# -- building ------------------------------------------------------------------------------


def event_code(event: str) -> str:
    """A DCM event ID from its code ("110112") or name ("Query", any case); ValueError naming the known ones."""
    if event in EVENT_NAMES:
        return event
    code = _EVENT_BY_NAME.get(event.strip().casefold())
    if code is None:
        known = ", ".join(f"{c} {n}" for c, n in EVENT_NAMES.items())
        raise ValueError(f"unknown audit event {event!r}; known: {known}")
    return code


def _coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {
            "csd-code": code.code,
            "codeSystemName": code.code_system_name,
            "originalText": code.display_name or code.code,
        },
    )


def _access_point_type(address: str) -> str:
    """NetworkAccessPointTypeCode: 2 for an IP address, 1 for a machine name."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "1"
    return "2"


def _timestamp(when: datetime | None) -> str:
    when = datetime.now(UTC) if when is None else when
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"audit time {when.isoformat()} has no time zone; PS3.15 A.5.2.5 requires one")
    text = when.isoformat(timespec="milliseconds")
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


def build_message(
    event: str,
    *,
    outcome: int = 0,
    action: str = "E",
    source_id: str,
    participants: Sequence[ActiveParticipant],
    objects: Sequence[ParticipantObject] = (),
    event_types: Sequence[Code] = (),
    when: datetime | None = None,
    outcome_description: str = "",
) -> bytes:
    """The UTF-8 XML of an audit message for `event` (DCM code or name), in the element order of PS3.15 A.5.1.

    Conformance is the caller's: `parse_message(xml).problems()` says what a receiver will
    find missing (a simulator may want to send a non-conformant message on purpose).
    """
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(
        root,
        "EventIdentification",
        {"EventActionCode": action, "EventDateTime": _timestamp(when), "EventOutcomeIndicator": str(outcome)},
    )
    code = event_code(event)
    _coded(ident, "EventID", Code(code, "DCM", EVENT_NAMES[code]))
    for t in event_types:
        _coded(ident, "EventTypeCode", t)
    if outcome_description:
        ET.SubElement(ident, "EventOutcomeDescription").text = outcome_description
    for p in participants:
        attrs = {"UserID": p.user_id, "UserIsRequestor": "true" if p.is_requestor else "false"}
        if p.network_access_point_id:
            attrs["NetworkAccessPointID"] = p.network_access_point_id
            attrs["NetworkAccessPointTypeCode"] = _access_point_type(p.network_access_point_id)
        element = ET.SubElement(root, "ActiveParticipant", attrs)
        for role in p.role_codes:
            _coded(element, "RoleIDCode", role)
    ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id})
    for o in objects:
        attrs = {"ParticipantObjectID": o.object_id}
        if o.type_code is not None:
            attrs["ParticipantObjectTypeCode"] = str(o.type_code)
        if o.role is not None:
            attrs["ParticipantObjectTypeCodeRole"] = str(o.role)
        element = ET.SubElement(root, "ParticipantObjectIdentification", attrs)
        if o.id_type_code is not None:
            _coded(element, "ParticipantObjectIDTypeCode", o.id_type_code)
        # Name and query are a choice in the schema; a query wins.
        if o.query:
            ET.SubElement(element, "ParticipantObjectQuery").text = o.query
        elif o.name:
            ET.SubElement(element, "ParticipantObjectName").text = o.name
        for kind, value in o.details:
            ET.SubElement(element, "ParticipantObjectDetail", {"type": kind, "value": value})
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# -- syslog (RFC 5424) and its transports (RFC 5425 TLS, RFC 5426 UDP) -------------------------


@dataclass(frozen=True)
class SyslogHeader:
    """The RFC 5424 HEADER and STRUCTURED-DATA of a syslog message ("-" is a nil value)."""

    facility: int
    severity: int
    version: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str = "-"


_PRI_VERSION = re.compile(rb"<(\d{1,3})>(\d{1,3}) ")
_PRINTUSASCII = re.compile(rb"[!-~]+")
_RFC3339 = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
# Field name -> maximum length (RFC 5424 section 6).
_FIELDS = (("TIMESTAMP", 32), ("HOSTNAME", 255), ("APP-NAME", 48), ("PROCID", 128), ("MSGID", 32))


def _syslog_error(detail: str) -> AuditMessageError:
    return AuditMessageError(f"malformed syslog header: {detail}")


def _check_field(name: str, value: str, limit: int) -> str:
    raw = value.encode("ascii", "replace")
    if not raw or len(raw) > limit or not _PRINTUSASCII.fullmatch(raw):
        raise ValueError(f"syslog {name} {value!r} must be 1-{limit} printable US-ASCII characters, no spaces")
    return value


def syslog_frame(
    xml: bytes,
    *,
    app_name: str = "patchgate",
    hostname: str = "localhost",
    msgid: str = "DICOM+RFC3881",
    facility: int = 10,
    severity: int = 5,
    procid: str | None = None,
    when: datetime | None = None,
) -> bytes:
    """An RFC 5424 message carrying `xml` as MSG (UTF-8, with the BOM RFC 5424 section 6.4 asks for)."""
    if not (0 <= facility <= 23 and 0 <= severity <= 7):
        raise ValueError(f"syslog facility {facility} / severity {severity} out of range (0-23 / 0-7)")
    stamp = datetime.now(UTC) if when is None else when
    if stamp.tzinfo is None:
        raise ValueError("syslog time must be timezone-aware")
    ts = stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            ts,
            _check_field("HOSTNAME", hostname, 255),
            _check_field("APP-NAME", app_name, 48),
            _check_field("PROCID", str(os.getpid()) if procid is None else procid, 128),
            _check_field("MSGID", msgid, 32),
            "-",
        )
    )
    return header.encode("ascii") + b" " + _BOM + xml


def _structured_data(data: bytes, pos: int) -> int:
    """The end of the STRUCTURED-DATA starting at `pos`: "-" or SD-ELEMENTs with their quoted, escaped values."""
    if data[pos : pos + 1] == b"-":
        return pos + 1
    if data[pos : pos + 1] != b"[":
        raise _syslog_error("STRUCTURED-DATA missing (expected '-' or '[')")
    while data[pos : pos + 1] == b"[":
        pos += 1
        quoted = False
        while True:
            if pos >= len(data):
                raise _syslog_error("unterminated STRUCTURED-DATA element")
            byte = data[pos]
            if quoted and byte == 0x5C:  # backslash escapes the next character inside a value
                pos += 2
                continue
            if byte == 0x22:
                quoted = not quoted
            elif byte == 0x5D and not quoted:
                pos += 1
                break
            pos += 1
    return pos


def parse_syslog(data: bytes) -> tuple[SyslogHeader, bytes]:
    """Split an RFC 5424 message into its header and MSG (BOM removed); AuditMessageError if the header is malformed."""
    match = _PRI_VERSION.match(data)
    if match is None:
        raise _syslog_error(f"does not start with <PRI>VERSION (got {data[:16]!r})")
    pri, version = int(match.group(1)), int(match.group(2))
    if pri > 191:
        raise _syslog_error(f"PRI {pri} out of range 0-191")
    if version != 1:
        raise _syslog_error(f"VERSION {version} is not 1 (RFC 5424)")
    pos = match.end()
    values: list[str] = []
    for name, limit in _FIELDS:
        end = data.find(b" ", pos, pos + limit + 1)
        token = data[pos:end] if end >= 0 else b""
        if not token or not _PRINTUSASCII.fullmatch(token):
            raise _syslog_error(f"{name} missing, over {limit} characters or not printable US-ASCII")
        values.append(token.decode("ascii"))
        pos = end + 1
    timestamp = values[0]
    if timestamp != "-" and not _RFC3339.fullmatch(timestamp.encode("ascii")):
        raise _syslog_error(f"TIMESTAMP {timestamp!r} is not RFC 3339")
    end = _structured_data(data, pos)
    try:
        structured = data[pos:end].decode("utf-8")
    except UnicodeDecodeError:
        raise _syslog_error("STRUCTURED-DATA is not UTF-8") from None
    if end == len(data):
        msg = b""
    elif data[end] == 0x20:
        msg = data[end + 1 :]
    else:
        raise _syslog_error("no space between STRUCTURED-DATA and MSG")
    timestamp, hostname, app_name, procid, msgid = values
    header = SyslogHeader(pri // 8, pri % 8, version, timestamp, hostname, app_name, procid, msgid, structured)
    return header, msg[len(_BOM) :] if msg.startswith(_BOM) else msg


def octet_frame(message: bytes) -> bytes:
    """RFC 5425 octet-counting framing: `LEN SP SYSLOG-MSG`."""
    return str(len(message)).encode("ascii") + b" " + message


class OctetCountingDecoder:
    """Incremental RFC 5425 deframer: feed bytes as they arrive, get whole messages back.

    The buffer never holds more than one length prefix and one message of at most `limit`
    bytes. A bad prefix or an oversized length raises AuditMessageError, and so does every
    later feed: a stream that lost its framing cannot be resynchronised.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._limit = limit
        self._digits = len(str(limit))
        self._buffer = bytearray()
        self._need: int | None = None  # length of the message being read; None while reading a prefix
        self._error = ""

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned (a partial prefix or message)."""
        return len(self._buffer)

    def _fail(self, reason: str) -> AuditMessageError:
        self._error = reason
        self._buffer.clear()
        return AuditMessageError(reason)

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by `data`, in order."""
        if self._error:
            raise AuditMessageError(self._error)
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._need is None:
                space = self._buffer.find(b" ", 0, self._digits + 1)
                prefix = bytes(self._buffer[: self._digits + 1] if space < 0 else self._buffer[:space])
                if space == 0 or (prefix and (not prefix.isdigit() or prefix.startswith(b"0"))):
                    raise self._fail(f"bad octet-counting length prefix {bytes(self._buffer[:16])!r}")
                if space < 0:
                    if len(self._buffer) > self._digits:  # all digits, and more of them than the limit has
                        raise self._fail(f"oversized frame (length prefix {prefix.decode()}... > {self._limit} bytes)")
                    return frames
                length = int(prefix)
                if length > self._limit:
                    raise self._fail(f"oversized frame ({length} > {self._limit} bytes)")
                del self._buffer[: space + 1]
                self._need = length
            if len(self._buffer) < self._need:
                return frames
            frames.append(bytes(self._buffer[: self._need]))
            del self._buffer[: self._need]
            self._need = None

    def eof(self) -> None:
        """The stream ended; AuditMessageError if it ended inside a prefix or a message."""
        if self._error:
            return
        if self._need is not None:
            raise self._fail(f"truncated frame (connection closed after {len(self._buffer)} of {self._need} bytes)")
        if self._buffer:
            raise self._fail(f"truncated frame (connection closed inside the length prefix {bytes(self._buffer)!r})")


def send_udp(host: str, port: int, payload: bytes) -> None:
    """Send one syslog message as one UDP datagram (RFC 5426)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.sendto(payload, address)


class TlsSender:
    """One TLS connection to a syslog receiver (RFC 5425) sending octet-counted messages; connects on creation."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        timeout: float = 5.0,
        *,
        server_hostname: str | None = None,
    ) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self._sock = ssl_context.wrap_socket(raw, server_hostname=server_hostname or host)
        except BaseException:
            raw.close()
            raise

    def send(self, message: bytes) -> None:
        """Send one syslog message, framed."""
        self._sock.sendall(octet_frame(message))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (no framing): for tests of a receiver's framing checks."""
        self._sock.sendall(data)

    def close(self) -> None:
        """Close with a TLS close_notify, reading what the server sent (TLS 1.3 tickets) so the close is not a reset."""
        try:
            self._sock.unwrap().close()
        except (OSError, ValueError):
            # The server closed first or without close_notify: everything we sent was already read.
            self._sock.close()

    def __enter__(self) -> TlsSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
