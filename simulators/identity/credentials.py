"""Identity credential sets: valid ones made from a secret, the offers a suite makes, the policy that admits a set.

A set maps username, passcode, kerberos, saml and jwt to text (what a device profile's
`[device.identity]` holds); any key may be absent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pynetdicom.pdu_primitives import UserIdentityNegotiation

from simulators.identity.negotiation import IdentityKind, negotiation
from simulators.identity.policy import IdentityPolicy
from simulators.identity.tokens import (
    CredentialError,
    jwt_parts,
    jwt_token,
    kerberos_principal,
    kerberos_ticket,
    saml_assertion,
    saml_issuer,
    tampered_jwt,
)

__all__ = [
    "GENERATED_SECRET",
    "Offer",
    "Quality",
    "offer",
    "policy_from_credentials",
    "standard_credentials",
]

# The secret the suites sign their own "valid" tokens with when a profile supplies none.
GENERATED_SECRET = "patchgate-generated-identity"
_USERNAME = "pgoperator"
_REALM = "PATCHGATE.TEST"
_SAML_ISSUER = "https://idp.patchgate.test"
_UNTRUSTED_ISSUER = "https://idp.untrusted.invalid"
_INTRUDER = "pgintruder"
_WRONG_PASSCODE = "pg-not-the-passcode"


def _passcode(secret: str) -> str:
    return hmac.new(secret.encode(), b"patchgate passcode", hashlib.sha256).hexdigest()[:24]


def standard_credentials(secret: str) -> dict[str, str]:
    """A valid credential of every kind, derived from `secret`: keys username, passcode, kerberos, saml, jwt.

    Text values: the username and passcode as they are, the Kerberos ticket and the SAML
    assertion in base64, the JWT in its compact (ASCII) form.
    """
    return {
        "username": _USERNAME,
        "passcode": _passcode(secret),
        "kerberos": base64.b64encode(kerberos_ticket(f"{_USERNAME}@{_REALM}")).decode("ascii"),
        "saml": base64.b64encode(saml_assertion(_USERNAME, _SAML_ISSUER)).decode("ascii"),
        "jwt": jwt_token(secret, _USERNAME),
    }


_CREDENTIAL_KEYS = ("username", "passcode", "kerberos", "saml", "jwt")


def _decoded(credentials: Mapping[str, str], key: str) -> bytes:
    """A credential's bytes: base64 for kerberos, base64 or literal XML for saml, UTF-8 otherwise."""
    value = credentials[key]
    if key == "saml" and value.lstrip().startswith("<"):
        return value.encode("utf-8")
    if key in ("kerberos", "saml"):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CredentialError(
                f"identity credential {key!r} is not base64 (hint: give the raw token base64-encoded, "
                "as standard_credentials does)"
            ) from None
    return value.encode("utf-8")


def _fields(credentials: Mapping[str, str], kind: IdentityKind) -> tuple[bytes, bytes] | None:
    """(primary, secondary) for `kind` from a credential set, None when the set lacks it."""
    if kind is IdentityKind.USERNAME_PASSCODE:
        if credentials.get("username") and credentials.get("passcode"):
            return _decoded(credentials, "username"), _decoded(credentials, "passcode")
        return None
    key = "username" if kind is IdentityKind.USERNAME else kind.value
    return (_decoded(credentials, key), b"") if credentials.get(key) else None


Quality = Literal["valid", "invalid", "empty"]


@dataclass(frozen=True)
class Offer:
    """A credential a suite offers: kind, fields, and whether its valid part came from the profile or was generated."""

    kind: IdentityKind
    primary: bytes
    secondary: bytes = b""
    source: Literal["profile", "generated"] = "profile"

    def negotiation(self, *, response_requested: bool = True) -> UserIdentityNegotiation:
        return negotiation(self.kind, self.primary, self.secondary, response_requested=response_requested)


