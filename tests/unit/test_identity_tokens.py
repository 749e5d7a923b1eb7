"""Identity test tokens and the acceptor policy, without a network: JWT, SAML, Kerberos stand-in, credential sets."""

from __future__ import annotations

import base64
import json

import pytest

from simulators.identity.credentials import Quality, offer, policy_from_credentials, standard_credentials
from simulators.identity.negotiation import IdentityKind, negotiation
from simulators.identity.policy import IdentityPolicy
from simulators.identity.tokens import (
    CredentialError,
    jwt_token,
    kerberos_principal,
    kerberos_ticket,
    saml_assertion,
    saml_issuer,
    verify_jwt,
)

SECRET = "unit-secret"
NOW = 1_800_000_000.0  # 2027: after the "expired" tokens' exp, before the valid ones'


def _segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_kind_codes_are_ps37_table_d3_14() -> None:
    assert [(k.value, k.code) for k in IdentityKind] == [
        ("username", 1),
        ("username_passcode", 2),
        ("kerberos", 3),
        ("saml", 4),
        ("jwt", 5),
    ]
    assert IdentityKind.from_code(4) is IdentityKind.SAML
    with pytest.raises(CredentialError, match="unknown user identity type 6"):
        IdentityKind.from_code(6)


def test_jwt_is_deterministic_and_verifies() -> None:
    token = jwt_token(SECRET, "alice")
    assert token == jwt_token(SECRET, "alice")
    claims = verify_jwt(token, SECRET, now=NOW)
    assert claims["sub"] == "alice"
    assert claims["exp"] > NOW


def test_jwt_wrong_secret_and_tampered_payload_are_refused() -> None:
    token = jwt_token(SECRET, "alice")
    with pytest.raises(CredentialError, match="signature"):
        verify_jwt(token, "another-secret", now=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = ".".join([header, _segment({**claims, "sub": "mallory"}), signature])
    with pytest.raises(CredentialError, match="signature"):
        verify_jwt(forged, SECRET, now=NOW)


def test_jwt_expired_is_refused() -> None:
    with pytest.raises(CredentialError, match="expired"):
        verify_jwt(jwt_token(SECRET, "alice", expired=True), SECRET, now=NOW)


def test_jwt_alg_none_and_garbage_are_refused() -> None:
    unsigned = f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment({'sub': 'alice', 'exp': 4e9})}."
    with pytest.raises(CredentialError, match="not HS256"):
        verify_jwt(unsigned, SECRET, now=NOW)
    for garbage in (b"", b"a.b", b"\xff.\xff.\xff", b"!!.??.**"):
        with pytest.raises(CredentialError):
            verify_jwt(garbage, SECRET, now=NOW)


def test_jwt_policy_by_secret_and_by_pinned_token() -> None:
    token = jwt_token(SECRET, "alice").encode()
    by_secret = IdentityPolicy(jwt_secret=SECRET).verify(IdentityKind.JWT, token, now=NOW)
    assert by_secret.verified, by_secret.reason
    reply = by_secret.response
    assert reply is not None
    assert verify_jwt(reply, SECRET, now=NOW)["sub"] == "alice"  # the server answers with its own JWT
    pinned = IdentityPolicy(jwt_tokens=frozenset({token.decode()}))
    assert pinned.verify(5, token, now=NOW).verified
    other = jwt_token(SECRET, "bob").encode()
    assert not pinned.verify(5, other, now=NOW).verified
    expired = jwt_token(SECRET, "alice", expired=True)
    refused = IdentityPolicy(jwt_tokens=frozenset({expired})).verify(5, expired.encode(), now=NOW)
    assert not refused.verified
    assert "expired" in refused.reason


def test_saml_issuer_is_read_and_checked() -> None:
    assertion = saml_assertion("alice", "https://idp.example.test")
    assert saml_issuer(assertion, now=NOW) == "https://idp.example.test"
    policy = IdentityPolicy(saml_issuers=frozenset({"https://idp.example.test"}))
    verdict = policy.verify(IdentityKind.SAML, assertion, now=NOW)
    assert verdict.verified, verdict.reason
    assert verdict.response is not None
    assert b"urn:oasis:names:tc:SAML:2.0:status:Success" in verdict.response
    untrusted = policy.verify(IdentityKind.SAML, saml_assertion("alice", "https://evil.test"), now=NOW)
    assert not untrusted.verified
    assert "not trusted" in untrusted.reason


def test_saml_escapes_markup_in_names() -> None:
    assertion = saml_assertion("a<b>&c", 'https://idp.test/?x="1"&y=<2>')
    assert saml_issuer(assertion, now=NOW) == 'https://idp.test/?x="1"&y=<2>'


def test_saml_outside_its_conditions_is_refused() -> None:
    with pytest.raises(CredentialError, match="Conditions"):
        saml_issuer(saml_assertion("alice", "https://idp.test"), now=4_200_000_000.0)  # after 2100


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Version="2.0">
<saml:Issuer>&lol9;</saml:Issuer><saml:Subject><saml:NameID>x</saml:NameID></saml:Subject></saml:Assertion>"""

EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Version="2.0">
<saml:Issuer>&x;</saml:Issuer></saml:Assertion>"""


@pytest.mark.parametrize("document", [BOMB, EXTERNAL], ids=["entity-bomb", "external-entity"])
def test_saml_with_a_dtd_is_refused_without_expanding_it(document: bytes) -> None:
    with pytest.raises(CredentialError, match="DTDForbidden"):
        saml_issuer(document, now=NOW)
    verdict = IdentityPolicy(saml_issuers=frozenset({"lol"})).verify(IdentityKind.SAML, document, now=NOW)
    assert not verdict.verified


