"""Identity tokens as test doubles: HS256 JWTs, unsigned SAML 2.0 assertions and Kerberos stand-in tickets.

Made offline and deterministically (fixed dates, no clock), and verified as an acceptor
would: a JWT for its signature and expiry, a SAML assertion for its issuer and validity
(parsed with defusedxml, DTDs forbidden), a ticket for its checksum. Each kind also has
the server response an acceptor returns for it (PS3.7 D.3.3.7.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

import defusedxml
import defusedxml.ElementTree

from simulators.endpoint import JSON

__all__ = [
    "CredentialError",
    "check_jwt_times",
    "jwt_parts",
    "jwt_response",
    "jwt_token",
    "kerberos_principal",
    "kerberos_response",
    "kerberos_ticket",
    "saml_assertion",
    "saml_issuer",
    "saml_response",
    "tampered_jwt",
    "verify_jwt",
]

# Fixed instants keep tokens byte-identical between runs: 2000-01-01, +1 h, and 2100-01-01 (UTC).
_ISSUED_AT = 946684800
_EXPIRED_AT = 946688400
_EXPIRES_AT = 4102444800
# A token travels in a field with a 2-byte length (PS3.7 D.3.3.7); nothing longer is parsed.
_TOKEN_MAX = 0xFFFF
_SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_KRB_MAGIC = b"PGKRB5"
_KRB_TICKET, _KRB_REPLY = 1, 2


class CredentialError(ValueError):
    """A credential or token is malformed, forged, expired or from an untrusted source."""


# -- JWT (RFC 7519, HS256) -------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CredentialError("JWT segment is not base64url") from None


def _canonical(obj: Mapping[str, JSON]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _hs256(secret: str | bytes, signing_input: bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def _sign_jwt(secret: str | bytes, claims: Mapping[str, JSON]) -> str:
    signing_input = f"{_b64url(_canonical({'alg': 'HS256', 'typ': 'JWT'}))}.{_b64url(_canonical(claims))}"
    return f"{signing_input}.{_b64url(_hs256(secret, signing_input.encode('ascii')))}"


def jwt_token(secret: str | bytes, subject: str, *, expired: bool = False) -> str:
    """A compact HS256 JWT for `subject` signed with `secret`; fixed iat/exp (2000, +1 h if expired, else 2100)."""
    exp = _EXPIRED_AT if expired else _EXPIRES_AT
    return _sign_jwt(secret, {"iss": "patchgate", "sub": subject, "iat": _ISSUED_AT, "exp": exp})


def jwt_parts(token: bytes | str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS, unverified; CredentialError if malformed."""
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
    except UnicodeDecodeError:
        raise CredentialError("JWT is not ASCII") from None
    segments = text.split(".")
    if len(segments) != 3:
        raise CredentialError(f"JWT has {len(segments)} segments, expected 3 (header.payload.signature)")
    try:
        header, claims = (json.loads(_unb64url(s)) for s in segments[:2])
    except (ValueError, UnicodeDecodeError):
        raise CredentialError("JWT header or payload is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise CredentialError("JWT header and payload must be JSON objects")
    return header, claims, f"{segments[0]}.{segments[1]}".encode("ascii"), _unb64url(segments[2])


def check_jwt_times(claims: Mapping[str, Any], now: float) -> None:
    """CredentialError unless `now` is before the exp claim (and not before an nbf claim)."""
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise CredentialError("JWT has no numeric exp claim")
    if now >= exp:
        raise CredentialError(f"JWT expired at {int(exp)} (now {int(now)})")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now < nbf:
        raise CredentialError(f"JWT not valid before {int(nbf)}")


def verify_jwt(token: bytes | str, secret: str | bytes, *, now: float | None = None) -> dict[str, Any]:
    """The claims of an HS256 JWT whose signature and exp (and nbf) hold; CredentialError saying why not."""
    header, claims, signing_input, signature = jwt_parts(token)
    if header.get("alg") != "HS256":  # never "none", never an algorithm the token picks
        raise CredentialError(f"JWT algorithm {header.get('alg')!r} is not HS256")
    if not hmac.compare_digest(signature, _hs256(secret, signing_input)):
        raise CredentialError("JWT signature does not verify")
    check_jwt_times(claims, time.time() if now is None else now)
    return claims


def jwt_response(key: str | bytes, claims: Mapping[str, Any], issuer: str) -> bytes:
    """The acceptor's server response to an admitted JWT with `claims`: a JWT from `issuer` back to the token's issuer."""
    reply = {"iss": issuer, "sub": claims.get("sub"), "aud": claims.get("iss"), "iat": _ISSUED_AT, "exp": claims["exp"]}
    return _sign_jwt(key, reply).encode("ascii")


def tampered_jwt(token: bytes | str, subject: str) -> bytes:
    """`token` with its subject changed to `subject` and its original signature kept; CredentialError if it is no JWT."""
    header, claims, _, signature = jwt_parts(token)
    claims["sub"] = subject
    return f"{_b64url(_canonical(header))}.{_b64url(_canonical(claims))}.{_b64url(signature)}".encode("ascii")


# -- SAML 2.0 ------------------------------------------------------------------------------


def saml_assertion(subject: str, issuer: str) -> bytes:
    """A minimal, unsigned SAML 2.0 assertion (UTF-8 XML) naming `subject`, issued by `issuer`, valid 2000-2100."""
    ident = "_" + hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()[:32]
    return (
        f'<saml:Assertion xmlns:saml="{_SAML_NS}" ID="{ident}" Version="2.0" IssueInstant="2000-01-01T00:00:00Z">'
        f"<saml:Issuer>{escape(issuer)}</saml:Issuer>"
        f"<saml:Subject><saml:NameID>{escape(subject)}</saml:NameID></saml:Subject>"
        '<saml:Conditions NotBefore="2000-01-01T00:00:00Z" NotOnOrAfter="2100-01-01T00:00:00Z"/>'
        "</saml:Assertion>"
    ).encode()


def _saml_root(assertion: bytes) -> Element:
    """The parsed assertion; no DTD (so no entity expansion), size-limited; CredentialError if not SAML 2.0."""
    if len(assertion) > _TOKEN_MAX:
        raise CredentialError(f"SAML assertion is {len(assertion)} bytes; at most {_TOKEN_MAX} are parsed")
    try:
        root: Element = defusedxml.ElementTree.fromstring(assertion, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise CredentialError(f"SAML assertion refused: {exc.__class__.__name__}") from None
    except (ParseError, ValueError) as exc:
        raise CredentialError(f"SAML assertion is not well-formed XML: {exc}") from None
    if root.tag != f"{{{_SAML_NS}}}Assertion" or root.get("Version") != "2.0":
        raise CredentialError(f"not a SAML 2.0 assertion (root element {root.tag})")
    return root


def _saml_text(root: Element, path: str) -> str:
    node = root.find(path, {"saml": _SAML_NS})
    return (node.text or "").strip() if node is not None else ""


def saml_issuer(assertion: bytes, *, now: float | None = None) -> str:
    """The issuer of a well-formed, current SAML 2.0 assertion that names a subject; CredentialError if none."""
    root = _saml_root(assertion)
    issuer = _saml_text(root, "saml:Issuer")
    if not issuer or not _saml_text(root, "saml:Subject/saml:NameID"):
        raise CredentialError("SAML assertion lacks an Issuer or a Subject NameID")
    conditions = root.find("saml:Conditions", {"saml": _SAML_NS})
    instant = time.time() if now is None else now
    not_before = _saml_instant(conditions, "NotBefore")
    not_on_or_after = _saml_instant(conditions, "NotOnOrAfter")
    if (not_before is not None and instant < not_before) or (
        not_on_or_after is not None and instant >= not_on_or_after
    ):
        raise CredentialError("SAML assertion is outside the validity of its Conditions")
    return issuer


def _saml_instant(conditions: Element | None, attribute: str) -> float | None:
    """A Conditions time as a POSIX timestamp (UTC when no zone is given), None when absent."""
    value = conditions.get(attribute) if conditions is not None else None
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CredentialError(f"SAML Conditions {attribute}={value!r} is not a dateTime") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def saml_response(assertion: bytes, issuer: str) -> bytes:
    """A SAML 2.0 Response (status Success) to `assertion`: the acceptor's server response for type 4."""
    in_response_to = _saml_root(assertion).get("ID", "")
    ident = "_" + hashlib.sha256(b"response\0" + assertion).hexdigest()[:32]
    return (
        f'<samlp:Response xmlns:samlp="{_SAMLP_NS}" xmlns:saml="{_SAML_NS}" ID="{ident}" Version="2.0" '
        f'IssueInstant="2000-01-01T00:00:00Z" InResponseTo={quoteattr(in_response_to)}>'
        f"<saml:Issuer>{escape(issuer)}</saml:Issuer>"
        f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
        "</samlp:Response>"
    ).encode()


# -- Kerberos stand-in -----------------------------------------------------------------------


def _kerberos_blob(kind: int, principal: str) -> bytes:
    name = principal.encode("utf-8")
    body = _KRB_MAGIC + bytes([kind]) + struct.pack(">H", len(name)) + name
    return body + _digest(body)


def kerberos_ticket(principal: str) -> bytes:
    """A stand-in for a Kerberos service ticket naming `principal` (e.g. ``user@REALM``).

    Not a real ticket: that is an ASN.1 KRB-AP-REQ encrypted with a key from a KDC, which
    cannot be had offline. This is ``PGKRB5 | 0x01 | length (2, big endian) | principal
    (UTF-8) | sha256 of all before``: recognisable, checksummed, and refused by any device
    that really validates Kerberos (as it should refuse any ticket it cannot verify).
    """
    return _kerberos_blob(_KRB_TICKET, principal)


def kerberos_response(principal: str) -> bytes:
    """The acceptor's server response to a `kerberos_ticket` for `principal`: the same stand-in, marked as a reply."""
    return _kerberos_blob(_KRB_REPLY, principal)


def kerberos_principal(ticket: bytes) -> str:
    """The principal a `kerberos_ticket` names; CredentialError if it is not one (or is corrupted)."""
    head = len(_KRB_MAGIC) + 3
    if len(ticket) < head + 32 or not ticket.startswith(_KRB_MAGIC) or ticket[len(_KRB_MAGIC)] != _KRB_TICKET:
        raise CredentialError("not a patchgate Kerberos stand-in ticket")
    (length,) = struct.unpack(">H", ticket[head - 2 : head])
    body = ticket[: head + length]
    if len(ticket) != head + length + 32 or not hmac.compare_digest(ticket[head + length :], _digest(body)):
        raise CredentialError("Kerberos stand-in ticket is truncated or its checksum does not match")
    try:
        return ticket[head : head + length].decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError("Kerberos principal is not UTF-8") from None


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