def offer(kind: IdentityKind | str, quality: Quality, credentials: Mapping[str, str]) -> Offer:
    """A `valid`, `invalid` or `empty` credential of `kind`, from the profile's credential set where it has one.

    Without one, the valid credential is generated (signed with GENERATED_SECRET). Invalid:
    an unknown user, a known user with a wrong passcode, a ticket for an unknown principal,
    an assertion from an untrusted issuer, a JWT whose payload was altered after signing.
    Empty: the secret part empty (no username; a known user with no passcode; no token).
    """
    kind = IdentityKind(kind)
    valid = _fields(credentials, kind)
    source: Literal["profile", "generated"] = "profile"
    if valid is None:
        valid, source = _fields(standard_credentials(GENERATED_SECRET), kind), "generated"
    assert valid is not None  # standard_credentials has every kind
    primary, secondary = valid
    if quality == "valid":
        return Offer(kind, primary, secondary, source)
    if quality == "empty":
        return Offer(kind, primary if kind is IdentityKind.USERNAME_PASSCODE else b"", b"", source)
    if quality != "invalid":
        raise ValueError(f"credential quality must be valid, invalid or empty, not {quality!r}")
    invalid: Mapping[IdentityKind, Callable[[], tuple[bytes, bytes]]] = {
        IdentityKind.USERNAME: lambda: (_other(_INTRUDER.encode(), primary), b""),
        IdentityKind.USERNAME_PASSCODE: lambda: (primary, _other(_WRONG_PASSCODE.encode(), secondary)),
        IdentityKind.KERBEROS: lambda: (kerberos_ticket(f"{_INTRUDER}@{_REALM}"), b""),
        IdentityKind.SAML: lambda: (saml_assertion(_USERNAME, _UNTRUSTED_ISSUER), b""),
        IdentityKind.JWT: lambda: (_tampered(primary), b""),
    }
    return Offer(kind, *invalid[kind](), source)


def _other(wrong: bytes, valid: bytes) -> bytes:
    return wrong if wrong != valid else wrong + b"-other"


def _tampered(token: bytes) -> bytes:
    """`token` with its subject changed and the original signature kept; a fresh forgery if it is no JWT."""
    try:
        subject = jwt_parts(token)[1].get("sub")
    except CredentialError:
        return jwt_token("patchgate-not-the-secret", _USERNAME).encode("ascii")
    return tampered_jwt(token, _INTRUDER if subject != _INTRUDER else _USERNAME)


def policy_from_credentials(credentials: Mapping[str, str], required: bool = True) -> IdentityPolicy:
    """The policy that admits exactly the given credential set (standard_credentials' keys; any may be absent).

    A JWT is pinned (its signing key is not in the set); a SAML assertion admits its issuer,
    a Kerberos ticket its principal. CredentialError names a malformed or unknown entry.
    """
    unknown = sorted(set(credentials) - set(_CREDENTIAL_KEYS))
    if unknown:
        raise CredentialError(f"unknown identity credential(s) {unknown}; known: {', '.join(_CREDENTIAL_KEYS)}")
    username = credentials.get("username", "")
    passcode = credentials.get("passcode", "")
    if passcode and not username:
        raise CredentialError("identity credential 'passcode' without a 'username' (hint: give both)")
    try:
        principals = [kerberos_principal(_decoded(credentials, "kerberos"))] if credentials.get("kerberos") else []
        issuers = [saml_issuer(_decoded(credentials, "saml"))] if credentials.get("saml") else []
        tokens = [credentials["jwt"]] if credentials.get("jwt") else []
        for token in tokens:
            jwt_parts(token)
    except CredentialError as exc:
        raise CredentialError(f"identity credentials: {exc}") from None
    return IdentityPolicy(
        required=required,
        usernames=frozenset([username] if username else []),
        passcodes={username: passcode} if username and passcode else {},
        jwt_tokens=frozenset(tokens),
        saml_issuers=frozenset(issuers),
        kerberos_principals=frozenset(principals),
    )
