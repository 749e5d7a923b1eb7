"""Raw data set encoders (PS3.5 7.1, implicit and explicit VR little endian): elements, sequences, delimiters."""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = [
    "ITEM",
    "ITEM_DELIMITATION",
    "LONG_VRS",
    "SEQUENCE_DELIMITATION",
    "UNDEFINED",
    "element",
    "explicit",
    "implicit",
    "nested",
    "padded",
    "sequence",
    "sequence_item",
]

UNDEFINED = 0xFFFFFFFF  # PS3.5 7.1.1: undefined length
ITEM = 0xFFFEE000  # PS3.5 7.5: item, item delimitation and sequence delimitation tags
ITEM_DELIMITATION = 0xFFFEE00D
SEQUENCE_DELIMITATION = 0xFFFEE0DD
# PS3.5 Table 7.1-1: VRs with 2 reserved bytes and a 4-byte length in explicit VR.
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})


def _tag(tag: int) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


def padded(value: str | bytes, vr: str = "LO") -> bytes:
    """`value` padded to even length (PS3.5 7.1.1): UI with NUL (9.1), OB/UN with NUL, other strings with a space."""
    raw = value.encode("ascii") if isinstance(value, str) else value
    if len(raw) % 2 == 0:
        return raw
    return raw + (b"\0" if vr in ("UI", "OB", "UN") else b" ")


def implicit(tag: int, value: bytes, *, length: int | None = None) -> bytes:
    """One implicit VR LE element: tag (group, element; 2 + 2), length (4), value (PS3.5 7.1.3)."""
    return _tag(tag) + struct.pack("<I", len(value) if length is None else length) + value


def explicit(tag: int, vr: str | bytes, value: bytes, *, length: int | None = None, long: bool | None = None) -> bytes:
    """One explicit VR LE element (PS3.5 7.1.2): tag, VR, then a 2-byte length, or 2 reserved bytes and a 4-byte one.

    `long` forces the form; by default it follows `LONG_VRS` (an unknown VR gets the short form).
    """
    code = vr.encode("ascii") if isinstance(vr, str) else vr
    size = len(value) if length is None else length
    if code in LONG_VRS if long is None else long:
        return _tag(tag) + code + b"\0\0" + struct.pack("<I", size) + value
    return _tag(tag) + code + struct.pack("<H", size) + value


def element(tag: int, vr: str, value: str | bytes, *, explicit_vr: bool = False) -> bytes:
    """A well-formed element with its value padded to even length, in either encoding."""
    raw = padded(value, vr)
    return explicit(tag, vr, raw) if explicit_vr else implicit(tag, raw)


def sequence_item(content: bytes, *, undefined: bool = True, terminated: bool = True) -> bytes:
    """An item (FFFE,E000) of a sequence: defined length, or undefined and ended by an item delimiter (PS3.5 7.5)."""
    if not undefined:
        return implicit(ITEM, content)
    return implicit(ITEM, content, length=UNDEFINED) + (implicit(ITEM_DELIMITATION, b"") if terminated else b"")


def sequence(
    tag: int,
    items: Iterable[bytes],
    *,
    undefined: bool = True,
    terminated: bool = True,
    explicit_vr: bool = False,
) -> bytes:
    """A sequence of already encoded items (PS3.5 7.5): undefined length ended by (FFFE,E0DD), or defined."""
    body = b"".join(items)
    if undefined:
        head = explicit(tag, "SQ", b"", length=UNDEFINED) if explicit_vr else implicit(tag, b"", length=UNDEFINED)
        return head + body + (implicit(SEQUENCE_DELIMITATION, b"") if terminated else b"")
    return explicit(tag, "SQ", body) if explicit_vr else implicit(tag, body)


def nested(tag: int, depth: int, leaf: bytes = b"") -> bytes:
    """`depth` undefined-length sequences one inside the other's single item, each properly terminated.

    Written as a repeated opening, the leaf, a repeated closing: no recursion, no quadratic copying.
    """
    opening = implicit(tag, b"", length=UNDEFINED) + implicit(ITEM, b"", length=UNDEFINED)
    closing = implicit(ITEM_DELIMITATION, b"") + implicit(SEQUENCE_DELIMITATION, b"")
    return opening * depth + leaf + closing * depth
