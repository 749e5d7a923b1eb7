"""DICOM user identity negotiation (PS3.7 D.3.3.7): test credentials, an acceptor's policy, and a recording C-ECHO.

Both sides run on pynetdicom 3.0.4:

- requestor: `negotiation(kind, primary, secondary)` is the `UserIdentityNegotiation` a
  `Modality(identity=...)` sends; `echo_with_identity` also records the server response
  the acceptor put in its A-ASSOCIATE-AC.
- acceptor: `identity_handlers(policy)` are the event handlers an SCP binds. pynetdicom calls
  the EVT_USER_ID handler only when an identity is offered; a False verdict makes it send
  A-ASSOCIATE-RJ (rejected-transient, ACSE, no reason given). A request without any identity
  never reaches that handler, so `required` is enforced from EVT_REQUESTED, the hook
  pynetdicom checks for a reject before it negotiates, with the same rejection.

Tokens are test doubles made offline and deterministically (fixed dates, no clock): a JWT
(HS256, checked for signature and expiry), an unsigned SAML 2.0 assertion (checked for its
issuer; parsed with defusedxml, DTDs forbidden) and a stand-in for a Kerberos ticket.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

import defusedxml
import defusedxml.ElementTree
from pynetdicom import evt
from pynetdicom.events import EventHandlerType, EventType
from pynetdicom.pdu_items import UserIdentitySubItemRQ
from pynetdicom.pdu_primitives import UserIdentityNegotiation

from harness.model import JSON, Endpoint
from simulators._net import status_hex
from simulators.modality import Modality

__all__ = [
    "GENERATED_SECRET",
    "CredentialError",
    "IdentityEcho",
    "IdentityKind",
    "IdentityPolicy",
    "Offer",
    "Quality",
    "Verification",
    "echo_with_identity",
    "identity_handlers",
    "jwt_token",
    "kerberos_principal",
    "kerberos_ticket",
    "negotiation",
    "offer",
    "policy_from_credentials",
    "saml_assertion",
    "saml_issuer",
    "standard_credentials",
    "user_identity_handler",
    "verify_jwt",
]

_LOG = logging.getLogger("simulators.identity")

# The secret the suites sign their own "valid" tokens with when a profile supplies none.
GENERATED_SECRET = "patchgate-generated-identity"
_USERNAME = "pgoperator"
_REALM = "PATCHGATE.TEST"
_SAML_ISSUER = "https://idp.patchgate.test"
_UNTRUSTED_ISSUER = "https://idp.untrusted.invalid"
_INTRUDER = "pgintruder"
_WRONG_PASSCODE = "pg-not-the-passcode"
# Fixed instants keep tokens byte-identical between runs: 2000-01-01, +1 h, and 2100-01-01 (UTC).
_ISSUED_AT = 946684800
_EXPIRED_AT = 946688400
_EXPIRES_AT = 4102444800
_FIELD_MAX = 0xFFFF  # the primary, secondary and server-response lengths are 2-byte fields
_SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_KRB_MAGIC = b"PGKRB5"
_KRB_TICKET, _KRB_REPLY = 1, 2


class CredentialError(ValueError):
    """A credential or token is malformed, forged, expired or from an untrusted source."""


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


# -- tokens ------------------------------------------------------------------------------


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


def _signed_jwt(secret: str | bytes, claims: Mapping[str, JSON]) -> str:
    signing_input = f"{_b64url(_canonical({'alg': 'HS256', 'typ': 'JWT'}))}.{_b64url(_canonical(claims))}"
    return f"{signing_input}.{_b64url(_hs256(secret, signing_input.encode('ascii')))}"


def jwt_token(secret: str | bytes, subject: str, *, expired: bool = False) -> str:
    """A compact HS256 JWT for `subject` signed with `secret`; fixed iat/exp (2000, +1 h if expired, else 2100)."""
    exp = _EXPIRED_AT if expired else _EXPIRES_AT
    return _signed_jwt(secret, {"iss": "patchgate", "sub": subject, "iat": _ISSUED_AT, "exp": exp})


def _jwt_parts(token: bytes | str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; CredentialError if malformed."""
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


