"""A DICOM audit message (PS3.15 A.5) as data: its coded values, participants, objects and conformance checks.

The fields follow the RFC 3881-derived schema of PS3.15 A.5.1 and hold what was
received ("" / None where it was missing). `AuditMessage.problems()` lists every
mandatory field that is missing or wrong (PS3.15 A.5.1 and the per-event tables of A.5.3).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass

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
    "ParticipantObject",
    "event_code",
    "patient",
    "security_subject",
    "sop_queried",
    "study",
]

# The largest syslog message (and so audit message) a receiver takes from a peer.
MAX_MESSAGE_BYTES = 64 * 1024

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


def event_code(event: str) -> str:
    """A DCM event ID from its code ("110112") or name ("Query", any case); ValueError naming the known ones."""
    if event in EVENT_NAMES:
        return event
    code = _EVENT_BY_NAME.get(event.strip().casefold())
    if code is None:
        known = ", ".join(f"{c} {n}" for c, n in EVENT_NAMES.items())
        raise ValueError(f"unknown audit event {event!r}; known: {known}")
    return code
