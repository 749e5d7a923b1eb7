"""PDUs and items of the DICOM upper layer (PS3.8 9.3), byte by byte: valid by default, every field overridable."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "ABORT",
    "APPLICATION_CONTEXT",
    "ASSOCIATE_AC",
    "ASSOCIATE_RJ",
    "ASSOCIATE_RQ",
    "EXPLICIT_VR_LE",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLICIT_VR_LE",
    "P_DATA_TF",
    "RELEASE_RP",
    "RELEASE_RQ",
    "VERIFICATION",
    "Pdu",
    "abort",
    "abstract_syntax",
    "accepted_contexts",
    "ae_title",
    "application_context",
    "associate_ac",
    "associate_rj",
    "associate_rq",
    "implementation_class_uid",
    "implementation_version_name",
    "item",
    "items",
    "maximum_length",
    "maximum_length_of",
    "p_data",
    "pdu",
    "pdv",
    "pdvs",
    "presentation_context_ac",
    "presentation_context_rq",
    "release_rp",
    "release_rq",
    "transfer_syntax",
    "user_information",
]

# PDU types (PS3.8 9.3.1, Table 9-1).
ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1: the DICOM application context name
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
# Under the corpus's root (simulators.corpus UID_ROOT), so a device log names the attacker plainly.
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1422.99.1"
IMPLEMENTATION_VERSION = "PATCHGATE_ATTACK"  # PS3.7 D.3.3.2: 1 to 16 characters


def pdu(pdu_type: int, body: bytes, *, length: int | None = None, reserved: int = 0) -> bytes:
    """A PDU: type (1), reserved (1), PDU-length (4, big endian), then `body` (PS3.8 9.3.1)."""
    return struct.pack(">BBI", pdu_type, reserved, len(body) if length is None else length) + body


def item(item_type: int, body: bytes, *, length: int | None = None, reserved: int = 0) -> bytes:
    """An item or sub-item: type (1), reserved (1), item-length (2, big endian), then `body` (PS3.8 9.3.2.x)."""
    return struct.pack(">BBH", item_type, reserved, len(body) if length is None else length) + body


def ae_title(title: str | bytes) -> bytes:
    """An AE title field: 16 bytes, padded with spaces (PS3.8 9.3.2, Table 9-11)."""
    raw = title.encode("ascii") if isinstance(title, str) else title
    return raw.ljust(16, b" ")


def application_context(name: str = APPLICATION_CONTEXT, *, length: int | None = None) -> bytes:
    """Application context item, type 0x10 (PS3.8 9.3.2.1)."""
    return item(0x10, name.encode("ascii"), length=length)


def abstract_syntax(uid: str, *, length: int | None = None) -> bytes:
    """Abstract syntax sub-item, type 0x30 (PS3.8 9.3.2.2.1)."""
    return item(0x30, uid.encode("ascii"), length=length)


def transfer_syntax(uid: str, *, length: int | None = None) -> bytes:
    """Transfer syntax sub-item, type 0x40 (PS3.8 9.3.2.2.2, 9.3.3.2.1)."""
    return item(0x40, uid.encode("ascii"), length=length)


def presentation_context_rq(
    context_id: int = 1,
    abstract: str = VERIFICATION,
    transfer_syntaxes: Sequence[str] = (IMPLICIT_VR_LE,),
    *,
    sub_items: bytes | None = None,
    length: int | None = None,
    item_type: int = 0x20,
) -> bytes:
    """Presentation context item of an RQ, type 0x20: id, 3 reserved bytes, abstract and transfer syntaxes (9.3.2.2)."""
    if sub_items is None:
        sub_items = abstract_syntax(abstract) + b"".join(transfer_syntax(t) for t in transfer_syntaxes)
    return item(item_type, bytes([context_id, 0, 0, 0]) + sub_items, length=length)


def presentation_context_ac(
    context_id: int = 1, result: int = 0, transfer: str = IMPLICIT_VR_LE, *, length: int | None = None
) -> bytes:
    """Presentation context item of an AC, type 0x21: id, reserved, result (0 acceptance), reserved, one syntax (9.3.3.2)."""
    return item(0x21, bytes([context_id, 0, result, 0]) + transfer_syntax(transfer), length=length)


def maximum_length(value: int = 16384) -> bytes:
    """Maximum length sub-item, type 0x51: the largest P-DATA-TF variable field received, 0 unlimited (PS3.8 D.1)."""
    return item(0x51, struct.pack(">I", value))


def implementation_class_uid(uid: str = IMPLEMENTATION_CLASS_UID) -> bytes:
    """Implementation class UID sub-item, type 0x52 (PS3.7 D.3.3.2)."""
    return item(0x52, uid.encode("ascii"))


def implementation_version_name(name: str = IMPLEMENTATION_VERSION) -> bytes:
    """Implementation version name sub-item, type 0x55 (PS3.7 D.3.3.2)."""
    return item(0x55, name.encode("ascii"))


def user_information(sub_items: bytes | None = None, *, length: int | None = None) -> bytes:
    """User information item, type 0x50: maximum length, implementation class UID and version name (9.3.2.3)."""
    if sub_items is None:
        sub_items = maximum_length() + implementation_class_uid() + implementation_version_name()
    return item(0x50, sub_items, length=length)


def _associate(
    pdu_type: int,
    called: str | bytes,
    calling: str | bytes,
    version: int,
    variable: bytes,
    length: int | None,
) -> bytes:
    # Protocol version (2), reserved (2), called AE (16), calling AE (16), reserved (32): PS3.8 Tables 9-11, 9-17.
    fixed = struct.pack(">HH", version, 0) + ae_title(called) + ae_title(calling) + bytes(32)
    return pdu(pdu_type, fixed + variable, length=length)


def associate_rq(
    called: str | bytes = "ANY-SCP",
    calling: str | bytes = "PGATTACK",
    *,
    version: int = 1,
    application: bytes | None = None,
    contexts: bytes | None = None,
    user: bytes | None = None,
    length: int | None = None,
    pdu_type: int = ASSOCIATE_RQ,
) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2): one Verification context in implicit VR LE unless `contexts` says otherwise."""
    variable = (
        (application_context() if application is None else application)
        + (presentation_context_rq() if contexts is None else contexts)
        + (user_information() if user is None else user)
    )
    return _associate(pdu_type, called, calling, version, variable, length)


