"""Safe parsing of untrusted bytes into a DICOM audit message (the XML of PS3.15 A.5.1).

Parsing never trusts its input: the size is checked before anything else, UTF-8 is
decoded strictly, and the XML parser (defusedxml) refuses DTDs, entities and external
references, so an entity bomb or an XXE costs nothing. A message that parses can still
lack mandatory fields: that is its `problems()`.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from simulators.audit.message import (
    MAX_MESSAGE_BYTES,
    ActiveParticipant,
    AuditMessage,
    AuditMessageError,
    Code,
    ParticipantObject,
)

__all__ = ["parse_message"]

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
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
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