def _check_times(claims: Mapping[str, Any], now: float) -> None:
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
    header, claims, signing_input, signature = _jwt_parts(token)
    if header.get("alg") != "HS256":  # never "none", never an algorithm the token picks
        raise CredentialError(f"JWT algorithm {header.get('alg')!r} is not HS256")
    if not hmac.compare_digest(signature, _hs256(secret, signing_input)):
        raise CredentialError("JWT signature does not verify")
    _check_times(claims, time.time() if now is None else now)
    return claims


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
    if len(assertion) > _FIELD_MAX:
        raise CredentialError(f"SAML assertion is {len(assertion)} bytes; at most {_FIELD_MAX} are parsed")
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


def _saml_response(assertion: bytes, issuer: str) -> bytes:
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


# -- credential sets (what a device profile hands the suites) ----------------------------


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
        header, claims, _, signature = _jwt_parts(token)
    except CredentialError:
        return jwt_token("patchgate-not-the-secret", _USERNAME).encode("ascii")
    claims["sub"] = _INTRUDER if claims.get("sub") != _INTRUDER else _USERNAME
    return f"{_b64url(_canonical(header))}.{_b64url(_canonical(claims))}.{_b64url(signature)}".encode("ascii")


# -- the acceptor ------------------------------------------------------------------------


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
            return Verification(True, f"Kerberos principal {principal!r}", _kerberos_blob(_KRB_REPLY, principal))
        if kind is IdentityKind.SAML:
            issuer = saml_issuer(primary, now=now)
            if issuer not in self.saml_issuers:
                raise CredentialError(f"SAML issuer {issuer!r} is not trusted")
            return Verification(True, f"SAML assertion from {issuer!r}", _saml_response(primary, _SERVER))
        claims, key = self._jwt(primary, now)
        subject = claims.get("sub")
        reply = {"iss": _SERVER, "sub": subject, "aud": claims.get("iss"), "iat": _ISSUED_AT, "exp": claims["exp"]}
        return Verification(True, f"JWT for {subject!r}", _signed_jwt(key, reply).encode("ascii"))

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
        _, claims, _, _ = _jwt_parts(token)
        _check_times(claims, now)
        return claims, _digest(token)  # a pinned token: its hash keys the reply


_SERVER = "patchgate-acceptor"


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{what} is not UTF-8") from None


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
            _jwt_parts(token)
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


# -- the requestor -----------------------------------------------------------------------


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


class _ResponseRecorder(Modality):
    """A Modality that keeps the User Identity server response of the association it made."""

    server_response: bytes | None = None

    def _associate(
        self,
        peer: Endpoint,
        contexts: list[Any],
        *,
        ext_neg: list[Any] | None = None,
        handlers: list[Any] | None = None,
    ) -> tuple[Any, str]:
        assoc, error = super()._associate(peer, contexts, ext_neg=ext_neg, handlers=handlers)
        if assoc is not None and not error:
            item = assoc.acceptor.user_identity  # from the A-ASSOCIATE-AC
            self.server_response = None if item is None else (item.server_response or b"")
        return assoc, error


def echo_with_identity(modality: Modality, peer: Endpoint, identity: UserIdentityNegotiation | None) -> IdentityEcho:
    """C-ECHO `peer` as `modality` (its AE title, TLS context and timeouts) offering `identity` (None: none)."""
    recorder = _ResponseRecorder(
        modality.ae_title,
        acse_timeout=modality.acse_timeout,
        dimse_timeout=modality.dimse_timeout,
        network_timeout=modality.network_timeout,
        ssl_context=modality.ssl_context,
        identity=identity,
    )
    result = recorder.echo(peer)
    return IdentityEcho(
        result.accepted, result.status, recorder.server_response if result.accepted else None, result.error
    )
