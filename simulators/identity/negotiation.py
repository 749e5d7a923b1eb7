"""What a requestor offers in user identity negotiation (PS3.7 D.3.3.7): identity kinds, the request item, a C-ECHO.

`negotiation(kind, primary, secondary)` is the `UserIdentityNegotiation` a
`Modality(identity=...)` sends; `echo_with_identity` also records the server response the
acceptor put in its A-ASSOCIATE-AC. The acceptor's side is simulators.identity.policy.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass

from pynetdicom.pdu_items import UserIdentitySubItemRQ
from pynetdicom.pdu_primitives import UserIdentityNegotiation

from simulators._net import status_hex
from simulators.endpoint import JSON, Endpoint
from simulators.identity.tokens import CredentialError
from simulators.modality import Modality

__all__ = ["IdentityEcho", "IdentityKind", "echo_with_identity", "negotiation"]

_FIELD_MAX = 0xFFFF  # the primary, secondary and server-response lengths are 2-byte fields


class IdentityKind(enum.StrEnum):
    """A User Identity Type of PS3.7 Table D.3-14; `code` is its value on the wire."""

    USERNAME = "username"
    USERNAME_PASSCODE = "username_passcode"
    KERBEROS = "kerberos"
    SAML = "saml"
    JWT = "jwt"

    @property
    def code(self) -> int:
        return list(IdentityKind).index(self) + 1

    @classmethod
    def from_code(cls, code: int) -> IdentityKind:
        kinds = list(cls)
        if not 1 <= code <= len(kinds):
            raise CredentialError(f"unknown user identity type {code}; PS3.7 defines 1-{len(kinds)}")
        return kinds[code - 1]


def negotiation(
    kind: IdentityKind | str, primary: bytes, secondary: bytes = b"", *, response_requested: bool = True
) -> UserIdentityNegotiation:
    """The A-ASSOCIATE-RQ user identity item offering `primary` (and, for username_passcode, `secondary`).

    Empty fields are sent as they are (probing a device with an empty credential is the
    point); pynetdicom refuses to encode an empty passcode, so that one item is encoded here.
    """
    kind = IdentityKind(kind)
    if secondary and kind is not IdentityKind.USERNAME_PASSCODE:
        raise ValueError(f"a secondary field is only sent with username_passcode, not {kind}")
    for name, value in (("primary", primary), ("secondary", secondary)):
        if len(value) > _FIELD_MAX:
            raise ValueError(f"{kind} {name} field is {len(value)} bytes; PS3.7 allows at most {_FIELD_MAX}")
    item = UserIdentityNegotiation()
    item.user_identity_type = kind.code
    item.primary_field = primary
    item.secondary_field = secondary
    item.positive_response_requested = response_requested
    if kind is IdentityKind.USERNAME_PASSCODE and not secondary:
        # pynetdicom 3.0.4 raises in its DUL thread (the requestor then waits out the ACSE
        # timeout); PS3.7 only says the field is present for type 2, so encode it as given.
        # An instance attribute: pynetdicom keys negotiation items by exact type, so no subclass.
        setattr(item, "from_primitive", lambda: _rq_item(item))  # noqa: B010
    return item


def _rq_item(item: UserIdentityNegotiation) -> UserIdentitySubItemRQ:
    rq = UserIdentitySubItemRQ()
    rq.from_primitive(item)
    return rq


@dataclass(frozen=True)
class IdentityEcho:
    """A C-ECHO offering a user identity: admitted or not, the status, and the acceptor's server response."""

    accepted: bool
    status: int | None
    server_response: bytes | None  # None: no User Identity item in the A-ASSOCIATE-AC
    error: str = ""

    def summary(self) -> dict[str, JSON]:
        return {
            "accepted": self.accepted,
            "status": status_hex(self.status),
            "server_response": "none" if self.server_response is None else "present",
            "error": self.error,
        }


def echo_with_identity(modality: Modality, peer: Endpoint, identity: UserIdentityNegotiation | None) -> IdentityEcho:
    """C-ECHO `peer` as `modality` (its AE title, TLS context and timeouts) offering `identity` (None: none)."""
    requestor = copy.copy(modality)  # the caller's modality keeps its own identity
    requestor.identity = identity
    result = requestor.echo(peer)
    return IdentityEcho(
        result.accepted, result.status, result.user_identity_response if result.accepted else None, result.error
    )
