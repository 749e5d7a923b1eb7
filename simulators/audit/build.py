"""Building the XML of a DICOM audit message (PS3.15 A.5.1) from its parts."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from simulators.audit.message import EVENT_NAMES, ActiveParticipant, Code, ParticipantObject, event_code

__all__ = ["build_message"]


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
