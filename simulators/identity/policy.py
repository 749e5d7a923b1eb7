"""An acceptor's user identity policy (PS3.7 D.3.3.7): which identities it admits, and the handlers an SCP binds.

pynetdicom calls the EVT_USER_ID handler only when an identity is offered; a False verdict
makes it send A-ASSOCIATE-RJ (rejected-transient, ACSE, no reason given). A request without
any identity never reaches that handler, so `required` is enforced from EVT_REQUESTED, the
hook pynetdicom checks for a reject before it negotiates, with the same rejection.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import evt
from pynetdicom.events import EventHandlerType, EventType

from simulators.identity.negotiation import IdentityKind
from simulators.identity.tokens import (
    CredentialError,
    check_jwt_times,
    jwt_parts,
    jwt_response,
    kerberos_principal,
    kerberos_response,
    saml_issuer,
    saml_response,
    verify_jwt,
)

__all__ = ["IdentityPolicy", "Verification", "identity_handlers", "user_identity_handler"]

_LOG = logging.getLogger("simulators.identity.policy")


@dataclass(frozen=True)
class Verification:
    """An acceptor's verdict on one offered identity: verified or why not, and its server response."""

    verified: bool
    reason: str
    response: bytes | None = None  # types 3-5 only; sent if the requestor asked for a positive response


@dataclass(frozen=True)
class IdentityPolicy:
    """Which identities an acceptor admits; `required` also refuses requests that offer none."""

    required: bool = False
    usernames: frozenset[str] = frozenset()
    passcodes: Mapping[str, str] = field(default_factory=dict)  # username -> passcode
    jwt_secret: str = ""  # HS256 key: any unexpired token it signed is admitted
    # Admitted as they are (if unexpired), for credential sets whose signing key is unknown.
    jwt_tokens: frozenset[str] = frozenset()
    saml_issuers: frozenset[str] = frozenset()
    kerberos_principals: frozenset[str] = frozenset()

    def verify(
        self, kind: IdentityKind | int, primary: bytes, secondary: bytes = b"", *, now: float | None = None
    ) -> Verification:
        """Whether the offered identity is admitted, and the server response for a positive answer."""
        try:
            kind = kind if isinstance(kind, IdentityKind) else IdentityKind.from_code(kind)
            if not primary:
                raise CredentialError(f"{kind}: empty primary field")
            return self._verify(kind, primary, secondary, time.time() if now is None else now)
        except CredentialError as exc:
            return Verification(False, str(exc))

    def _verify(self, kind: IdentityKind, primary: bytes, secondary: bytes, now: float) -> Verification:
        if kind is IdentityKind.USERNAME:
            name = _utf8(primary, "username")
            if name not in self.usernames:
                raise CredentialError(f"unknown username {name!r}")
            return Verification(True, f"username {name!r}")
        if kind is IdentityKind.USERNAME_PASSCODE:
            name = _utf8(primary, "username")
            expected = self.passcodes.get(name)
            if expected is None or not secondary or not hmac.compare_digest(expected.encode("utf-8"), secondary):
                raise CredentialError(f"wrong passcode for {name!r} (or no such user)")
            return Verification(True, f"username {name!r} with passcode")
        if kind is IdentityKind.KERBEROS:
            principal = kerberos_principal(primary)
            if principal not in self.kerberos_principals:
                raise CredentialError(f"unknown Kerberos principal {principal!r}")
            return Verification(True, f"Kerberos principal {principal!r}", kerberos_response(principal))
        if kind is IdentityKind.SAML:
            issuer = saml_issuer(primary, now=now)
            if issuer not in self.saml_issuers:
                raise CredentialError(f"SAML issuer {issuer!r} is not trusted")
            return Verification(True, f"SAML assertion from {issuer!r}", saml_response(primary, _SERVER))
        claims, key = self._jwt(primary, now)
        return Verification(True, f"JWT for {claims.get('sub')!r}", jwt_response(key, claims, _SERVER))

    def _jwt(self, token: bytes, now: float) -> tuple[dict[str, Any], bytes]:
        """The claims of an admitted JWT and the key to sign the server's reply with."""
        if self.jwt_secret:
            try:
                return verify_jwt(token, self.jwt_secret, now=now), self.jwt_secret.encode("utf-8")
            except CredentialError:
                if token.decode("ascii", "replace") not in self.jwt_tokens:
                    raise
        elif token.decode("ascii", "replace") not in self.jwt_tokens:
            raise CredentialError("JWT is not one this acceptor knows (no jwt_secret to verify it with)")
        _, claims, _, _ = jwt_parts(token)
        check_jwt_times(claims, now)
        return claims, hashlib.sha256(token).digest()  # a pinned token: its hash keys the reply


_SERVER = "patchgate-acceptor"


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{what} is not UTF-8") from None


_Handler = Callable[[Any], tuple[bool, bytes | None]]


def user_identity_handler(policy: IdentityPolicy) -> tuple[EventType, _Handler]:
    """(evt.EVT_USER_ID, handler): verify each offered identity against `policy`; a False verdict rejects."""

    def handle(event: Any) -> tuple[bool, bytes | None]:
        result = policy.verify(event.user_id_type, event.primary_field or b"", event.secondary_field or b"")
        _LOG.info("user identity %s: %s", "verified" if result.verified else "refused", result.reason)
        return result.verified, result.response

    return evt.EVT_USER_ID, handle


def _reject_without_identity(event: Any) -> None:
    """EVT_REQUESTED: reject a request that offers no user identity, as pynetdicom rejects a refused one."""
    assoc = event.assoc
    if assoc.requestor.user_identity is not None:
        return
    _LOG.info("association refused: no user identity offered and the policy requires one")
    # What pynetdicom does for a refused identity (acse.py): RJ transient / ACSE / no reason,
    # then kill(), which waits for the requestor to close before the socket is shut.
    assoc.acse.send_reject(0x02, 0x02, 0x01)
    evt.trigger(assoc, evt.EVT_REJECTED, {})
    assoc.kill()


def identity_handlers(policy: IdentityPolicy) -> list[EventHandlerType]:
    """The event handlers an SCP binds to enforce `policy`: the EVT_USER_ID check, and if required an EVT_REQUESTED one."""
    handlers: list[EventHandlerType] = [user_identity_handler(policy)]
    if policy.required:
        handlers.append((evt.EVT_REQUESTED, _reject_without_identity))
    return handlers