@pytest.mark.parametrize(
    "document",
    [
        b"<not-xml",
        b"<saml:Assertion xmlns:saml='urn:other' Version='2.0'/>",
        saml_assertion("alice", "https://idp.test").replace(b'Version="2.0"', b'Version="1.1"'),
        b"<saml:Assertion xmlns:saml='urn:oasis:names:tc:SAML:2.0:assertion' Version='2.0'/>",  # no issuer
        b"<a>" + b"x" * 70_000 + b"</a>",  # over the 2-byte field length: not even parsed
    ],
    ids=["malformed", "wrong-namespace", "saml-1.1", "no-issuer", "oversized"],
)
def test_saml_that_is_not_a_saml2_assertion_is_refused(document: bytes) -> None:
    with pytest.raises(CredentialError):
        saml_issuer(document, now=NOW)


def test_kerberos_stand_in_round_trips_and_detects_corruption() -> None:
    ticket = kerberos_ticket("alice@EXAMPLE.TEST")
    assert ticket.startswith(b"PGKRB5")
    assert kerberos_principal(ticket) == "alice@EXAMPLE.TEST"
    corrupted = ticket[:-1] + bytes([ticket[-1] ^ 1])
    for bad in (corrupted, ticket[:-5], ticket + b"x", b"", b"PGKRB5", b"\x6e\x82" + ticket):
        with pytest.raises(CredentialError):
            kerberos_principal(bad)


def test_username_and_passcode_policy() -> None:
    policy = IdentityPolicy(usernames=frozenset({"alice"}), passcodes={"alice": "pw"})
    assert policy.verify(1, b"alice").verified
    assert policy.verify(2, b"alice", b"pw").verified
    refused = [
        policy.verify(1, b"bob"),
        policy.verify(1, b""),
        policy.verify(1, b"\xff"),
        policy.verify(2, b"alice", b"wrong"),
        policy.verify(2, b"alice", b""),
        policy.verify(2, b"bob", b"pw"),
        policy.verify(9, b"alice"),
    ]
    assert [v.verified for v in refused] == [False] * len(refused)
    assert all(v.reason for v in refused)


def test_standard_credentials_admit_exactly_themselves() -> None:
    credentials = standard_credentials(SECRET)
    assert set(credentials) == {"username", "passcode", "kerberos", "saml", "jwt"}
    assert credentials == standard_credentials(SECRET)
    assert credentials["passcode"] != standard_credentials("other")["passcode"]
    policy = policy_from_credentials(credentials, required=True)
    assert policy.required
    for kind in IdentityKind:
        expectations: tuple[tuple[Quality, bool], ...] = (("valid", True), ("invalid", False), ("empty", False))
        for quality, admitted in expectations:
            offered = offer(kind, quality, credentials)
            assert offered.source == "profile"
            verdict = policy.verify(kind, offered.primary, offered.secondary)
            assert verdict.verified is admitted, (kind, quality, verdict.reason)
            # Responses only for types 3-5 (PS3.7 D.3.3.7.2), only when admitted.
            assert (verdict.response is not None) is (admitted and kind.code >= 3), (kind, quality)


def test_offer_generates_what_the_profile_lacks() -> None:
    credentials = {"username": "alice"}  # no passcode: username_passcode is generated whole
    assert offer(IdentityKind.USERNAME, "valid", credentials).primary == b"alice"
    assert offer(IdentityKind.USERNAME, "valid", credentials).source == "profile"
    generated = offer(IdentityKind.USERNAME_PASSCODE, "valid", credentials)
    assert generated.source == "generated"
    assert generated.secondary
    assert offer(IdentityKind.JWT, "valid", {}).source == "generated"
    assert offer(IdentityKind.USERNAME_PASSCODE, "empty", credentials).secondary == b""


def test_policy_from_credentials_names_what_is_wrong() -> None:
    with pytest.raises(CredentialError, match="unknown identity credential"):
        policy_from_credentials({"password": "x"})
    with pytest.raises(CredentialError, match="'kerberos' is not base64"):
        policy_from_credentials({"kerberos": "not base64!"})
    with pytest.raises(CredentialError, match="'passcode' without a 'username'"):
        policy_from_credentials({"passcode": "x"})
    with pytest.raises(CredentialError, match="segments"):
        policy_from_credentials({"jwt": "not-a-jwt"})
    # SAML may be given as literal XML too.
    xml = saml_assertion("alice", "https://idp.test").decode()
    assert policy_from_credentials({"saml": xml}).saml_issuers == frozenset({"https://idp.test"})


def test_negotiation_item_fields() -> None:
    item = negotiation("username_passcode", b"alice", b"pw", response_requested=False)
    assert (item.user_identity_type, item.primary_field, item.secondary_field) == (2, b"alice", b"pw")
    assert item.positive_response_requested is False
    # An empty passcode still encodes (pynetdicom alone refuses to), as a zero-length secondary field.
    encoded = negotiation(IdentityKind.USERNAME_PASSCODE, b"alice").from_primitive().encode()
    assert encoded[-2:] == b"\x00\x00"
    assert encoded[4:6] == b"\x02\x01"
    with pytest.raises(ValueError, match="only sent with username_passcode"):
        negotiation(IdentityKind.JWT, b"t", b"s")
    with pytest.raises(ValueError, match="at most 65535"):
        negotiation(IdentityKind.SAML, b"x" * 70_000)