def associate_ac(
    called: str | bytes = "ANY-SCP",
    calling: str | bytes = "PGATTACK",
    *,
    version: int = 1,
    contexts: bytes | None = None,
    user: bytes | None = None,
    length: int | None = None,
) -> bytes:
    """A-ASSOCIATE-AC (PS3.8 9.3.3): context 1 accepted in implicit VR LE unless `contexts` says otherwise."""
    variable = (
        application_context()
        + (presentation_context_ac() if contexts is None else contexts)
        + (user_information() if user is None else user)
    )
    return _associate(ASSOCIATE_AC, called, calling, version, variable, length)


def associate_rj(result: int = 1, source: int = 1, reason: int = 1) -> bytes:
    """A-ASSOCIATE-RJ (PS3.8 9.3.4): reserved, result, source, reason/diag."""
    return pdu(ASSOCIATE_RJ, bytes([0, result, source, reason]))


def release_rq() -> bytes:
    """A-RELEASE-RQ (PS3.8 9.3.6): four reserved bytes."""
    return pdu(RELEASE_RQ, bytes(4))


def release_rp() -> bytes:
    """A-RELEASE-RP (PS3.8 9.3.7): four reserved bytes."""
    return pdu(RELEASE_RP, bytes(4))


def abort(source: int = 0, reason: int = 0) -> bytes:
    """A-ABORT (PS3.8 9.3.8): two reserved bytes, source, reason/diag."""
    return pdu(ABORT, bytes([0, 0, source, reason]))


def pdv(
    context_id: int,
    data: bytes,
    *,
    command: bool = True,
    last: bool = True,
    header: int | None = None,
    length: int | None = None,
) -> bytes:
    """Presentation data value item (PS3.8 9.3.5.1): item-length (4), context id, message control header, fragment.

    The control header (PS3.8 E.2): bit 0 set for a command fragment, bit 1 set for the last one.
    """
    control = (1 if command else 0) | (2 if last else 0) if header is None else header
    return struct.pack(">IBB", len(data) + 2 if length is None else length, context_id, control) + data


def p_data(*values: bytes, length: int | None = None) -> bytes:
    """P-DATA-TF (PS3.8 9.3.5): the PDV items, one after another."""
    return pdu(P_DATA_TF, b"".join(values), length=length)


@dataclass(frozen=True)
class Pdu:
    """A PDU as read: its type, its declared length, and the body read (empty when the length was not read)."""

    type: int
    length: int
    body: bytes

    @property
    def complete(self) -> bool:
        return len(self.body) == self.length


def items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each item in `data`, as far as the lengths hold (an overrunning one ends the walk)."""
    at = 0
    while at + 4 <= len(data):
        item_type, _, size = struct.unpack_from(">BBH", data, at)
        if at + 4 + size > len(data):
            return
        yield item_type, data[at + 4 : at + 4 + size]
        at += 4 + size


def maximum_length_of(body: bytes) -> int:
    """The maximum length an A-ASSOCIATE-AC body announces (0: unlimited or not said)."""
    for item_type, value in items(body[68:]):
        if item_type == 0x50:
            for sub_type, sub in items(value):
                if sub_type == 0x51 and len(sub) == 4:
                    return int(struct.unpack(">I", sub)[0])
    return 0


def accepted_contexts(body: bytes) -> dict[int, str]:
    """context id -> transfer syntax of each presentation context an A-ASSOCIATE-AC body accepts (result 0)."""
    out: dict[int, str] = {}
    for item_type, value in items(body[68:]):
        if item_type == 0x21 and len(value) >= 4 and value[2] == 0:
            syntaxes = [s for t, s in items(value[4:]) if t == 0x40]
            out[value[0]] = syntaxes[0].rstrip(b"\0 ").decode("ascii", "replace") if syntaxes else ""
    return out


def pdvs(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(context id, control header, fragment) of each PDV in a P-DATA-TF body, as far as the lengths hold."""
    at = 0
    while at + 6 <= len(body):
        size, context_id, control = struct.unpack_from(">IBB", body, at)
        if size < 2 or at + 4 + size > len(body):
            return
        yield context_id, control, body[at + 6 : at + 4 + size]
        at += 4 + size
